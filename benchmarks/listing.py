"""``make bench-listing``: what a long history costs a run, a scheduler tick and ``batchcast runs``.

Each question is asked of a small and a big history, side by side:

- **latest**: ``batchcast run application`` without ``--model`` and without a champion applies the newest
  successful training. With 10,000 prior application and 10,000 prior training manifests in the store it
  should cost no more than with 1 of each (``Service.model_for`` is also timed alone, in process).
- **tick**: one pass of the embedded scheduler (``Scheduler.step``) while an application run is in flight
  and 10,000 dates of that action are queued behind it (every one blocked by ``max_active_runs``), against
  1 queued date. Target: under 15 ms.
- **runs**: ``batchcast runs`` (the table, as a person sees it) at 10,000 queued ledger rows. Target: under
  0.5 s. At 20,000 committed runs it is reported, not targeted.

Contenders are raced as ``benchmarks/rounds.py`` says: one of each per round, the order reversed every other
round, after one warm-up round that is dropped; figures are medians with min and max of wall seconds, with
median CPU seconds and peak memory (of the whole process and what it reaped for ``batchcast`` commands; for
in-process calls, CPU on every thread of this process and this process's peak so far). ``PYTHONPATH=CHECKOUT/src``
measures another checkout's batchcast with this same script (the README's "before" figures).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rounds  # noqa: E402
from rounds import Sample  # noqa: E402
from run import BATCHCAST, DATE, FEATURES, generate, write_spec  # noqa: E402

from batchcast import Service  # noqa: E402
from batchcast.runs.manifest import new_run_ts, run_id  # noqa: E402
from batchcast.scheduler import supervise  # noqa: E402
from batchcast.scheduler.daemon import Scheduler  # noqa: E402

SCHEDULE = 'schedule = "0 6 * * *"\n'
TODAY = dt.datetime.now(dt.UTC).date()


def race(contenders: dict[str, Callable[[], Sample]], count: int) -> dict[str, dict]:
    """Each contender's summary after ``count`` rounds of ``rounds.race``."""
    return {name: rounds.summary(taken) for name, taken in rounds.race(contenders, count).items()}


class History:
    """One service folder: a trained model, one application run, and as much history as asked."""

    def __init__(self, root: Path, name: str):
        self.root = root / name
        self.spec = write_spec(self.root, "features", name=name, extra=SCHEDULE)
        db = self.root / ".batchcast" / "warehouse.duckdb"
        db.parent.mkdir(parents=True)
        con = duckdb.connect(str(db))
        con.register("t", generate(2_000, 1, True))
        con.execute("CREATE TABLE train AS SELECT * FROM t")
        con.execute("CREATE TABLE features AS SELECT 'p' || i AS player_id, "
                    + ", ".join(f"random() * 4 - 2 AS {f}" for f in FEATURES) + " FROM range(10) t(i)")
        con.close()
        service = Service(self.spec)
        self.trained = service.run("training")
        applied = service.run("application", DATE)
        assert self.trained.succeeded and applied.succeeded, (self.trained.error, applied.error)
        self.applied = applied

    def add_runs(self, count: int) -> None:
        """``count`` more application and training manifests, older than the real training run."""
        store = Service(self.spec).store
        start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
        for template in (self.applied, self.trained):
            for i in range(count):
                ts = new_run_ts(start + dt.timedelta(seconds=i))
                store.commit(template.model_copy(update={
                    "run_id": run_id(template.name, template.version, template.action, ts), "run_ts": ts,
                    "seal": None}))

    def queue(self, count: int) -> None:
        """``count`` queued application dates in the ledger, the newest yesterday."""
        days = [TODAY - dt.timedelta(days=k) for k in range(count, 0, -1)]
        Service(self.spec).ledger.queue(self.trained.name, self.trained.version, "application", days)

    def cli(self, *args: str) -> Callable[[], Sample]:
        return partial(rounds.process, [BATCHCAST, "--spec", str(self.spec), *args], cwd=self.root)


class Ticking:
    """A scheduler in charge of ``history``'s service with one application run in flight (a ``sleep``)."""

    def __init__(self, history: History):
        self.scheduler = Scheduler([history.spec], parallelism=2)
        tracked = self.scheduler.tracked[0]
        supervise.take_charge(tracked)
        active = supervise.Active(tracked, "application", TODAY - dt.timedelta(days=30_000), new_run_ts(),
                                  dt.datetime.now(dt.UTC), proc=subprocess.Popen(["sleep", "3600"]))
        active.paths = supervise.paths(tracked, active.run_id)
        self.scheduler.active[active.run_id] = self.active = active

    def tick(self) -> None:
        self.scheduler.step(dt.datetime.now(dt.UTC))
        assert self.active.run_id in self.scheduler.active  # nothing ended, nothing else started

    def close(self) -> None:
        self.active.proc.kill()
        self.active.proc.wait()
        tracked = self.scheduler.tracked[0]
        tracked.lease.release()
        os.close(tracked.lock_fd)


