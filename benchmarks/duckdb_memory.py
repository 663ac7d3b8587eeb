"""What DuckDB's ``memory_limit`` costs a batchcast application, against the script, by rows (whole processes).

    .venv/bin/python benchmarks/duckdb_memory.py [--limits 256MB,512MB,1GB,none] [--rows 1000000,10000000]

For each input size and each limit, ``batchcast run application --executor
inline`` with ``?memory_limit=LIMIT`` on the warehouse URL ("none": 19GB,
about DuckDB's own default of 80% of this machine), and the script of
``make bench`` (``benchmarks/baseline.py``, DuckDB's default), raced by
``benchmarks/rounds.py`` (a warm-up round dropped, the order reversed every
other round); wall seconds, peak RSS and CPU seconds, medians.
Results: ``benchmarks/results/duckdb_memory.json``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).parent))
import rounds  # noqa: E402
import run as bench  # noqa: E402  (the make bench service, tables and contenders)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limits", default="256MB,512MB,1GB,none")
    parser.add_argument("--rows", default="1000000,10000000")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    limits, sizes = args.limits.split(","), [int(n) for n in args.rows.split(",")]
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
        contenders = {}
        for n in sizes:
            chosen = b.contenders(f"r{n}")
            argv, env = chosen[f"r{n} batchcast inline"]
            for limit in limits:
                url = f"duckdb:///{b.db}?memory_limit={'19GB' if limit == 'none' else limit}"
                contenders[f"{n} rows, batchcast, memory_limit={limit}"] = functools.partial(
                    rounds.process, argv, env={**env, "BATCHCAST__WAREHOUSE__URL": url})
            argv, env = chosen[f"r{n} script"]
            contenders[f"{n} rows, script (DuckDB's default)"] = functools.partial(rounds.process, argv, env=env)
        samples = rounds.race(contenders, args.repeat, show=True)
    lines = ["| contender | wall s | peak RSS MiB | CPU s |", "| --- | --- | --- | --- |"]
    figures = {name: rounds.summary(found) for name, found in samples.items()}
    for name, f in figures.items():
        lines.append(f"| {name} | {rounds.spread(f['wall_s'])} | {f['peak_mib']['median']:.0f} | "
                     f"{f['cpu_s']['median']:.2f} |")
    print("\n".join(lines))
    out = Path(__file__).parent / "results" / "duckdb_memory.json"
    out.write_text(json.dumps({"repeat": args.repeat, "cores": os.cpu_count(), "figures": figures}, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
