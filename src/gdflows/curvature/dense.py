r"""Dense eigendecomposition of a (small) Hessian, real or complex-symmetric.

At a real state H is real symmetric: ``eigh``, orthonormal U, c = U^T g.
At a complex state of a holomorphic loss H is complex-symmetric (H^T = H,
not Hermitian); it is diagonalised by ``eig`` and the coordinates of g in the
eigenbasis are c = U^{-1} g (a solve, which stays right even where an
eigenvector is nearly self-orthogonal under the bilinear form, u^T u ~ 0).
"""

import jax
import jax.numpy as jnp


def _real_branch(H, g):
    lam, U = jnp.linalg.eigh(jnp.real(H))
    return lam.astype(H.dtype), U.astype(H.dtype), U.T.astype(H.dtype) @ g


def _complex_branch(H, g):
    lam, U = jnp.linalg.eig(H)
    return lam, U, jnp.linalg.solve(U, g)


def spectral_coordinates(H, g):
    """(lambda, U, c) with H = U diag(lambda) U^{-1} and c = U^{-1} g.

    Real input: eigh. Complex input: eigh when H has no imaginary part (the
    exact real case, e.g. a quadratic at a complex state), else eig.
    """
    if not jnp.iscomplexobj(H):
        lam, U = jnp.linalg.eigh(H)
        return lam, U, U.T @ g
    g = g.astype(H.dtype)
    return jax.lax.cond(jnp.all(jnp.imag(H) == 0), _real_branch, _complex_branch, H, g)
