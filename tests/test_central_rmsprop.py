"""RMSProp's central flow: below the edge it is RMSProp's stable flow, its basis is P^-1/2 H P^-1/2's top
eigenspace, and on a small net at the edge it tracks time-averaged RMSProp where the stable flow does not."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gdflows.central_solver import solve_central
from gdflows.errors import GDFlowsError
from gdflows.experiments import central as exp
from gdflows.experiments.network_setup import NetworkSetup
from gdflows.flows import central, central_rmsprop
from gdflows.flows.central_rmsprop import rmsprop_iterates, stable_flow
from gdflows.status import Status


def bowl(theta):
    """A non-quadratic toy: E = y x^2 / 2 - y / 20 + z^2 / 10 + x^4 / 12."""
    x, y, z = theta
    return 0.5 * y * x**2 - 0.05 * y + 0.1 * z**2 + x**4 / 12


def test_below_the_edge_it_is_rmsprops_stable_flow_and_its_basis_is_the_preconditioned_top_eigenspace():
    lr, decay, eps = 0.1, 0.9, 1e-8
    flow = central_rmsprop(bowl, lr, decay=decay, eps=eps, k=2)
    theta = jnp.array([0.5, 1.0, 0.3])
    nu = jnp.array([0.2, 0.01, 0.05])
    state, _, converged = flow.refresh(flow.start(theta, nu=nu))
    w_rate, nu_rate, info, _ = flow.rates(state)
    g = jax.grad(bowl)(theta)
    P = jnp.sqrt(nu + eps)
    np.testing.assert_array_equal(info.S, 0)
    np.testing.assert_allclose(w_rate, -g / P, rtol=1e-12)
    np.testing.assert_allclose(nu_rate, (1 - decay) / (decay * lr) * (g**2 - nu), rtol=1e-12)
    d = 1 / jnp.sqrt(P)
    dense = jnp.linalg.eigvalsh(d[:, None] * jax.hessian(bowl)(theta) * d[None, :])[::-1]
    assert bool(converged)
    np.testing.assert_allclose(info.eigenvalues, dense[:2], rtol=1e-10)
    np.testing.assert_allclose((state.vectors * P) @ state.vectors.T, np.eye(2), atol=1e-12)  # U^T P U = I


def test_on_a_small_net_it_tracks_time_averaged_rmsprop_where_the_stable_flow_does_not():
    """A tanh MLP with D = 46 on 64 MNIST images (4x4 pooled), RMSProp at lr 0.01, decay 0.9, from
    nu0 = g(theta0)^2: its loss first rises at step ~60 with the preconditioned sharpness at 2/lr. The
    central flow's prediction stays within 1% of RMSProp's loss averaged over 41 steps from there on (0.66%
    at most when written), the stable flow's does not (5.4%), and the central flow holds the preconditioned
    sharpness at 2/lr."""
    prob = NetworkSetup(n_train=64, classes=(0, 1, 2, 3), downsample=7, depth=1, width=2).build()
    lr, decay, steps, window = 0.01, 0.9, 300, 41
    nu0 = jax.grad(prob.loss)(prob.theta0) ** 2
    losses = np.asarray(jax.vmap(prob.loss)(rmsprop_iterates(prob.loss, prob.theta0, nu0, lr, steps, decay)[0]))
    onset = exp.eos_onset(losses)
    assert 30 < onset < 100
    average = exp.centred_average(losses, window)
    sol = solve_central(central_rmsprop(prob.loss, lr, decay=decay, k=3), prob.theta0, steps, chunk=steps + 1, nu0=nu0)
    assert sol.status is Status.OK
    tracked = exp.loss_tracking(average, sol.prediction, onset)
    assert tracked["fraction"] == 1.0 and tracked["largest"] < 0.01
    stable_losses = jax.vmap(prob.loss)(stable_flow(prob.loss, prob.theta0, nu0, lr, steps, decay)[0])
    stable = exp.loss_tracking(average, np.asarray(stable_losses), onset)
    assert stable["largest"] > 0.04
    assert np.max(np.abs(sol.eigenvalues[onset:, 0] * lr / 2 - 1)) < 2e-3


def test_bad_arguments_are_refused_before_any_work():
    with pytest.raises(GDFlowsError, match="decay"):
        central_rmsprop(bowl, 0.1, decay=1.0)
    with pytest.raises(GDFlowsError, match="eps"):
        central_rmsprop(bowl, 0.1, eps=-1.0)
    with pytest.raises(GDFlowsError, match="nu0 is RMSProp's EMA"):
        solve_central(central(bowl, 0.1, k=2), jnp.ones(3), 2, nu0=jnp.ones(3))
    with pytest.raises(GDFlowsError, match="nu0 must be like theta0"):
        solve_central(central_rmsprop(bowl, 0.1, k=2), jnp.ones(3), 2, nu0=jnp.ones(2))
    with pytest.raises(GDFlowsError, match="solve_central"):
        central_rmsprop(bowl, 0.1, k=2).evaluate(jnp.ones(3))


def test_rmsprop_iterates_are_optax_rmsprop_started_from_nu0():
    lr, decay, eps, steps = 0.05, 0.9, 1e-8, 6
    theta = jnp.array([0.5, 1.0, 0.3])
    nu0 = jnp.array([0.2, 0.01, 0.05])
    thetas, nus = rmsprop_iterates(bowl, theta, nu0, lr, steps, decay, eps)
    opt = optax.rmsprop(lr, decay=decay, eps=eps)
    state = (opt.init(theta)[0]._replace(nu=nu0),) + tuple(opt.init(theta)[1:])
    for n in range(steps):
        update, state = opt.update(jax.grad(bowl)(theta), state, theta)
        theta = optax.apply_updates(theta, update)
        np.testing.assert_allclose(thetas[n + 1], theta, rtol=1e-12)
        np.testing.assert_allclose(nus[n + 1], state[0].nu, rtol=1e-12)
