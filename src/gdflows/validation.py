"""Checks on user input, shared by every entry point."""

import math

import jax.numpy as jnp

from gdflows.errors import GDFlowsError, NonFiniteLossError


def check_lr(lr) -> float:
    """Return ``lr`` as a float; raise unless it is a finite number > 0."""
    try:
        value = float(lr)
    except (TypeError, ValueError):
        raise GDFlowsError(f"learning rate must be a number, got {lr!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise GDFlowsError(f"learning rate must be finite and > 0, got {lr!r}; pass e.g. lr=0.1")
    return value


def is_integer_in(value, low, high=None) -> bool:
    """True for a whole number (not a bool) with low <= value (<= high when given)."""
    if isinstance(value, bool) or int(value) != value or value < low:
        return False
    return high is None or value <= high


def check_steps(steps) -> int:
    """Return ``steps`` as an int; raise unless it is an integer >= 0."""
    if not is_integer_in(steps, 0):
        raise GDFlowsError(f"steps must be an integer >= 0, got {steps!r}")
    return int(steps)


def check_flat(theta, name: str = "theta0"):
    """Return ``theta`` as a 1-D array; raise for any other rank."""
    theta = jnp.asarray(theta)
    if theta.ndim != 1:
        raise GDFlowsError(
            f"{name} must be a flat vector of shape (D,), got shape {theta.shape}; "
            "pass a pytree to gd()/integrate() or flatten it with gdflows.flatten_loss"
        )
    if not (jnp.issubdtype(theta.dtype, jnp.floating) or jnp.issubdtype(theta.dtype, jnp.complexfloating)):
        raise GDFlowsError(f"{name} must hold floats, got dtype {theta.dtype}")
    return theta


def check_loss_at(loss, theta, name: str = "theta0"):
    """Evaluate ``loss(theta)``; raise if it is not a finite scalar."""
    try:
        value = loss(theta)
    except TypeError as err:
        raise GDFlowsError(
            f"loss could not be evaluated at {name} of shape {jnp.shape(theta)}: {err}; "
            "check that the loss takes the parameter vector/pytree you passed"
        ) from err
    value = jnp.asarray(value)
    if value.shape != ():
        raise GDFlowsError(f"loss must return a scalar, got shape {value.shape}; reduce it (e.g. jnp.mean)")
    if not bool(jnp.all(jnp.isfinite(value))):
        raise NonFiniteLossError(
            f"loss at {name} is {value}, not finite; start from a point where the loss "
            "is finite (check the initial parameters and the data for NaN/inf)"
        )
    return value


def default_tol(dtype) -> float:
    """The eigenpair / PF-field tolerance a dtype resolves: max(1e-8, 100 eps).

    1e-8 in float64, 1.2e-5 in float32 (eps: machine epsilon of the real dtype).
    """
    return max(1e-8, 100 * float(jnp.finfo(jnp.dtype(dtype)).eps))


def check_tol(tol, dtype, flag: str = "tol") -> float:
    """Return ``tol`` as a float; raise unless 10 eps <= tol < 1 for ``dtype`` (check before any work).

    ``flag``: how the message names the value (e.g. ``--tol`` for a command-line flag).
    """
    eps = float(jnp.finfo(jnp.dtype(dtype)).eps)
    name = jnp.dtype(dtype).name
    try:
        value = float(tol)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(tol, bool) or not 0 < value < 1:
        raise GDFlowsError(f"{flag} must be > 0 and < 1, got {tol!r}; e.g. {flag} {default_tol(dtype):.1e} for {name}")
    if value < 10 * eps:
        raise GDFlowsError(
            f"{flag} {value:g} is below 10 * machine epsilon of {name} ({10 * eps:.1e}); pass a larger {flag} "
            f"(default for {name}: {default_tol(dtype):.1e}) or float64 parameters"
        )
    return value
