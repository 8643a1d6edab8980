r"""DAL, the drift-adjusted learning rate (Rosca et al. 2023, SPEC section 4), for optax.

One GD step -h g leaves the negative gradient flow by (h^2/2) H g to leading
order; DAL picks h so that drift and step have the ratio (h/2)|Hg|/|g| = 1::

    v_t = |H g| / |g|                         (global L2 norms)
    h_t = min(2 / v_t^p, max_lr)              (DAL-p; DAL is p = 1)
    theta_{t+1} = theta_t - h_t g

``v^2 = sum_i lambda_i^2 c_i^2 / sum_i c_i^2`` (c_i = g . u_i), a
gradient-weighted RMS curvature, so h_DAL >= 2 / max_i |lambda_i|.

How ``H g`` is obtained (``hg``), with its cost on top of the caller's gradient:

* ``"hvp"``: exact, forward-over-reverse ``jvp(grad E, theta, g)`` through
  ``value_fn``; about one to two gradients' cost (XLA shares the primal pass
  with the caller's gradient when both sit in one jitted step).
* ``"fd"``: ``(grad E(theta + eps g) - grad E(theta)) / eps`` with
  ``eps = 0.01 / |g|`` (a step of length 0.01, as the reference) unless ``eps`` is
  given; exactly one extra gradient. Error O(eps |g| |D3E|); it takes the
  incoming updates as ``grad E(theta)``, so place DAL-fd before any transform
  that rescales the gradient (e.g. ``chain(dal(hg="fd"), clip_by_global_norm(1))``).
* ``"secant"``: ``v_t = |g_t - g_{t-1}| / |theta_t - theta_{t-1}|``, no extra
  gradient and no ``value_fn``. It assumes (a) the loss is close to quadratic
  between consecutive iterates, so ``g_t - g_{t-1} = H_bar (theta_t - theta_{t-1})``
  with the average Hessian H_bar on that segment, and (b) the curvature along the
  previous step is that along the current update direction (for GD the previous
  step is parallel to g_{t-1}). Under minibatching g_t and g_{t-1} come from
  different batches and their difference carries the gradient noise too. The
  first step (no previous pair) uses ``fixed_lr``.

Beyond the paper (its open question 3): :func:`drift_adjusted` applies the
same rule to the update direction u of any base optimizer, ``h = min(2 /
(|Hu|/|u|)^p, max_lr)`` and ``theta <- theta - h u``; :func:`dal_momentum` and
:func:`dal_adam` use it with heavy-ball momentum and Adam. With
``per_layer=True`` each parameter array (leaf) l gets its own rate
``h_l = min(2 / (|(Hu)_l| / |u_l|)^p, max_lr)``. See docs/dal.md for why.

Reference semantics (deepmind/discretisation_drift ``dal.py``): ``p = 0`` runs
plain SGD at the static rate, so here ``p = 0`` means ``h_t = fixed_lr``
(required); outside the window the static rate applies, so ``window`` also
requires ``fixed_lr``. The reference's window is open at its start
(``start < t < stop``); ours is ``[start, stop)`` in 0-based step counts.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from gdflows.curvature.hvp import hvp
from gdflows.errors import GDFlowsError
from gdflows.validation import check_lr

HG_MODES = ("hvp", "fd", "secant")


class DALState(NamedTuple):
    count: jax.Array  # steps taken before this one
    h: Any  # rate of the last step: scalar, or one per leaf when per_layer
    hg_norm: jax.Array  # |H u| at the last step (estimated for "secant")
    base_state: Any  # state of the base optimizer (empty for plain DAL)
    prev_params: Any  # theta_{t-1}, kept for "secant" only
    prev_grads: Any  # g_{t-1}, kept for "secant" only


def _sq(tree) -> jax.Array:
    return sum(jnp.sum(x * x) for x in jax.tree_util.tree_leaves(tree))


def _safe_ratio(num_sq, den_sq):
    """sqrt(num_sq / den_sq), 0 where den_sq == 0 (a zero direction has no curvature to adjust to)."""
    positive = den_sq > 0
    return jnp.where(positive, jnp.sqrt(num_sq / jnp.where(positive, den_sq, 1.0)), 0.0)


def dal_rate(v, p: float, max_lr: float):
    """h = min(2 / v^p, max_lr); v = 0 gives max_lr (the limit of 2 / v^p for p > 0)."""
    positive = v > 0
    return jnp.where(positive, jnp.minimum(2.0 / jnp.where(positive, v, 1.0) ** p, max_lr), max_lr)


def _tree_hvp(value_fn, params, u):
    theta, unravel = ravel_pytree(params)
    return unravel(hvp(lambda x: value_fn(unravel(x)), theta, ravel_pytree(u)[0]))


def _fd_hvp(value_fn, params, u, grads, eps):
    step = eps if eps is not None else 0.01 / jnp.sqrt(jnp.where(_sq(u) > 0, _sq(u), 1.0))
    shifted = jax.tree_util.tree_map(lambda x, d: x + step * d, params, u)
    g_shift = jax.grad(value_fn)(shifted)
    return jax.tree_util.tree_map(lambda a, b: (a - b) / step, g_shift, grads)


def _check_p(p) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) or p < 0:
        raise GDFlowsError(f"p must be a finite number >= 0 (DAL-p; p=1 is DAL), got {p!r}")
    return float(p)


def _check_window(window):
    if window is None:
        return None
    try:
        start, stop = (int(w) for w in window)
    except (TypeError, ValueError):
        raise GDFlowsError(f"window must be a pair (start, stop) of step counts, got {window!r}") from None
    if not 0 <= start < stop:
        raise GDFlowsError(f"window must satisfy 0 <= start < stop, got {window!r}")
    return start, stop


def _check_args(p, max_lr, hg, window, eps, fixed_lr):
    p = _check_p(p)
    max_lr = check_lr(max_lr)
    if hg not in HG_MODES:
        raise GDFlowsError(f"hg must be one of {', '.join(map(repr, HG_MODES))}, got {hg!r}")
    window = _check_window(window)
    if eps is not None and not (isinstance(eps, (int, float)) and eps > 0 and math.isfinite(eps)):
        raise GDFlowsError(f"eps must be a finite number > 0 or None (0.01/|g|), got {eps!r}")
    needs_fixed = [why for why, cond in (("p=0", p == 0), ("a window", window is not None),
                                         ("hg='secant' (first step)", hg == "secant")) if cond]
    if needs_fixed and fixed_lr is None:
        raise GDFlowsError(f"{' and '.join(needs_fixed)} needs a fixed rate: pass fixed_lr=...")
    fixed_lr = None if fixed_lr is None else check_lr(fixed_lr)
    return p, max_lr, window, fixed_lr


def _curvature_pair(hg, value_fn, params, grads, u, state, eps):
    """(numerator, denominator) trees whose norm ratio estimates |Hu|/|u|."""
    if hg == "secant":
        sub = lambda a, b: jax.tree_util.tree_map(jnp.subtract, a, b)  # noqa: E731
        return sub(grads, state.prev_grads), sub(params, state.prev_params)
    if value_fn is None:
        raise GDFlowsError(
            f"dal(hg={hg!r}) needs the loss: call update(grads, state, params, value_fn=loss_fn) "
            "with loss_fn(params) -> scalar on the same batch as grads"
        )
    if hg == "hvp":
        return _tree_hvp(value_fn, params, u), u
    return _fd_hvp(value_fn, params, u, grads, eps), u


def drift_adjusted(base: optax.GradientTransformation | None = None, p: float = 1.0,
                   max_lr: float = 5.0, hg: str = "hvp", window=None, eps: float | None = None,
                   fixed_lr: float | None = None,
                   per_layer: bool = False) -> optax.GradientTransformationExtraArgs:
    r"""Step -h u along the base optimizer's direction u with the DAL rate.

    u = base.update(g) (u = g without a base), v = |H u| / |u| (per leaf when
    ``per_layer``), h = min(2 / v^p, max_lr), update = -h u. ``fixed_lr`` replaces h
    when p = 0, outside ``window`` = [start, stop), and at the first "secant" step.
    The state records h and |H u| of the last step.
    """
    p, max_lr, window, fixed_lr = _check_args(p, max_lr, hg, window, eps, fixed_lr)
    zeros_like = lambda t: jax.tree_util.tree_map(jnp.zeros_like, t)  # noqa: E731

    def init_fn(params):
        h0 = jax.tree_util.tree_map(lambda _: jnp.zeros(()), params) if per_layer else jnp.zeros(())
        keep = hg == "secant"
        return DALState(jnp.zeros((), jnp.int32), h0, jnp.zeros(()),
                        base.init(params) if base else (), zeros_like(params) if keep else (),
                        zeros_like(params) if keep else ())

    def rate(num, den, fixed):
        if per_layer:
            return jax.tree_util.tree_map(
                lambda a, b: jnp.where(fixed, fixed_lr or 0.0, dal_rate(_safe_ratio(_sq(a), _sq(b)), p, max_lr)),
                num, den)
        return jnp.where(fixed, fixed_lr or 0.0, dal_rate(_safe_ratio(_sq(num), _sq(den)), p, max_lr))

    def update_fn(updates, state, params=None, value_fn: Callable | None = None, **extra_args):
        del extra_args
        if params is None:
            raise GDFlowsError("DAL needs the parameters: call update(grads, state, params, value_fn=...)")
        grads = updates
        u, base_state = base.update(grads, state.base_state, params) if base else (grads, ())
        num, den = _curvature_pair(hg, value_fn, params, grads, u, state, eps)
        fixed = jnp.asarray(p == 0)
        if window is not None:
            fixed = fixed | (state.count < window[0]) | (state.count >= window[1])
        if hg == "secant":
            fixed = fixed | (state.count == 0)
        h = rate(num, den, fixed)
        hu_norm = _safe_ratio(_sq(num), _sq(den)) * jnp.sqrt(_sq(u))
        if per_layer:
            new = jax.tree_util.tree_map(lambda hl, x: (-hl * x).astype(x.dtype), h, u)
        else:
            new = jax.tree_util.tree_map(lambda x: (-h * x).astype(x.dtype), u)
        keep = hg == "secant"
        return new, DALState(state.count + 1, h, hu_norm, base_state,
                             params if keep else (), grads if keep else ())

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def dal(p: float = 1.0, max_lr: float = 5.0, hg: str = "hvp", window=None,
        eps: float | None = None, fixed_lr: float | None = None,
        per_layer: bool = False) -> optax.GradientTransformationExtraArgs:
    r"""DAL-p on the gradient: update = -h_t g, h_t = min(2 / (|H g| / |g|)^p, max_lr).

    Call ``update(grads, state, params, value_fn=loss_fn)`` (``value_fn`` is not
    needed for ``hg="secant"``). See the module docstring for the modes and their cost.
    """
    return drift_adjusted(None, p, max_lr, hg, window, eps, fixed_lr, per_layer)


def dal_momentum(momentum: float = 0.9, nesterov: bool = False, **dal_kwargs):
    r"""DAL along heavy-ball momentum: u_t = g_t + beta u_{t-1}, h_t from |H u_t| / |u_t|."""
    return drift_adjusted(optax.trace(decay=momentum, nesterov=nesterov), **dal_kwargs)


def dal_adam(b1: float = 0.9, b2: float = 0.999, eps_root: float = 1e-8, **dal_kwargs):
    r"""DAL along Adam's direction u_t = m_hat_t / (sqrt(v_hat_t) + eps_root), h_t from |H u_t| / |u_t|."""
    return drift_adjusted(optax.scale_by_adam(b1=b1, b2=b2, eps=eps_root), **dal_kwargs)
