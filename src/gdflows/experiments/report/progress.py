"""A progress bar for every long loop (rich), quiet when GDFLOWS_QUIET=1."""

import os
from collections.abc import Iterable
from typing import TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

T = TypeVar("T")


def track(iterable: Iterable[T], description: str, total: int | None = None) -> Iterable[T]:
    """Iterate with a progress bar (disabled when GDFLOWS_QUIET=1)."""
    if os.environ.get("GDFLOWS_QUIET") == "1":
        yield from iterable
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
            yield item
            progress.advance(task)
