"""The tiniest `gdflows train` run, run through the command line in this process (shared by the run-folder tests)."""

import contextlib
import io

import pytest

from gdflows.experiments import train as train_module
from gdflows.experiments.cli import main

# 4x4 images, one hidden layer of 8: D = 226, the dense path (a small program to compile)
TINY = ["--net.n-train", "50", "--net.n-test", "20", "--net.downsample", "7", "--net.width", "8", "--net.depth", "1"]


def train_argv(steps, out):
    return ["train", *TINY, "--k", "1", "--lr", "0.05", "--steps", str(steps), "--log-every", "3", "--out", str(out)]


def run_cli(argv) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of the command line run in this process."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as stop:
            code = stop.code
    return code, out.getvalue(), err.getvalue()


@contextlib.contextmanager
def interrupted_at_diagnosis(n: int):
    """Ctrl-C (a KeyboardInterrupt) at the n-th diagnosis of the train runs in this block."""
    real, calls = train_module.diagnostics_row, []

    def interrupt(*args):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return real(*args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_module, "diagnostics_row", interrupt)
        yield
