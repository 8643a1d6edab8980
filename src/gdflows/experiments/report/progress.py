"""A progress bar for every long loop (rich), quiet when GDFLOWS_QUIET=1."""

import os
from collections.abc import Callable, Iterable
from typing import TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

T = TypeVar("T")


def quiet() -> bool:
    """True when GDFLOWS_QUIET=1: no progress bars, no per-run timing lines."""
    return os.environ.get("GDFLOWS_QUIET") == "1"


def track(iterable: Iterable[T], description: str, total: int | None = None) -> Iterable[T]:
    """Iterate with a progress bar (disabled when GDFLOWS_QUIET=1)."""
    for item, _ in track_stages(iterable, description, total):
        yield item


def track_stages(
    iterable: Iterable[T], description: str, total: int | None = None, position: Callable[[T], int] | None = None
) -> Iterable[tuple[T, Callable[[str], None]]]:
    """Iterate with a progress bar, yielding (item, say): ``say(text)`` shows what the current item is doing
    beside the description (e.g. ``"diagnosis"``), so a long item is not a silent bar. The bar counts items
    out of ``total`` (default: the iterable's length), or, with ``position``, stands at ``position(item)`` after
    each item (e.g. the GD step reached, out of the run's steps, for a schedule that is a generator)."""
    if quiet():
        for item in iterable:
            yield item, lambda text: None
        return
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(description, total=total)
        for item in iterable:
            yield item, lambda text: progress.update(task, description=f"{description}: {text}")
            if position is None:
                progress.update(task, description=description, advance=1)
            else:
                progress.update(task, description=description, completed=position(item))
