"""The dashboard at scale: 50 services and 10,000 runs, the overview and a grid page over HTTP.

One real service is trained and applied once (inline, 2,000 rows); its two
committed manifests are the models for every other run: each of 50 services
(its own folder, store and ledger) gets one training and 199 applications on
consecutive dates, sealed as batchcast seals them, with the ledger's row for
each date (so the ledger holds 10,000 runs too), plus 40 dates skipped by
catchup. Then ``batchcast ui`` is started on all 50 specs and asked, over
HTTP from this process, for the overview and for one service's grid:

- cold: the first request after the start (every manifest read and parsed);
- warm: the median of the next ``--repeat`` requests (each manifest read once
  per process; a request lists the store and reads the ledger again).

The side by side is cold against warm: the same pages, the same work but for
the manifests already parsed; and, in this process, the warm overview with
the store listed by fsspec's glob (the baseline) against the local scandir
path, interleaved. The goal is the issue's: the overview and a grid page
under 300 ms here, warm. Written to ``benchmarks/results/ui.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from run import generate, write_spec  # noqa: E402

from batchcast import Service  # noqa: E402
from batchcast.runs.manifest import new_run_ts  # noqa: E402

GOAL_MS = 300
BATCHCAST = str(Path(sys.executable).with_name("batchcast"))


def model_service(root: Path) -> tuple[Path, list]:
    """The one real service: trained and applied, its two manifests the models for the rest."""
    db = root / "svc00" / ".batchcast" / "warehouse.duckdb"
    db.parent.mkdir(parents=True)
    with duckdb.connect(str(db)) as con:
        for name, labelled in (("train", True), ("features", False)):
            t = generate(2000, 1, labelled)  # noqa: F841 - read by DuckDB's replacement scan
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM t")
    spec = write_spec(root / "svc00", "features", name="svc00",
                      extra='schedule = "0 6 * * *"\nfresh_within = "6h"\n')
    bc = [BATCHCAST, "run"]
    subprocess.run([*bc, "training"], cwd=spec.parent, check=True, capture_output=True)
    subprocess.run([*bc, "application", "--date", "2026-01-01"], cwd=spec.parent, check=True, capture_output=True)
    return spec, Service(spec).runs()


def clone(root: Path, index: int, models: list, runs: int, skipped: int) -> Path:
    """Service ``index``: a spec, a store of ``runs`` sealed runs and a ledger that knows each."""
    name = f"svc{index:02d}"
    folder = root / name
    if index:
        folder.mkdir()
        shutil.copytree(root / "svc00" / "repo", folder / "repo")
        text = (root / "svc00" / "batchcast.toml").read_text().replace('name = "svc00"', f'name = "{name}"')
        (folder / "batchcast.toml").write_text(text)
    service = Service(folder / "batchcast.toml")
    training, application = models
    start = dt.datetime(2025, 6, 1, 6, tzinfo=dt.UTC)
    made = []
    for k in range(runs - (0 if index else 2)):
        base = training if k == 0 else application
        day = (start + dt.timedelta(days=k)).date()
        at = start + dt.timedelta(days=k, minutes=index)
        run_ts = new_run_ts(at)
        run_id = f"{name}/1/{base.action}/{run_ts}"
        manifest = base.model_copy(update={
            "run_id": run_id, "name": name, "run_ts": run_ts, "logical_date": day, "started_at": at,
            "ended_at": at + dt.timedelta(seconds=3 + k % 7), "seal": None,
            "model_run": None if k == 0 else f"{name}/1/training/{made[0][1]}"}).sealed()
        target = service.store._path(run_id, "manifest.json")
        service.store.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        service.store.fs.pipe_file(target, manifest.model_dump_json().encode())
        made.append((day, run_ts, base.action, run_id))
    ledger = service.ledger
    for day, _, action, run_id in made:
        ledger.add(name, "1", action, [day], "queued")
        ledger.set(name, "1", action, day, "succeeded", run_id=run_id)
    ledger.add(name, "1", "application", [(start - dt.timedelta(days=1 + k)).date() for k in range(skipped)],
               "skipped")
    return folder / "batchcast.toml"


def timed(url: str) -> float:
    began = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as answer:
        answer.read()
        assert answer.status == 200, url
    return (time.perf_counter() - began) * 1000


def measure(specs: list[Path], root: Path, repeat: int) -> dict:
    port = 18765
    proc = subprocess.Popen([BATCHCAST, "ui", "--port", str(port), *map(str, specs)], cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2).read()
                break
            except OSError:
                time.sleep(0.1)
        found = {}
        grid = f"/services/svc{min(7, len(specs) - 1):02d}/1/grid"
        for name, path in (("overview", "/"), ("grid", grid), ("grid, page 5", grid + "?page=5")):
            cold = timed(base + path)
            warm = [timed(base + path) for _ in range(repeat)]
            found[name] = {"cold_ms": round(cold, 1), "warm_median_ms": round(statistics.median(warm), 1),
                           "warm_min_ms": round(min(warm), 1), "warm_max_ms": round(max(warm), 1),
                           "cold_over_warm": round(cold / statistics.median(warm), 2),
                           "goal_met": statistics.median(warm) < GOAL_MS}
        return found
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def listing_side_by_side(specs: list[Path], repeat: int) -> dict:
    """The overview in this process, warm, with the store listed by fsspec's glob (the baseline: what every
    store did before) and by the local scandir path, interleaved; the same pages, the same manifests parsed."""
    from batchcast.runs.listed import Listed
    from batchcast.ui.dashboard import App

    app = App([Service(spec) for spec in specs], None)
    ours = Listed.glob
    contenders = {"fsspec glob": lambda self, fs, pattern: fs.glob(pattern, detail=True), "scandir": ours}
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    try:
        for listing in contenders.values():  # a warm-up of each: every manifest parsed once
            Listed.glob = listing
            app.get("/", None)
        for _ in range(repeat):
            for name, listing in contenders.items():
                Listed.glob = listing
                began = time.perf_counter()
                app.get("/", None)
                samples[name].append((time.perf_counter() - began) * 1000)
    finally:
        Listed.glob = ours
    medians = {name: statistics.median(found) for name, found in samples.items()}
    return {**{f"{name}_median_ms": round(ms, 1) for name, ms in medians.items()},
            "glob_over_scandir": round(medians["fsspec glob"] / medians["scandir"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--runs", type=int, default=200, help="committed runs per service")
    parser.add_argument("--skipped", type=int, default=40, help="skipped dates per service, in the ledger")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="batchcast-ui-bench-") as tmp:
        root = Path(tmp)
        began = time.perf_counter()
        spec, models = model_service(root)
        specs = [clone(root, i, models, args.runs, args.skipped) for i in range(args.services)]
        setup_s = time.perf_counter() - began
        figures = measure(specs, root, args.repeat)
        listing = listing_side_by_side(specs, max(5, args.repeat // 2))
    result = {"services": args.services, "runs": args.services * args.runs,
              "ledger_rows": args.services * (args.runs + args.skipped), "setup_s": round(setup_s, 1),
              "goal_ms": GOAL_MS, "pages": figures,
              "overview_in_process_by_listing": listing, "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    out = Path(__file__).resolve().parent / "results" / "ui.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
