"""The harness's own exceptions: a run interrupted, a run folder damaged, a disk that filled up.

Standard library only: the command line reports them before (or without) loading the numerics.
"""

from __future__ import annotations

import contextlib
import errno
from pathlib import Path

from gdflows.errors import GDFlowsError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run that checkpoints; the message says the step reached and how to resume."""


class DamagedRunError(GDFlowsError):
    """A file of a run folder is not what gdflows wrote there (cut short, garbled, or of another run).

    ``path``: the file; ``what``: what is wrong with it; the message adds the fix
    (by default: delete the folder and rerun the command to start over).
    """

    def __init__(self, path, what: str, fix: str | None = None):
        self.path, self.what = Path(path), what
        fix = fix or f"delete {self.path.parent} and rerun the command to start over"
        super().__init__(f"{self.path} is damaged ({what}); {fix}")


class DiskFullError(GDFlowsError):
    """The disk filled up during a write. Every file a rerun reads back is written atomically, so the
    run folder still holds its last good state: the message says so, and to free space and rerun."""

    def __init__(self, path, folder):
        where = f" to write {path}" if path else ""
        super().__init__(
            f"no space left on the device{where}; {folder} still holds the last good state: "
            "free some space and rerun the same command"
        )


@contextlib.contextmanager
def disk_full_reported(folder, path=None):
    """A full disk (OSError ENOSPC or EDQUOT) in the block as :class:`DiskFullError` about the run folder
    ``folder`` and the file ``path`` being written (default: the error's)."""
    try:
        yield
    except OSError as err:
        if err.errno not in DISK_FULL:
            raise
        raise DiskFullError(path or err.filename, folder) from err
