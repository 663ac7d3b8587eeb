"""How every benchmark measures: samples of whole processes, raced in rounds.

The rule: contenders run in rounds, one of each per round, the order reversed
every other round (so none always runs first, on a cold cache, or right after
the heaviest); one warm-up round is dropped; and every contender, baselines
included, is reported as the median, min and max of its wall seconds, CPU
seconds and peak memory.
"""

from __future__ import annotations

import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

FIELDS = ("wall_s", "cpu_s", "peak_mib")

# Linux carries a process's peak RSS across exec, and a child starts with its parent's: spawned straight from
# a benchmark holding 600 MB, even `true` reports 600 MB. So a small interpreter spawns the contender, reaps
# it and writes its figures down; the contender's peak is then its own (or, if larger, the launcher's 10 MB).
LAUNCHER = """import os, sys, time
start = time.perf_counter()
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(f"{time.perf_counter() - start} {usage.ru_utime + usage.ru_stime} {usage.ru_maxrss}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


@dataclass(frozen=True)
class Sample:
    """One run of a contender: wall seconds, CPU seconds (user + system) and peak resident MiB.

    For a process, CPU and peak cover it and every descendant it reaped; the peak is the largest single
    process's (a Beam worker's, say), not a sum.
    """

    wall_s: float
    cpu_s: float
    peak_mib: float


def process(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | str | None = None) -> Sample:
    """Run ``argv`` to its end (stdout discarded) and measure it, wall seconds from its spawn to its reaping.

    Raises SystemExit with the command and the end of its stderr when it exits non-zero.
    """
    with tempfile.TemporaryDirectory(prefix="batchcast-rounds-") as tmp:
        figures, stderr = Path(tmp, "figures"), Path(tmp, "stderr")
        with stderr.open("wb") as err:  # a file, not a pipe: a chatty contender cannot block on it
            proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(figures), *argv], cwd=cwd,
                                    env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=err)
            proc.wait()
        if proc.returncode != 0:
            raise SystemExit(f"{shlex.join(argv)} failed ({proc.returncode}):\n"
                             f"{stderr.read_text(errors='replace')[-3000:]}")
        wall, cpu, kib = figures.read_text().split()
    return Sample(float(wall), float(cpu), int(kib) / 1024)


def call(fn: Callable[[], object]) -> Sample:
    """Measure ``fn()`` in this process; its peak is this process's so far, as a call has none of its own."""
    cpu, start = time.process_time(), time.perf_counter()
    fn()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return Sample(wall, cpu, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def race(contenders: dict[str, Callable[[], Sample]], rounds: int, *, show: bool = False) -> dict[str, list[Sample]]:
    """``rounds`` samples of each contender, after the warm-up round; ``show`` prints each sample as taken."""
    names, samples = list(contenders), {name: [] for name in contenders}
    for round_ in range(rounds + 1):
        for name in names if round_ % 2 == 0 else names[::-1]:
            sample = contenders[name]()
            if round_:
                samples[name].append(sample)
            if show:
                print(f"  {f'round {round_}' if round_ else 'warm-up'}: {name}: {sample.wall_s:.2f} s, "
                      f"CPU {sample.cpu_s:.2f} s, {sample.peak_mib:.0f} MiB", flush=True)
    return samples


def summary(samples: list[Sample]) -> dict:
    """The median, min and max of each figure of ``samples``, and their count."""
    out: dict = {"samples": len(samples)}
    for field in FIELDS:
        values = [getattr(s, field) for s in samples]
        out[field] = {"median": round(statistics.median(values), 6), "min": round(min(values), 6),
                      "max": round(max(values), 6)}  # microseconds: a scheduler tick takes a few ms
    return out


def spread(figure: dict, digits: int = 2) -> str:
    """A summary's figure as ``median (min-max)``."""
    m, lo, hi = (figure[k] for k in ("median", "min", "max"))
    return f"{m:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"


def ratios(summaries: dict[str, dict], wanted: dict[str, tuple[str, str, float | None]]) -> dict[str, dict]:
    """Each ``name: (slower, faster, goal)`` of ``wanted`` as the ratio of their wall medians, printed with its
    verdict against the goal (None: reported, not targeted)."""
    found = {}
    for name, (slow, fast, goal) in wanted.items():
        value = summaries[slow]["wall_s"]["median"] / summaries[fast]["wall_s"]["median"]
        verdict = "reported" if goal is None else "met" if value >= goal else "NOT met"
        found[name] = {"value": round(value, 3), "goal": goal, "verdict": verdict}
        print(f"{name}: {value:.2f}x" + ("" if goal is None else f" (goal >= {goal}): {verdict}"))
    return found
