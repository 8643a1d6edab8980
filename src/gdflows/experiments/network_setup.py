"""Which network on which data: the part of a config that ``train``, ``drift`` and ``track`` share.

The config itself (:class:`NetworkSetup`, its flags and choices) lives in the
light :mod:`gdflows.experiments.commands`; this module builds the problem it
describes.
"""

from __future__ import annotations

from collections.abc import Callable

from gdflows.data import DatasetNotFoundError, downsample, load_dataset
from gdflows.experiments.commands import NetworkSetup, flag
from gdflows.experiments.report.runs import Run
from gdflows.problems.network import NetworkProblem, network_problem

__all__ = ["NetworkSetup", "build_network", "network_run"]


def network_run(cfg, check: Callable | None = None) -> tuple[Run | None, NetworkProblem | None]:
    """(run folder, problem) of a command on ``cfg.net``, or (None, None) when ``cfg.out`` holds it finished.

    The config is validated, the data loaded and the problem built (then ``check(problem)``)
    before the folder is created, so a config that cannot run leaves no folder.
    """
    folder = Run.pending(cfg)
    if folder is None:
        return None, None
    problem = cfg.net.build()
    if check is not None:
        check(problem)
    return folder.create(), problem


def build_network(setup: NetworkSetup, prefix: str = "--net.") -> NetworkProblem:
    """Load and subset the data, initialise the model, close the loss over the training set.

    A missing dataset is reported with the flag that sets its folder (``prefix`` + ``data-dir``).
    """
    setup.validate(prefix)
    try:
        data = load_dataset(
            setup.dataset,
            data_dir=setup.data_dir,
            classes=setup.classes or None,
            n_train=setup.n_train,
            n_test=setup.n_test,
            dtype=setup.dtype,
        )
    except DatasetNotFoundError as err:
        raise DatasetNotFoundError(str(err).replace("--data-dir", flag("data_dir", prefix))) from None
    if setup.downsample > 1:
        data = downsample(data, setup.downsample)
    kwargs = {"width": setup.width, "activation": setup.activation}
    if setup.model == "mlp":
        kwargs["depth"] = setup.depth
    return network_problem(setup.model, data, setup.loss, seed=setup.seed, dtype=setup.dtype, **kwargs)
