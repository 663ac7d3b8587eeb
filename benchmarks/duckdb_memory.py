"""What DuckDB's ``memory_limit`` costs a batchcast application, against the script, by rows (whole processes).

    .venv/bin/python benchmarks/duckdb_memory.py [--limits 256MB,512MB,1GB,none] [--rows 1000000,10000000]

For each input size and each limit, ``batchcast run application --executor
inline`` with ``?memory_limit=LIMIT`` on the warehouse URL ("none": 19GB,
about DuckDB's own default of 80% of this machine), and the script of
``make bench`` (``benchmarks/baseline.py``, DuckDB's default), in rounds, the
order of the sizes kept and each round after a warm-up; wall seconds, peak
RSS (``/usr/bin/time``'s maximum resident set) and CPU seconds, medians.
Results: ``benchmarks/results/duckdb_memory.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).parent))
import run as bench  # noqa: E402  (the make bench service, tables and contenders)


def timed(argv: list[str], env: dict) -> tuple[float, float, float]:
    began = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", *argv], env={**os.environ, **env},
                          capture_output=True, text=True)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed:\n{done.stderr[-3000:]}")
    kb, user, system = done.stderr.strip().splitlines()[-1].split()
    return wall, int(kb) / 1024, float(user) + float(system)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limits", default="256MB,512MB,1GB,none")
    parser.add_argument("--rows", default="1000000,10000000")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    limits, sizes = args.limits.split(","), [int(n) for n in args.rows.split(",")]
    samples: dict[str, list] = {}
    with tempfile.TemporaryDirectory(prefix="batchcast-bench-memory-") as folder:
        b = bench.Bench(Path(folder), sizes[0], sizes[-1], sizes[-1], args.repeat)
        b.db.parent.mkdir(parents=True)
        b.spec = bench.write_spec(b.root, "features")
        con = duckdb.connect(str(b.db))
        con.register("t", bench.generate(100_000, 1, True))
        con.execute("CREATE TABLE train AS SELECT * FROM t")
        for n in sizes:
            con.execute(f"CREATE TABLE r{n} AS SELECT 'p' || i AS player_id, "
                        + ", ".join(f"random() * 4 - 2 AS {f}" for f in bench.FEATURES) + f" FROM range({n}) t(i)")
        con.execute(f"CREATE TABLE scores_script ({bench.STAMPED})")
        con.close()
        trained = bench.Service(b.spec).run("training")
        b.model_run, b.model_dir = trained.run_id, b.root / ".batchcast" / "artifacts" / trained.run_id / "output"
        for round_ in range(args.repeat + 1):
            for n in sizes:
                contenders = b.contenders(f"r{n}")
                for limit in limits:
                    argv, env = contenders[f"r{n} batchcast inline"]
                    url = f"duckdb:///{b.db}?memory_limit={'19GB' if limit == 'none' else limit}"
                    found = timed(argv, {**env, "BATCHCAST__WAREHOUSE__URL": url})
                    if round_:
                        samples.setdefault(f"{n} rows, batchcast, memory_limit={limit}", []).append(found)
                argv, env = contenders[f"r{n} script"]
                found = timed(argv, env)
                if round_:
                    samples.setdefault(f"{n} rows, script (DuckDB's default)", []).append(found)
    lines = ["| contender | wall s | peak RSS MiB | CPU s |", "| --- | --- | --- | --- |"]
    figures = {}
    for name, runs in samples.items():
        wall, rss, cpu = (statistics.median(r[i] for r in runs) for i in range(3))
        figures[name] = {"wall_s": wall, "peak_rss_mib": rss, "cpu_s": cpu, "samples": runs}
        lines.append(f"| {name} | {wall:.2f} | {rss:.0f} | {cpu:.2f} |")
    print("\n".join(lines))
    out = Path(__file__).parent / "results" / "duckdb_memory.json"
    out.write_text(json.dumps({"repeat": args.repeat, "cores": os.cpu_count(), "figures": figures}, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
