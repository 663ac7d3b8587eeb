"""One line per validation problem: the file, the table, the key, the bad value and the fix."""

from __future__ import annotations

import difflib
from pathlib import Path

from pydantic import BaseModel

ENV_PREFIX = "BATCHCAST__"


def describe(file: Path, err: dict, env: dict, root: type[BaseModel]) -> tuple[str, str]:
    """The message and the fix for one pydantic error of validating ``root`` (the spec's model)."""
    loc = [str(p) for p in err["loc"]]
    table = "[" + ".".join(loc[:-1]) + "]" if len(loc) > 1 else "[top level]"
    key = loc[-1] if loc else ""
    where = f"{file}: {table} {key}".rstrip()
    env_name = ENV_PREFIX + "__".join(p.upper() for p in loc)
    origin = f" (from environment {env_name})" if loc and _dig(env, loc) is not None else ""
    kind = err["type"]
    if kind == "extra_forbidden":
        known = _known_keys(root, loc[:-1])
        guess = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean '{guess[0]}'? " if guess else ""
        return f"{where}: unknown key{origin}", f"{hint}known keys are {', '.join(known)}"
    if kind == "missing":
        if _is_table(root, loc):
            return f"{where}: the required table [{'.'.join(loc)}] is missing", f"add a [{'.'.join(loc)}] table"
        return f"{where}: required key is missing", f"add {key} = ... to {table}"
    if kind == "batchcast":
        return f"{where}: {err['ctx']['message']}{origin}", err["ctx"]["fix"]
    return f"{where}: {err['msg'].lower()}, got {err.get('input')!r}{origin}", "correct the value"


def _is_table(root: type[BaseModel], loc: list[str]) -> bool:
    """Whether ``loc`` names a table of the spec (``service``), not a key."""
    field = _model_of_loc(root, loc[:-1]).model_fields.get(loc[-1]) if loc else None
    return field is not None and isinstance(_model_of(field.annotation), type) and issubclass(
        _model_of(field.annotation), BaseModel)


def _model_of_loc(root: type[BaseModel], loc: list[str]) -> type[BaseModel]:
    """The model of the table at ``loc``; a key of a dict (an action's name under [actions]) is skipped."""
    model = root
    for part in loc:
        field = model.model_fields.get(part)
        if field is not None:
            model = _model_of(field.annotation)
    return model


def _dig(tree: dict, loc: list[str]):
    for part in loc:
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def _known_keys(root: type[BaseModel], loc: list[str]) -> list[str]:
    return [f.alias or n for n, f in _model_of_loc(root, loc).model_fields.items()]


def _model_of(annotation) -> type[BaseModel]:
    """The model inside ``X``, ``X | None`` or ``dict[str, X]``."""
    for candidate in reversed(getattr(annotation, "__args__", ()) or (annotation,)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return annotation
