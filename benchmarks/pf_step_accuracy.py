"""How exact the PF's own one-step prediction is, and what it costs, under each way of controlling its solve.

    python benchmarks/pf_step_accuracy.py RUN_FOLDER [RUN_FOLDER ...]

RUN_FOLDER: a ``gdflows train`` / ``eos-conv`` run (its ``config.json`` and ``checkpoint.npz``: the state and
the rate, data and tolerance of the run). At that state it prints GD's loss change per unit time
(E(theta - h g) - E(theta)) / h, the one-step quadratic model, and (Re E(theta_PF(h)) - E(theta)) / h from the
PF integrated over one step three ways, each with its error relative to GD's change, its field evaluations
(the cost, one Krylov PF field each), accepted and rejected steps and CPU seconds (the first includes the
compile):

* ``theta-relative, first step h``: integrate's default tolerances for the dtype, relative to |theta|, the
  whole step tried first (gdflows until this benchmark);
* ``theta-relative, diffrax's first step``: the same with diffrax's own first-step estimate (before that);
* ``displacement-relative``: what ``diagnose(..., pf_step=True)`` does now: the displacement integrated,
  rtol the field's tolerance and atol that fraction of GD's step per component, h |g| / sqrt(D).

GD's change is not the PF's: they differ by the PF's own O(h^3) error off quadratics, so a solve far tighter
than that error cannot show below it. Nothing is asserted.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from gdflows.curvature.chunked import grad_of, hvp_of
from gdflows.diagnosis import pf_step_solve
from gdflows.experiments.configs import TrainConfig, config_from_dict
from gdflows.experiments.network_setup import build_network
from gdflows.experiments.report.runs import read_json
from gdflows.flows.principal import Principal
from gdflows.integrate import integrate


def settings(h: float, tol: float, g_norm: float, theta) -> dict[str, dict]:
    return {
        "theta-relative, first step h": {"first_step": h},
        "theta-relative, diffrax's first step": {},
        "displacement-relative": pf_step_solve(h, tol, g_norm, theta),
    }


def measure(folder: Path) -> None:
    cfg = config_from_dict(TrainConfig, read_json(folder / "config.json"))
    problem = build_network(cfg.net, tol=cfg.tol)
    saved = np.load(folder / "checkpoint.npz")
    theta, h, loss = jnp.asarray(saved["theta"]), cfg.lr, problem.curvature_loss
    g = grad_of(loss)(theta)
    e0 = float(loss(theta))
    gd = (float(loss(theta - h * g)) - e0) / h
    hg = hvp_of(loss)(theta, g)
    quadratic = float(-(g @ g) + 0.5 * h * (g @ hg))
    print(f"{folder} at step {int(saved['__step__'])}: D = {theta.size:,}, h = {h:g}, field tol {problem.tol:g}")
    print(f"  GD {gd:+.6e}; one-step quadratic model {quadratic:+.6e} ({(quadratic - gd) / abs(gd):+.2%})")
    pf = Principal(loss, jnp.asarray(h, theta.dtype), tol=problem.tol, max_size=cfg.max_hvps)
    for name, kwargs in settings(h, problem.tol, float(jnp.linalg.norm(g)), theta).items():
        cpu = time.process_time()
        sol = integrate(pf, theta, steps=1, **kwargs)
        change = (float(jnp.real(loss(jnp.asarray(sol.thetas[1])))) - e0) / h
        print(
            f"  PF, {name}: {change:+.6e} ({(change - gd) / abs(gd):+.2%}); {sol.num_field_evals} field evaluations, "
            f"{sol.num_steps} steps ({sol.num_rejected} rejected), {sol.status}, {time.process_time() - cpu:.0f} CPU-s",
            flush=True,
        )


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for path in sys.argv[1:]:
        measure(Path(path))
