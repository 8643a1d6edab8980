"""Command line: ``gdflows <command> [flags]``, one command per config in :mod:`gdflows.experiments.configs`.

Parsing imports nothing heavy (the configs are plain dataclasses; tyro builds
the flags of the named command only), so ``gdflows --help`` and ``gdflows
<command> --help`` answer at once; JAX and the command's module load only
once a command runs. Then the CLI

* returns at once when the run folder already holds the finished run
  (``complete: <report>``);
* switches JAX to float64 (the experiments' accuracy claims are float64
  claims) and turns on JAX's persistent compilation cache
  (:func:`cache_settings`), so a rerun skips XLA compilation;
* joins a multi-process run when ``JAX_COORDINATOR_ADDRESS``,
  ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` are set (one process per host,
  the same command on each: :mod:`gdflows.parallel`);
* reports a user error (a :class:`~gdflows.errors.GDFlowsError`, a bad flag
  value, an unusable output path) as one line, ``gdflows <command>: error:
  <what, and the fix>``, with exit status 2 and no traceback (``--debug``
  shows it); so is a full disk (the run folder still holds its last good
  state: free space and rerun);
* on Ctrl-C says where the run stands and exits with status 130.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import importlib.util
import io
import os
import platform
import shutil
import signal
import sys
import traceback
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from gdflows.errors import GDFlowsError
from gdflows.experiments.configs import load
from gdflows.experiments.errors import disk_full_reported

# name -> "module:ConfigClass"; each module must stay light (no JAX at import) for --help to be fast
COMMANDS: dict[str, str] = {
    "demo": "gdflows.experiments.configs:DemoConfig",
    "quadratic": "gdflows.experiments.configs:QuadraticConfig",
    "toys": "gdflows.experiments.configs:ToysConfig",
    "train": "gdflows.experiments.configs:TrainConfig",
    "track": "gdflows.experiments.configs:TrackConfig",
    "central": "gdflows.experiments.configs:CentralConfig",
    "pf-validity": "gdflows.experiments.configs:PFValidityConfig",
    "eos-conv": "gdflows.experiments.configs:EosConvConfig",
    "drift": "gdflows.experiments.configs:DriftConfig",
    "compare-optimizers": "gdflows.experiments.configs:CompareOptimizersConfig",
    "reproduce": "gdflows.experiments.configs:ReproduceConfig",
}

DESCRIPTION = (
    "Continuous-time models of gradient descent: the Principal Flow, its stability coefficients, "
    "edge-of-stability diagnostics and DAL. Each command writes one run folder (config.json, CSV tables, "
    "figures/, REPORT.md); rerunning a finished command prints where its report is. "
    "--debug shows the traceback of an error. Compiled programs are cached in $XDG_CACHE_HOME/gdflows "
    "(default ~/.cache/gdflows; JAX_COMPILATION_CACHE_DIR overrides it, GDFLOWS_NO_CACHE=1 turns it off)."
)
USER_ERRORS = (GDFlowsError, PermissionError, FileExistsError, IsADirectoryError, NotADirectoryError)
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def cache_home(env: Mapping[str, str]) -> Path:
    """``$XDG_CACHE_HOME/gdflows`` (an absolute XDG_CACHE_HOME only), else ``~/.cache/gdflows``."""
    base = env.get("XDG_CACHE_HOME") or ""
    base = Path(base) if Path(base).is_absolute() else Path(env.get("HOME", "~")).expanduser() / ".cache"
    return base / "gdflows"


def cache_settings(env: Mapping[str, str]) -> dict[str, object]:
    """The JAX settings of the CLI's persistent compilation cache, from the environment ``env``.

    ``GDFLOWS_NO_CACHE=1``: none (JAX's own variables still apply). Otherwise the
    cache lives in ``$JAX_COMPILATION_CACHE_DIR`` when set (JAX reads it itself), else
    in ``$XDG_CACHE_HOME/gdflows/xla`` (``~/.cache/gdflows/xla``), and every compiled
    program is cached (min compile time 0 s) unless
    ``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`` says otherwise.
    """
    if env.get("GDFLOWS_NO_CACHE") == "1":
        return {}
    settings: dict[str, object] = {}
    if not env.get("JAX_COMPILATION_CACHE_DIR"):
        settings["jax_compilation_cache_dir"] = str(cache_home(env) / "xla")
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in env:
        settings["jax_persistent_cache_min_compile_time_secs"] = 0.0
    return settings


# ``gdflows reproduce`` writes the same bytes on every x86-64 CPU with AVX2 (AVX-512 machines give AVX2's
# results; XLA's float rounding differs between instruction sets); elsewhere its check's tolerances apply.
REPRODUCE_ISA = "--xla_cpu_max_isa=AVX2"


def pin_cpu_isa(env: MutableMapping[str, str]) -> None:
    """Add :data:`REPRODUCE_ISA` to ``XLA_FLAGS`` on x86-64, unless the user chose an ISA there."""
    flags = env.get("XLA_FLAGS", "")
    if platform.machine().lower() in ("x86_64", "amd64") and "xla_cpu_max_isa" not in flags:
        env["XLA_FLAGS"] = f"{flags} {REPRODUCE_ISA}".strip()


def configure_jax(env: Mapping[str, str]) -> None:
    """float64 and the compilation cache, for this process (the library itself changes no JAX setting);
    then, when ``JAX_COORDINATOR_ADDRESS`` is set, join the multi-process run (:func:`gdflows.parallel.initialize`)."""
    config = load("jax:config")
    config.update("jax_enable_x64", True)
    for name, value in cache_settings(env).items():
        config.update(name, value)
    load("gdflows.parallel:initialize")()


def prepare_jax(command: str, env: MutableMapping[str, str]) -> None:
    """What the command line sets up once a command is validated and not yet finished (so a bad value
    or a finished run answers before JAX loads)."""
    if command == "reproduce":
        pin_cpu_isa(env)
    configure_jax(env)


def one_line(text: str) -> str:
    """A parser error as one line: the message inside tyro's box, without the frame and the help hints."""
    inside = [line.strip().strip("│").strip() for line in text.splitlines() if line.strip().startswith("│")]
    if not inside:
        return " ".join(line.strip() for line in text.splitlines() if line.strip())
    message = []
    for line in inside:
        if line and set(line) <= {"─"}:
            break
        message.append(line)
    return " ".join(" ".join(message).split())


def _fail(command: str, message: str, status: int) -> None:
    prefix = f"gdflows {command}" if command else "gdflows"
    print(f"{prefix}: {' '.join(str(message).split())}", file=sys.stderr)
    raise SystemExit(status)


def overview() -> str:
    """``gdflows --help``: every command with the first line of its docstring."""
    lines = ["usage: gdflows <command> [flags]   (gdflows <command> --help lists its flags)", "", DESCRIPTION, ""]
    lines.append("commands:")
    for name, spec in COMMANDS.items():
        lines.append(f"  {name:20}{(load(spec).__doc__ or '').strip().splitlines()[0]}")
    return "\n".join(lines)


def help_cache_file(name: str, env: Mapping[str, str]) -> Path | None:
    """Where ``gdflows <name> --help`` keeps its text: beside the compilation cache, keyed by the
    sources that shape it (the configs, their registries, the CLI, the parser's version) and the terminal width; None
    with ``GDFLOWS_NO_CACHE=1``. Building the help loads the parser's type checker (~0.4 s CPU);
    reading it back costs nothing."""
    if env.get("GDFLOWS_NO_CACHE") == "1":
        return None
    digest = hashlib.sha256(f"{name} {shutil.get_terminal_size().columns} {sys.version}".encode())
    package = Path(__file__).parents[1]  # the configs, and the registries their choices come from
    registries = [package / name / "__init__.py" for name in ("data", "models", "flows", "optim")]
    sources = [Path(__file__), *sorted((Path(__file__).parent / "configs").glob("*.py")), *registries]
    tyro_origin = importlib.util.find_spec("tyro").origin
    for path in sources:
        digest.update(path.read_bytes())
    digest.update(f"{tyro_origin} {os.stat(tyro_origin).st_mtime_ns}".encode())
    return cache_home(env) / "help" / f"{name}-{digest.hexdigest()[:16]}.txt"


def command_help(name: str, env: Mapping[str, str]) -> str:
    """The text of ``gdflows <name> --help``, from the help cache when it holds it."""
    cached = help_cache_file(name, env)
    if cached is not None and cached.is_file():
        return cached.read_text()
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        load("tyro:cli")(load(COMMANDS[name]), args=["--help"], prog=f"gdflows {name}")
    if cached is not None:
        with contextlib.suppress(OSError):  # a read-only home still gets its help, uncached
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_text(out.getvalue())
    return out.getvalue()


def parse(argv: list[str]):
    """The config of the command ``argv`` names (only that command's flags are built); a parse error
    exits 2 with one line."""
    if not argv or argv[0] in ("-h", "--help"):
        if not argv:
            _fail("", "error: name a command (gdflows --help lists them)", EXIT_USER_ERROR)
        print(overview())
        raise SystemExit(0)
    name = argv[0]
    if name not in COMMANDS:
        guess = difflib.get_close_matches(name, COMMANDS, n=1)
        hint = f"did you mean {guess[0]}?" if guess else f"one of: {', '.join(COMMANDS)}"
        _fail("", f"error: unknown command {name!r}; {hint}", EXIT_USER_ERROR)
    if argv[1:] in (["--help"], ["-h"]):
        sys.stdout.write(command_help(name, os.environ))
        raise SystemExit(0)
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            return load("tyro:cli")(load(COMMANDS[name]), args=argv[1:], prog=f"gdflows {name}")
    except SystemExit as stop:
        if stop.code in (0, None):
            sys.stderr.write(captured.getvalue())
            raise
        _fail(name, f"error: {one_line(captured.getvalue())} (see gdflows {name} --help)", EXIT_USER_ERROR)


@contextlib.contextmanager
def terminate_as_interrupt():
    """SIGTERM (``kill``, ``timeout``, a batch scheduler's preemption) stops the block as Ctrl-C does: a run
    keeps what it computed, and the same command resumes. A script's background job ignores SIGINT (POSIX,
    without job control), so SIGTERM is how such a run is stopped cleanly; the previous handler comes back
    after the block."""

    def stop(signum, frame):
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("GDFLOWS_DEBUG") == "1"
    argv = [a for a in argv if a != "--debug"]
    cfg = parse(argv)
    command = argv[0]
    try:
        # disk_full_reported: e.g. a figure; run folders' own writes say so themselves
        with terminate_as_interrupt(), disk_full_reported(cfg.out):
            cfg.run(before_work=functools.partial(prepare_jax, command, os.environ))
    except USER_ERRORS as err:
        if debug:
            traceback.print_exc()
        _fail(command, f"error: {err}", EXIT_USER_ERROR)
    except KeyboardInterrupt as err:
        if debug:
            traceback.print_exc()
        _fail(command, str(err) or "interrupted; rerun the same command to start it again", EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
