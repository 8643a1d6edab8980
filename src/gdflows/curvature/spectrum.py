r"""The Hessian's spectrum as a whole: its density, trace and diagonal, from Hessian-vector products only
(docs/theory.md, section 12).

**Density** by stochastic Lanczos quadrature (SLQ; Ghorbani et al. 2019). For a probe v with |v| = 1,
``order`` = m Lanczos steps on H from v give the tridiagonal :math:`T_m = Q\,\mathrm{diag}(\theta)\,Q^T`;
its nodes :math:`\theta_j` and weights :math:`w_j = Q_{0j}^2` are the Gauss quadrature of the spectral
measure of v, exact for polynomials of degree :math:`\le 2m - 1`:

.. math:: v^T H^k v = \sum_j w_j \theta_j^k \quad (k \le 2m - 1).

For v uniform on the sphere, :math:`E[v^T f(H) v] = \frac{1}{D}\sum_i f(\lambda_i)`, so over P probes

.. math:: \phi_\sigma(x) = \frac{1}{P} \sum_{p} \sum_j w_{pj}\, \mathcal{N}(x;\, \theta_{pj}, \sigma^2)

estimates the eigenvalue density smoothed by a Gaussian of width sigma (it integrates to 1; times D it
counts eigenvalues), with the probes' standard error at each x as its spread. The moments
:math:`\frac{1}{D}\mathrm{tr}(H^k)` come the same way (:meth:`SpectralDensity.moment`).

**Trace** by XTrace (Epperly, Tropp & Webber 2024): s probes, the range of H on them captured exactly
and the rest estimated leave-one-out, with the spread of the s leave-one-out estimates as its standard
error; it is exact when H has rank below s/2 and beats Hutchinson's :math:`v^T H v` (also offered,
``method="hutchinson"``) whenever H has a few large eigenvalues, as a network's does.
**Diagonal** by Hutchinson's :math:`E[v \odot H v]` over Rademacher probes.

All three apply :func:`~gdflows.curvature.operator.hessian_operator` (linearised once when it fits) to
probes drawn from ``key``, and take pytrees (the loss then takes that pytree; the diagonal comes back
like it). XTrace and the estimators are matfree's; SLQ's Lanczos is gdflows' own (full reorthogonalisation,
the full pass on the filled rows only), which ran 100 steps at D = 118,282 in 0.9 s against 1.9 s for
matfree's ``tridiag_sym`` with full reorthogonalisation (``benchmarks/pyhessian_spectrum.py``'s net).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from matfree import stochtrace

from gdflows.curvature import lanczos
from gdflows.curvature.operator import hessian_operator
from gdflows.errors import GDFlowsError
from gdflows.params import flatten_loss, is_flat
from gdflows.validation import check_loss_at, is_integer_in

__all__ = ["SpectralDensity", "TraceEstimate", "spectral_density", "hessian_trace", "hessian_diagonal"]

TRACE_METHODS = ("xtrace", "hutchinson")


@dataclasses.dataclass(frozen=True)
class SpectralDensity:
    """SLQ nodes and weights, one row per probe (P, m); ``dim`` = D."""

    nodes: np.ndarray
    weights: np.ndarray
    dim: int

    def moment(self, k: int) -> tuple[float, float]:
        """(estimate, standard error) of (1/D) tr(H^k) over the probes (exact per probe for k <= 2m - 1)."""
        per_probe = np.sum(self.weights * self.nodes**k, axis=1)
        return float(per_probe.mean()), _sem(per_probe)

    def trace(self) -> tuple[float, float]:
        """(estimate, standard error) of tr H = D times the first moment."""
        mean, sem = self.moment(1)
        return self.dim * mean, self.dim * sem

    def density(self, x, sigma: float) -> tuple[np.ndarray, np.ndarray]:
        """(phi_sigma(x), its standard error over the probes) at the points ``x`` (see the module)."""
        if not sigma > 0:
            raise GDFlowsError(f"sigma must be > 0, got {sigma!r}; e.g. 1% of the spectrum's width")
        x = np.asarray(x, float)
        z = (x[None, None, :] - self.nodes[:, :, None]) / sigma
        per_probe = np.sum(self.weights[:, :, None] * np.exp(-0.5 * z**2), axis=1) / (sigma * math.sqrt(2 * math.pi))
        return per_probe.mean(axis=0), _sem(per_probe, axis=0)

    def grid(self, points: int = 400, pad: float = 0.05) -> np.ndarray:
        """``points`` equispaced x over the nodes' range, widened by ``pad`` of it on both sides."""
        lo, hi = float(self.nodes.min()), float(self.nodes.max())
        width = max(hi - lo, abs(hi), 1e-30)
        return np.linspace(lo - pad * width, hi + pad * width, points)


