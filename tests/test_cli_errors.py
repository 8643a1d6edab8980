"""The command line forgives: a user error is one line with the fix and exit status 2 (a traceback only with
--debug), nothing is written before the config is valid, help needs no JAX and lists the choices, and the
compilation cache follows the environment. (Ctrl-C: tests/test_run_folders.py.)"""

import subprocess
import sys
import typing

import pytest

from gdflows.experiments import cli, configs
from gdflows.experiments import train as train_module
from gdflows.experiments.cli import (
    cache_settings,
    command_help,
    help_cache_file,
    main,
    one_line,
    pin_cpu_isa,
)

COMMANDS = (
    "demo",
    "quadratic",
    "toys",
    "train",
    "track",
    "central",
    "pf-validity",
    "eos-conv",
    "drift",
    "compare-optimizers",
    "reproduce",
)


def _run(argv, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    return stop.value.code, capsys.readouterr().err


def _user_errors(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    return {
        "negative lr": (["train", "--lr", "-1"], "--lr must be finite and > 0, got -1.0; e.g. --lr 0.12"),
        "lr not a number": (["train", "--lr", "abc"], "could not convert string to float: 'abc'"),
        "unknown model": (["train", "--net.model", "transformer"], "invalid choice 'transformer' for argument"),
        "unknown dataset": (["train", "--net.dataset", "imagenet"], "'--net.dataset'. Expected one of"),
        "missing data folder": (
            ["train", "--net.dataset", "mnist", "--net.data-dir", str(tmp_path / "nowhere")],
            "--net.data-dir",
        ),
        "data folder without the files": (
            ["train", "--net.dataset", "mnist", "--net.data-dir", str(tmp_path)],
            "or pass --net.data-dir pointing to the folder",
        ),
        "output path is a file": (["train", "--out", str(afile)], "is a file, not a folder"),
        "output below a file": (["drift", "--out", str(afile / "x")], "is a file, not a folder"),
        "relu through the PF": (["train", "--net.activation", "relu"], "not holomorphic"),
        "misspelt command": (["trian"], "did you mean train?"),
        "zero log-every": (["train", "--log-every", "0"], "--log-every must be an integer >= 1"),
        "output in the kernel's process filesystem": (
            ["quadratic", "--out", "/proc/self/gdflows-run"],
            "output path /proc/self/gdflows-run: cannot create a folder in /proc/self",
        ),
        "output in a folder that refuses new folders": (
            ["train", "--out", "/sys/kernel/gdflows-run"],
            "cannot create a folder in /sys/kernel",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "negative lr",
        "lr not a number",
        "unknown model",
        "unknown dataset",
        "missing data folder",
        "data folder without the files",
        "output path is a file",
        "output below a file",
        "relu through the PF",
        "misspelt command",
        "zero log-every",
        "output in the kernel's process filesystem",
        "output in a folder that refuses new folders",
    ],
)
def test_a_user_error_is_one_line_exit_2_and_writes_nothing(case, tmp_path, capsys):
    argv, expected = _user_errors(tmp_path)[case]
    out = tmp_path / "run"
    if "--out" not in argv and argv[0] in COMMANDS:
        argv = [*argv, "--out", str(out)]
    code, err = _run(argv, capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and expected in err, err
    assert " --data-dir" not in err  # the train flag is --net.data-dir
    assert not out.exists()


def test_debug_shows_the_traceback(tmp_path, capsys):
    code, err = _run(["train", "--lr", "-1", "--out", str(tmp_path / "r"), "--debug"], capsys)
    assert code == 2 and "Traceback" in err and err.strip().splitlines()[-1].startswith("gdflows train: error:")


# what --help may import: the CLI, the configs, and the lazy registries they read their choices from
LIGHT = (
    "gdflows._lazy",
    "gdflows.errors",
    "gdflows.experiments",
    "gdflows.experiments.cli",
    "gdflows.experiments.errors",
)
LIGHT += ("gdflows.experiments.configs", "gdflows.flows", "gdflows.optim", "gdflows.data", "gdflows.models")


def test_help_loads_no_jax_and_no_experiment():
    script = (
        "import sys\nfrom gdflows.experiments.cli import main\n"
        f"for name in ['', *{COMMANDS!r}]:\n"
        "    try:\n        main([name, '--help'] if name else ['--help'])\n"
        "    except SystemExit:\n        pass\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('jax', 'numpy', 'matplotlib', 'optax')]\n"
        f"heavy += [m for m in sys.modules if m.startswith('gdflows.') and m.rsplit('.', 1)[0] not in {LIGHT}"
        f" and m not in {LIGHT}]\n"
        "print('HEAVY', heavy)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "HEAVY []"


def test_the_package_loads_its_api_on_first_use():
    script = (
        "import sys, gdflows\n"
        "print('jax' in sys.modules)\n"
        "import gdflows.integrate\n"  # the module of that name must not shadow the function
        "print(callable(gdflows.integrate), gdflows.integrate.__module__, gdflows.Status.OK.value)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False", "True", "gdflows.integrate", "ok"]


def test_every_command_says_what_it_writes_and_how_long_it_takes(capsys):
    assert tuple(cli.COMMANDS) == COMMANDS
    for name in COMMANDS:
        with pytest.raises(SystemExit) as stop:
            main([name, "--help"])
        text = capsys.readouterr().out
        assert stop.value.code == 0 and "Writes" in text and "Typical runtime" in text, name
    main_help = _run(["--help"], capsys)
    assert main_help[0] == 0
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for choices in ("{mnist_subset,mnist,fashion_mnist,cifar10}", "{mlp,cnn,vgg,resnet}", "{gd,dal,polyak,dog,"):
        assert choices in text


def test_literal_choices_are_the_registries_they_name():
    from gdflows.data import NAMES
    from gdflows.experiments.optimizers.plans import SUBSET_NETS as MODEL_KWARGS
    from gdflows.experiments.reproduce import SCALES
    from gdflows.flows import FLOWS
    from gdflows.models import ACTIVATIONS, LOSSES, MODELS
    from gdflows.optim import HG_MODES

    args = typing.get_args
    choices = {
        configs.base.DatasetName: ("mnist_subset", "mnist", "fashion_mnist", "cifar10"),
        configs.base.ModelName: ("mlp", "cnn", "vgg", "resnet"),
        configs.base.ActivationName: ("tanh", "gelu", "softplus", "swish", "relu"),
        configs.base.LossName: ("mse", "cross_entropy"),
        configs.base.HGMode: ("hvp", "fd", "secant"),
        configs.base.FlowName: ("NGF", "IGR", "third-order", "PF", "PF+NP", "central"),
        configs.base.CompareModel: ("mlp", "cnn"),
        configs.base.ScaleName: ("cpu", "paper", "smoke"),
    }
    assert [args(literal) for literal in choices] == list(choices.values())
    assert tuple(NAMES) == choices[configs.base.DatasetName]
    assert tuple(MODELS) == choices[configs.base.ModelName]
    assert tuple(ACTIVATIONS) == choices[configs.base.ActivationName]
    assert tuple(LOSSES) == choices[configs.base.LossName]
    assert tuple(HG_MODES) == choices[configs.base.HGMode]
    assert set(FLOWS) == set(choices[configs.base.FlowName])
    assert tuple(MODEL_KWARGS) == choices[configs.base.CompareModel]
    assert tuple(SCALES) == choices[configs.base.ScaleName]
    for name in args(configs.base.OptimizerName):
        assert train_module.make_method(configs.TrainConfig(optimizer=name)).make() is not None


def test_cache_settings_follow_the_environment():
    home = {"HOME": "/home/u"}
    assert cache_settings(home) == {
        "jax_compilation_cache_dir": "/home/u/.cache/gdflows/xla",
        "jax_persistent_cache_min_compile_time_secs": 0.0,
    }
    assert cache_settings(home | {"XDG_CACHE_HOME": "/c"})["jax_compilation_cache_dir"] == "/c/gdflows/xla"
    assert cache_settings(home | {"XDG_CACHE_HOME": "rel"})["jax_compilation_cache_dir"] == "/home/u/.cache/gdflows/xla"
    assert cache_settings(home | {"JAX_COMPILATION_CACHE_DIR": "/j"}) == {
        "jax_persistent_cache_min_compile_time_secs": 0.0
    }  # JAX reads its own variable
    assert cache_settings(home | {"JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "2"}) == {
        "jax_compilation_cache_dir": "/home/u/.cache/gdflows/xla"
    }
    assert cache_settings(home | {"GDFLOWS_NO_CACHE": "1"}) == {}


def test_command_help_is_built_once_then_read_from_the_cache(tmp_path):
    env = {"HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "c")}
    built = command_help("drift", env)
    assert "usage: gdflows drift" in built and "--lrs" in built
    cached = help_cache_file("drift", env)
    assert cached.parent == tmp_path / "c" / "gdflows" / "help" and cached.read_text() == built
    cached.write_text("from the cache")
    assert command_help("drift", env) == "from the cache"
    assert command_help("drift", env | {"GDFLOWS_NO_CACHE": "1"}) == built  # off: built afresh, not read


def test_reproduce_pins_the_cpu_instruction_set_unless_the_user_chose_one(monkeypatch):
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    pin_cpu_isa(env)
    assert env["XLA_FLAGS"] == "--xla_force_host_platform_device_count=2 --xla_cpu_max_isa=AVX2"
    chosen = {"XLA_FLAGS": "--xla_cpu_max_isa=SSE4_2"}
    pin_cpu_isa(chosen)
    assert chosen == {"XLA_FLAGS": "--xla_cpu_max_isa=SSE4_2"}
    monkeypatch.setattr("platform.machine", lambda: "aarch64")
    other: dict[str, str] = {}
    pin_cpu_isa(other)
    assert other == {}


def test_a_boxed_parser_error_becomes_one_line():
    box = (
        "╭─ Invalid choice ──────────╮\n"
        "│ invalid choice 'foo' for  │\n"
        "│ '--net.model'. Expected   │\n"
        "│ one of ('mlp', 'cnn').    │\n"
        "│ ───────────────────────── │\n"
        "│ For full helptext, run x  │\n"
        "╰───────────────────────────╯\n"
    )
    assert one_line(box) == "invalid choice 'foo' for '--net.model'. Expected one of ('mlp', 'cnn')."
    assert one_line("usage: x\nerror: bad\n") == "usage: x error: bad"
