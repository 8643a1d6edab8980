"""Merge run folders computed in parallel (e.g. by conv_evidence_device.sh) into one, for the command to finish.

    python benchmarks/merge_run_folders.py DEST SRC [SRC ...]

DEST starts as a copy of the first folder, less its finish marker, when it does not exist. From every SRC, the
run subfolders DEST lacks are copied in, and a finished one replaces DEST's unfinished one of the same name
(the same run, computed to its end elsewhere), as does an unfinished one that logged more rows (the same run,
resumed further elsewhere); the rows of SRC's top-level CSV tables that DEST's tables lack are appended
(``timings.csv`` of eos-conv, ``track_*.csv`` of track), except that a replaced run's ``timings.csv`` row is
SRC's alone (a run's row adds up all its sessions, so a run resumed from DEST's copy already counts DEST's
time: keeping both rows would count it twice). Reports, figures and summaries are left as they are: rerun the
command on DEST with the union of the designs (more rates, seeds or starts extend a run folder) and it
computes nothing already there and writes
the report from everything.
"""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

from gdflows.experiments.report.runs import COMPLETE, has_finish_marker

TIMINGS = "timings.csv"  # one row per run, adding up the run's sessions
# rewritten by the rerun
DERIVED = ("summary.csv", "predictors.csv", "bursts.csv", "step_errors.csv", "track_summary.csv", "track_holding.csv")


def rows(path: Path) -> tuple[list[str], list[dict]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def merge_table(dest: Path, src: Path, replaced: frozenset[str] = frozenset()) -> int:
    """Append the rows of ``src`` that ``dest`` lacks, first dropping ``dest``'s rows of each run in
    ``replaced`` that ``src`` has a row for; returns how many rows were appended."""
    if not dest.exists():
        shutil.copy2(src, dest)
        return len(rows(src)[1])
    fields, have = rows(dest)
    more_fields, more = rows(src)
    superseded = replaced & {r.get("run") for r in more}
    have = [r for r in have if r.get("run") not in superseded]
    fields += [f for f in more_fields if f not in fields]
    seen = {tuple(sorted(r.items())) for r in have}
    new = [r for r in more if tuple(sorted(r.items())) not in seen]
    with dest.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(have + new)
    return len(new)


def _top_level_marker(top: Path):
    """A copytree ``ignore`` that leaves out ``top``'s own finish marker (it names the source's design, not
    the union's) and keeps every run subfolder's."""
    return lambda folder, names: [COMPLETE] if Path(folder) == top and COMPLETE in names else []


def _logged(run: Path) -> int:
    path = run / "metrics.csv"
    return len(rows(path)[1]) if path.exists() else 0


def _further(src_run: Path, dest_run: Path) -> str:
    """Why ``src_run`` should replace the unfinished ``dest_run`` (empty if it should not)."""
    if has_finish_marker(src_run):
        return "finished"
    more = _logged(src_run) - _logged(dest_run)
    return f"logged {more} rows more" if more > 0 else ""


def merge(dest: Path, sources: list[Path]) -> None:
    if not dest.exists():
        shutil.copytree(sources[0], dest, ignore=_top_level_marker(sources[0]))
    for src in sources:
        if src.resolve() == dest.resolve():
            continue
        replaced = set()
        for sub in sorted(p for p in src.iterdir() if p.is_dir() and p.name != "figures"):
            there = dest / sub.name
            if there.exists() and not has_finish_marker(there) and (reason := _further(sub, there)):
                shutil.rmtree(there)
                replaced.add(sub.name)
                print(f"{dest}: {sub.name}/ replaced by {src}'s, which {reason}")
            if not there.exists():
                shutil.copytree(sub, there)
                print(f"{dest}: + {sub.name}/")
        for table in sorted(src.glob("*.csv")):
            if table.name not in DERIVED:
                added = merge_table(dest / table.name, table, frozenset(replaced if table.name == TIMINGS else ()))
                print(f"{dest}: + {added} rows of {table.name}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    merge(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])
