"""The network problem: chunked full-data quantities equal one-piece ones, the curvature subset,
dtype-following tolerances, and training steps equal to hand-written ones."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdflows
from gdflows.curvature.chunked import example_bytes
from gdflows.data import Dataset
from gdflows.errors import GDFlowsError
from gdflows.experiments.network_setup import diagnose_network
from gdflows.experiments.steps import network_steps
from gdflows.optim import dal
from gdflows.problems import network
from gdflows.problems.network import curvature_subset, network_problem
from gdflows.stability import stability_coefficients


def toy_data(n=46, n_test=13, shape=(6, 6, 1), k=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x, xt = rng.uniform(size=(n,) + shape).astype(dtype), rng.uniform(size=(n_test,) + shape).astype(dtype)
    return Dataset(x, rng.permutation(np.arange(n) % k), xt, np.arange(n_test) % k, k, "toy")


def small(model="cnn", data=None, **kw):
    data = toy_data() if data is None else data
    kwargs = {"width": 2} if model == "cnn" else {"depth": 1, "width": 4}
    return network_problem(model, data, chunk_size=kw.pop("chunk_size", 8), **(kwargs | kw))


def whole(problem, x, y):
    """The loss over (x, y) in one piece, as a function of theta."""
    return lambda theta: problem.batch_loss(theta, jnp.asarray(x), jnp.asarray(y))


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_chunked_equals_one_piece(model):
    p = small(model)
    d = p.data
    full = whole(p, d.x_train, d.y_train)
    theta = p.theta0
    v = jnp.asarray(np.random.default_rng(1).normal(size=theta.shape))
    assert p.chunk_size == 8 and p.loss.chunks[0].shape[:2] == (6, 8)  # 46 examples: 5 full chunks and one padded
    E, g = p.value_and_grad(theta)
    np.testing.assert_allclose(E, full(theta), rtol=1e-13)
    np.testing.assert_allclose(p.loss(theta), full(theta), rtol=1e-13)
    np.testing.assert_allclose(g, jax.grad(full)(theta), rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(p.hvp(theta, v), gdflows.curvature.hvp(full, theta, v), rtol=1e-10, atol=1e-13)
    for split, (x, y) in {"train": (d.x_train, d.y_train), "test": (d.x_test, d.y_test)}.items():
        loss, acc = p.evaluate(theta, split)
        np.testing.assert_allclose(loss, whole(p, x, y)(theta), rtol=1e-13)
        logits = np.asarray(p.logits(theta, jnp.asarray(x)))
        assert float(acc) == pytest.approx(np.mean(np.argmax(logits, axis=1) == y), abs=1e-14)


def test_curvature_subset_is_balanced_deterministic_and_its_own_loss():
    y = np.array([2, 0, 0, 1, 2, 2, 1, 0, 1, 2, 0, 1])
    index = curvature_subset(y, 6)
    assert index.tolist() == [0, 1, 2, 3, 4, 6] and np.bincount(y[index]).tolist() == [2, 2, 2]
    assert curvature_subset(y, None).tolist() == list(range(12)) == curvature_subset(y, 50).tolist()
    p = small(curvature_size=9)
    d = p.data
    assert np.bincount(d.y_train[p.curvature_index]).tolist() == [3, 3, 3]
    sub = whole(p, d.x_train[p.curvature_index], d.y_train[p.curvature_index])
    E, g = p.value_and_grad(p.theta0, subset=True)
    np.testing.assert_allclose(E, sub(p.theta0), rtol=1e-13)
    np.testing.assert_allclose(g, jax.grad(sub)(p.theta0), rtol=1e-11, atol=1e-14)
    with pytest.raises(GDFlowsError, match="curvature_size"):
        small(curvature_size=0)


def test_tolerance_follows_the_dtype_and_is_checked_before_any_work(monkeypatch):
    data32 = toy_data(dtype=np.float32)
    assert small(data=data32, dtype="float32").tol == pytest.approx(100 * np.finfo(np.float32).eps)
    assert small().tol == 1e-8
    p = small(data=data32, dtype="float32", curvature_dtype="float64")
    assert p.tol == 1e-8 and p.curvature_dtype == jnp.float64 and p.theta0.dtype == jnp.float32
    monkeypatch.setattr(network, "get_model", lambda *a, **k: pytest.fail("work done before the tol check"))
    with pytest.raises(GDFlowsError, match="machine epsilon of float32.*default for float32: 1.2e-05"):
        small(data=data32, dtype="float32", tol=1e-7)


def test_float64_curvature_of_a_float32_problem():
    data32 = toy_data(dtype=np.float32)
    p = small("mlp", data=data32, dtype="float32", curvature_dtype="float64", curvature_size=12)
    idx = p.curvature_index
    theta64 = p.theta0.astype(jnp.float64)
    p64 = small("mlp", data=toy_data())  # the same initial draw, in float64
    sub64 = whole(p64, data32.x_train[idx].astype(np.float64), data32.y_train[idx])
    E, g = p.value_and_grad(theta64, subset=True)
    assert E.dtype == jnp.float64
    np.testing.assert_allclose(E, sub64(theta64), rtol=1e-13)
    np.testing.assert_allclose(g, jax.grad(sub64)(theta64), rtol=1e-11, atol=1e-14)


def test_minibatch_and_full_batch_steps_equal_hand_written_ones():
    p = small()
    d = p.data
    opt = optax.sgd(0.3)
    run = network_steps(p, opt)
    idx = np.random.default_rng(2).integers(0, len(d.y_train), (3, 4))
    theta, _, values, records = run(p.theta0, opt.init(p.theta0), idx)
    expect = p.theta0
    for i, rows in enumerate(idx):
        batch = whole(p, d.x_train[rows], d.y_train[rows])
        assert float(values[i]) == pytest.approx(float(batch(expect)), rel=1e-12)
        expect = expect - 0.3 * jax.grad(batch)(expect)
    np.testing.assert_allclose(theta, expect, rtol=1e-11, atol=1e-13)
    assert records == ()
    theta, _, values, _ = run(p.theta0, opt.init(p.theta0), np.zeros((2, 0), np.int32))
    np.testing.assert_allclose(theta, gdflows.gd(whole(p, d.x_train, d.y_train), p.theta0, 0.3, 2)[-1], rtol=1e-11)


def test_dal_sees_the_full_loss_in_full_batch_steps():
    p = small()
    opt = dal(p=1.0, max_lr=50.0)
    run = network_steps(p, opt, record=lambda s: s.h)
    _, _, _, rates = run(p.theta0, opt.init(p.theta0), np.zeros((1, 0), np.int32))
    full = whole(p, p.data.x_train, p.data.y_train)
    g = jax.grad(full)(p.theta0)
    hg = gdflows.curvature.hvp(full, p.theta0, g)
    assert float(rates[0]) == pytest.approx(float(2 / (jnp.linalg.norm(hg) / jnp.linalg.norm(g))), rel=1e-10)


def test_diagnosis_on_the_curvature_subset():
    p = small("mlp", curvature_size=12)  # D = 163: the dense path, checked against an eigh of its own
    d = p.data
    sub = whole(p, d.x_train[p.curvature_index], d.y_train[p.curvature_index])
    got = diagnose_network(p, p.theta0, lr=0.5, k=2)
    lam, U = np.linalg.eigh(np.asarray(jax.hessian(sub)(p.theta0)))
    c = U.T @ np.asarray(jax.grad(sub)(p.theta0))
    np.testing.assert_allclose(got.eigenvalues, lam[::-1][:2], rtol=1e-9)
    rate = np.sum(np.asarray(stability_coefficients(jnp.asarray(lam), 0.5)) * c**2)
    assert got.energy_rate == pytest.approx(rate, rel=1e-9)


def test_bad_input_names_the_fix():
    p = small()
    with pytest.raises(GDFlowsError, match="split must be one of"):
        p.evaluate(p.theta0, "valid")
    with pytest.raises(GDFlowsError, match="chunk_size"):
        small(chunk_size=0)
    with pytest.raises(GDFlowsError, match=r"shape \(steps, batch\)"):
        network_steps(p, optax.sgd(0.1))(p.theta0, (), np.zeros(3, np.int32))
    assert (
        network._chunk(None, 46, 1) == 46 and network._chunk(10, 46, 4) == 12 and network._chunk(None, 9000, 3) == 258
    )


def test_default_chunk_on_a_cpu_keeps_an_examples_share_under_the_limit(monkeypatch):
    p = small("cnn", chunk_size=None)
    assert p.chunk_size == 46  # a small net: CHUNK_SIZE, capped at the 46 examples
    assert network._chunk(None, 9000, 4, per_example=2**20) == 4 * 32  # 32 MiB per device, 1 MiB per example
    per_example = example_bytes(p.loss.example_loss, p.theta0, (p.data.x_train[0], p.data.y_train[0]))
    assert per_example > 0
    monkeypatch.setattr(network, "CPU_CHUNK_BYTES", 5 * per_example + 1)
    p = small("cnn", chunk_size=None)
    assert p.chunk_size == 4 == p.curvature_loss.chunk_size  # 5 fit, the power of two below is 4
    np.testing.assert_allclose(p.value_and_grad(p.theta0)[1], small("cnn").value_and_grad(p.theta0)[1], rtol=1e-12)
