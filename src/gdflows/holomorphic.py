"""Is the loss holomorphic? The Principal Flow needs it once its state is complex.

For h*lambda > 1 the PF state is complex, so the loss is evaluated at complex
parameters and differentiated there (``jax.grad(..., holomorphic=True)``).
That is the analytic continuation of E only if every operation on the
parameter path is holomorphic. Piecewise operations (ReLU's ``max``,
``abs``, comparisons, ``real``/``imag``/``conj``) are not: JAX still returns
numbers, but they belong to no continuation of E, so the PF would silently be
wrong. :func:`check_holomorphic` reads the traced loss (its jaxpr) and names
any such operation that the output depends on.

Exempt: anything that only feeds a ``stop_gradient`` (e.g. logsumexp's
max-shift), dead code, JAX's own custom-derivative functions whose
derivative rule is holomorphic (logaddexp, logsumexp, softplus), which use a
``max`` internally only for numerical stability, and
:func:`gdflows.models.real_data.real_times_complex`, whose ``real``/``imag``
split of the weights is exact and complex-linear.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.extend import core as jcore

from gdflows.errors import NotHolomorphicError

NON_HOLOMORPHIC = frozenset(
    {
        "abs",
        "sign",
        "real",
        "imag",
        "conj",
        "max",
        "min",
        "gt",
        "ge",
        "lt",
        "le",
        "floor",
        "ceil",
        "round",
        "reduce_max",
        "reduce_min",
        "argmax",
        "argmin",
        "sort",
        "clamp",
        "cummax",
        "cummin",
    }
)
HOLOMORPHIC_CUSTOM = frozenset({"logaddexp", "logsumexp", "softplus", "real_times_complex"})


def _is_complex(var) -> bool:
    aval = getattr(var, "aval", None)
    return aval is not None and jnp.issubdtype(getattr(aval, "dtype", jnp.float32), jnp.complexfloating)


def _sub_jaxprs(eqn):
    for value in eqn.params.values():
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(item, jcore.ClosedJaxpr):
                yield item.jaxpr
            elif isinstance(item, jcore.Jaxpr):
                yield item


def _offenders(jaxpr, where: str) -> list[str]:
    """Non-holomorphic primitives on complex operands that the outputs depend on."""
    live = {v for v in jaxpr.outvars if isinstance(v, jcore.Var)}
    found: list[str] = []
    for eqn in reversed(jaxpr.eqns):
        if not any(v in live for v in eqn.outvars):
            continue
        name = eqn.primitive.name
        if name == "stop_gradient":
            continue
        label = eqn.params.get("name", name) if name in ("custom_jvp_call", "jit", "pjit") else name
        if label in HOLOMORPHIC_CUSTOM:
            live.update(v for v in eqn.invars if isinstance(v, jcore.Var))
            continue
        if name in NON_HOLOMORPHIC and any(_is_complex(v) for v in eqn.invars):
            found.append(f"{where}{name}")
        for sub in _sub_jaxprs(eqn):
            found += _offenders(sub, f"{where}{label} > ")
        live.update(v for v in eqn.invars if isinstance(v, jcore.Var))
    return found


def check_holomorphic(loss: Callable, theta) -> None:
    """Raise :class:`NotHolomorphicError` unless ``loss`` is holomorphic in theta.

    Traces ``loss`` at a complex vector shaped like ``theta`` (no evaluation).
    """
    dtype = jnp.result_type(jnp.asarray(theta).dtype, jnp.complex64)
    spec = jax.ShapeDtypeStruct(jnp.shape(theta), dtype)
    fix = (
        "The Principal Flow's state is complex when h*lambda > 1, so the loss must be "
        "holomorphic: use smooth activations (tanh, softplus, gelu with approximate=True) "
        "and no abs/max/comparisons on the parameter path, or model GD with a flow that "
        "stays real (ngf, igr, third_order). A smaller learning rate does not help: the "
        "loss is checked at complex parameters whatever the learning rate."
    )
    try:
        closed = jax.make_jaxpr(loss)(spec)
    except TypeError as err:
        raise NotHolomorphicError(f"the loss cannot be evaluated at complex parameters ({err}). {fix}") from err
    out = closed.jaxpr.outvars
    if len(out) != 1 or not _is_complex(out[0]):
        raise NotHolomorphicError(
            "the loss returns a real value at complex parameters (it uses abs, real, "
            f"or a similar operation), so it has no complex continuation. {fix}"
        )
    bad = _offenders(closed.jaxpr, "")
    if bad:
        listed = ", ".join(dict.fromkeys(bad))
        raise NotHolomorphicError(f"the loss is not holomorphic: it applies {listed} to complex values. {fix}")
