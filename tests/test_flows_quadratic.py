"""The PF is exact on quadratics; NGF/IGR distances match SPEC.md's reference table."""

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gdflows
from gdflows.experiments.flow_comparison import compare_to_gd
from gdflows.problems.quadratic import Quadratic, reference_quadratic, reference_theta0

SPEC_GD = {0.9: (20, (-0.0040352, -0.1390784)), 1.05: (5, (0.5636785, -0.1798637))}
SPEC_DIST = {(0.9, "NGF"): 4.06e-3, (0.9, "IGR"): 4.04e-3, (1.05, "NGF"): 0.564, (1.05, "IGR"): 0.564}


@pytest.fixture(scope="module")
def reference_runs():
    out = {}
    for lr, (n, _) in SPEC_GD.items():
        out[lr] = compare_to_gd(reference_quadratic(), reference_theta0(), lr, n, ("PF", "NGF", "IGR"))
    return out


@pytest.mark.parametrize("lr", SPEC_GD)
def test_gd_matches_spec(reference_runs, lr):
    gd_thetas, _ = reference_runs[lr]
    np.testing.assert_allclose(gd_thetas[-1], SPEC_GD[lr][1], atol=5e-8)


@pytest.mark.parametrize("lr", SPEC_GD)
def test_pf_follows_gd_to_1e_9_at_every_step(reference_runs, lr):
    gd_thetas, sols = reference_runs[lr]
    assert np.max(np.abs(sols["PF"].thetas - gd_thetas)) <= 1e-9


@pytest.mark.parametrize("lr,flow", SPEC_DIST)
def test_ngf_igr_distances_match_spec_to_3_significant_figures(reference_runs, lr, flow):
    gd_thetas, sols = reference_runs[lr]
    dist = np.linalg.norm(sols[flow].thetas[-1] - gd_thetas[-1])
    assert float(f"{dist:.3g}") == SPEC_DIST[(lr, flow)]


def test_pf_one_step_removal_at_h_lambda_1():
    # h = 0.5, lambda_0 = 2: GD zeroes theta_0 in one step; so does the PF (jump at t = 0+).
    gd_thetas, sols = compare_to_gd(reference_quadratic(), reference_theta0(), 0.5, 20, ("PF",))
    assert gd_thetas[1, 0] == 0.0
    assert np.max(np.abs(sols["PF"].thetas - gd_thetas)) <= 1e-9


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