def verdict(value: float, op: str, bound: float) -> str:
    return "met" if (value <= bound if op == "<=" else value >= bound) else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000, help="runs and ledger rows of the big histories")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of whole processes (calls: 5x as many)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "listing.json")
    args = parser.parse_args()
    n = args.count
    import batchcast

    print(f"batchcast from {Path(batchcast.__file__).parent}", flush=True)
    with tempfile.TemporaryDirectory(prefix="batchcast-bench-listing-") as folder:
        print("... setup", flush=True)
        one, many, ledger = (History(Path(folder), name) for name in ("one", "many", "ledger"))
        one.queue(1)
        ledger.queue(n)
        started = time.perf_counter()
        many.add_runs(n)
        print(f"... {2 * n:,} manifests committed in {time.perf_counter() - started:.1f} s", flush=True)
        model = many.trained.run_id
        print("... latest", flush=True)
        figures = race({"run application, 1 prior": one.cli("run", "application", "--date", DATE),
                        f"run application, {n:,} prior": many.cli("run", "application", "--date", DATE),
                        f"run application --model, {n:,} prior": many.cli("run", "application", "--date", DATE,
                                                                         "--model", model)}, args.rounds)
        services = Service(one.spec), Service(many.spec)
        figures |= race({"model_for, 1 prior": partial(rounds.call, services[0].model_for),
                         f"model_for, {n:,} prior": partial(rounds.call, services[1].model_for)}, 5 * args.rounds)
        print("... tick", flush=True)
        ticking = Ticking(one), Ticking(ledger)
        try:
            figures |= race({"tick, 1 queued": partial(rounds.call, ticking[0].tick),
                             f"tick, {n:,} queued": partial(rounds.call, ticking[1].tick)}, 5 * args.rounds)
        finally:
            for t in ticking:
                t.close()
        print("... runs", flush=True)
        figures |= race({"runs, 1 ledger row": one.cli("runs"), f"runs, {n:,} ledger rows": ledger.cli("runs"),
                         f"runs, {2 * n + 2:,} committed runs": many.cli("runs")}, args.rounds)
    med = {name: f["wall_s"]["median"] for name, f in figures.items()}
    cpu = {name: f["cpu_s"]["median"] for name, f in figures.items()}
    checks = [
        (f"run without --model: {n:,} prior / 1 prior", med[f"run application, {n:,} prior"]
         / med["run application, 1 prior"], "<=", 1.05),
        (f"run without --model, CPU: {n:,} prior / 1 prior", cpu[f"run application, {n:,} prior"]
         / cpu["run application, 1 prior"], "<=", 1.05),
        (f"tick at {n:,} queued rows (ms)", 1000 * med[f"tick, {n:,} queued"], "<=", 15.0),
        (f"batchcast runs at {n:,} ledger rows (s)", med[f"runs, {n:,} ledger rows"], "<=", 0.5),
    ]
    results = [{"figure": name, "value": round(value, 3), "target": f"{op} {bound:g}",
                "verdict": verdict(value, op, bound)} for name, value, op, bound in checks]
    lines = ["| contender | median | min - max | CPU (median) | peak MiB |", "| --- | --- | --- | --- | --- |"]
    for name, f in figures.items():
        wall, used = f["wall_s"], f["cpu_s"]["median"]
        scale, unit = (1000, "ms") if wall["median"] < 0.1 else (1, "s")
        lines.append(f"| {name} | {wall['median'] * scale:.3g} {unit} | {wall['min'] * scale:.3g} - "
                     f"{wall['max'] * scale:.3g} {unit} | {used * scale:.3g} {unit} | {f['peak_mib']['median']:.0f} |")
    lines += ["", "| figure | value | target | verdict |", "| --- | --- | --- | --- |"]
    lines += [f"| {r['figure']} | {r['value']:g} | {r['target']} | {r['verdict']} |" for r in results]
    print("\n" + "\n".join(lines))
    args.out.write_text(json.dumps({"count": n, "rounds": args.rounds, "cores": os.cpu_count(),
                                    "batchcast": str(Path(batchcast.__file__).parent), "contenders": figures,
                                    "figures": results}, indent=2) + "\n")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