@dataclasses.dataclass(frozen=True)
class TraceEstimate:
    """A trace estimate, its standard error, the probes (HVPs) it used and how (``method``)."""

    value: float
    sem: float
    probes: int
    method: str


def _sem(values, axis=None):
    values = np.asarray(values)
    n = values.shape[0 if axis is None else axis]
    return np.std(values, axis=axis, ddof=1) / math.sqrt(n) if n > 1 else np.full(np.shape(values.mean(axis)), np.nan)


def _flat_operator(loss: Callable, theta) -> tuple[Callable, jax.Array, Callable]:
    """(jit-able flat loss, flat theta, unravel), the loss checked finite at theta."""
    flat_loss, flat, unravel = flatten_loss(loss, theta)
    check_loss_at(flat_loss, flat)
    if jnp.iscomplexobj(flat):
        raise GDFlowsError("the spectrum is of a real Hessian: pass real parameters")
    return flat_loss, flat, unravel


def _check_count(value, name: str, low: int, high: int | None = None) -> int:
    if not is_integer_in(value, low, high):
        upper = "" if high is None else f" and <= {high}"
        raise GDFlowsError(f"{name} must be an integer >= {low}{upper}, got {value!r}")
    return int(value)


def spectral_density(loss: Callable, theta, probes: int = 10, order: int = 80, key=None) -> SpectralDensity:
    """The Hessian's spectral density at ``theta`` by SLQ: ``probes`` probes, ``order`` Lanczos steps each
    (HVPs: probes x order). ``key``: the probes' PRNG key (default ``jax.random.key(0)``)."""
    flat_loss, flat, _ = _flat_operator(loss, theta)
    dim = flat.shape[0]
    probes = _check_count(probes, "probes", 1)
    order = _check_count(order, "order", 1, dim)
    key = jax.random.key(0) if key is None else key
    nodes, weights = _slq(flat_loss, flat, jax.random.normal(key, (probes, dim), flat.dtype), order)
    return SpectralDensity(np.asarray(nodes), np.asarray(weights), dim)


@eqx.filter_jit
def _slq(loss, theta, probes, order):
    matvec = hessian_operator(loss, theta).matvec

    def one(v):
        def never(size, ritz, aux):  # the quadrature wants all `order` steps
            return jnp.asarray(False), aux

        start = (v / jnp.linalg.norm(v))[None]
        _, _, ritz, _ = lanczos.run(matvec, start, order, never, None, jax.random.key(0), lambda r, a: r.vectors[:, :1])
        return ritz.values[:order], ritz.vectors[0, :order] ** 2  # T's eigenvectors' first components

    return jax.lax.map(one, probes)


def hessian_trace(loss: Callable, theta, probes: int = 20, method: str = "xtrace", key=None) -> TraceEstimate:
    """tr H at ``theta`` from ``probes`` HVPs (XTrace: 2 x probes; see the module), with its standard error."""
    if method not in TRACE_METHODS:
        raise GDFlowsError(f"method must be one of {', '.join(TRACE_METHODS)}, got {method!r}")
    flat_loss, flat, _ = _flat_operator(loss, theta)
    probes = _check_count(probes, "probes", min(2, flat.shape[0]), flat.shape[0])  # D = 1: one probe is exact
    key = jax.random.key(0) if key is None else key
    value, sem = _trace(flat_loss, flat, key, probes, method)
    hvps = 2 * probes if method == "xtrace" else probes
    return TraceEstimate(float(value), float(sem), hvps, method)


@eqx.filter_jit
def _trace(loss, theta, key, probes, method):
    matvec = hessian_operator(loss, theta).matvec
    if method == "xtrace":
        sampler = stochtrace.sampler_sphere(theta, num=probes)
        return stochtrace.estimator_leave_one_out_mean_and_sem(stochtrace.leave_one_out_xtrace(), sampler)(matvec, key)
    sampler = stochtrace.sampler_signs(theta, num=probes)
    return stochtrace.estimator_monte_carlo_mean_and_sem(stochtrace.monte_carlo_trace(), sampler)(matvec, key)


def hessian_diagonal(loss: Callable, theta, probes: int = 100, key=None):
    """(diag H, its standard error) at ``theta``, Hutchinson over ``probes`` Rademacher probes; like theta."""
    flat_loss, flat, unravel = _flat_operator(loss, theta)
    probes = _check_count(probes, "probes", 2)
    key = jax.random.key(0) if key is None else key
    mean, sem = _diagonal(flat_loss, flat, key, probes)
    return (mean, sem) if is_flat(theta) else (unravel(mean), unravel(sem))


@eqx.filter_jit
def _diagonal(loss, theta, key, probes):
    matvec = hessian_operator(loss, theta).matvec
    sampler = stochtrace.sampler_signs(theta, num=probes)
    return stochtrace.estimator_monte_carlo_mean_and_sem(stochtrace.monte_carlo_diagonal(), sampler)(matvec, key)
