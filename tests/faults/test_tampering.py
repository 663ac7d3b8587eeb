"""A manifest edited by hand is not trusted: promote and apply refuse it, and nothing moves."""

from __future__ import annotations

import json

import pytest

from tests.conftest import bc, bc_json, write_python_service


def _manifest(root, run_id):
    return root / ".batchcast" / "artifacts" / run_id / "manifest.json"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A champion, and a training run that failed (its model raised in fit)."""
    root = tmp_path_factory.mktemp("tamper")
    write_python_service(root, rows=2_000)
    bc("run", "training", cwd=root)
    champion = bc_json("models", cwd=root)[0]["run_id"]
    bc("promote", champion, cwd=root)
    model = root / "repo" / "model.py"
    model.write_text(model.read_text().replace("        self.inner.fit(X, y)\n", "        raise ValueError('no')\n"))
    bc("run", "training", cwd=root, ok=False)
    failed = [r for r in bc_json("runs", "--action", "training", cwd=root) if r["status"] == "failed"][0]["run_id"]
    return root, champion, failed


def _edit(path, **changes):
    doc = json.loads(path.read_text())
    doc.update(changes)
    path.write_text(json.dumps(doc, indent=2))


def test_a_failed_run_edited_to_succeeded_is_neither_promoted_nor_applied(trained):
    root, champion, failed = trained
    path = _manifest(root, failed)
    original = path.read_text()
    _edit(path, status="succeeded", error=None)
    try:
        out = bc("promote", failed, cwd=root, ok=False)
        assert "manifest.json: does not match its seal" in out.stderr and "fix:" in out.stderr
        out = bc("run", "application", "--date", "2026-01-01", "--model", failed, cwd=root, ok=False)
        assert "does not match its seal" in out.stderr
        assert bc_json("show", "champion", cwd=root)["run_id"] == champion
    finally:
        path.write_text(original)


def test_an_edited_champion_is_not_applied(trained):
    root, champion, _ = trained
    path = _manifest(root, champion)
    original = path.read_text()
    _edit(path, metrics={"accuracy": 0.99})
    try:
        out = bc("run", "application", "--date", "2026-01-01", cwd=root, ok=False)
        assert f"{champion}/manifest.json: does not match its seal" in out.stderr
    finally:
        path.write_text(original)
    bc("run", "application", "--date", "2026-01-01", cwd=root)


def test_promote_checks_every_file_of_the_run(trained):
    root, champion, _ = trained
    stored = next(p for p in (_manifest(root, champion).parent / "output").glob("model.*") if p.is_file())
    original = stored.read_bytes()
    stored.write_bytes(original + b"tampered")
    try:
        out = bc("promote", champion, "--alias", "candidate", cwd=root, ok=False)
        assert "differs from the manifest's" in out.stderr
        assert "candidate" not in json.dumps(bc_json("models", cwd=root))
    finally:
        stored.write_bytes(original)


def test_models_warns_about_an_alias_to_a_missing_run(trained, tmp_path):
    root, champion, _ = trained
    folder = _manifest(root, champion).parent
    hidden = tmp_path / "moved"  # out of the store: the run is gone
    folder.rename(hidden)
    try:
        out = bc("models", cwd=root)
        assert f"warning: alias 'champion' points to {champion}, which is not a successful training run" in out.stderr
        assert "batchcast promote RUN --alias champion" in out.stderr
    finally:
        hidden.rename(folder)
    assert "warning" not in bc("models", cwd=root).stderr


def test_a_seal_survives_fields_a_later_batchcast_adds(trained):
    """The seal covers the body as stored: a new field with a default must not break older manifests."""
    from batchcast.runs.manifest import Manifest

    root, champion, _ = trained
    doc = json.loads(_manifest(root, champion).read_text())
    doc.pop("environment")  # as a batchcast before that field wrote the manifest
    doc.pop("seal")
    doc["seal"] = Manifest.seal_of(doc)  # and sealed it
    assert Manifest.read(json.dumps(doc)).intact
    doc["status"] = "failed"
    assert not Manifest.read(json.dumps(doc)).intact
