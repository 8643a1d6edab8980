"""Which network on which data: the part of a config that ``train``, ``drift``, ``track`` and ``central`` share.

The config itself (:class:`NetworkSetup`, its flags and choices) lives in the
light :mod:`gdflows.experiments.configs`; this module builds the problem it
describes, on the devices the command's ``--devices`` names.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from gdflows.data import DatasetNotFoundError, downsample, load_dataset
from gdflows.diagnosis import Diagnosis, diagnose
from gdflows.errors import GDFlowsError
from gdflows.experiments.configs import NetworkSetup, flag
from gdflows.experiments.report.runs import Run
from gdflows.problems.network import NetworkProblem, network_problem
from gdflows.validation import check_tol

__all__ = ["NetworkSetup", "build_network", "network_run", "diagnose_network"]


def network_run(
    cfg, check: Callable | None = None, tol: float | None = None
) -> tuple[Run | None, NetworkProblem | None]:
    """(run folder, problem) of a command on ``cfg.net``, or (None, None) when ``cfg.out`` holds it finished.

    The config is validated, the data loaded and the problem built on ``cfg.devices``
    local devices with diagnostics at ``tol`` (then ``check(problem)``) before the
    folder is created, so a config that cannot run leaves no folder.
    """
    folder = Run.pending(cfg)
    if folder is None:
        return None, None
    problem = build_network(cfg.net, devices=cfg.devices, tol=tol)
    if check is not None:
        check(problem)
    return folder.create(), problem


def check_devices(devices: int | None) -> None:
    """Refuse ``--devices`` above this process's local device count (before any data is loaded)."""
    local = jax.local_device_count()
    if devices is not None and devices > local:
        raise GDFlowsError(
            f"--devices {devices} exceeds the {local} local device(s) of this process; pass --devices {local} "
            "or fewer (or leave it out: all)"
        )


def build_network(
    setup: NetworkSetup, prefix: str = "--net.", devices: int | None = None, tol: float | None = None
) -> NetworkProblem:
    """Load and subset the data, initialise the model, lay the data out on ``devices`` local devices (None: all).

    ``setup`` is taken as validated (:meth:`NetworkSetup.build` validates, then calls this);
    ``--devices`` and ``--tol`` (``tol``, checked against ``setup.dtype``; None: its
    default) are checked before the data is loaded. A missing dataset is reported
    with the flag that sets its folder (``prefix`` + ``data-dir``).
    """
    check_devices(devices)
    if tol is not None:
        check_tol(tol, setup.dtype, flag="--tol")
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
    return network_problem(
        setup.model,
        data,
        setup.loss,
        seed=setup.seed,
        dtype=setup.dtype,
        chunk_size=setup.chunk_size,
        curvature_size=setup.curvature_size,
        tol=tol,
        devices=devices,
        **kwargs,
    )


def diagnose_network(
    problem: NetworkProblem, theta, lr, k: int = 2, warm_start=None, max_size: int = 100, pf_step: bool = False
) -> Diagnosis:
    """:func:`gdflows.diagnose` of a network on its curvature subset, in its dtype, at the problem's ``tol``
    (``max_size``: the HVP budget of each Lanczos solve; ``pf_step``: the PF's own one-step prediction too)."""
    theta = jnp.asarray(theta).astype(problem.curvature_dtype)
    loss = problem.curvature_loss
    return diagnose(loss, theta, lr, k, tol=problem.tol, warm_start=warm_start, max_size=max_size, pf_step=pf_step)
