"""The central flow on toys whose answer is known: the sharpness held at 2/h, a double eigenvalue at 2/h,
two directions reaching 2/h at different times, a start above 2/h without a jump."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gdflows
from gdflows.central_solver import solve_central
from gdflows.errors import GDFlowsError
from gdflows.flows import central, ngf
from gdflows.status import Status

H = 1.0


class Sharpening(eqx.Module):
    """E = sum_i y_i x_i^2 / 2 - c_i y_i: at x = 0, lambda_i = y_i rises at rate c_i under gradient flow.

    Holding y_i at 2/h needs sigma_i^2 = 2 c_i (dy_i/dt = c_i - sigma_i^2 / 2 = 0); the predicted loss
    L + sum_i sigma_i^2 lambda_i / 2 is then 0 at x = 0. (A module, so toys of one size share a compile.)
    """

    c: jax.Array

    def __call__(self, theta):
        n = self.c.shape[0]
        x, y = theta[:n], theta[n:]
        return jnp.sum(0.5 * y * x**2 - self.c * y)


def sharpening(c):
    return Sharpening(jnp.asarray(c, jnp.float64))


def double(theta, c=0.05):
    """E = y |x|^2 / 2 - c y, x in R^2: at x = 0 the top eigenvalue y is double (eigenvectors ill-defined)."""
    return 0.5 * theta[2] * (theta[0] ** 2 + theta[1] ** 2) - c * theta[2]


def test_sharpness_is_held_at_2_over_h_where_gradient_flow_sharpens_past_it():
    theta0 = jnp.array([0.5, 1.0])
    sol = solve_central(central(sharpening([0.05]), H, k=2), theta0, 80)
    gf_end = np.asarray(gdflows.gd(sharpening([0.05]), theta0, H / 20, 80 * 20))[-1]  # ~ gradient flow at t = 80 h
    assert sol.status is Status.OK
    y = sol.thetas[:, 1]
    reached = np.nonzero(y >= 0.99 * 2 / H)[0][0]
    assert np.max(np.abs(sol.eigenvalues[reached:, 0] - 2 / H)) <= 1e-3 * 2 / H
    np.testing.assert_allclose(np.diag(sol.S[-1])[0], 2 * 0.05, rtol=1e-3)
    assert abs(sol.prediction[-1]) < 1e-3 and sol.loss[-1] == pytest.approx(-0.05 * 2 / H, rel=1e-3)
    assert gf_end[1] > 1.5 * 2 / H


def test_below_the_edge_the_field_is_minus_the_gradient():
    loss = sharpening([0.05])
    theta = jnp.array([0.5, 1.0])
    field, info = central(loss, H, k=2).evaluate(theta)
    np.testing.assert_array_equal(info.S, 0)
    np.testing.assert_allclose(field, -jax.grad(loss)(theta), rtol=1e-15)
    assert float(info.prediction) == float(info.loss)


def test_two_directions_reach_2_over_h_in_turn_and_are_both_held():
    c = [0.05, 0.02]
    theta0 = jnp.array([0.3, 0.3, 1.2, 1.0])
    sol = solve_central(central(sharpening(c), H, k=4), theta0, 150)
    assert sol.status is Status.OK
    lam = sol.eigenvalues[:, :2]
    assert np.all(lam <= 2 / H * (1 + 1e-6))
    np.testing.assert_allclose(lam[-1], 2 / H, rtol=1e-4)
    first = np.nonzero(lam[:, 0] >= 0.999 * 2 / H)[0][0]
    second = np.nonzero(lam[:, 1] >= 0.999 * 2 / H)[0][0]
    assert second > first + 10
    np.testing.assert_allclose(sorted(np.linalg.eigvalsh(sol.S[-1]))[-2:], sorted(2 * np.array(c)), rtol=1e-3)


def test_a_double_eigenvalue_at_2_over_h_does_not_stall_the_flow():
    """Any S with tr S = 2c holds y: S is not unique there, but the field is."""
    c = 0.05
    sol = solve_central(central(double, H, k=3), jnp.array([0.4, -0.3, 1.0]), 120)
    assert sol.status is Status.OK
    y, x = sol.thetas[:, 2], sol.thetas[:, :2]
    reached = np.nonzero(y >= 0.999 * 2 / H)[0][0]
    np.testing.assert_allclose(y[reached:], 2 / H, rtol=1e-4)
    np.testing.assert_allclose(np.trace(sol.S[-1]), 2 * c, rtol=1e-3)
    assert np.linalg.norm(x[-1]) < 1e-6 and sol.sdcp_iterations.max() < 2000


def test_a_start_above_2_over_h_keeps_its_excess_without_a_jump():
    """GD there has not begun to oscillate; the flow freezes lambda_0 at its start value (no projection)."""
    c, y0 = 0.05, 2.2 / H
    loss = sharpening([c])
    theta0 = jnp.array([1e-3, y0])
    sol = solve_central(central(loss, H, k=2), theta0, 20)
    gd_1 = np.asarray(gdflows.gd(loss, theta0, H, 1))[1]
    lam0 = sol.eigenvalues[0, 0]  # y0 + O(x0^2)
    assert sol.ceiling[0] == lam0
    np.testing.assert_allclose(sol.ceiling, lam0, rtol=1e-9)
    assert np.max(sol.eigenvalues[:, 0]) <= lam0 * (1 + 1e-9)
    assert abs(sol.thetas[1, 1] - gd_1[1]) <= 1.01 * c * H  # GD rises by c h; the flow freezes y
    assert abs(sol.thetas[-1, 1] - y0) < 1e-3


def test_memoryless_field_holds_the_sharpness_and_reports_its_state():
    field, info = central(sharpening([0.05]), H, k=2).evaluate(jnp.array([0.0, 2.0]))
    np.testing.assert_allclose(field, [0.0, 0.0], atol=1e-9)  # sigma^2 = 2c exactly cancels the sharpening
    assert bool(info.converged) and float(info.ceiling) == 2.0
    np.testing.assert_allclose(info.S[0, 0], 0.1, rtol=1e-7)  # sdcp_tol = 1e-8
    assert float(info.prediction) == pytest.approx(0.0, abs=1e-8)


def test_bad_arguments():
    loss = sharpening([0.05])
    with pytest.raises(GDFlowsError, match="k"):
        central(loss, 0.1, k=0)
    with pytest.raises(GDFlowsError, match="substeps"):
        central(loss, 0.1, substeps=0)
    with pytest.raises(GDFlowsError, match="exceeds the dimension"):
        solve_central(central(loss, 0.1, k=3), jnp.array([0.5, 1.0]), 2)
    with pytest.raises(GDFlowsError, match="central"):
        solve_central(ngf(loss), jnp.array([0.5, 1.0]), 2)


def test_a_pytree_start_gives_the_flat_solution_in_its_structure():
    flat = solve_central(central(sharpening([0.05]), H, k=2), jnp.array([0.5, 1.0]), 30)
    loss = lambda p: sharpening([0.05])(jnp.concatenate([p["x"], p["y"]]))  # noqa: E731
    tree = solve_central(central(loss, H, k=2), {"x": jnp.array([0.5]), "y": jnp.array([1.0])}, 30)
    assert tree.thetas["x"].shape == tree.thetas["y"].shape == (31, 1)
    np.testing.assert_allclose(np.concatenate([tree.thetas["x"], tree.thetas["y"]], axis=1), flat.thetas, rtol=1e-12)
    np.testing.assert_allclose(tree.prediction, flat.prediction, rtol=1e-12)
    assert tree.status is flat.status is Status.OK
