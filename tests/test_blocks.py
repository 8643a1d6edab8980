"""Per-block curvature: each block's eigenvalues equal those of the dense Hessian's diagonal block."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gdflows.curvature import hessian
from gdflows.curvature.blocks import block_eigenpairs, block_names, block_traces
from gdflows.errors import GDFlowsError
from gdflows.params import ravel


def _mlp():
    """A 3-5-2 tanh MLP's parameters (dict) and its MSE loss on 7 fixed examples (float64)."""
    keys = jax.random.split(jax.random.PRNGKey(3), 4)
    params = {
        "layer1": {"w": jax.random.normal(keys[0], (3, 5), jnp.float64), "b": jnp.full(5, 0.1, jnp.float64)},
        "layer2": {"w": jax.random.normal(keys[1], (5, 2), jnp.float64), "b": jnp.zeros(2, jnp.float64)},
        "scale": jnp.asarray([1.3], jnp.float64),
    }
    x = jax.random.normal(keys[2], (7, 3), jnp.float64)
    y = jax.random.normal(keys[3], (7, 2), jnp.float64)

    def loss(p):
        h = jnp.tanh(x @ p["layer1"]["w"] + p["layer1"]["b"])
        # outputs weighted 1 and 2: otherwise layer2's w block is two equal copies (double eigenvalues)
        return 0.5 * jnp.mean((p["scale"] * (h @ p["layer2"]["w"]) + p["layer2"]["b"] - y) ** 2 * jnp.asarray([1, 2]))

    return params, loss


def _dense_blocks(params, loss, members):
    """Eigenvalues (descending) of the dense Hessian's diagonal block over the named top-level entries."""
    theta, unravel = ravel(params)
    H = np.asarray(hessian(lambda t: loss(unravel(t)), theta))
    offsets, start = {}, 0
    for name in params:  # ravel lays the dict's entries out in sorted key order
        size = sum(leaf.size for leaf in jax.tree_util.tree_leaves(params[name]))
        offsets[name] = np.arange(start, start + size)
        start += size
    idx = np.concatenate([offsets[name] for name in members])
    return np.sort(np.linalg.eigvalsh(H[np.ix_(idx, idx)]))[::-1], np.linalg.eigvalsh(H)[-1]


def test_each_blocks_top_eigenvalues_equal_the_dense_diagonal_block_and_interlace_below_h():
    params, loss = _mlp()
    assert block_names(params) == ["layer1", "layer2", "scale"]
    layers = {"layer1": ["layer1"], "layer2": ["layer2"]}
    found = block_eigenpairs(loss, params, k=2, groups=layers, method="lanczos", tol=1e-10)
    for name in ("layer1", "layer2"):
        dense, top = _dense_blocks(params, loss, [name])
        np.testing.assert_allclose(found[name].values, dense[:2], rtol=1e-8)
        assert found[name].values[0] <= top + 1e-10  # Cauchy interlacing
        u = found[name].vectors  # the block's leaves (b, w), each with a leading k axis
        assert [leaf.shape for leaf in jax.tree_util.tree_leaves(u)] == [
            (2,) + leaf.shape for leaf in jax.tree_util.tree_leaves(params[name])
        ]
    one = block_eigenpairs(loss, params, k=1)["scale"]  # a 1 x 1 block: E''(scale)
    np.testing.assert_allclose(one.values, _dense_blocks(params, loss, ["scale"])[0], rtol=1e-10)


def test_block_traces_equal_the_dense_diagonal_blocks_and_sum_to_the_trace():
    params, loss = _mlp()
    theta, unravel = ravel(params)
    H = np.asarray(hessian(lambda t: loss(unravel(t)), theta))
    found = block_traces(loss, params, probes=20)
    sizes = [sum(leaf.size for leaf in jax.tree_util.tree_leaves(params[name])) for name in params]
    starts = np.cumsum([0, *sizes])
    for name, lo, hi in zip(params, starts, starts[1:]):  # blocks of <= 20 parameters: exact traces
        assert found[name].value == pytest.approx(np.trace(H[lo:hi, lo:hi]), rel=1e-10)
    assert sum(t.value for t in found.values()) == pytest.approx(np.trace(H), rel=1e-10)


def test_groups_join_top_level_entries_into_one_block():
    params, loss = _mlp()
    found = block_eigenpairs(loss, params, k=1, groups={"output": ["layer2", "scale"]})
    assert list(found) == ["output"]
    np.testing.assert_allclose(found["output"].values, _dense_blocks(params, loss, ["layer2", "scale"])[0][:1])


def test_an_equinox_modules_fields_are_its_blocks():
    class Affine(eqx.Module):
        w: jax.Array
        b: jax.Array

    m = Affine(jnp.asarray([[2.0, 0.0], [0.0, 1.0]]), jnp.asarray([0.5, -0.5]))
    x = jnp.asarray([[1.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    found = block_eigenpairs(lambda p: jnp.sum((x @ p.w + p.b) ** 2), m, k=1)
    assert block_names(m) == ["w", "b"]
    # d2/db2 of sum over 3 rows of |x w + b|^2 = 2 * 3 I; d2/dw2 = 2 (x^T x) per output column, top eig of x^T x
    np.testing.assert_allclose(found["b"].values, [6.0], rtol=1e-6)
    np.testing.assert_allclose(found["w"].values, [2 * np.linalg.eigvalsh(np.asarray(x.T @ x))[-1]], rtol=1e-6)


@pytest.mark.parametrize(
    "params, kwargs, message",
    [
        (jnp.ones(3), {}, "one flat array, which has no blocks"),
        (None, {"groups": {"g": ["layer3"]}}, "names 'layer3', not a top-level entry of params"),
        (None, {"groups": {"a": ["scale"], "b": ["scale"]}}, "'scale' is in both groups 'a' and 'b'"),
        (None, {"groups": {"a": "scale"}}, "group 'a' must list top-level entries"),
        (None, {"k": 2}, r"k must be an integer in \[1, 1\] \(block 'scale' has 1 parameters\)"),
    ],
)
def test_bad_blocks_are_refused_in_one_line_before_any_work(params, kwargs, message):
    mlp, loss = _mlp()
    with pytest.raises(GDFlowsError, match=message) as err:
        block_eigenpairs(loss, mlp if params is None else params, **kwargs)
    assert "\n" not in str(err.value)
