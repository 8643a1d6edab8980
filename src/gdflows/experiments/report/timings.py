"""How long the runs of a run folder took, kept in its ``timings.csv`` across sessions (a resumed or extended
run adds up its sessions), and the sentence a report says it in."""

from __future__ import annotations

import contextlib
import time

from gdflows.experiments.report.progress import quiet
from gdflows.experiments.report.runs import Run


def add_time(run: Run, name: str, wall: float, cpu: float) -> None:
    """Add a session's wall and CPU seconds to run ``name``'s line of ``timings.csv`` (a resumed or extended
    run adds up its sessions)."""
    times = {t["run"]: t for t in run.read_table("timings")}
    before = times.get(name, {"wall_s": 0.0, "cpu_s": 0.0})
    times[name] = {"run": name, "wall_s": float(before["wall_s"]) + wall, "cpu_s": float(before["cpu_s"]) + cpu}
    run.write_table("timings", list(times.values()))


@contextlib.contextmanager
def timed(run: Run, name: str):
    """Add the wall and CPU seconds of the block to run ``name``'s line of ``timings.csv``, also when it is
    interrupted (the run resumes later; its time so far counts)."""
    start, cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        if wall > 1:  # a run finished before is skipped in no time: its time stays as recorded
            add_time(run, name, wall, cpu)
        if not quiet():
            print(f"{name}: {wall:.0f} s wall, {cpu:.0f} s CPU (this process)")


def cpu_text(run: Run, unit: str = "runs") -> str:
    """The CPU time the runs took, from ``timings.csv`` (empty without it)."""
    times = run.read_table("timings")
    if not times:
        return ""
    cpu = sum(float(t["cpu_s"]) for t in times)
    wall = sum(float(t["wall_s"]) for t in times)
    return (
        f" Total: {cpu / 60:.0f} CPU-minutes ({wall / 60:.0f} minutes wall) over {len(times)} {unit} (`timings.csv`)."
    )
