"""Bad input gets a clear error naming the fix; divergence is a result, not a crash."""

import jax.numpy as jnp
import numpy as np
import pytest

import gdflows
from gdflows.errors import GDFlowsError, NonFiniteLossError
from gdflows.flows import igr, ngf, principal, third_order
from gdflows.gd import first_nonfinite
from gdflows.integrate import integrate
from gdflows.problems.quadratic import Quadratic, reference_quadratic

E = reference_quadratic()


@pytest.mark.parametrize(
    "make",
    [
        lambda lr: igr(E, lr),
        lambda lr: third_order(E, lr),
        lambda lr: principal(E, lr),
        lambda lr: gdflows.gd(E, jnp.ones(2), lr, 3),
    ],
)
@pytest.mark.parametrize("lr", [0.0, -0.1])
def test_nonpositive_learning_rate(make, lr):
    with pytest.raises(GDFlowsError, match="learning rate must be finite and > 0"):
        make(lr)


def test_nonfinite_loss_at_start():
    with pytest.raises(NonFiniteLossError, match="not finite"):
        gdflows.gd(lambda t: jnp.log(t[0]), jnp.array([-1.0]), 0.1, 2)
    with pytest.raises(NonFiniteLossError, match="not finite"):
        integrate(ngf(lambda t: jnp.sum(t) / 0.0), jnp.ones(2), 0.1, 2)


def test_mismatched_shapes():
    with pytest.raises(GDFlowsError, match="could not be evaluated"):
        gdflows.gd(E, jnp.ones(3), 0.1, 2)
    with pytest.raises(GDFlowsError, match="flat vector"):
        integrate(ngf(E), jnp.ones((2, 1)), 0.1, 2)
    with pytest.raises(GDFlowsError, match="b must have shape"):
        Quadratic(jnp.eye(2), jnp.ones(3))
    with pytest.raises(GDFlowsError, match="symmetric"):
        Quadratic(jnp.array([[1.0, 2.0], [0.0, 1.0]]))


def test_nonscalar_loss():
    with pytest.raises(GDFlowsError, match="scalar"):
        gdflows.gd(lambda t: t**2, jnp.ones(2), 0.1, 2)


def test_bad_steps_and_tolerances():
    with pytest.raises(GDFlowsError, match="steps"):
        gdflows.gd(E, jnp.ones(2), 0.1, -1)
    with pytest.raises(GDFlowsError, match="rtol"):
        integrate(ngf(E), jnp.ones(2), 0.1, 2, rtol=0.0)


def test_gd_divergence_is_recorded_not_raised():
    thetas = gdflows.gd(Quadratic(jnp.eye(1) * 4.0), jnp.ones(1), 1.0, 2000)
    n = first_nonfinite(thetas)
    assert n is not None and 600 < n < 700  # |1 - 4|^n overflows float64 near n = 646
    assert np.all(np.isfinite(thetas[:n]))


def test_flow_that_cannot_be_solved_reports_status():
    # dx/dt = x^2 from x = 1 is x = 1/(1 - t), which blows up at t = 1: the adaptive solver spends its max_steps
    # closing in on t = 1, stops, says so, and leaves the rows it did not reach NaN.
    sol = integrate(lambda x, t: x**2, jnp.ones(1), 0.5, 4, max_steps=2000)
    assert sol.status == "max_steps" and sol.num_steps == 2000
    assert sol.thetas[1, 0] == pytest.approx(2.0, rel=1e-9)  # 1/(1 - 0.5)
    # t = 1 is reached only to within float64 of the pole: a finite 1/(1 - t) of order 1e13, then nothing.
    assert 1e12 < sol.thetas[2, 0] < 1e15
    assert np.isnan(sol.thetas[3:]).all()
