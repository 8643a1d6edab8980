r"""CDAT, the curvature-dynamics-aware tuner (Roulet et al., NeurIPS 2024), for optax.

Along the direction u of a base optimizer (u = g without one; the step is
theta <- theta - h u, as in :mod:`gdflows.optim.dal`), the quadratic model
E(theta - h u) ~ E - h g.u + (h^2/2) u.H u is lowest at h* = g.u / u.H u.
CDAT scales it by sigma::

    h_t = min(sigma (g_t . u_t) / (u_t . H_t u_t), max_lr)

sigma = 1 is the exact line search of the model; sigma = 2 ("on the edge")
is the step that lands where the model returns to E(theta): for GD along an
eigenvector of H with eigenvalue lambda it is 2 / lambda, the edge of
stability. For GD (u = g), g.Hg <= |g| |Hg| gives h_CDAT(2) = 2|g|^2/g.Hg
>= 2|g|/|Hg| = h_DAL, with equality exactly when g is an eigenvector.
(The paper writes the step as theta + eta v with v = -u: the same rate.)

Where the model has no minimum along u:

* u.H u <= 0 (zero or negative curvature along u): h = ``max_lr``, the
  largest step allowed (the model decreases without bound along -u);
* u.H u > 0 but g.u <= 0 (-u does not descend, e.g. momentum pointing
  uphill): h = 0, no step; the base state still advances, so the next u
  differs.

With ``ema`` = beta > 0 the numerator and denominator are exponential moving
averages, n_t = beta n_{t-1} + (1 - beta) g_t.u_t (the same for u.H u),
started from the first step's values, which smooths minibatch noise; the
rules above apply to the averages.

Each step costs one Hessian-vector product through ``value_fn`` (``hg="hvp"``)
or one extra gradient (``hg="fd"``), as DAL's modes (the helpers are shared,
:mod:`gdflows.optim.curvature`). Call ``update(grads, state, params,
value_fn=loss_fn)`` with loss_fn(params) on the batch the gradient came from.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdflows.errors import GDFlowsError
from gdflows.optim.curvature import dot, fd_hvp, tree_hvp
from gdflows.validation import check_lr

HG_MODES = ("hvp", "fd")


class CDATState(NamedTuple):
    count: jax.Array  # steps taken before this one
    h: jax.Array  # rate of the last step
    slope: jax.Array  # g.u at the last step (its moving average when ema > 0)
    curvature: jax.Array  # u.H u at the last step (its moving average when ema > 0)
    base_state: Any  # state of the base optimizer (empty without one)


def cdat_rate(slope, curvature, sigma: float, max_lr: float):
    """h = min(sigma slope / curvature, max_lr); max_lr where curvature <= 0, 0 where slope <= 0 < curvature."""
    positive = curvature > 0
    h = sigma * slope / jnp.where(positive, curvature, 1.0)
    return jnp.where(positive, jnp.clip(h, 0.0, max_lr), max_lr)


def _check(sigma, max_lr, hg, ema, eps):
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not 0 < sigma < math.inf:
        raise GDFlowsError(f"sigma must be a finite number > 0 (2: on the edge of stability), got {sigma!r}")
    if hg not in HG_MODES:
        raise GDFlowsError(f"hg must be one of {', '.join(map(repr, HG_MODES))}, got {hg!r}")
    if isinstance(ema, bool) or not isinstance(ema, (int, float)) or not 0 <= ema < 1:
        raise GDFlowsError(f"ema must be a number in [0, 1) (0: no averaging), got {ema!r}")
    if eps is not None and not (isinstance(eps, (int, float)) and 0 < eps < math.inf):
        raise GDFlowsError(f"eps must be a finite number > 0 or None (0.01/|u|), got {eps!r}")
    return float(sigma), check_lr(max_lr), float(ema)


def cdat(
    base: optax.GradientTransformation | None = None,
    sigma: float = 2.0,
    max_lr: float = 5.0,
    hg: str = "hvp",
    ema: float = 0.0,
    eps: float | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Step -h u along the base optimizer's direction u with h = min(sigma g.u / u.H u, max_lr).

    ``base``: e.g. ``optax.trace(0.9)`` (heavy ball) or ``optax.scale_by_adam()``;
    None steps along the gradient. See the module docstring for the cases
    without a minimum, ``ema`` and ``hg``. The state records h, g.u and u.H u.
    """
    sigma, max_lr, ema = _check(sigma, max_lr, hg, ema, eps)

    def init_fn(params):
        zero = jnp.zeros((), jnp.result_type(*jax.tree_util.tree_leaves(params)))
        return CDATState(jnp.zeros((), jnp.int32), zero, zero, zero, base.init(params) if base else ())

    def update_fn(updates, state, params=None, value_fn=None, **extra_args):
        del extra_args
        if params is None or value_fn is None:
            raise GDFlowsError(
                "CDAT needs the parameters and the loss: call update(grads, state, params, value_fn=loss_fn) "
                "with loss_fn(params) -> scalar on the same batch as grads"
            )
        grads = updates
        u, base_state = base.update(grads, state.base_state, params) if base else (grads, ())
        hu = tree_hvp(value_fn, params, u) if hg == "hvp" else fd_hvp(value_fn, params, u, grads, eps)
        dtype = state.h.dtype
        slope, curvature = dot(grads, u).real.astype(dtype), dot(u, hu).real.astype(dtype)
        keep = jnp.where(state.count > 0, ema, 0.0).astype(dtype)
        slope = keep * state.slope + (1 - keep) * slope
        curvature = keep * state.curvature + (1 - keep) * curvature
        h = cdat_rate(slope, curvature, sigma, max_lr).astype(dtype)
        new = jax.tree_util.tree_map(lambda x: (-h * x).astype(x.dtype), u)
        return new, CDATState(state.count + 1, h, slope, curvature, base_state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
