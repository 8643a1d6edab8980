"""Integration: field-evaluation counts, complex state, substeps."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gdflows.errors import GDFlowsError
from gdflows.flows import ngf, principal
from gdflows.integrate import integrate
from gdflows.problems.quadratic import reference_quadratic, reference_theta0


@pytest.mark.parametrize("solver", [diffrax.Tsit5(), diffrax.Dopri8(), diffrax.Dopri5()])
def test_field_eval_count_matches_a_counter(solver):
    calls = []

    def counted(theta, t):
        jax.debug.callback(lambda: calls.append(1))
        return -theta

    sol = integrate(counted, jnp.ones(2), 0.3, 5, rtol=1e-8, atol=1e-10, solver=solver)
    assert sol.num_field_evals == len(calls)
    np.testing.assert_allclose(sol.thetas[-1], np.exp(-1.5), rtol=1e-7)


def test_pf_state_goes_complex_between_steps_and_real_at_steps():
    h = 0.9
    sol = integrate(principal(reference_quadratic(), h), reference_theta0(), h, 4, substeps=2)
    assert sol.is_complex
    # Closed form (docs/theory.md, section 3.2): theta_i(t) = (1 - h lambda_i)^(t/h) theta_i(0) along each eigenvector,
    # with log(1 - h lambda) = ln(h lambda - 1) + i pi where h lambda > 1: real at t = n h, complex half-way.
    lam, theta0 = np.array([2.0, 0.02]), np.array([-0.35, -0.2])  # H = diag(2, 0.02): h lambda = 1.8, 0.018
    log_factor = np.array([np.log(h * lam[0] - 1) + 1j * np.pi, np.log(1 - h * lam[1])])
    expected = np.exp(np.outer(sol.ts / h, log_factor)) * theta0
    np.testing.assert_allclose(sol.ts, np.arange(9) * h / 2)
    np.testing.assert_allclose(sol.thetas[::2], expected[::2], rtol=1e-10, atol=1e-13)  # solver states
    np.testing.assert_allclose(sol.thetas[1::2], expected[1::2], rtol=1e-8, atol=1e-10)  # the dense interpolant
    assert np.max(np.abs(sol.thetas[::2].imag)) < 1e-10
    # at t = h/2: theta_0 = -0.35 * sqrt(0.8) * i, the +i pi side of the branch
    assert sol.thetas[1, 0] == pytest.approx(-0.35j * np.sqrt(0.8), rel=1e-7)


def test_real_flows_stay_real():
    sol = integrate(ngf(reference_quadratic()), reference_theta0(), 0.1, 3)
    assert not np.iscomplexobj(sol.thetas)


def test_substeps_save_intermediate_times():
    sol = integrate(ngf(reference_quadratic()), reference_theta0(), 0.1, 3, substeps=4)
    assert sol.thetas.shape == (13, 2)
    np.testing.assert_allclose(sol.ts, np.arange(13) * 0.025)
    # NGF on E = theta^T diag(1, 0.01) theta: theta(t) = exp(-2 diag(1, 0.01) t) theta_0.
    expected = np.exp(-2 * np.outer(sol.ts, [1.0, 0.01])) * np.asarray(reference_theta0())
    np.testing.assert_allclose(sol.thetas[::4], expected[::4], rtol=1e-11)  # solver steps land on t = n h
    np.testing.assert_allclose(sol.thetas, expected, rtol=1e-8)  # in between: the dense interpolant


def test_a_first_trial_step_of_h_takes_one_step_where_the_error_estimate_allows_and_agrees_with_the_default():
    def logistic(theta, t):  # theta(t) = 1 / (1 + 3 exp(-t)) from theta(0) = 1/4
        return theta * (1 - theta)

    default = integrate(logistic, jnp.array([0.25]), 0.1, 1, rtol=1e-6, atol=1e-9)
    whole = integrate(logistic, jnp.array([0.25]), 0.1, 1, rtol=1e-6, atol=1e-9, first_step=0.1)
    assert (whole.num_steps, whole.num_field_evals) == (1, 7)  # Tsit5: one accepted step
    assert default.num_field_evals > whole.num_field_evals
    exact = 1 / (1 + 3 * np.exp(-0.1))
    np.testing.assert_allclose([default.thetas[1, 0], whole.thetas[1, 0]], exact, rtol=1e-6)
    stiff = integrate(lambda th, t: -500.0 * th, jnp.array([1.0]), 0.1, 1, rtol=1e-6, atol=1e-9, first_step=0.1)
    assert stiff.num_rejected > 0  # the error estimate shrinks a step that is too long
    np.testing.assert_allclose(stiff.thetas[1, 0], np.exp(-50.0), atol=1e-8)


@pytest.mark.parametrize("first_step", [0.0, -0.1, 0.06])
def test_a_first_step_outside_the_step_is_refused(first_step):
    with pytest.raises(GDFlowsError, match=r"first_step must be in \(0, h / substeps = 0.05\]"):
        integrate(lambda th, t: -th, jnp.ones(2), 0.1, 1, substeps=2, first_step=first_step)


def test_the_displacement_solve_holds_its_tolerance_against_the_move_not_against_theta():
    # dtheta/dt = -10 (theta - c) with |c_i| = 1e5 and the flow moving ~1e-3: relative to |theta| a tolerance
    # of 1e-6 is 0.1 per component, so one whole step is accepted however wrong; relative to the displacement
    # the solve holds to ~1e-6 of the move
    c = jnp.full(4, 1e5)
    theta0 = c + jnp.array([1e-3, -2e-3, 3e-3, 5e-4])

    def field(theta, t):
        return -10.0 * (theta - c)

    exact = c + (theta0 - c) * np.exp(-5.0)
    kw = {"rtol": 1e-6, "atol": 1e-12, "first_step": 0.5}
    loose, moved = integrate(field, theta0, 0.5, 1, **kw), integrate(field, theta0, 0.5, 1, displacement=True, **kw)
    move = np.linalg.norm(np.asarray(exact - theta0))
    assert loose.num_steps == 1 and np.linalg.norm(np.asarray(loose.thetas[1] - exact)) > 0.1 * move
    assert np.linalg.norm(np.asarray(moved.thetas[1] - exact)) < 1e-5 * move
    np.testing.assert_array_equal(moved.thetas[0], theta0)  # states come back in theta's coordinates
