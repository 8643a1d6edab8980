"""The tiniest `gdflows train` run, run through the command line in this process (shared by the run-folder tests)."""

import contextlib
import io

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
