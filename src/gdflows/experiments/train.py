r"""``gdflows train``: a network trained by GD, watched through the Principal Flow (docs/theory.md, section 7).

The run is one :class:`~gdflows.problems.network.NetworkProblem`: training steps
(minibatches of ``batch_size``, or the full training set when it is 0) run as one
jitted scan per logged interval, every full-data pass goes chunk by chunk, and
all of it is split over the devices' batch mesh.

Every ``log_every`` steps (every ``edge_every`` once a diagnosis found
lambda_0 >= ``edge_at`` 2/h: dense diagnoses at the edge of stability;
the run ends after ``edge_diagnoses`` of them when that is set),
at the iterate theta_n and learning rate h = ``lr``, one metrics row holds

* ``loss``, ``train_acc``, ``test_loss``, ``test_acc``: the whole training and
  test sets (chunked);
* the diagnosis (:func:`gdflows.experiments.network_setup.diagnose_network`: lambda_0..lambda_{k-1}, 2/h,
  sc_i, c_i, c_i^2/|g|^2, the PF-predicted dE/dt = sum_i sc_i c_i^2 over the
  whole spectrum, |Hg|/|g|, |g|) of E_S, the loss over the curvature subset S
  (``--net.curvature-size`` class-balanced training images; all of them when
  the training set is no larger), in its dtype at tolerance ``tol``;
* the probe, on the same E_S: ``curvature_loss`` = E_S(theta_n) and what one
  GD step of rate h on E_S from theta_n does next,

.. math::

    \text{observed\_dE\_dt} = \frac{E_S(\theta_n - h g_n) - E_S(\theta_n)}{h}, \qquad
    c_{0,\text{next}} = u_0^T\, \nabla E_S(\theta_n - h g_n), \qquad g_n = \nabla E_S(\theta_n),

with ``loss_next`` = E_S(theta_n - h g_n). So the PF's prediction and the
observed change refer to one loss. For full-batch GD on a training set no
larger than the subset, E_S = E and that step is the run's own next step
(E_{n+1}). On a
quadratic, Re(sc_i) and ln|1 - h lambda_i| have the same sign, so the PF's
dE/dt and the observed change agree in sign direction by direction; on a
network they are compared by :func:`gdflows.experiments.eos.eos_verdicts`. A sign flip of c_0 over the
step (c_0 c_0,next < 0) is what h lambda_0 > 1 predicts (c_0,next ~ (1 - h lambda_0) c_0).

Eigenvector signs are free, so each u_i is oriented to agree with the previous
diagnosis' u_i (u_i . u_i,prev >= 0; the first u_0 so that c_0 >= 0), and c_i
is reported in that orientation. The previous eigenvectors also warm-start
Lanczos.

Runs resume and extend: after the steps up to each logged step the checkpoint
holds theta, the optimizer state, the step, the last rate and the warm-start
eigenvectors; the minibatch order is a pure function of (seed, step)
(``batch_schedule``), so no other RNG state exists. Reopened with the same
config (or a larger ``steps``: the run's identity leaves ``steps`` out), a run
drops metrics rows at or after the checkpoint's step and recomputes them with
the same compiled operations, so its metrics equal an uninterrupted run's. The
checkpoint also holds a digest of the rows logged before its step, and the one
before it stays beside it: a damaged checkpoint, or rows that differ from those
it was saved with, falls back (with a warning) to the previous one
(:meth:`~gdflows.experiments.report.runs.Run.resume`), to the same metrics. A
finished run is not recomputed. Ctrl-C raises
:class:`~gdflows.experiments.errors.RunInterrupted`, whose message says the step reached.

Divergence (:mod:`gdflows.experiments.divergence`): a loss that is not finite
or above 1e6 times the starting loss ends the run with a row whose ``outcome``
is ``diverged at step n`` (n: the first such iterate; the batch loss for
minibatches). The report covers the run up to there.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gdflows.curvature.batch_sharpness import BatchSharpness, batch_sharpness
from gdflows.curvature.preconditioned import adam_preconditioner, preconditioned_eigenpairs, rmsprop_preconditioner
from gdflows.errors import GDFlowsError
from gdflows.experiments.configs import TrainConfig
from gdflows.experiments.divergence import divergence_bound, is_diverged, outcome_diverged
from gdflows.experiments.driver import TrainState, drive
from gdflows.experiments.eos import diagnosed, first_at_edge, outcome, report_markdown
from gdflows.experiments.errors import RunInterrupted
from gdflows.experiments.network_setup import diagnose_network, network_run
from gdflows.experiments.optimizers.zoo import Method, method
from gdflows.experiments.report.runs import Run
from gdflows.experiments.steps import batch_schedule, network_steps, step_rate
from gdflows.optim import hyperparameters
from gdflows.optim.states import states_of
from gdflows.problems.network import NetworkProblem
from gdflows.stability.thresholds import stability_threshold
from gdflows.validation import check_tol

__all__ = ["TrainConfig", "run", "train", "write_report", "make_method", "log_steps"]


def run(cfg: TrainConfig) -> Path:
    """``gdflows train``: validate, then train (or resume, or extend) into ``cfg.out`` and write the report."""
    folder, problem = network_run(cfg, check=functools.partial(_check, cfg), tol=cfg.tol)
    if folder is None:
        return Path(cfg.out)
    start = time.perf_counter()
    if not ended_early(folder.read_table("metrics"), cfg):
        train(problem, cfg, folder)
    write_report(folder, cfg, time.perf_counter() - start)
    folder.finish()
    print(f"report: {folder.file('REPORT.md')}")
    return folder.path


def _check(cfg: TrainConfig, problem: NetworkProblem) -> None:
    if cfg.k > problem.theta0.size:
        raise GDFlowsError(f"--k {cfg.k} exceeds the number of parameters ({problem.theta0.size})")
    devices = problem.mesh.devices.size
    if cfg.batch_size % devices:
        raise GDFlowsError(
            f"--batch-size {cfg.batch_size} is not a multiple of the {devices} devices the batch is split across; "
            f"pass a multiple of {devices} or --devices that divides it"
        )


def make_method(cfg: TrainConfig) -> Method:
    """The optimizer family ``--optimizer`` (:data:`gdflows.optim.OPTIMIZERS`) with the flags it takes: ``--lr``,
    ``--momentum``, ``--dal-p`` (its ``p``), ``--max-lr``."""
    flags = {"lr": cfg.lr, "momentum": cfg.momentum, "p": cfg.dal_p, "max_lr": cfg.max_lr}
    takes = hyperparameters(cfg.optimizer)
    return method(cfg.optimizer, cfg.optimizer, **{k: v for k, v in flags.items() if k in takes})


@dataclasses.dataclass
class DiagnosedState(TrainState):
    """Everything a checkpoint holds (rows live in metrics.csv): the run's state and the last diagnosis'
    oriented eigenvectors (the next diagnosis' warm start)."""

    vectors: np.ndarray | None = None


def save_state(run: Run, st: DiagnosedState, rows: list[dict]) -> None:
    """Checkpoint ``st`` with a digest of the metrics ``rows`` logged before its step."""
    leaves = jax.tree_util.tree_leaves(st.opt_state)
    vectors = np.zeros((0, st.theta.shape[0])) if st.vectors is None else st.vectors
    run.save_checkpoint(
        st.step,
        {"theta": st.theta, "rate": np.asarray(st.rate), "vectors": vectors}
        | {f"opt_{i}": leaf for i, leaf in enumerate(leaves)},
        tables={"metrics": rows},
    )


def checkpoint_layout(st: DiagnosedState) -> dict[str, tuple]:
    """Shape and dtype of each checkpoint array of a run that starts at ``st`` (None: any)."""
    leaves = jax.tree_util.tree_leaves(st.opt_state)
    return {
        "theta": (st.theta.shape, st.theta.dtype),
        "rate": ((), None),
        "vectors": ((None, st.theta.shape[0]), None),
    } | {f"opt_{i}": (leaf.shape, leaf.dtype) for i, leaf in enumerate(leaves)}


def load_state(run: Run, start: DiagnosedState, put=jnp.asarray) -> tuple[DiagnosedState, list[dict]] | None:
    """The checkpoint's state and the metrics rows logged before it (None without a checkpoint), checked
    against the run's ``start`` (:meth:`Run.resume`: a damaged latest checkpoint gives way to the previous one);
    ``put`` places theta and the optimizer state (e.g. on a mesh)."""
    found = run.resume(checkpoint_layout(start), tables=("metrics",))
    if found is None:
        return None
    step, arrays, rows = found
    treedef = jax.tree_util.tree_structure(start.opt_state)
    leaves = [arrays[f"opt_{i}"] for i in range(treedef.num_leaves)]
    vectors = arrays["vectors"] if arrays["vectors"].shape[0] else None
    theta, opt_state = put((arrays["theta"], jax.tree_util.tree_unflatten(treedef, leaves)))
    return DiagnosedState(step, theta, opt_state, float(arrays["rate"]), vectors=vectors), rows["metrics"]


def orient(vectors: np.ndarray, previous: np.ndarray | None, g: np.ndarray) -> np.ndarray:
    """Signs s_i making u_i . u_i,prev >= 0 (or, with no previous, u_0 . g >= 0 and the rest +1)."""
    if previous is None:
        signs = np.ones(len(vectors))
        signs[0] = -1.0 if vectors[0] @ g < 0 else 1.0
        return signs
    return np.where(np.sum(vectors * previous, axis=1) < 0, -1.0, 1.0)


def probe(problem: NetworkProblem, theta, h: float):
    """(E_S, g, E_S(theta - h g), grad E_S(theta - h g)) on the curvature subset, g = grad E_S(theta)."""
    theta = jnp.asarray(theta).astype(problem.curvature_dtype)
    loss, g = problem.value_and_grad(theta, subset=True)
    loss_next, g_next = problem.value_and_grad(theta - h * g, subset=True)
    return loss, g, loss_next, g_next


def diagnostics_row(problem: NetworkProblem, cfg, st: DiagnosedState, train_eval) -> tuple[dict, np.ndarray]:
    """The metrics row at ``st`` and the oriented eigenvectors (see the module docstring).

    ``train_eval``: (loss, accuracy) over the training set at ``st.theta``, already computed.
    """
    test_loss, test_acc = problem.evaluate(st.theta, "test")
    loss_s, g, loss_next, g_next = probe(problem, st.theta, cfg.lr)
    d = diagnose_network(problem, st.theta, cfg.lr, cfg.k, st.vectors, cfg.max_hvps, cfg.pf_step)
    row = {
        "step": st.step,
        "loss": float(train_eval[0]),
        "train_acc": float(train_eval[1]),
        "test_loss": float(test_loss),
        "test_acc": float(test_acc),
        "rate": st.rate,
    }
    pf, vectors = pf_columns(d, st.vectors, (loss_s, g, loss_next, g_next), cfg.lr)
    theta = jnp.asarray(st.theta).astype(problem.curvature_dtype)
    matched = matched_columns(
        cfg.optimizer, cfg.lr, st.opt_state, problem.curvature_loss, theta, d, problem.tol, cfg.momentum
    )
    if cfg.batch_size and cfg.optimizer == "gd":  # minibatch SGD
        matched = batch_columns(problem, cfg.batch_size, cfg.lr, st.theta, (cfg.net.seed, st.step))
    return row | pf | matched, vectors


BATCHES = 16  # minibatches per batch-sharpness estimate


class _OnBatch(eqx.Module):
    """``loss(theta, x, y)`` as ``f(theta, (x, y))``; equal for the same loss, so its compilation is reused."""

    loss: Callable

    def __call__(self, theta, batch):
        return self.loss(theta, *batch)


def batch_columns(problem: NetworkProblem, batch_size: int, lr: float, theta, seed) -> dict:
    """Minibatch SGD's batch sharpness E_B[g_B^T H_B g_B / |g_B|^2] (:mod:`gdflows.curvature.batch_sharpness`)
    over :data:`BATCHES` minibatches of ``batch_size`` training examples, each drawn without replacement
    as SGD draws them (numpy's generator seeded by ``seed``), against 2/h; with its standard error."""
    rng = np.random.default_rng(seed)
    x, y = problem.train_xy
    picks = [rng.choice(len(problem.data.y_train), batch_size, replace=False) for _ in range(BATCHES)]
    return sharpness_columns(batch_sharpness(_OnBatch(problem.batch_loss), theta, [(x[i], y[i]) for i in picks]), lr)


def sharpness_columns(found: BatchSharpness, lr: float) -> dict:
    """The metrics columns of a batch-sharpness estimate against minibatch SGD's threshold 2/h."""
    return {
        "sharpness": found.mean,
        "sharpness_sem": found.sem,
        "sharpness_name": "batch sharpness E_B[g_B^T H_B g_B / |g_B|^2]",
        "threshold": 2 / lr,
        "threshold_name": "2/h",
    }


# The families whose stability is that of a preconditioned GD: family -> (P from the optax state, the state
# has taken a step (P is an estimate), the sharpness's name). optax's defaults: Adam b2 = 0.999, eps = 1e-8;
# RMSProp decay 0.9, eps = 1e-8 inside the root.
PRECONDITIONED = {
    "adam": (
        adam_preconditioner,
        lambda st: int(states_of(st, optax.ScaleByAdamState)[0].count) > 0,
        "Adam's preconditioned sharpness lambda_max(P^-1/2 H P^-1/2)",
    ),
    "rmsprop": (
        rmsprop_preconditioner,
        lambda st: any(bool(jnp.any(n != 0)) for n in jax.tree.leaves(states_of(st, optax.ScaleByRmsState)[0].nu)),
        "RMSProp's preconditioned sharpness lambda_max(P^-1/2 H P^-1/2)",
    ),
}


def matched_columns(optimizer: str, lr: float, opt_state, loss, theta, d, tol: float, momentum: float = 0.9) -> dict:
    """The sharpness that matches ``optimizer`` and its stability threshold (docs/theory.md, section 11),
    for the families whose threshold is not GD's 2/h or whose curvature is preconditioned: momentum, lambda_0
    (from the diagnosis ``d``) against (2 + 2 beta)/h; adam and rmsprop (:data:`PRECONDITIONED`),
    lambda_max(P^-1/2 H P^-1/2) of ``loss`` at ``theta`` (at ``tol``), P from ``opt_state``, against
    (2 + 2 beta_1)/((1 - beta_1) h) and 2/h; NaN before the first step, when P is not an estimate yet.
    Other families: no columns (GD's apply)."""
    if optimizer == "momentum":
        threshold = stability_threshold("momentum", lr, momentum=momentum)
        return {
            "sharpness": float(np.real(d.eigenvalues[0])),
            "sharpness_name": "lambda_0",
            "threshold": threshold,
            "threshold_name": f"(2 + 2 beta)/h = {threshold * lr:.3g}/h",
        }
    if optimizer not in PRECONDITIONED:
        return {}
    preconditioner, stepped, name = PRECONDITIONED[optimizer]
    value = float("nan")
    if stepped(opt_state):
        value = float(preconditioned_eigenpairs(loss, theta, preconditioner(opt_state), 1, tol=tol).values[0])
    threshold = stability_threshold(optimizer, lr)
    edge = f"(2 + 2 beta_1)/((1 - beta_1) h) = {threshold * lr:.3g}/h" if optimizer == "adam" else "2/h"
    return {"sharpness": value, "sharpness_name": name, "threshold": threshold, "threshold_name": edge}


def pf_columns(d, previous, probed, lr: float) -> tuple[dict, np.ndarray]:
    """The diagnosis ``d``'s columns of a metrics row, c_i oriented to follow ``previous`` (:func:`orient`),
    and the probe's: ``probed`` = (E_S, g, E_S(theta - h g), grad E_S(theta - h g)) (:func:`probe`).
    Returns the columns and the oriented eigenvectors (the next call's ``previous``)."""
    loss_s, g, loss_next, g_next = probed
    signs = orient(d.vectors, previous, np.asarray(g))
    vectors = d.vectors * signs[:, None].astype(d.vectors.dtype)  # the warm start stays in the diagnosis dtype
    row = d.as_row()
    for i, s in enumerate(signs):
        row[f"c_{i}"] = float(s * np.real(d.c[i]))
    return row | {
        "curvature_loss": float(loss_s),
        "loss_next": float(loss_next),
        "observed_dE_dt": float((loss_next - loss_s) / lr),
        "c_0_next": float(vectors[0] @ np.asarray(g_next)),
        "outcome": "",
    }, vectors


def _fresh_state(problem, opt, method) -> DiagnosedState:
    rate = method.lr if method.lr is not None else float("nan")
    return DiagnosedState(0, problem.theta0, problem.replicate(opt.init(problem.theta0)), rate)


def _resume(run: Run, problem, opt, method) -> tuple[DiagnosedState, list[dict]]:
    """The last checkpoint (or the start) and the metrics rows logged before it."""
    fresh = _fresh_state(problem, opt, method)
    return load_state(run, fresh, problem.replicate) or (fresh, [])


def at_edge(rows, step: int, edge_at: float) -> int:
    """The diagnosed rows at or before ``step`` from the first with lambda_0 >= ``edge_at`` 2/h on (0: none)."""
    diag = [r for r in diagnosed(rows) if int(float(r["step"])) <= step]
    first = first_at_edge(diag, edge_at)
    return 0 if first is None else len(diag) - first


def log_steps(cfg: TrainConfig, start: int, rows: list[dict] = ()) -> Iterator[int]:
    """Logged steps from ``start`` on: every ``log_every`` steps, every ``edge_every`` once a row of ``rows``
    reached the edge, and the last step; or, with ``edge_diagnoses``, none after that many rows from the first
    at the edge (the run ends there). ``rows`` is read as the run appends to it, so the schedule is a function
    of the rows and resumes with them."""
    step = 0
    while step < cfg.steps:
        if step >= start:
            yield step
        edge = at_edge(rows, step, cfg.edge_at)
        if cfg.edge_diagnoses and edge >= cfg.edge_diagnoses:
            return
        step += cfg.edge_every if cfg.edge_every and edge else cfg.log_every
    yield cfg.steps


def ended_early(rows: list[dict], cfg: TrainConfig) -> bool:
    """Whether ``rows`` (a finished run's metrics) ended before any step budget: diverged, or with its
    ``edge_diagnoses`` taken. The schedule (:func:`log_steps`) depends on the rows, not on ``steps``, so such a
    run's rows are those of any larger budget: an extended run keeps them, with or without its checkpoint."""
    ending = rows[-1].get("outcome") if rows else None
    if is_diverged(ending):
        return True
    if ending != "completed":
        return False
    last = int(float(rows[-1]["step"]))
    return bool(cfg.edge_diagnoses) and at_edge(rows, last, cfg.edge_at) >= cfg.edge_diagnoses


def run_outcome(rows: list[dict], cfg: TrainConfig) -> str:
    """The run's outcome under ``cfg``'s budget: the rows' own (:func:`~gdflows.experiments.eos.outcome`), but
    ``interrupted`` for rows that completed a smaller budget and that a larger ``steps`` has not extended yet."""
    found = outcome(rows)
    if found == "completed" and not ended_early(rows, cfg) and int(float(rows[-1]["step"])) < cfg.steps:
        return "interrupted"
    return found


def train(problem: NetworkProblem, cfg: TrainConfig, run: Run) -> list[dict]:
    """Train (or resume, or extend) into ``run``; return the metrics rows.

    The steps run through the one driver (:func:`gdflows.experiments.driver.drive`): at each logged step,
    take the steps up to it, checkpoint, then evaluate and diagnose (:func:`log_row`). Ctrl-C raises
    :class:`RunInterrupted` naming the checkpointed step.
    """
    if cfg.tol is not None and cfg.tol != problem.tol:  # a problem built without the config's --tol
        problem = dataclasses.replace(problem, tol=check_tol(cfg.tol, problem.curvature_dtype, "--tol"))
    method = make_method(cfg)
    opt = method.make()
    steps = network_steps(problem, opt, record=functools.partial(step_rate, lr=method.lr))
    idx = batch_schedule(len(problem.data.y_train), cfg.batch_size or None, cfg.steps, cfg.net.seed)
    st, rows = _resume(run, problem, opt, method)
    # divergence is relative to the loss at step 0 (the same compiled evaluation as its metrics row)
    first = {} if rows else {0: problem.evaluate(problem.theta0)}  # step 0's evaluation, reused by its row
    loss0 = float(rows[0]["loss"]) if rows else float(first[0][0])
    log = functools.partial(log_row, problem, cfg, run, rows, loss0, first)
    try:
        diverged = drive(
            steps,
            st,
            idx,
            log_steps(cfg, st.step, rows),
            log,
            loss0,
            save=lambda s: save_state(run, s, rows),
            progress=f"train lr={cfg.lr:g}",
        )
    except KeyboardInterrupt:
        raise RunInterrupted(
            f"interrupted: {run.path} holds the run up to step {st.step} of {cfg.steps}; "
            "rerun the same command to resume"
        ) from None
    if diverged is None:
        rows[-1]["outcome"] = "completed"
    run.write_table("metrics", rows)
    return rows


def log_row(
    problem, cfg, run: Run, rows: list[dict], loss0: float, first: dict, st: DiagnosedState, chunk, say
) -> int | None:
    """The metrics row at ``st`` (or the diverged row), appended to ``rows`` and written; returns the step
    where the run diverged, or None. ``first``: step -> (loss, accuracy) already evaluated there."""
    if chunk is not None and chunk.diverged_at is not None:
        rows.append(_diverged(chunk.diverged_at, chunk.diverged_loss))
        return chunk.diverged_at
    say(f"step {st.step}: loss and accuracy over {len(problem.data.y_train)} images")
    train_eval = first.pop(st.step) if st.step in first else problem.evaluate(st.theta)
    loss = float(train_eval[0])
    if not loss <= divergence_bound(loss0):  # also NaN
        rows.append(_diverged(st.step, loss))
        return st.step
    say(f"step {st.step}: diagnosis on {len(problem.curvature_index)} images")
    row, st.vectors = diagnostics_row(problem, cfg, st, train_eval)
    rows.append(row)
    run.write_table("metrics", rows)
    return None


def _diverged(step: int, loss: float) -> dict:
    return {"step": step, "loss": loss, "outcome": outcome_diverged(step)}


def write_report(run: Run, cfg: TrainConfig, elapsed: float) -> Path:
    header = (
        f"# gdflows train\n\nComputed by `gdflows train` with the flags recorded in `config.json` "
        f"(this session: {elapsed:.0f} s). One row per logged step: "
        f"`metrics.csv` (definitions: `gdflows.experiments.train`).\n\n"
    )
    return run.write_text("REPORT.md", header + report_markdown(run, cfg))
