"""The central flow: the LCP for sigma^2 and lambda_0 held at 2/h."""

import jax.numpy as jnp
import numpy as np
import pytest

import gdflows
from gdflows.errors import GDFlowsError
from gdflows.flows import central, ngf
from gdflows.flows.central import solve_lcp

C = 0.05


def sharpening(theta):
    """E = y x^2 / 2 - c y: lambda_0 ~ y rises under gradient flow (progressive sharpening)."""
    x, y = theta[0], theta[1]
    return 0.5 * y * x**2 - C * y


@pytest.mark.parametrize("seed", range(5))
def test_lcp_solution_satisfies_complementarity(seed):
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((4, 6))
    M, r = G @ G.T, rng.standard_normal(4)
    s = np.asarray(solve_lcp(jnp.asarray(M), jnp.asarray(r)))
    w = M @ s - r
    assert np.all(s >= 0) and np.all(w >= -1e-9) and abs(s @ w) < 1e-9


def test_single_direction_is_the_closed_form():
    s = solve_lcp(jnp.array([[4.0]]), jnp.array([3.0]))
    assert float(s[0]) == pytest.approx(0.75, rel=1e-14)
    assert float(solve_lcp(jnp.array([[4.0]]), jnp.array([-3.0]))[0]) == 0.0


def test_central_flow_holds_sharpness_at_2_over_h_while_ngf_sharpens_past_it():
    h, theta0 = 1.0, jnp.array([0.5, 1.0])
    cf = gdflows.integrate(central(sharpening, h), theta0, h, 80, rtol=1e-8, atol=1e-10)
    gf = gdflows.integrate(ngf(sharpening), theta0, h, 80, rtol=1e-8, atol=1e-10)
    assert cf.status == "ok"
    y_cf, y_gf = np.real(cf.thetas[:, 1]), np.real(gf.thetas[:, 1])
    reached = np.nonzero(y_cf >= 0.99 * 2 / h)[0][0]
    assert np.max(np.abs(y_cf[reached:] - 2 / h)) <= 0.01 * 2 / h
    assert y_gf[-1] > 1.5 * 2 / h


def test_bad_arguments():
    with pytest.raises(GDFlowsError, match="k"):
        central(sharpening, 0.1, k=0)
    with pytest.raises(GDFlowsError, match="kappa"):
        central(sharpening, 0.1, kappa=-1.0)
