"""A run's page: its manifest as a summary a person reads, and its log a page at a time."""

from __future__ import annotations

import json
from typing import Any

from batchcast.errors import BatchcastError
from batchcast.scheduling import periods

LOG_LINES = 400  # lines of the log on one page


def run_view(service, manifest, log_page: int | None = None) -> dict[str, Any]:
    """Status, period, timings, model used, inputs with their checks and drift, outputs, environment, the gate's
    decision, and one page of the log (the last page unless ``log_page`` names another)."""
    lines, problem = _log_lines(service, manifest)
    pages = max(1, -(-len(lines) // LOG_LINES))
    page = pages if log_page is None else min(max(log_page, 1), pages)
    checks = manifest.checks or {}
    environment = manifest.environment or {}
    return {
        "manifest": manifest, "status": manifest.shown_status(), "warnings": manifest.warnings(),
        "period": periods.key(manifest.logical_date), "key": f"{manifest.name}/{manifest.version}",
        "timings": [("started", manifest.started_at.isoformat(timespec="seconds")),
                    ("ended", manifest.ended_at.isoformat(timespec="seconds")),
                    ("duration", f"{manifest.duration_s:.1f} s"), ("executor", manifest.executor),
                    ("contract", manifest.contract)],
        "inputs": [(k, _text(v)) for k, v in manifest.inputs.items() if k != "params"],
        "params": manifest.inputs.get("params") or {},
        "features": checks.get("features") or {}, "breaches": checks.get("breaches") or [],
        "on_breach": checks.get("on_breach"), "prediction_check": checks.get("predictions"),
        "outputs": [(k, _text(v)) for k, v in manifest.outputs.items() if k != "predicted"],
        "predicted": manifest.outputs.get("predicted"),
        "environment": [(k, _text(v)) for k, v in environment.items() if k != "packages"],
        "packages": _packages(environment.get("packages")),
        "files": sorted(manifest.files.items()), "versions": sorted(manifest.versions.items()),
        "log": "\n".join(lines[(page - 1) * LOG_LINES:page * LOG_LINES]) if not problem else problem,
        "log_page": page, "log_pages": pages,
        "manifest_json": json.dumps(manifest.model_dump(mode="json"), indent=2),
    }


def _log_lines(service, manifest) -> tuple[list[str], str | None]:
    try:
        return service.log(manifest).splitlines(), None
    except BatchcastError as exc:
        return [], f"(no log: {exc.message})"


def _packages(packages: Any) -> list[str]:
    if isinstance(packages, dict):
        return [f"{name} {version}" for name, version in sorted(packages.items())]
    if isinstance(packages, list):
        return [str(p) for p in packages]
    return []


def _text(value: Any) -> str:
    """A manifest value on one line: text as it is, anything else as compact JSON."""
    return value if isinstance(value, str) else json.dumps(value, default=str)[:2000]
