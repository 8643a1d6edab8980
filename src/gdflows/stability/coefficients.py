r"""Stability coefficients of the Principal Flow and the regimes they define.

.. math::

    sc(\lambda) = \frac{\log(1 - h\lambda)}{h\lambda}

The PF moves along eigenvector u_i at rate sc_i * c_i (c_i = g . u_i), so
``sc_i * lambda_i`` is the continuous-time rate whose exponential over time h
is GD's factor ``1 - h lambda_i``.

Branch. For ``h lambda > 1`` the log's argument is negative: GD's real
iterates correspond to ``log(1 - h lambda) = ln(h lambda - 1) + i pi``. At a
complex state of a non-quadratic loss, ``lambda`` carries a tiny imaginary part
and the principal log's cut (the negative real axis) would flip +i pi to
-i pi from one evaluation to the next. We therefore use the branch with
argument in (-pi/2, 3 pi/2]:

.. math:: \log_\star(z) = \mathrm{Log}(-i z) + i\pi/2,

which equals the principal log for Re z > 0, gives +i pi on the negative real
axis, and is continuous in a neighbourhood of the whole real axis except at 0.
Its cut lies on the negative imaginary axis, i.e. only at ``h lambda`` near 1
with ``Im(lambda) > 0``, where |sc| is huge anyway.

Limits, computed exactly rather than clamped:

* ``lambda = 0``: sc = -1 (the NGF). Near 0 the quotient loses digits, so for
  ``|x| < 1e-3`` (x = h lambda) the series
  ``-(1 + x/2 + x^2/3 + x^3/4 + ... + x^7/8)`` is used; its truncation error
  is below 1e-24.
* ``h lambda = 1`` (1 - h lambda rounds to 0): sc = -inf, the true limit.
  GD removes that component in one step; the PF removes it instantly
  (see :mod:`gdflows.flows.principal`).

The theory: docs/theory.md, section 4.
"""

import jax
import jax.numpy as jnp
import numpy as np

from gdflows.validation import check_lr

_SERIES_RADIUS = 1e-3
_SERIES_TERMS = 8

REGIMES = (
    "saddle escape",  # h lambda < 0
    "as NGF",  # h lambda == 0
    "monotone convergence",  # 0 < h lambda < 1
    "one-step removal",  # h lambda == 1
    "oscillating convergence",  # 1 < h lambda < 2
    "2-cycle",  # h lambda == 2
    "oscillating divergence",  # h lambda > 2
)


def log_star(z):
    """log with argument in (-pi/2, 3pi/2]: +i*pi on the negative real axis."""
    z = jnp.asarray(z)
    z = z.astype(jnp.result_type(z, jnp.complex64))
    return jnp.log(-1j * z) + 0.5j * jnp.pi


def sc_of_x(x):
    """sc as a function of x = h*lambda (jit-safe; no input validation)."""
    x = jnp.asarray(x)
    x = x.astype(jnp.result_type(x, jnp.complex64))
    small = jnp.abs(x) < _SERIES_RADIUS
    removal = x == 1
    safe_x = jnp.where(small | removal, 0.5, x)
    # log1p keeps the digits of log(1 - x) where 1 - x is near 1; it is the same branch there.
    log_1mx = jnp.where(jnp.real(safe_x) < 0.5, jnp.log1p(-safe_x), log_star(1 - safe_x))
    direct = log_1mx / safe_x
    series = -sum(x**k / (k + 1) for k in range(_SERIES_TERMS))
    out = jnp.where(small, series, direct)
    return jnp.where(removal, jnp.asarray(-jnp.inf, out.dtype), out)


def stability_coefficients(eigvals, lr):
    r"""sc_i = log*(1 - h lambda_i) / (h lambda_i), a complex array.

    ``eigvals`` may be real or complex (complex-symmetric Hessians at complex
    states); the result has the matching complex dtype. ``lr`` may be a traced
    value inside jit; a concrete one is validated (> 0, finite).
    """
    h = lr if isinstance(lr, jax.core.Tracer) else check_lr(lr)
    return sc_of_x(h * jnp.asarray(eigvals))


def pf_components(sc, c):
    """sc_i * c_i, with the one-step-removal directions (sc = -inf) set to 0.

    The PF field in the eigenbasis is sum_i sc_i c_i u_i; a direction with
    h lambda_i = 1 is removed at t = 0+ and contributes nothing afterwards.
    """
    removed = jnp.isneginf(jnp.real(sc))
    return jnp.where(removed, 0, sc) * c


def regime(eigvals, lr) -> np.ndarray:
    """Name the GD regime along each eigendirection (docs/theory.md, section 4).

    Equality cases (h lambda = 0, 1, 2) are decided exactly in floating point;
    complex eigenvalues are classified by their real part.
    """
    return regime_of(eigvals, check_lr(lr))


def regime_of(eigvals, h: float) -> np.ndarray:
    """:func:`regime` without input validation (for callers that checked ``h`` at their boundary)."""
    x = h * np.real(np.asarray(eigvals, dtype=np.complex128))
    idx = np.select([x < 0, x == 0, x < 1, x == 1, x < 2, x == 2], [0, 1, 2, 3, 4, 5], default=6)
    return np.asarray(REGIMES, dtype=object)[idx]
