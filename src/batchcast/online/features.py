"""The served model's features, and decoded rows read into one Arrow table of them.

Whatever carries the rows (an HTTP request in MLflow's or the Open Inference
Protocol's format, a broker's JSON record), once decoded they are columns of
plain values: :func:`records` turns a list of objects into columns, and
:func:`table` checks the columns against the training's features and builds
the table the scorer reads. Every mistake is a
:class:`~batchcast.errors.RequestError`: one line naming the column or
value, and the fix; nothing here raises anything else.
"""

from __future__ import annotations

import difflib
import json
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from batchcast.errors import RequestError

# Every digit as b"0", every other byte as b" ": a run of 20 digits (2**64 has 20; a float's repr at most 17
# in a row) is then a plain substring search. The regex [0-9]{20} cost 4x orjson's parse on a 100-row body.
_DIGITS = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
_TWENTY_DIGITS = b"0" * 20
ARROW = {"number": pa.float64(), "bool": pa.bool_(), "string": pa.string()}


@dataclass(frozen=True)
class Features:
    """What the served model was trained on: feature names in order, and each one's kind."""

    names: tuple[str, ...]
    kinds: dict[str, str]  # number, bool, string (checks.kind); other kinds pass through unchecked
    ids: tuple[str, ...] = ()  # kept as strings when a request sends them (for the online log), never fed

    @classmethod
    def of(cls, meta: dict, profile: dict | None, ids: tuple[str, ...] = ()) -> Features:
        kinds = {name: found["kind"] for name, found in ((profile or {}).get("features") or {}).items()}
        kinds = kinds or dict(meta.get("kinds") or {})  # an imported MLflow model's, from its signature
        return cls(tuple(meta["features"]), kinds, ids)


def decode(body: bytes, what: str = "the request body") -> Any:
    """A JSON document (a request's body, a message); RequestError naming ``what`` if it is not one.

    orjson reads it at a quarter of json's cost. It refuses more than json does (NaN, a number past
    float64, a lone surrogate, UTF-16) and reads an integer past 64 bits as a float, so those documents,
    and any with a run of 20 digits, go to json, which reads them as before or says what is wrong.
    """
    if not body.strip():
        raise RequestError(f"{what} is empty", "send a JSON object, e.g. "
                           '{"dataframe_records": [{"feature": 1.0}]}')
    if _TWENTY_DIGITS not in body.translate(_DIGITS):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    try:
        if b"NaN" in body or b"Infinity" in body:  # json.loads with a hook builds a decoder per call: 1.7x slower
            return json.loads(body, parse_constant=_not_finite)
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(f"{what} is not JSON: {exc}", "send application/json") from None
    except RecursionError:
        raise RequestError(f"{what} is nested too deeply", "send rows as flat objects or lists") from None
    except ValueError:  # json's only other refusal: an integer past Python's limit on converting digits
        digits = sys.get_int_max_str_digits()
        raise RequestError(f"{what} holds an integer of more than {digits} digits",
                           f"send numbers of at most {digits} digits (features are read as 64-bit floats)") from None


def _not_finite(word: str):
    """JSON has no NaN or Infinity (Python's json accepts them): a value the model cannot be asked about."""
    raise RequestError(f"the JSON holds {word}, which is not a JSON number", "send null for a missing value")


def records(value: Any, key: str) -> dict[str, list]:
    """Rows given as objects by column name, as columns; ``key`` names where they came from, in messages."""
    if value == []:
        raise RequestError("the request holds no rows", "send at least one row")
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise RequestError(f"{key} is not a list of objects", f'send {{"{key}": [{{"feature": 1.0}}]}}')
    names = list(dict.fromkeys(name for row in value for name in row))
    return {name: [row.get(name) for row in value] for name in names}


def table(columns: dict[str, list], features: Features) -> pa.Table:
    """The features, in training order and type; extra columns (ids, say) are left out."""
    missing = [f for f in features.names if f not in columns]
    if missing:
        extra = [c for c in columns if c not in features.names]
        close = difflib.get_close_matches(missing[0], extra, n=1, cutoff=0.5)
        hint = f"; '{close[0]}' looks like a misspelling of it" if close else ""
        raise RequestError(f"column '{missing[0]}' is missing{hint}",
                           f"send every feature the model was trained on: {', '.join(features.names)}")
    rows = len(columns[features.names[0]])
    if rows == 0:
        raise RequestError("the request holds no rows", "send at least one row")
    uneven = next((n for n in features.names if len(columns[n]) != rows), None)
    if uneven:
        raise RequestError(f"column '{uneven}' has {len(columns[uneven])} values and "
                           f"'{features.names[0]}' has {rows}", "give every column one value per row")
    arrays = _numbers(columns, features) or {name: _array(name, columns[name], features.kinds.get(name))
                                             for name in features.names}
    for name in features.ids:
        if name not in arrays:
            arrays[name] = _array(name, columns.get(name) or [None] * rows, "string")
    return pa.table(arrays)


def _numbers(columns: dict[str, list], features: Features) -> dict[str, pa.Array] | None:
    """The common case at a fraction of the cost: every feature a number, every value a float or an int.

    None otherwise, and :func:`_array` checks each column (and names what is wrong).
    """
    if any(features.kinds.get(name) != "number" for name in features.names):
        return None
    values = [columns[name] for name in features.names]
    if not all(type(v) is float or type(v) is int for column in values for v in column):  # bool is not int here
        return None
    try:
        matrix = np.array(values, dtype=np.float64)
    except OverflowError:  # an int past float64's range: _array says which
        return None
    return {name: pa.array(matrix[i]) for i, name in enumerate(features.names)}


def _array(name: str, values: list, kind: str | None) -> pa.Array:
    if kind == "number":
        for r, v in enumerate(values):
            if v is not None and type(v) is not float and (isinstance(v, bool) or not isinstance(v, int)):
                raise RequestError(f"column '{name}' row {r}: {json.dumps(v)} is not a number",
                                   f"send '{name}' as a JSON number (or null)")
    elif kind == "bool":
        for r, v in enumerate(values):
            if v is not None and not isinstance(v, bool):
                raise RequestError(f"column '{name}' row {r}: {json.dumps(v)} is not true or false",
                                   f"send '{name}' as true, false or null")
    elif kind == "string":
        values = [v if v is None or isinstance(v, str) else json.dumps(v) for v in values]
    try:
        return pa.array(values, type=ARROW.get(kind))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise RequestError(f"column '{name}': {exc}", f"send '{name}' with values of one type") from None
