"""Finding and loading ``batchcast.toml``, layered with the environment and the command line.

Precedence, highest first: command-line overrides, environment variables
``BATCHCAST__<SECTION>__<KEY>`` (nested with more ``__``), the file, the
defaults of the sections.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

from pydantic import ValidationError

from batchcast.errors import SpecError
from batchcast.redaction import has_secret
from batchcast.spec.messages import ENV_PREFIX, describe
from batchcast.spec.service import SPEC_FILE, ServiceSpec, composed


def find_spec(path: str | os.PathLike | None = None, environ=os.environ) -> Path:
    """The spec file: ``path``, else ``BATCHCAST_SPEC``, else ``./batchcast.toml``."""
    chosen = Path(path or environ.get("BATCHCAST_SPEC") or SPEC_FILE)
    if chosen.is_dir():
        chosen = chosen / SPEC_FILE
    if not chosen.exists():
        raise SpecError(f"{chosen}: no such spec file",
                        "run 'batchcast init' or 'batchcast adopt PATH', or pass --spec PATH")
    return chosen.resolve()


def find_specs(paths) -> list[Path]:
    """Spec files from paths: a file, a service folder, or a folder of services (``*/batchcast.toml``)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir() and not (path / SPEC_FILE).exists():
            found += sorted(p.resolve() for p in path.glob(f"*/{SPEC_FILE}"))
        else:
            found.append(find_spec(path))
    return found


def load_spec(path: str | os.PathLike | None = None, overrides: dict | None = None,
              environ=os.environ) -> ServiceSpec:
    """Load, merge and validate a spec; raise SpecError with one line per problem."""
    file = find_spec(path, environ)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{file}: not valid TOML: {exc}", "correct the syntax at that line") from None
    except UnicodeDecodeError as exc:  # TOML is UTF-8 by definition
        raise SpecError(f"{file}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})",
                        "save the file as UTF-8") from None
    except IsADirectoryError:
        raise SpecError(f"{file}: is a folder, not a spec file", f"point --spec at {file / SPEC_FILE}") from None
    _refuse_secrets(file, data)
    env = env_overrides(environ)
    for layer in (env, overrides or {}):
        data = merged(data, layer)
    model = composed()
    try:
        spec = model.model_validate(data)
    except ValidationError as exc:
        raise _invalid([describe(file, err, env, model) for err in exc.errors()]) from None
    spec._file = file
    return spec


def _invalid(problems: list[tuple[str, str]]) -> SpecError:
    """One error, in the format of every other: the first problem and its fix; the others follow the fix."""
    (message, fix), rest = problems[0], problems[1:]
    if rest:
        fix += f"; and {len(rest)} more: " + "; ".join(f"{m} (fix: {f})" for m, f in rest)
    return SpecError(message, fix)


def merged(base: dict, layer: dict) -> dict:
    """``base`` with ``layer`` over it, table by table; None in ``layer`` keeps the base's value.

    An empty table in ``layer`` adds nothing: it would declare an action the file does not.
    """
    out = dict(base)
    for key, value in layer.items():
        if isinstance(value, dict):
            below = out.get(key)
            table = merged(below if isinstance(below, dict) else {}, value)
            if table or isinstance(below, dict):
                out[key] = table
        elif value is not None:
            out[key] = value
    return out


def _refuse_secrets(file: Path, data: dict) -> None:
    """A password written into the spec would end up in version control."""
    for section, key in (("warehouse", "url"), ("storage", "url"), ("alerts", "smtp")):
        url = (data.get(section) or {}).get(key)
        if isinstance(url, str) and "://" in url and has_secret(url):
            raise SpecError(f"{file}: [{section}] {key}: holds a password, which does not belong in a spec file",
                            f"remove it; set PGPASSWORD or BATCHCAST_SMTP_PASSWORD (or the service's own "
                            f"credential variables), or pass the whole URL as "
                            f"BATCHCAST__{section.upper()}__{key.upper()}")


def env_overrides(environ=os.environ) -> dict:
    """``BATCHCAST__WAREHOUSE__URL=x`` as ``{"warehouse": {"url": "x"}}``."""
    out: dict = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        path = [p.lower() for p in key[len(ENV_PREFIX):].split("__") if p]
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = json.loads(value) if value[:1] in "[{" else value
    return out
