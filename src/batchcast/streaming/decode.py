"""Messages into one table of the model's features and the rows' ids; bad messages set aside with their error.

A message is a JSON object (``format = "json"``) or a list of them
(``"records"``, bare or as MLflow's ``{"dataframe_records": [...]}``). The
batch is read whole first; only when that fails is each message read alone,
so one bad message costs its batch a second pass, and only it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pyarrow as pa

from batchcast.brokers.base import Message
from batchcast.data.schema import Schema
from batchcast.errors import BatchcastError, RequestError
from batchcast.online.features import Features, decode, records, table


@dataclass
class Decoded:
    """The batch's good rows (``table``), the message each row came from, and the messages refused."""

    table: pa.Table | None
    messages: list[Message]  # one per row of ``table``
    bad: list[tuple[Message, BatchcastError]] = field(default_factory=list)


@dataclass(frozen=True)
class Reader:
    """How a stream's messages are read: their format, and the columns passed through."""

    schema: Schema  # the rows' columns: ids and features passed through, the rest predicted
    ids: tuple[str, ...]
    format: str = "json"
    key_field: str | None = None

    def passed(self, features: Features) -> list[str]:
        """The schema's columns the rows carry (ids, and features the output keeps); the rest are predicted."""
        return [c for c in self.schema.names if c in self.ids or c in features.names]

    def read(self, messages: list[Message], features: Features) -> Decoded:
        """The batch read into ``features`` (the model's: ids are taken apart, typed by the schema)."""
        features = replace(features, ids=())
        parsed, bad = [], []
        for message in messages:
            try:
                parsed.append((message, self._rows(message)))
            except RequestError as exc:
                bad.append((message, exc))
        try:
            return Decoded(*self._table(parsed, features), bad)
        except RequestError:
            pass
        tables, owners = [], []
        for message, rows in parsed:  # one by one: only the messages at fault are refused
            try:
                one, owned = self._table([(message, rows)], features)
            except RequestError as exc:
                bad.append((message, exc))
                continue
            tables.append(one)
            owners += owned
        joined = pa.concat_tables(tables, promote_options="permissive") if tables else None
        return Decoded(joined, owners, bad)

    def _rows(self, message: Message) -> list[dict]:
        document = decode(message.value or b"", "the message")
        if self.format == "json":
            if not isinstance(document, dict):
                raise RequestError(f"the message is a JSON {type(document).__name__}, not an object",
                                   'send one object per message, e.g. {"feature": 1.0}, or set [stream] '
                                   'format = "records"')
            rows = [document]
        else:
            rows = document.get("dataframe_records") if isinstance(document, dict) else document
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows) or not rows:
                raise RequestError("the message is not a list of objects",
                                   'send [{"feature": 1.0}, ...] or {"dataframe_records": [...]}')
        if self.key_field and message.key is not None:
            key = message.key.decode(errors="replace")
            for row in rows:
                row.setdefault(self.key_field, key)
        return rows

    def _table(self, parsed: list[tuple[Message, list[dict]]],
               features_: Features) -> tuple[pa.Table | None, list[Message]]:
        rows = [row for _, found in parsed for row in found]
        owners = [message for message, found in parsed for _ in found]
        if not rows:
            return None, []
        columns = records(rows, "the message")
        features = table(columns, features_)
        arrays = {}
        for name in self.passed(features_):
            if name in features.column_names:
                arrays[name] = features.column(name)
            elif name not in columns:
                raise RequestError(f"column '{name}' is missing", f"send '{name}' in every message: it is an id "
                                   "of the rows, in the output")
            else:
                arrays[name] = _typed(name, columns[name], self.schema)
        for name in features_.names:
            arrays.setdefault(name, features.column(name))
        return pa.table(arrays), owners


def _typed(name: str, values: list, schema: Schema) -> pa.Array:
    """An id column in its declared type; a number sent for a STRING id becomes its text."""
    column = next(c for c in schema if c.name == name)
    if column.type == "STRING":
        values = [v if v is None or isinstance(v, str) else str(v) for v in values]
    try:
        return pa.array(values, type=column.arrow)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise RequestError(f"column '{name}': {exc}", f"send '{name}' as {column.type}") from None
