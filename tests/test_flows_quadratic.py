"""On a quadratic every flow has a closed form: GD multiplies the coordinate along the Hessian eigenvector u_i by
(1 - h lambda_i) per step, and NGF and IGR multiply it by exp(r_i t) with the real rates of docs/theory.md,
section 2 (NGF -lambda, IGR -lambda - h lambda^2/2). The PF is exact: it equals GD at every step, for every h
(section 3.2)."""

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gdflows
from gdflows.experiments.flow_comparison import compare_to_gd
from gdflows.problems.quadratic import Quadratic, reference_quadratic, reference_theta0

# The authors' example, written out: E = theta^T diag(1, 0.01) theta, so H = diag(2, 0.02), from (-0.35, -0.2).
LAM = np.array([2.0, 0.02])
THETA0 = np.array([-0.35, -0.2])
STEPS = {0.9: 20, 1.05: 5}  # h lambda_0 = 1.8 (oscillating convergence) and 2.1 (oscillating divergence)


def rate(flow, lam, h):
    """The closed-form rate r of dc/dt = r c on a quadratic (docs/theory.md, section 2)."""
    return {"NGF": -lam, "IGR": -lam - h * lam**2 / 2}[flow]


def closed_form(flow, h, n):
    """theta at t = k h, k = 0..n, (n + 1, 2): the flow's exp(r t) or GD's (1 - h lambda)^k on each coordinate."""
    k = np.arange(n + 1)[:, None]
    if flow == "GD":
        return (1 - h * LAM) ** k * THETA0
    return np.exp(rate(flow, LAM, h) * k * h) * THETA0


@pytest.fixture(scope="module")
def reference_runs():
    problem = Quadratic(jnp.diag(jnp.asarray(LAM)))
    return {h: compare_to_gd(problem, jnp.asarray(THETA0), h, n, ("PF", "NGF", "IGR")) for h, n in STEPS.items()}


def test_the_reference_problem_is_the_authors_example():
    np.testing.assert_array_equal(reference_quadratic().A, np.diag(LAM))
    np.testing.assert_array_equal(reference_quadratic().b, [0.0, 0.0])
    np.testing.assert_array_equal(reference_theta0(), THETA0)


@pytest.mark.parametrize("h", STEPS)
def test_gd_matches_its_closed_form(reference_runs, h):
    gd_thetas, _ = reference_runs[h]
    np.testing.assert_allclose(gd_thetas, closed_form("GD", h, STEPS[h]), rtol=1e-13, atol=0)


@pytest.mark.parametrize("h", STEPS)
def test_pf_equals_gd_closed_form_to_1e_9_at_every_step(reference_runs, h):
    _, sols = reference_runs[h]
    assert sols["PF"].status == "ok"
    assert np.max(np.abs(sols["PF"].thetas - closed_form("GD", h, STEPS[h]))) <= 1e-9


@pytest.mark.parametrize("flow", ["NGF", "IGR"])
@pytest.mark.parametrize("h", STEPS)
def test_real_flows_match_their_closed_forms_and_distances_to_gd(reference_runs, h, flow):
    gd_thetas, sols = reference_runs[h]
    want = closed_form(flow, h, STEPS[h])
    assert sols[flow].status == "ok" and not np.iscomplexobj(sols[flow].thetas)
    # The solver's rtol is 1e-12; 1e-9 leaves room for its global error over 20 steps, not for a wrong rate
    # (an IGR with h/4 for h/2 is off by 1.6e-3 in the second coordinate at h = 0.9).
    np.testing.assert_allclose(sols[flow].thetas, want, rtol=1e-9, atol=1e-13)
    dist = np.linalg.norm(sols[flow].thetas[-1] - gd_thetas[-1])
    assert dist == pytest.approx(np.linalg.norm(want[-1] - closed_form("GD", h, STEPS[h])[-1]), rel=1e-8)


def test_pf_one_step_removal_at_h_lambda_1():
    # h = 0.5, lambda_0 = 2: GD zeroes theta_0 in one step; so does the PF (jump at t = 0+).
    gd_thetas, sols = compare_to_gd(reference_quadratic(), reference_theta0(), 0.5, 20, ("PF",))
    assert gd_thetas[1, 0] == 0.0
    assert np.max(np.abs(sols["PF"].thetas - closed_form("GD", 0.5, 20))) <= 1e-9


# Spectra mixing every regime: negative, zero, (0, 1/h), (1/h, 2/h), > 2/h.
REGIME_X = [(-1.5, -0.05), (0.0, 0.0), (0.05, 0.95), (1.05, 1.95), (2.05, 2.6)]


@st.composite
def quadratics(draw):
    d = draw(st.sampled_from([2, 5, 8]))
    h = draw(st.floats(0.1, 2.0))
    kinds = draw(st.lists(st.integers(0, 4), min_size=d, max_size=d))
    kinds[: min(d, 5)] = range(min(d, 5))  # every regime appears when D allows it
    x = np.array([draw(st.floats(*REGIME_X[k])) for k in kinds])
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    A = q @ np.diag(x / h) @ q.T
    return Quadratic((A + A.T) / 2, rng.standard_normal(d)), rng.standard_normal(d), h


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(quadratics())
def test_pf_matches_gd_on_random_quadratics(problem):
    loss, theta0, h = problem
    n = 6
    gd_thetas, sols = compare_to_gd(loss, jnp.asarray(theta0), h, n, ("PF",))
    pf = sols["PF"]
    assert pf.status == "ok"
    scale = np.maximum(1.0, np.linalg.norm(gd_thetas, axis=1))
    rel = np.linalg.norm(pf.thetas - gd_thetas, axis=1) / scale
    assert np.max(rel) <= 1e-8


def test_gd_on_a_pytree_returns_the_same_structure():
    params = {"a": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}
    loss = lambda p: jnp.sum(p["a"] ** 2) + 3 * p["b"] ** 2
    thetas = gdflows.gd(loss, params, 0.1, 3)
    assert set(thetas) == {"a", "b"} and thetas["a"].shape == (4, 2) and thetas["b"].shape == (4,)
    np.testing.assert_allclose(thetas["a"][0], params["a"])
    np.testing.assert_allclose(thetas["a"][3], [1 * 0.8**3, -2 * 0.8**3], rtol=1e-14)
    np.testing.assert_allclose(thetas["b"][3], 0.5 * 0.4**3, rtol=1e-14)
