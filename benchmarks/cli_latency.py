"""How long the command line makes a user wait, measured side by side in one run.

* ``gdflows --help`` (median of 5) and the slowest ``gdflows <command> --help``: the CLI imports no JAX
  and no experiment before parsing, and a command's help text, once built (its first call loads the
  parser's type checker, ~0.4 s CPU), is read from the cache (goal: under 0.5 s);
* ``gdflows train --steps 20`` (the default network) twice, into two folders, with a fresh, empty
  compilation cache: the first run compiles and fills the cache, the second loads its programs from it
  (goal: the second at most 0.6x the first);
* a rerun of the finished first run, which prints where its report is and computes nothing.

Every command runs in a fresh process, as a user's would, with its own XDG_CACHE_HOME.

    .venv/bin/python benchmarks/cli_latency.py        # about 2 minutes on 2 CPU cores
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gdflows.experiments.cli import COMMANDS  # light: no JAX


def timed(args: list[str], env: dict) -> tuple[float, float]:
    """(wall-clock, CPU) seconds of ``python -m gdflows.experiments.cli <args>`` in a fresh process (it must succeed).

    CPU time (user + system of the child) is what the command costs; on a shared machine the wall
    time also holds the time spent waiting for a core.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "gdflows.experiments.cli", *args], env=env, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode != 0:
        raise SystemExit(f"gdflows {' '.join(args)} failed:\n{run.stderr}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {k: v for k, v in os.environ.items() if k not in ("GDFLOWS_NO_CACHE", "JAX_COMPILATION_CACHE_DIR")}
        env |= {"XDG_CACHE_HOME": str(root / "cache"), "GDFLOWS_QUIET": "1"}
        helps = [timed(["--help"], env) for _ in range(5)]
        help_s = (statistics.median(w for w, _ in helps), statistics.median(c for _, c in helps))
        first_help = {name: timed([name, "--help"], env) for name in COMMANDS}  # builds each help text
        per_command = {name: timed([name, "--help"], env) for name in COMMANDS}  # reads it back
        slowest = max(per_command, key=lambda name: per_command[name][0])
        slowest_first = max(first_help, key=lambda name: first_help[name][0])
        train = ["train", "--steps", "20"]
        first = timed([*train, "--out", str(root / "first")], env)
        cached = sum(1 for _ in (root / "cache" / "gdflows" / "xla").iterdir())
        second = timed([*train, "--out", str(root / "second")], env)
        finished = timed([*train, "--out", str(root / "first")], env)
    ratio = second[0] / first[0]
    rows = [
        ("gdflows --help (median of 5)", help_s, f"wall < 0.5 s: {'met' if help_s[0] < 0.5 else 'NOT met'}"),
        (f"slowest first <command> --help ({slowest_first}, builds its text)", first_help[slowest_first], ""),
        (
            f"slowest <command> --help ({slowest})",
            per_command[slowest],
            f"wall < 0.5 s: {'met' if per_command[slowest][0] < 0.5 else 'NOT met'}",
        ),
        ("train --steps 20, first (empty cache)", first, ""),
        (
            "train --steps 20, second (warm cache)",
            second,
            f"<= 0.6x first: {ratio:.2f}x, {'met' if ratio <= 0.6 else 'NOT met'}",
        ),
        ("train --steps 20, rerun of the finished first", finished, ""),
    ]
    print(f"{'what':48} {'wall s':>7} {'cpu s':>7}  goal")
    for what, (wall, cpu), goal in rows:
        print(f"{what:48} {wall:7.2f} {cpu:7.2f}  {goal}")
    print(f"compiled programs in the cache after the first run: {cached}; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
