"""gdflows drift: the drift against a closed form on a quadratic, correlations, a small network."""

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.linalg import expm

from curvature_problems import tanh_mlp
from gdflows.experiments.drift import correlations, drift_rows, drift_verdict, summary_rows


def test_drift_on_a_quadratic_matches_the_closed_form():
    A = np.diag([3.0, 1.0, 0.2])
    theta0 = np.array([1.0, -2.0, 0.5])
    lr = 0.05
    rows = drift_rows(lambda t: 0.5 * t @ jnp.asarray(A) @ t, jnp.asarray(theta0), lr, steps=6, every=2)
    assert [r["step"] for r in rows] == [0, 2, 4]
    for r in rows:
        theta = np.linalg.matrix_power(np.eye(3) - lr * A, r["step"]) @ theta0
        exact = np.linalg.norm((np.eye(3) - lr * A - expm(-lr * A)) @ theta)  # GD step minus exact NGF
        assert r["drift"] == pytest.approx(exact, rel=1e-7)
        assert r["predicted"] == pytest.approx(lr**2 / 2 * np.linalg.norm(A @ A @ theta), rel=1e-12)
        assert abs(r["ratio"] - 1) < lr * 3  # next term: (h^3/6)|H^3 theta|


def test_correlations_and_summary():
    rows = [{"lr": lr, "drift": 2 * p, "predicted": p} for lr in (0.1, 0.2) for p in (1e-3, 1e-2, 3e-1)]
    rows.append({"lr": 0.2, "drift": 0.0, "predicted": 1.0})  # a zero drift is left out of the logs
    c = correlations(rows)
    assert c["pairs"] == 6 and c["pearson_log"] == pytest.approx(1.0) and c["median_ratio"] == pytest.approx(2.0)
    d, p = np.array([2e-3, 2e-2, 6e-1]), np.array([1e-3, 1e-2, 3e-1])
    r = np.sum((d - d.mean()) * (p - p.mean())) / np.sqrt(np.sum((d - d.mean()) ** 2) * np.sum((p - p.mean()) ** 2))
    assert summary_rows(rows)[0]["pearson_raw"] == pytest.approx(r) and summary_rows(rows)[-1]["lr"] == "all"


def test_the_drift_verdict_sees_a_wrong_constant_factor():
    def verdict(factor, noise=0.0):
        p = np.geomspace(1e-4, 1e-1, 12)
        d = factor * p * np.exp(noise * np.sin(np.arange(12) * 2.3))  # a fixed, irregular scatter
        return str(drift_verdict(correlations([{"drift": a, "predicted": b} for a, b in zip(d, p)])))

    assert verdict(1.0) == "yes"
    assert verdict(3.0) == "partly: correlation yes, scale no"  # same r, three times the prediction
    assert verdict(1.0, noise=4.0) == "partly: correlation no, scale yes"
    assert verdict(0.1, noise=4.0) == "no: correlation no, scale no"


def test_drift_tracks_its_leading_term_on_a_tanh_mlp():
    _, theta0, loss = tanh_mlp(n=48, din=4, width=8)
    rows = []
    for lr in (0.02, 0.08, 0.3):
        rows_h = drift_rows(loss, theta0, lr, steps=40, every=10, rtol=1e-10, atol=1e-12)
        assert [r["step"] for r in rows_h] == [0, 10, 20, 30]
        # The drift is (h^2/2)|H g| (1 + O(h lambda)): each ratio within h of 1 (measured: within 0.66 h),
        # so the bound is 2% at h = 0.02 and tightens with h.
        for r in rows_h:
            assert abs(r["ratio"] - 1) < lr, (lr, r["step"], r["ratio"])
        rows += rows_h
    c = correlations(rows)
    assert c["pairs"] == 12 and c["pearson_log"] > 0.95
