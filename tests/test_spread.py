"""The spread of top eigenvalues over disjoint data subsets, against dense per-subset Hessians."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gdflows.curvature.spread import eigenvalue_spread
from gdflows.errors import GDFlowsError


def _regression(n=60, d=5):
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    x = jax.random.normal(keys[0], (n, d)) * jnp.linspace(0.5, 2.0, d)
    y = jax.random.normal(keys[1], (n,))

    def batch_loss(p, batch):
        bx, by = batch
        return 0.5 * jnp.mean((bx @ p["w"] - by) ** 2)

    return batch_loss, {"w": jnp.zeros(d)}, (x, y)


def test_each_subsets_eigenvalues_are_those_of_its_own_dense_hessian():
    batch_loss, params, (x, y) = _regression()
    out = eigenvalue_spread(batch_loss, params, (x, y), k=2, subsets=4, method="dense")
    assert out.values.shape == (4, 2) and out.subset_size == 15 and out.converged.all()
    for s in range(4):
        xs = np.asarray(x[s::4])
        dense = np.linalg.eigvalsh(xs.T @ xs / len(xs))[::-1][:2]  # H_s = X_s^T X_s / n_s
        np.testing.assert_allclose(out.values[s], dense, rtol=1e-10)
    np.testing.assert_allclose(out.std, out.values.std(axis=0, ddof=1))
    assert out.std[0] > 0  # different samples, different curvature


def test_identical_subsets_have_no_spread():
    batch_loss, params, (x, y) = _regression(n=12)
    x4, y4 = jnp.repeat(x[:3], 4, axis=0), jnp.repeat(y[:3], 4)  # each part i mod 4 gets the same 3 examples
    out = eigenvalue_spread(batch_loss, params, (x4, y4), subsets=4, method="dense")
    np.testing.assert_allclose(out.std, 0, atol=1e-12)


@pytest.mark.parametrize(
    "data, subsets, match",
    [((jnp.ones((6, 2)), jnp.ones(5)), 2, "leading"), ((jnp.ones((6, 2)), jnp.ones(6)), 7, r"subsets must be")],
)
def test_bad_input_is_refused_with_the_fix(data, subsets, match):
    batch_loss, params, _ = _regression(d=2)
    with pytest.raises(GDFlowsError, match=match):
        eigenvalue_spread(batch_loss, params, data, subsets=subsets)


def test_batch_sharpness_is_each_batchs_curvature_along_its_gradient():
    from gdflows.curvature.batch_sharpness import batch_sharpness

    batch_loss, params, (x, y) = _regression(n=40, d=4)
    batches = [(x[i : i + 10], y[i : i + 10]) for i in range(0, 40, 10)]
    found = batch_sharpness(batch_loss, {"w": jnp.full(4, 0.3)}, batches)
    expected = []
    for bx, by in batches:
        bx, by = np.asarray(bx), np.asarray(by)
        H = bx.T @ bx / len(bx)
        g = H @ np.full(4, 0.3) - bx.T @ by / len(bx)
        expected.append(g @ H @ g / (g @ g))
    np.testing.assert_allclose(found.values, expected, rtol=1e-10)
    assert found.mean == pytest.approx(np.mean(expected)) and found.sem > 0
    with pytest.raises(GDFlowsError, match="batches is empty"):
        batch_sharpness(batch_loss, params, [])
