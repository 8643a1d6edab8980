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
