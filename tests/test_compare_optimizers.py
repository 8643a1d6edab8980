import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.sparse.linalg import LinearOperator, eigsh

from gdflows.experiments.optimizers import compare as co
from gdflows.experiments.optimizers.metrics import count_spikes, steps_to_target
from gdflows.experiments.optimizers.plans import SUBSET_NETS, plan_for
from gdflows.experiments.report.runs import read_csv
from gdflows.experiments.steps import batch_schedule, step_flops
from gdflows.problems.network import network_problem


def test_spikes_count_upward_crossings_of_twice_running_min():
    assert count_spikes([1.0, 0.5, 1.2, 0.4, 0.3, 0.7, 0.65, 0.2]) == 2  # 1.2 > 1.0, 0.7 > 0.6
    assert count_spikes([1.0, 0.9, 0.8]) == 0
    assert count_spikes([1.0, 0.5, float("nan")]) == 1


def test_steps_to_target_first_hit():
    assert steps_to_target([0, 10, 20], [1.0, 0.09, 0.05], 0.1) == 10
    assert steps_to_target([0, 10], [1.0, 0.5], 0.1) is None


def test_batch_schedule_is_a_permutation_per_epoch():
    idx = batch_schedule(10, 3, 7, seed=0)
    assert idx.shape == (7, 3)
    for epoch in (idx[:3].ravel(), idx[3:6].ravel()):
        assert len(set(epoch.tolist())) == 9
    np.testing.assert_array_equal(idx, batch_schedule(10, 3, 7, seed=0))


def test_sharpness_finds_the_top_eigenvalue_not_the_largest_magnitude():
    lam = jnp.array([5.0, 2.0, -7.0, 0.5])
    top = co.make_sharpness(lambda t, x, y: 0.5 * jnp.sum(lam * t**2), tol=1e-10)
    value, _ = top(jnp.zeros(4), jnp.ones(4), None, None)
    assert float(value) == pytest.approx(5.0, rel=1e-8)


def test_small_comparison_matches_manual_gd_and_dal_and_resumes(tmp_path, monkeypatch):
    cfg = co.CompareOptimizersConfig(
        out=tmp_path / "run",
        scale=1.0,  # the MNIST-subset comparison
        models=("mlp",),
        regimes=("full", "minibatch"),
        seeds=1,
        steps=10,
        mlp_n_train=64,
        batch_size=16,
        log_every=5,
        methods=("gd_lr0.1", "dal_p1_hvp"),
        dtype="float64",
    )
    cfg.run()
    rows = read_csv(tmp_path / "run" / "results.csv")
    assert {(r["regime"], r["method"]) for r in rows} == {
        ("full", "gd_lr0.1"),
        ("full", "dal_p1_hvp"),
        ("minibatch", "gd_lr0.1"),
        ("minibatch", "dal_p1_hvp"),
    }

    plan = plan_for(cfg.resolved())
    data = co.load(plan, plan.nets[0])
    prob = network_problem("mlp", data, seed=0, dtype="float64", **SUBSET_NETS["mlp"])
    theta = prob.theta0
    for _ in range(10):
        theta = theta - 0.1 * jax.grad(prob.loss)(theta)
    gd_row = next(r for r in rows if r["regime"] == "full" and r["method"] == "gd_lr0.1")
    assert float(gd_row["train_loss"]) == pytest.approx(float(prob.loss(theta)), rel=1e-10)
    # DAL by hand (docs/dal.md): h_t = min(2 |g| / |H g|, max_lr = 5), theta <- theta - h_t g, with H g from jax.jvp.
    grad = jax.jit(jax.grad(prob.loss))
    hvp = jax.jit(lambda t, v: jax.jvp(grad, (t,), (v,))[1])
    theta, hs = prob.theta0, []
    for _ in range(10):
        g = grad(theta)
        hs.append(min(2 * float(jnp.linalg.norm(g) / jnp.linalg.norm(hvp(theta, g))), 5.0))
        theta = theta - hs[-1] * g
    dal_row = next(r for r in rows if r["regime"] == "full" and r["method"] == "dal_p1_hvp")
    assert float(dal_row["train_loss"]) == pytest.approx(float(prob.loss(theta)), rel=1e-10)
    # logged at steps 0, 5, 10: the last third (steps >= 20/3) holds step 10 only, whose rate is the 10th step's
    assert float(dal_row["mean_h_last_third"]) == pytest.approx(hs[-1], rel=1e-10)
    # sharpness of the full loss at the end, by scipy's Lanczos on the HVP (the run's tolerance: residual 1e-4)
    op = LinearOperator((theta.size,) * 2, lambda v: np.asarray(hvp(theta, jnp.asarray(v.ravel()))), dtype=np.float64)
    lam0 = eigsh(op, k=1, which="LA", tol=1e-8, v0=np.ones(theta.size), return_eigenvectors=False)[0]
    assert float(dal_row["final_two_over_lambda0"]) == pytest.approx(2 / lam0, rel=1e-3)
    assert (tmp_path / "run" / "REPORT.md").read_text().count("| mlp |") == 4

    def no_training(*args, **kwargs):
        raise AssertionError("a finished configuration was trained again")

    monkeypatch.setattr(co, "train_run", no_training)
    cfg.run()
    assert read_csv(tmp_path / "run" / "results.csv") == rows


def test_step_flops_counts_a_matrix_vector_product_as_2mn():
    chunk = jax.jit(lambda theta, state, idx, x, y: x @ theta + state)
    x = jnp.ones((50, 40))
    assert step_flops(chunk, jnp.ones(40), 0.0, x, None, jnp.zeros((3, 0), jnp.int32)) == 2 * 50 * 40 + 50
