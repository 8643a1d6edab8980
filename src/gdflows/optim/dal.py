r"""DAL, the drift-adjusted learning rate (Rosca et al. 2023), for optax.

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
  that rescales the gradient (e.g. ``chain(dal(hg="fd"), clip_by_global_norm(1))``);
  this order cannot be checked (see :func:`dal`).
* ``"secant"``: ``v_t = |g_t - g_{t-1}| / |theta_t - theta_{t-1}|``, no extra
  gradient and no ``value_fn``. It assumes (a) the loss is close to quadratic
  between consecutive iterates, so ``g_t - g_{t-1} = H_bar (theta_t - theta_{t-1})``
  with the average Hessian H_bar on that segment, and (b) the curvature along the
  previous step is that along the current update direction (for GD the previous
  step is parallel to g_{t-1}). Under minibatching g_t and g_{t-1} come from
  different batches and their difference carries the gradient noise too. The
  first step (no previous pair) uses ``fixed_lr``.

The rate of the last step is in the DAL state; :func:`dal_rate` reads it from
the state of any optax chain that contains DAL.

Beyond the paper (its open question 3): :func:`drift_adjusted` applies the
same rule to the update direction u of any base optimizer, ``h = min(2 /
(|P^{-1} H u|/|u|)^p, max_lr)`` and ``theta <- theta - h u`` (P the base's
preconditioner, identity for momentum); :func:`dal_momentum` and :func:`dal_adam`
use it with heavy-ball momentum and Adam. With
``per_layer=True`` each parameter array (leaf) l gets its own rate
``h_l = min(2 / (|(Hu)_l| / |u_l|)^p, max_lr)``. See docs/dal.md for why, and
docs/theory.md, section 8, for the theory.

Reference semantics (deepmind/discretisation_drift ``dal.py``): ``p = 0`` runs
plain SGD at the static rate, so here ``p = 0`` means ``h_t = fixed_lr``
(required); outside the window the static rate applies, so ``window`` also
requires ``fixed_lr``. The reference's window is open at its start
(``start < t < stop``); ours is ``[start, stop)`` in 0-based step counts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdflows.errors import GDFlowsError
from gdflows.optim import HG_MODES
from gdflows.optim.curvature import fd_hvp, sq, tree_hvp
from gdflows.optim.states import states_of
from gdflows.validation import check_lr


class DALState(NamedTuple):
    count: jax.Array  # steps taken before this one
    h: Any  # rate of the last step: scalar, or one per leaf when per_layer
    hg_norm: jax.Array  # |H u| at the last step (estimated for "secant")
    base_state: Any  # state of the base optimizer (empty for plain DAL)
    prev_params: Any  # theta_{t-1}, kept for "secant" only
    prev_grads: Any  # g_{t-1}, kept for "secant" only


def _safe_ratio(num_sq, den_sq):
    """sqrt(num_sq / den_sq), 0 where den_sq == 0 (a zero direction has no curvature to adjust to)."""
    positive = den_sq > 0
    return jnp.where(positive, jnp.sqrt(num_sq / jnp.where(positive, den_sq, 1.0)), 0.0)


def _rate_rule(v, p: float, max_lr: float, scale: float = 1.0):
    """h = min(scale 2 / v^p, max_lr); v = 0 gives max_lr (the limit for p > 0)."""
    positive = v > 0
    return jnp.where(positive, jnp.minimum(scale * 2.0 / jnp.where(positive, v, 1.0) ** p, max_lr), max_lr)


def dal_rate(opt_state):
    """The rate h DAL took at its last step, read from the state of any optax chain that contains DAL.

    ``opt_state``: what ``opt.init`` / ``opt.update`` return for ``opt = dal(...)``,
    ``optax.chain(..., dal(...), ...)``, :func:`dal_momentum`, :func:`dal_adam`, or
    any nesting of those (``optax.inject_hyperparams``, ``optax.named_chain``...).
    A scalar, or a pytree of rates like the params with ``per_layer=True``; 0
    before the first step. Traceable (use it inside a jitted step).
    """
    found = states_of(opt_state, DALState)
    if not found:
        raise GDFlowsError(
            "this optimizer state holds no DAL state; pass the state of an optimizer built with "
            "gdflows.optim.dal / dal_momentum / dal_adam / drift_adjusted"
        )
    if len(found) > 1:
        raise GDFlowsError(
            f"this optimizer state holds {len(found)} DAL states; pass the part you mean, e.g. dal_rate(state[i])"
        )
    return found[0].h


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
    needs_fixed = [
        why
        for why, cond in (
            ("p=0", p == 0),
            ("a window", window is not None),
            ("hg='secant' (first step)", hg == "secant"),
        )
        if cond
    ]
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
        return tree_hvp(value_fn, params, u), u
    return fd_hvp(value_fn, params, u, grads, eps), u


def drift_adjusted(
    base: optax.GradientTransformation | None = None,
    p: float = 1.0,
    max_lr: float = 5.0,
    hg: str = "hvp",
    window=None,
    eps: float | None = None,
    fixed_lr: float | None = None,
    per_layer: bool = False,
    precondition: Callable | None = None,
    rate_scale: float = 1.0,
) -> optax.GradientTransformationExtraArgs:
    r"""Step -h u along the base optimizer's direction u with the DAL rate.

    u = base.update(g) (u = g without a base), v = |P^{-1} H u| / |u| (per leaf
    when ``per_layer``), h = min(c 2 / v^p, max_lr) with c = ``rate_scale``,
    update = -h u. P^{-1} is
    ``precondition(base_state)`` (a tree like the params; identity when None): for
    a preconditioned method u = P^{-1} m, and the step -h P^{-1} g of the flow
    dtheta/dt = -P^{-1} g drifts by (h^2/2) P^{-1} H P^{-1} g, so the ratio of
    drift to step is (h/2) |P^{-1} H u| / |u|. ``fixed_lr`` replaces h when p = 0,
    outside ``window`` = [start, stop), and at the first "secant" step. The state
    records h and |P^{-1} H u| of the last step.
    """
    p, max_lr, window, fixed_lr = _check_args(p, max_lr, hg, window, eps, fixed_lr)
    if not (isinstance(rate_scale, (int, float)) and 0 < rate_scale < math.inf):
        raise GDFlowsError(f"rate_scale must be a finite number > 0, got {rate_scale!r}")
    zeros_like = lambda t: jax.tree_util.tree_map(jnp.zeros_like, t)  # noqa: E731

    def init_fn(params):
        dtype = jnp.result_type(*jax.tree_util.tree_leaves(params))  # scan needs fixed dtypes
        zero = jnp.zeros((), dtype)
        h0 = jax.tree_util.tree_map(lambda _: zero, params) if per_layer else zero
        keep = hg == "secant"
        return DALState(
            jnp.zeros((), jnp.int32),
            h0,
            zero,
            base.init(params) if base else (),
            zeros_like(params) if keep else (),
            zeros_like(params) if keep else (),
        )

    def rate(num, den, fixed):
        def one(a, b):
            dal_h = _rate_rule(_safe_ratio(sq(a), sq(b)), p, max_lr, rate_scale)
            return jnp.where(fixed, fixed_lr or 0.0, dal_h)

        return jax.tree_util.tree_map(one, num, den) if per_layer else one(num, den)

    def update_fn(updates, state, params=None, value_fn: Callable | None = None, **extra_args):
        del extra_args
        if params is None:
            raise GDFlowsError("DAL needs the parameters: call update(grads, state, params, value_fn=...)")
        grads = updates
        u, base_state = base.update(grads, state.base_state, params) if base else (grads, ())
        num, den = _curvature_pair(hg, value_fn, params, grads, u, state, eps)
        if precondition is not None:
            num = jax.tree_util.tree_map(jnp.multiply, precondition(base_state), num)
        fixed = jnp.asarray(p == 0)
        if window is not None:
            fixed = fixed | (state.count < window[0]) | (state.count >= window[1])
        if hg == "secant":
            fixed = fixed | (state.count == 0)
        dtype = state.hg_norm.dtype
        h = jax.tree_util.tree_map(lambda x: x.astype(dtype), rate(num, den, fixed))
        hu_norm = (_safe_ratio(sq(num), sq(den)) * jnp.sqrt(sq(u))).astype(dtype)
        if per_layer:
            new = jax.tree_util.tree_map(lambda hl, x: (-hl * x).astype(x.dtype), h, u)
        else:
            new = jax.tree_util.tree_map(lambda x: (-h * x).astype(x.dtype), u)
        keep = hg == "secant"
        return new, DALState(state.count + 1, h, hu_norm, base_state, params if keep else (), grads if keep else ())

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def dal(p: float = 1.0, max_lr: float = 5.0, hg: str = "hvp", **options) -> optax.GradientTransformationExtraArgs:
    r"""DAL-p on the gradient: update = -h_t g, h_t = min(2 / (|H g| / |g|)^p, max_lr).

    Call ``update(grads, state, params, value_fn=loss_fn)`` (``value_fn`` is not
    needed for ``hg="secant"``); params and grads may be any pytree. Read the rate
    of the last step with :func:`dal_rate`. See the module docstring for the modes
    and their cost. ``options``: :func:`drift_adjusted`'s ``window``, ``eps``,
    ``fixed_lr``, ``per_layer`` and ``rate_scale`` (c in h = min(c 2 / v^p, max_lr)).

    Order in a chain with ``hg="fd"``: the incoming updates must be the raw
    gradient, so put DAL first (``optax.chain(dal(hg="fd"), optax.clip_by_global_norm(1.0))``).
    This cannot be checked (optax hands DAL only the transformed updates): after a
    clip that scales g by s < 1 the estimate becomes ``Hu + (1 - s) g / eps``, and
    the rate collapses silently. ``hg="hvp"`` and ``"secant"`` have no such constraint.
    """
    return drift_adjusted(None, p, max_lr, hg, **options)


def dal_momentum(momentum: float = 0.9, nesterov: bool = False, **dal_kwargs):
    r"""DAL along heavy-ball momentum, with the drift of the momentum flow.

    u_t = g_t + beta u_{t-1}, v_t = |H u_t| / |u_t|,
    h_t = min( ((1 - beta)/(1 + beta)) 2 / v_t^p, max_lr ), update = -h_t u_t.
    Heavy ball at rate h follows dtheta/dt = -(1/(1-beta)) grad(E + h (1+beta) /
    (4 (1-beta)) |g|^2) (Ghosh et al. 2023; Kovachki & Stuart 2021): its drift to
    step ratio is (h (1+beta) / (2 (1-beta))) |Hg|/|g|, and setting it to 1 gives
    the factor (1-beta)/(1+beta) (= 0.053 at beta = 0.9). Without it the rate runs
    past heavy ball's stability limit 2 (1+beta) / lambda.
    """
    return drift_adjusted(
        optax.trace(decay=momentum, nesterov=nesterov), rate_scale=(1 - momentum) / (1 + momentum), **dal_kwargs
    )


def _adam_inverse_preconditioner(b2: float, eps_root: float) -> Callable:
    """P^{-1} = 1 / (sqrt(nu_hat) + eps) from optax's ScaleByAdamState (after its update)."""

    def inverse(state):
        nu_scale = 1 - b2 ** state.count.astype(jnp.result_type(float))
        return jax.tree_util.tree_map(lambda nu: 1 / (jnp.sqrt(nu / nu_scale) + eps_root), state.nu)

    return inverse


def dal_adam(b1: float = 0.9, b2: float = 0.999, eps_root: float = 1e-8, **dal_kwargs):
    r"""DAL along Adam's direction with Adam's preconditioner in the curvature.

    u_t = m_hat_t / (sqrt(nu_hat_t) + eps_root) = P^{-1} m_hat_t,
    v_t = |P^{-1} H u_t| / |u_t|, h_t = min((1/(1+b1)) 2 / v_t^p, max_lr), update = -h_t u_t.
    The factor 1/(1+b1) is :func:`dal_momentum`'s (1-beta)/(1+beta) for an
    exponential average m = b1 m + (1-b1) g, which is heavy ball at rate h (1-b1).
    Without P^{-1} in v the rate ignores that Adam's direction is ~sign(g), of
    norm ~sqrt(D): the step 2|u|^2/|Hu| then runs far beyond the quadratic model.
    """
    return drift_adjusted(
        optax.scale_by_adam(b1=b1, b2=b2, eps=eps_root),
        precondition=_adam_inverse_preconditioner(b2, eps_root),
        rate_scale=1 / (1 + b1),
        **dal_kwargs,
    )
