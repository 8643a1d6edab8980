r"""Preconditioned sharpness: the top eigenvalues of :math:`\tilde H = P^{-1/2} H P^{-1/2}` for a diagonal,
positive preconditioner P, the curvature that a preconditioned optimizer's stability depends on
(docs/theory.md, section 11).

With P frozen, the step :math:`\theta \leftarrow \theta - \eta P^{-1} g` is GD on
:math:`\tilde E(\phi) = E(P^{-1/2}\phi)` in :math:`\phi = P^{1/2}\theta`, whose Hessian is
:math:`\tilde H` (the eigenvalues of :math:`P^{-1} H`, symmetrised). So GD's analysis carries over in
phi: the threshold on :math:`\lambda_{\max}(\tilde H)` is the optimizer's
(:func:`gdflows.stability.thresholds.stability_threshold`), and the Principal Flow of preconditioned GD is
the PF of :math:`\tilde E` (:func:`preconditioned_loss`), mapped back by :math:`\theta = P^{-1/2}\phi`.
Lanczos (above DENSE_MAX_D parameters; a dense :math:`\tilde H` below, as everywhere in gdflows) runs
on :math:`v \mapsto d \odot H (d \odot v)`, :math:`d = P^{-1/2}`: one HVP per product, never
:math:`P^{-1}H` formed.

Preconditioners from optax states (hyperparameters as passed to optax, which does not store them):
Adam's :math:`P = \sqrt{\hat\nu} + \epsilon`, :math:`\hat\nu = \nu / (1 - \beta_2^{t})`
(:func:`adam_preconditioner`, ``optax.adam`` / ``scale_by_adam``); RMSProp's
:math:`P = \sqrt{\nu + \epsilon}` (optax's default ``eps_in_sqrt=True``) or :math:`\sqrt{\nu} + \epsilon`
(:func:`rmsprop_preconditioner`).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from gdflows.curvature.eigen import Eigenpairs, check_eigen_args, top_eigenpairs
from gdflows.errors import GDFlowsError
from gdflows.optim.states import states_of
from gdflows.params import flatten_loss, ravel
from gdflows.validation import check_loss_at, check_tol, default_tol

__all__ = ["adam_preconditioner", "rmsprop_preconditioner", "preconditioned_loss", "preconditioned_eigenpairs"]


def _one_state(opt_state, kind, name: str):
    found = states_of(opt_state, kind)
    if len(found) != 1:
        raise GDFlowsError(
            f"expected one {name} state in the optimizer state, found {len(found)}; pass the state of one {name} chain"
        )
    return found[0]


def adam_preconditioner(opt_state, b2: float = 0.999, eps: float = 1e-8):
    """Adam's P = sqrt(nu / (1 - b2^count)) + eps from an optax state holding one ``ScaleByAdamState``
    (``b2``, ``eps``: those passed to ``optax.adam``); a pytree like the parameters."""
    st = _one_state(opt_state, optax.ScaleByAdamState, "scale_by_adam")
    if int(st.count) < 1:
        raise GDFlowsError("the Adam state has taken no step yet (count = 0): nu is not an estimate; take a step first")
    return jax.tree_util.tree_map(lambda n: jnp.sqrt(n / (1 - b2**st.count).astype(n.dtype)) + eps, st.nu)


def rmsprop_preconditioner(opt_state, eps: float = 1e-8, eps_in_sqrt: bool = True):
    """RMSProp's P = sqrt(nu + eps) (``eps_in_sqrt``, optax's default) or sqrt(nu) + eps, from an optax state
    holding one ``ScaleByRmsState`` (``optax.rmsprop`` without bias correction); like the parameters."""
    st = _one_state(opt_state, optax.ScaleByRmsState, "scale_by_rms")
    root = (lambda n: jnp.sqrt(n + eps)) if eps_in_sqrt else (lambda n: jnp.sqrt(n) + eps)
    return jax.tree_util.tree_map(root, st.nu)


def preconditioned_loss(loss: Callable, params, preconditioner) -> tuple[Callable, jax.Array, Callable]:
    r"""``(loss_phi, phi, to_theta)``: :math:`\tilde E(\phi) = E(P^{-1/2}\phi)` on flat vectors, the
    parameters' :math:`\phi = P^{1/2}\theta`, and :math:`\phi \mapsto \theta` (flat). GD on ``loss_phi``
    at rate eta is preconditioned GD on E, so every flow of ``loss_phi`` models it."""
    flat_loss, theta, _ = flatten_loss(loss, params)
    p, _ = ravel(preconditioner)
    if p.shape != theta.shape:
        raise GDFlowsError(
            f"the preconditioner has {p.size} entries and the parameters {theta.size}; pass one like params"
        )
    if not bool(jnp.all(p > 0)):
        raise GDFlowsError("the preconditioner must be positive everywhere (a diagonal SPD P); add eps")
    d = (1 / jnp.sqrt(p)).astype(theta.dtype)
    return PreconditionedLoss(flat_loss, d), theta / d, lambda phi: d * phi


class PreconditionedLoss(eqx.Module):
    r""":math:`\tilde E(\phi) = E(d \odot \phi)`, :math:`d = P^{-1/2}`. A module, not a closure, so that d is
    traced: compiled solves on it are reused from one preconditioner to the next (a closure over d would be
    a new function, and a fresh compilation, at every call)."""

    loss: Callable
    d: jax.Array

    def __call__(self, phi):
        return self.loss(self.d * phi)


def preconditioned_eigenpairs(
    loss: Callable,
    params,
    preconditioner,
    k: int = 1,
    tol: float | None = None,
    max_size: int | None = None,
    key=None,
    method: str = "auto",
) -> Eigenpairs:
    """The k largest eigenpairs of P^{-1/2} H P^{-1/2} at ``params`` (see the module); the vectors are flat,
    in phi coordinates. ``preconditioner``: P's diagonal, like ``params`` (e.g. :func:`adam_preconditioner`);
    ``tol``: relative Ritz residual (default: the dtype's); ``method``: "dense", "lanczos", or "auto" (dense
    up to D = DENSE_MAX_D, as :func:`gdflows.curvature.hessian_eigenpairs`)."""
    loss_phi, phi, _ = preconditioned_loss(loss, params, preconditioner)
    check_loss_at(loss_phi, phi)
    max_size = check_eigen_args(phi.shape[0], k, method, max_size)
    tol = default_tol(phi.dtype) if tol is None else check_tol(tol, phi.dtype)
    key = jax.random.PRNGKey(0) if key is None else key
    return _eigs(loss_phi, phi, k, float(tol), max_size, key, method)


@eqx.filter_jit
def _eigs(loss_phi, phi, k, tol, max_size, key, method):
    return top_eigenpairs(loss_phi, phi, k, tol=tol, max_size=max_size, method=method, key=key)
