"""The PF's branch at complex states of a non-quadratic loss (docs/theory.md, section 4.2).

With the principal log, a tanh MLP at h*lambda_max = 1.5 makes the field flip
between +i*pi and -i*pi and the adaptive solve collapses. With the branch kept
continuous, the solve is short and the PF stays near GD.
"""

import jax.numpy as jnp
import numpy as np

import gdflows
from gdflows.curvature import hessian
from gdflows.flows import principal

HIDDEN = 4


def _data_and_start():
    """Fixed inputs and a start, from their own generator (the same numbers whatever ran before)."""
    rng = np.random.default_rng(0)
    return jnp.asarray(rng.standard_normal((16, 3))), rng.standard_normal(5 * HIDDEN + 1)


X, START = _data_and_start()
Y = jnp.sin(X[:, 0] + X[:, 1])


def mlp_loss(theta):
    w1 = theta[: 3 * HIDDEN].reshape(HIDDEN, 3)
    b1 = theta[3 * HIDDEN : 4 * HIDDEN]
    w2 = theta[4 * HIDDEN : 5 * HIDDEN]
    pred = jnp.tanh(X @ w1.T + b1) @ w2 + theta[-1]
    return 0.5 * jnp.mean((pred - Y) ** 2)


def test_tanh_mlp_at_h_lambda_15_solves_quickly_and_tracks_gd():
    theta0 = jnp.asarray(START * 0.8)
    lam_max = float(np.linalg.eigvalsh(np.asarray(hessian(mlp_loss, theta0)))[-1])
    lr = 1.5 / lam_max
    gd = np.asarray(gdflows.gd(mlp_loss, theta0, lr, 3))
    sol = gdflows.integrate(principal(mlp_loss, lr), theta0, lr, 3, rtol=1e-10, atol=1e-12, max_steps=4000)
    assert sol.status == "ok"
    assert sol.num_steps < 400
    assert sol.is_complex
    moved = np.linalg.norm(gd[-1] - gd[0])
    assert np.max(np.linalg.norm(sol.thetas - gd, axis=1)) < 0.1 * moved


def test_krylov_and_dense_pf_solves_agree():
    theta0 = jnp.asarray(np.random.default_rng(3).standard_normal(5 * HIDDEN + 1) * 0.8)
    lam_max = float(np.linalg.eigvalsh(np.asarray(hessian(mlp_loss, theta0)))[-1])
    lr = 1.5 / lam_max
    kw = dict(rtol=1e-9, atol=1e-11, max_steps=4000)
    dense = gdflows.integrate(principal(mlp_loss, lr, method="dense"), theta0, lr, 2, **kw)
    krylov = gdflows.integrate(principal(mlp_loss, lr, method="lanczos", tol=1e-11), theta0, lr, 2, **kw)
    assert dense.status == krylov.status == "ok"
    assert np.max(np.abs(krylov.thetas - dense.thetas)) < 1e-7
