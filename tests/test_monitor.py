"""The monitor for a user's own loop: its rows against independent computations, resuming, divergence."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gdflows.curvature import hessian
from gdflows.curvature.preconditioned import adam_preconditioner
from gdflows.errors import GDFlowsError
from gdflows.experiments.monitor import Monitor
from gdflows.optim import dal, dal_rate
from gdflows.params import ravel


def _problem():
    keys = jax.random.split(jax.random.PRNGKey(2), 3)
    x, y = jax.random.normal(keys[0], (32, 3)), jax.random.normal(keys[1], (32, 1))
    params = {"w": jax.random.normal(keys[2], (3, 6)) / 2, "v": jnp.ones((6, 1)) / 3}

    def loss(p):
        return jnp.mean((jnp.tanh(x @ p["w"]) @ p["v"] - y) ** 2)

    return params, loss


def _sgd(loss, lr):
    opt = optax.sgd(lr)

    @jax.jit
    def update(p, s):
        updates, s = opt.update(jax.grad(loss)(p), s)
        return optax.apply_updates(p, updates), s

    return opt, update


def test_a_row_holds_the_top_eigenvalue_and_the_observed_change_of_the_loss_passed(tmp_path):
    params, loss = _problem()
    opt, update = _sgd(loss, 0.4)
    state = opt.init(params)
    monitor = Monitor(tmp_path / "m", lr=0.4, every=5, k=2)
    seen = {}
    for step in range(11):
        if monitor(step, params, loss, state) is not None:
            seen[step] = params
        params, state = update(params, state)
    assert list(seen) == [0, 5, 10] and monitor(10, params, loss) is None  # logged steps are not redone
    row = monitor.rows[1]
    flat, unravel = ravel(seen[5])
    flat_loss = lambda t: loss(unravel(t))  # noqa: E731
    lam = np.linalg.eigvalsh(np.asarray(hessian(flat_loss, flat)))[::-1]
    assert row["lambda_0"] == pytest.approx(lam[0], rel=1e-7) and row["lambda_1"] == pytest.approx(lam[1], rel=1e-7)
    g = jax.grad(flat_loss)(flat)
    observed = (flat_loss(flat - 0.4 * g) - flat_loss(flat)) / 0.4
    assert row["observed_dE_dt"] == pytest.approx(float(observed), rel=1e-9)
    assert row["two_over_h"] == pytest.approx(5.0) and row["rate"] == 0.4


def test_a_reopened_monitor_carries_on_the_table_and_refuses_other_settings(tmp_path):
    params, loss = _problem()
    first = Monitor(tmp_path / "m", lr=0.4, every=2, k=1)
    for step in range(5):
        first(step, params, loss)
    again = Monitor(tmp_path / "m", lr=0.4, every=2, k=1)
    assert again.last_step == 4 and again.vectors is not None
    assert again(4, params, loss) is None and again(6, params, loss)["step"] == 6
    assert [int(float(r["step"])) for r in again.rows] == [0, 2, 4, 6]
    with pytest.raises(GDFlowsError, match="holds another run"):
        Monitor(tmp_path / "m", lr=0.3, every=2, k=1)


def test_a_diverging_loop_ends_with_a_diverged_row_and_still_gets_its_report(tmp_path):
    params, loss = _problem()
    with Monitor(tmp_path / "m", lr=0.1, every=1, k=1) as monitor:
        monitor(0, params, loss)
        monitor(1, params, lambda p: loss(p) * jnp.inf)
        assert monitor.ended and monitor(2, params, loss) is None
    report = (tmp_path / "m" / "REPORT.md").read_text()
    assert "Outcome: **diverged at step 1**" in report


def test_the_rate_comes_from_the_optimizers_state_when_it_holds_one(tmp_path):
    params, loss = _problem()
    opt = dal(p=1.0)
    state = opt.init(params)
    value, grads = jax.value_and_grad(loss)(params)
    updates, state = opt.update(grads, state, params, value_fn=loss)
    row = Monitor(tmp_path / "m", lr=0.1, every=1, k=1)(0, optax.apply_updates(params, updates), loss, state)
    assert row["rate"] == pytest.approx(float(dal_rate(state))) and row["rate"] != 0.1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lr": -1.0}, "lr"),
        ({"lr": 0.1, "every": 0}, "every must be an integer >= 1"),
        ({"lr": 0.1, "k": 1.5}, "k must"),
    ],
)
def test_bad_settings_are_refused_before_a_folder_exists(tmp_path, kwargs, match):
    with pytest.raises(GDFlowsError, match=match):
        Monitor(tmp_path / "m", **kwargs)
    assert not (tmp_path / "m").exists()


def test_an_adam_loop_is_judged_by_its_preconditioned_sharpness_against_38_over_h(tmp_path):
    params, loss = _problem()
    opt = optax.adam(0.01)
    state = opt.init(params)
    monitor = Monitor(tmp_path / "m", lr=0.01, every=1, k=1, optimizer="adam")
    assert np.isnan(monitor(0, params, loss, state)["sharpness"])  # Adam has no second moment yet
    updates, state = opt.update(jax.grad(loss)(params), state)
    params = optax.apply_updates(params, updates)
    row = monitor(1, params, loss, state)
    flat, unravel = ravel(params)
    d = 1 / np.sqrt(np.asarray(ravel(adam_preconditioner(state))[0]))
    H = np.asarray(hessian(lambda t: loss(unravel(t)), flat))
    assert row["sharpness"] == pytest.approx(np.linalg.eigvalsh(d[:, None] * H * d[None, :])[-1], rel=1e-7)
    assert row["threshold"] == pytest.approx(3800.0)
    with pytest.raises(GDFlowsError, match="optimizer must be one of gd, sgd, momentum, adam"):
        Monitor(tmp_path / "n", lr=0.01, optimizer="lion")


def test_a_minibatch_sgd_loop_is_judged_by_the_batch_sharpness_of_the_batches_it_passes(tmp_path):
    """Least squares: each batch's H_B = X_B^T X_B / b and g_B in closed form, so g_B^T H_B g_B / |g_B|^2
    averaged over the batches is computed by numpy alone."""
    keys = jax.random.split(jax.random.PRNGKey(5), 3)
    x, y = jax.random.normal(keys[0], (24, 4)), jax.random.normal(keys[1], (24,))
    params = {"w": jax.random.normal(keys[2], (4,))}
    batch_loss = lambda p, b: 0.5 * jnp.mean((x[b] @ p["w"] - y[b]) ** 2)  # noqa: E731
    batches = [np.arange(i, i + 6) for i in range(0, 24, 6)]
    monitor = Monitor(tmp_path / "m", lr=0.1, every=1, k=1, optimizer="sgd")
    with pytest.raises(GDFlowsError, match="needs batch_loss and batches"):
        monitor(0, params, lambda p: batch_loss(p, np.arange(24)))
    row = monitor(0, params, lambda p: batch_loss(p, np.arange(24)), batch_loss=batch_loss, batches=batches)
    ratios = []
    for b in batches:
        xb, yb, w = np.asarray(x[b], float), np.asarray(y[b], float), np.asarray(params["w"], float)
        h = xb.T @ xb / len(b)
        g = h @ w - xb.T @ yb / len(b)
        ratios.append(g @ h @ g / (g @ g))
    assert row["sharpness"] == pytest.approx(np.mean(ratios), rel=1e-5)
    assert row["sharpness_sem"] == pytest.approx(np.std(ratios, ddof=1) / 2, rel=1e-4)
    assert row["threshold"] == pytest.approx(20.0) and row["threshold_name"] == "2/h"
