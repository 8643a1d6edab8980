"""sc_i against docs/theory.md's reference values and its closed form, the defining identity, the limits, the branch
and the regime names."""

import jax.numpy as jnp
import numpy as np
import pytest

from gdflows.errors import GDFlowsError
from gdflows.stability import regime, stability_coefficients

# docs/theory.md, section 4.1: sc(x) = log(1 - x)/x, = ln(x - 1)/x + i pi/x for x > 1.
REFERENCE_VALUES = {
    -1.0: -0.6931,
    0.5: -1.3863,
    0.9: -2.5584,
    1.5: -0.4621 + 2.0944j,
    2.0: 1.5708j,
    2.1: 0.04539 + 1.4960j,
    3.0: 0.2310 + 1.0472j,
}


@pytest.mark.parametrize("x,expected", REFERENCE_VALUES.items())
def test_reference_values_to_4_decimals_and_the_closed_form_to_1e_14(x, expected):
    sc = complex(stability_coefficients(jnp.array([x]), 1.0)[0])
    assert abs(sc - expected) < 5e-5
    closed = np.log(abs(1 - x)) / x + (1j * np.pi / x if x > 1 else 0)
    assert abs(sc - closed) < 1e-14


def test_exp_of_rate_is_gd_factor_in_every_regime():
    # The PF moves c_i by exp(sc_i * h * lambda_i) over time h: that must be GD's 1 - h lambda_i.
    x = np.array([-3.0, -0.5, -1e-5, 1e-6, 0.3, 0.999, 1.001, 1.5, 2.0, 2.5, 7.0])
    sc = np.asarray(stability_coefficients(jnp.asarray(x), 1.0))
    np.testing.assert_allclose(np.exp(sc * x), 1 - x, rtol=1e-12, atol=1e-15)


def test_zero_eigenvalue_is_ngf_without_nan():
    sc = stability_coefficients(jnp.array([0.0, -0.0]), 0.7)
    np.testing.assert_array_equal(np.asarray(sc), [-1.0, -1.0])


def test_series_near_zero_matches_log1p():
    x = np.array([1e-12, -3e-9, 2e-6, -5e-4, 9.9e-4, 1.1e-3])
    sc = np.asarray(stability_coefficients(jnp.asarray(x), 1.0))
    np.testing.assert_allclose(sc.real, np.log1p(-x) / x, rtol=1e-15)
    assert np.all(sc.imag == 0)


def test_one_step_removal_is_minus_infinity_not_a_clamp():
    sc = complex(stability_coefficients(jnp.array([2.0]), 0.5)[0])
    assert sc.real == -np.inf and sc.imag == 0


def test_no_nan_in_any_regime():
    x = jnp.array([-2.0, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
    assert not np.any(np.isnan(np.asarray(stability_coefficients(x, 1.0))))


@pytest.mark.parametrize("x", [1.2, 1.5, 2.0, 3.0])
def test_branch_is_continuous_across_the_real_axis(x):
    # At complex states lambda carries tiny imaginary parts of either sign; the PF's log
    # must not jump between +i*pi and -i*pi there (the principal log does).
    sc = np.asarray(stability_coefficients(jnp.array([x + 1e-13j, x, x - 1e-13j]), 1.0))
    assert np.max(np.abs(sc - sc[1])) < 1e-10
    assert sc[1].imag == pytest.approx(np.pi / x)


def test_complex_eigenvalues_keep_the_identity():
    lam = np.array([0.4 + 0.1j, 1.7 - 0.05j, 2.3 + 0.2j])
    sc = np.asarray(stability_coefficients(jnp.asarray(lam), 1.0))
    np.testing.assert_allclose(np.exp(sc * lam), 1 - lam, rtol=1e-12)


@pytest.mark.parametrize("lr", [1.0, 0.5])
def test_regimes_of_the_docs_table(lr):
    # docs/theory.md, section 4.1, by x = h lambda; equalities are exact, complex eigenvalues go by their real part.
    x = [-1.0, -1e-300, 0.0, 0.5, 1.0, 1.5, 2.0, 2.0 + 0.3j, 3.0, 1e6]
    assert list(regime(np.asarray(x) / lr, lr)) == [
        "saddle escape",
        "saddle escape",
        "as NGF",
        "monotone convergence",
        "one-step removal",
        "oscillating convergence",
        "2-cycle",
        "2-cycle",
        "oscillating divergence",
        "oscillating divergence",
    ]


@pytest.mark.parametrize("lr", [0.0, -1.0, float("nan"), float("inf"), "fast"])
def test_bad_learning_rate(lr):
    with pytest.raises(GDFlowsError, match="learning rate"):
        stability_coefficients(jnp.array([1.0]), lr)
