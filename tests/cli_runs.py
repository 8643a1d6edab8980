"""The tiniest `gdflows train` run, run through the command line in this process (shared by the run-folder tests)."""

import contextlib
import io
import os
import signal

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
def interrupted_at_diagnosis(n: int, by_sigterm: bool = False):
    """Ctrl-C (a KeyboardInterrupt) at the n-th diagnosis of the train runs in this block; ``by_sigterm``:
    a SIGTERM sent to this process there instead."""
    real, calls = train_module.diagnostics_row, []

    def interrupt(*args):
        calls.append(1)
        if len(calls) == n:
            if not by_sigterm:
                raise KeyboardInterrupt
            # unhandled, SIGTERM would end the test process instead of failing the test
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN, None), "SIGTERM unhandled"
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_module, "diagnostics_row", interrupt)
        yield
