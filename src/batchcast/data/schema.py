"""Column schemas: the compact ``name:TYPE,name:TYPE`` form and Arrow.

The compact form is what users write in ``batchcast.toml``
(``player_id:STRING!,label:BOOL``; ``!`` marks a column that must hold a value
in every row); Arrow is what flows between the sources,
the model and the warehouses. :func:`conform` is the single gate every batch
passes before it reaches a warehouse, so a mismatch is found before anything
is committed.

Missing values: a NaN in a FLOAT64 column is stored as NULL (one spelling of
"no value" in SQL), and a column declared with ``!`` refuses NULL, NaN and,
for STRING, the empty string: the run fails naming the column, and nothing
is published.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from batchcast.errors import SchemaError
from batchcast.redaction import first_line

if TYPE_CHECKING:
    import pyarrow as pa

# pyarrow is imported where Arrow is used, not here: a spec is parsed by processes
# that never touch data (the local executor's parent, the scheduler), and pyarrow costs them 0.2 s.
TYPES = ("STRING", "INT64", "FLOAT64", "BOOL", "DATE", "TIMESTAMP")
# Spellings other warehouses use for the same types.
ALIASES = {"INT": "INT64", "INTEGER": "INT64", "FLOAT": "FLOAT64", "DOUBLE": "FLOAT64",
           "BOOLEAN": "BOOL", "VARCHAR": "STRING", "TEXT": "STRING"}
# The one identifier rule, for every name that may end up in SQL or code: a column, a table or schema, a method.
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def is_identifier(text: str) -> bool:
    """Whether ``text`` is a letter or '_' then at most 62 letters, digits or '_', and nothing else.

    A full match: a pattern ending in ``$`` also matches before a final newline (``"scores\\n"``).
    """
    return IDENT.fullmatch(text) is not None


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # one of TYPES
    required: bool = False  # 'name:TYPE!': every row holds a value

    @property
    def arrow(self) -> pa.DataType:
        import pyarrow as pa

        if self.type == "TIMESTAMP":
            return pa.timestamp("us", tz="UTC")
        return {"STRING": pa.string, "INT64": pa.int64, "FLOAT64": pa.float64, "BOOL": pa.bool_,
                "DATE": pa.date32}[self.type]()


class Schema(tuple):
    """An ordered tuple of :class:`Column`, parsed from the compact form."""

    @classmethod
    def parse(cls, text: str) -> Schema:
        """Parse ``'a:STRING,b:BOOL'``; raise SchemaError naming the bad part."""
        if not isinstance(text, str) or not text.strip():
            raise SchemaError("schema is empty", "write it as 'column:TYPE,column:TYPE'")
        columns, seen = [], set()
        for part in text.split(","):
            columns.append(_parse_column(part.strip(), text))
            if columns[-1].name in seen:
                raise SchemaError(f"column '{columns[-1].name}' appears twice in '{text}'",
                                  "declare each column once")
            seen.add(columns[-1].name)
        return cls(columns)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self]

    def to_arrow(self) -> pa.Schema:
        import pyarrow as pa

        return pa.schema([pa.field(c.name, c.arrow) for c in self])

    def __add__(self, other) -> Schema:
        return Schema(tuple(self) + tuple(other))

    def requiring(self, names) -> Schema:
        """The same columns, those named in ``names`` required (ids: a row without one cannot be found)."""
        return Schema(Column(c.name, c.type, c.required or c.name in names) for c in self)

    def __str__(self) -> str:
        return ",".join(f"{c.name}:{c.type}{'!' * c.required}" for c in self)


def _parse_column(part: str, text: str) -> Column:
    name, sep, kind = part.partition(":")
    name, kind = name.strip(), kind.strip().upper()
    required = kind.endswith("!")
    kind = kind.removesuffix("!").strip()
    if not sep or not name:
        raise SchemaError(f"'{part}' in '{text}' is not 'column:TYPE'",
                          "write each column as name:TYPE, e.g. player_id:STRING")
    if not is_identifier(name):
        raise SchemaError(f"column name '{name}' in '{text}' is not a plain identifier",
                          "use letters, digits and underscores, starting with a letter")
    kind = ALIASES.get(kind, kind)
    if kind not in TYPES:
        raise SchemaError(f"unknown type '{part.partition(':')[2].strip()}' in '{part}'",
                          f"use one of {', '.join(TYPES)}, followed by '!' if every row must hold a value")
    return Column(name, kind, required)


STAMPS = Schema.parse("_logical_date:DATE,_run_id:STRING,_model_run:STRING,_predicted_at:TIMESTAMP")
# A sub-daily period's rows carry their interval's start too: what a rerun of that period replaces.
INTERVAL_STAMP = Schema.parse("_interval_start:TIMESTAMP")
# A streamed prediction's: the model, when, and where its event came from (the source's coordinates).
STREAM_STAMPS = Schema.parse("_model_run:STRING,_predicted_at:TIMESTAMP,_received_at:TIMESTAMP,_source:STRING,"
                             "_partition:INT64,_offset:INT64,_message_id:STRING")


def conform(batch: pa.RecordBatch, schema: Schema, source: str) -> pa.RecordBatch:
    """Select, order and cast ``batch``'s columns to ``schema``.

    ``source`` names where the batch came from (a file, a query, the model)
    for the error message. Extra columns are an error too: silently dropping
    data that someone meant to deliver is worse than stopping.
    """
    present = set(batch.schema.names)
    if len(present) < len(batch.schema.names):
        twice = next(n for n in batch.schema.names if batch.schema.names.count(n) > 1)
        raise SchemaError(f"{source}: column '{twice}' appears twice", "produce each column once")
    missing = [n for n in schema.names if n not in present]
    if missing:
        raise SchemaError(
            f"{source}: column '{missing[0]}' is declared in the schema but missing "
            f"(found columns: {', '.join(batch.schema.names) or 'none'})",
            "produce that column, or remove it from the declared schema")
    import pyarrow as pa

    extra = [n for n in batch.schema.names if n not in set(schema.names)]
    if extra:
        raise SchemaError(f"{source}: column '{extra[0]}' is not in the declared schema '{schema}'",
                          "add it to the schema, or stop producing it")
    arrays = [_missing(_cast(batch.column(c.name), c, source), c, source) for c in schema]
    return pa.RecordBatch.from_arrays(arrays, schema=schema.to_arrow())


def _cast(array: pa.Array, column: Column, source: str) -> pa.Array:
    if array.type == column.arrow:
        return array
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        array = _normalise_strings(array, column)
    try:
        return pc.cast(array, column.arrow, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SchemaError(
            f"{source}: column '{column.name}' cannot be read as {column.type} "
            f"(it holds {array.type}): {first_line(exc)}",
            f"fix the values, or declare '{column.name}' with the type it holds") from None


def _missing(array: pa.Array, column: Column, source: str) -> pa.Array:
    """NaN stored as NULL; a required column holding neither NULL, NaN nor (for STRING) ''."""
    import pyarrow as pa

    if not column.required and not pa.types.is_floating(array.type):
        return array  # the common case, without pyarrow.compute's import
    import pyarrow.compute as pc

    if pa.types.is_floating(array.type) and pc.any(pc.is_nan(array)).as_py():
        array = pc.if_else(pc.is_nan(array), pa.scalar(None, array.type), array)
    if not column.required:
        return array
    missing = array.null_count
    if column.type == "STRING":
        missing += pc.sum(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(array)), 0)).as_py() or 0
    if missing:
        raise SchemaError(f"{source}: column '{column.name}' is declared '{column.name}:{column.type}!' but "
                          f"{missing} rows hold no value (NULL, NaN or empty)",
                          "give those rows a value, or drop the '!' to store them as NULL")
    return array


def _normalise_strings(array: pa.Array, column: Column) -> pa.Array:
    # CSV writers spell booleans many ways; Arrow's cast knows true/false/1/0.
    if column.type == "BOOL":
        import pyarrow.compute as pc

        return pc.utf8_lower(pc.utf8_trim_whitespace(array))
    return array
