r"""``gdflows train``: a network trained by GD, watched through the Principal Flow (SPEC section 3).

Every ``log_every`` steps, at the iterate theta_n and learning rate h = ``lr``,
one metrics row holds :func:`gdflows.stability.diagnose` (lambda_0..lambda_{k-1},
2/h, sc_i, c_i, c_i^2/|g|^2, the PF-predicted dE/dt = sum_i sc_i c_i^2 over the
whole spectrum, |Hg|/|g|), the full training loss and train/test accuracy, and
what one full-batch GD step of rate h from theta_n does next:

.. math::

    \text{observed\_dE\_dt} = \frac{E(\theta_n - h g_n) - E(\theta_n)}{h}, \qquad
    c_{0,\text{next}} = u_0^T\, \nabla E(\theta_n - h g_n).

For full-batch GD that step is the run's own next step (E_{n+1}). On a
quadratic, Re(sc_i) and ln|1 - h lambda_i| have the same sign, so the PF's
dE/dt and the observed change agree in sign direction by direction; on a
network they are compared by :func:`eos_verdicts`. A sign flip of c_0 over the
step (c_0 c_0,next < 0) is what h lambda_0 > 1 predicts (c_0,next ~ (1 - h lambda_0) c_0).

Eigenvector signs are free, so each u_i is oriented to agree with the previous
diagnosis' u_i (u_i . u_i,prev >= 0; the first u_0 so that c_0 >= 0), and c_i
is reported in that orientation. The previous eigenvectors also warm-start
Lanczos.

Runs resume: after every logged chunk the checkpoint holds theta, the optimizer
state, the step, the last rate and the warm-start eigenvectors; the minibatch
order is a pure function of (seed, step) (``batch_schedule``), so no other RNG
state exists. Reopened with the same config, a run drops metrics rows at or
after the checkpoint's step and recomputes them with the same compiled
operations, so its metrics equal an uninterrupted run's. A loss going
non-finite ends the run with a row whose ``outcome`` is ``diverged at step n``
(n: first iterate with a non-finite loss; the batch loss for minibatches).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gdflows import eos_plots
from gdflows.errors import GDFlowsError
from gdflows.validation import is_integer_in
from gdflows.experiments.network_setup import NetworkSetup
from gdflows.experiments.optimizer_run import batch_schedule, make_chunk
from gdflows.experiments.optimizer_zoo import Method
from gdflows.markdown import markdown_table
from gdflows.optim import dal
from gdflows.problems.network import NetworkProblem
from gdflows.progress import track
from gdflows.runs import Run, read_csv
from gdflows.stability import diagnose

OPTIMIZERS = ("gd", "momentum", "adam", "dal")


@dataclasses.dataclass
class TrainConfig:
    """Full-batch GD (or another optimizer, or minibatches) with PF diagnostics every few steps."""

    out: Path = Path("runs/train")
    net: NetworkSetup = dataclasses.field(default_factory=NetworkSetup)
    lr: float = 0.12  # the rate of GD, and the h of every diagnosis
    steps: int = 2000
    optimizer: str = "gd"  # gd | momentum | adam | dal (DAL-p, its own rate; diagnostics still use lr)
    momentum: float = 0.9
    dal_p: float = 1.0
    max_lr: float = 5.0
    batch_size: int = 0  # 0: full batch
    log_every: int = 20
    k: int = 2  # eigen-directions per diagnosis
    tol: float = 1e-7  # eigenpair residual and PF-field tolerance
    hover_tol: float = 0.1  # |lambda_0 / (2/lr) - 1| allowed over the last third
    noise_rtol: float = 1e-6  # observed changes below this fraction of the loss are noise

    def run(self) -> Path:
        check_config(self)
        run = Run.open(self.out, self)
        start = time.perf_counter()
        train(self.net.build(), self, run)
        write_report(run, self, time.perf_counter() - start)
        print(f"report: {run.file('REPORT.md')}")
        return run.path


def check_config(cfg: TrainConfig) -> None:
    if cfg.optimizer not in OPTIMIZERS:
        raise GDFlowsError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {cfg.optimizer!r}")
    for name in ("steps", "log_every", "k"):
        value = getattr(cfg, name)
        if not is_integer_in(value, 0 if name == "steps" else 1):
            raise GDFlowsError(f"{name} must be an integer >= {0 if name == 'steps' else 1}, got {value!r}")
    if cfg.batch_size < 0:
        raise GDFlowsError(f"batch_size must be >= 0 (0: full batch), got {cfg.batch_size}")


def make_method(cfg: TrainConfig) -> Method:
    """The optimizer as an optax transformation accepting ``value``/``value_fn``."""
    fixed = {"gd": lambda: optax.sgd(cfg.lr), "momentum": lambda: optax.sgd(cfg.lr, momentum=cfg.momentum),
             "adam": lambda: optax.adam(cfg.lr)}
    if cfg.optimizer == "dal":
        return Method("dal", "dal", lambda: dal(p=cfg.dal_p, max_lr=cfg.max_lr))
    make = fixed[cfg.optimizer]
    return Method(cfg.optimizer, cfg.optimizer, lambda: optax.with_extra_args_support(make()), cfg.lr)


@dataclasses.dataclass
class TrainState:
    """Everything a checkpoint holds (rows live in metrics.csv)."""

    step: int
    theta: jax.Array
    opt_state: Any
    rate: float  # rate of the last step taken (nan before the first step of DAL)
    vectors: np.ndarray | None  # the last diagnosis' oriented eigenvectors


def save_state(run: Run, st: TrainState) -> None:
    leaves = jax.tree_util.tree_leaves(st.opt_state)
    vectors = np.zeros((0, st.theta.shape[0])) if st.vectors is None else st.vectors
    run.save_checkpoint(st.step, {"theta": st.theta, "rate": np.asarray(st.rate), "vectors": vectors}
                        | {f"opt_{i}": leaf for i, leaf in enumerate(leaves)})


def load_state(run: Run, opt_state0) -> TrainState | None:
    found = run.load_checkpoint()
    if found is None:
        return None
    step, arrays = found
    treedef = jax.tree_util.tree_structure(opt_state0)
    leaves = [jnp.asarray(arrays[f"opt_{i}"]) for i in range(treedef.num_leaves)]
    vectors = arrays["vectors"] if arrays["vectors"].shape[0] else None
    return TrainState(step, jnp.asarray(arrays["theta"]), jax.tree_util.tree_unflatten(treedef, leaves),
                      float(arrays["rate"]), vectors)


def orient(vectors: np.ndarray, previous: np.ndarray | None, g: np.ndarray) -> np.ndarray:
    """Signs s_i making u_i . u_i,prev >= 0 (or, with no previous, u_0 . g >= 0 and the rest +1)."""
    if previous is None:
        signs = np.ones(len(vectors))
        signs[0] = -1.0 if vectors[0] @ g < 0 else 1.0
        return signs
    return np.where(np.sum(vectors * previous, axis=1) < 0, -1.0, 1.0)


def _make_probe(problem: NetworkProblem):
    """jit(theta, h) -> (E, g, E(theta - h g), grad E(theta - h g))."""

    @jax.jit
    def probe(theta, h):
        loss, g = jax.value_and_grad(problem.loss)(theta)
        loss_next, g_next = jax.value_and_grad(problem.loss)(theta - h * g)
        return loss, g, loss_next, g_next

    return probe


def _accuracy(problem: NetworkProblem):
    data = problem.data
    train_xy = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    test_xy = jnp.asarray(data.x_test), jnp.asarray(data.y_test)
    return jax.jit(lambda theta: (problem.accuracy(theta, *train_xy), problem.accuracy(theta, *test_xy)))


def diagnostics_row(problem, cfg, st: TrainState, probe, accuracy) -> tuple[dict, np.ndarray]:
    """The metrics row at ``st`` and the oriented eigenvectors (see the module docstring)."""
    loss, g, loss_next, g_next = probe(st.theta, cfg.lr)
    d = diagnose(problem.loss, st.theta, cfg.lr, cfg.k, tol=cfg.tol, warm_start=st.vectors)
    signs = orient(d.vectors, st.vectors, np.asarray(g))
    vectors = d.vectors * signs[:, None]
    train_acc, test_acc = accuracy(st.theta)
    row = {"step": st.step, "loss": float(loss), "train_acc": float(train_acc), "test_acc": float(test_acc),
           "rate": st.rate} | d.as_row()
    for i, s in enumerate(signs):
        row[f"c_{i}"] = float(s * np.real(d.c[i]))
    return row | {
        "loss_next": float(loss_next),
        "observed_dE_dt": float((loss_next - loss) / cfg.lr),
        "c_0_next": float(vectors[0] @ np.asarray(g_next)),
        "outcome": "",
    }, vectors


def _first_nonfinite(values) -> int | None:
    bad = np.flatnonzero(~np.isfinite(np.asarray(values)))
    return int(bad[0]) if bad.size else None


def _fresh_state(problem, opt, method) -> TrainState:
    rate = method.lr if method.lr is not None else float("nan")
    return TrainState(0, problem.theta0, opt.init(problem.theta0), rate, None)


def _resume(run: Run, problem, opt, method) -> tuple[TrainState, list[dict]]:
    """The last checkpoint (or the start) and the metrics rows logged before it."""
    fresh = _fresh_state(problem, opt, method)
    st = load_state(run, fresh.opt_state) or fresh
    old = read_csv(run.file("metrics.csv")) if run.file("metrics.csv").exists() else []
    return st, [r for r in old if int(r["step"]) < st.step]


def log_steps(cfg: TrainConfig, start: int) -> list[int]:
    """Logged steps from ``start``: every ``log_every`` steps, and the last step."""
    return [s for s in range(0, cfg.steps, cfg.log_every) if s >= start] + [cfg.steps]


def train(problem: NetworkProblem, cfg: TrainConfig, run: Run) -> list[dict]:
    """Train (or resume) into ``run``; return the metrics rows."""
    check_config(cfg)
    method = make_method(cfg)
    opt = method.make()
    chunk = make_chunk(problem.batch_loss, method, opt, full_batch=cfg.batch_size == 0)
    x, y = jnp.asarray(problem.data.x_train), jnp.asarray(problem.data.y_train)
    idx = jnp.asarray(batch_schedule(x.shape[0], cfg.batch_size or None, cfg.steps, cfg.net.seed))
    probe, accuracy = _make_probe(problem), _accuracy(problem)
    st, rows = _resume(run, problem, opt, method)
    todo = log_steps(cfg, st.step)
    for step, nxt in track(list(zip(todo, todo[1:] + [None])), f"train lr={cfg.lr:g}"):
        loss = float(probe(st.theta, cfg.lr)[0])
        if not np.isfinite(loss):
            rows.append(_diverged(step, loss))
            break
        row, st.vectors = diagnostics_row(problem, cfg, st, probe, accuracy)
        rows.append(row)
        if nxt is None:
            row["outcome"] = "completed"
            break
        run.write_table("metrics", rows)
        st.theta, st.opt_state, h, values = chunk(st.theta, st.opt_state, x, y, idx[step:nxt])
        bad = _first_nonfinite(values)
        if bad is not None:
            rows.append(_diverged(step + bad, float(values[bad])))
            break
        st.step, st.rate = nxt, float(h[-1])
        save_state(run, st)
    run.write_table("metrics", rows)
    return rows


def _diverged(step: int, loss: float) -> dict:
    return {"step": step, "loss": loss, "outcome": f"diverged at step {step}"}


def outcome(rows) -> str:
    """``completed``, ``diverged at step n``, or ``interrupted`` (no final row yet)."""
    return str(rows[-1].get("outcome") or "interrupted") if rows else "interrupted"


def _col(rows, key) -> np.ndarray:
    return np.array([float(r[key]) if r.get(key) not in ("", None) else np.nan for r in rows])


def diagnosed(rows) -> list:
    """The rows that hold a diagnosis (all but a divergence row)."""
    return [r for r in rows if r.get("lambda_0") not in ("", None)]


def eos_verdicts(rows, tol: float = 0.1, noise_rtol: float = 1e-6) -> dict:
    """The edge-of-stability and sign verdicts from metrics rows (dicts; strings or numbers).

    * ``rose_from_below``: some logged lambda_0 before the last third of the run
      lies below (1 - tol) 2/h; ``hovers``: every logged lambda_0 in the last third
      (steps >= 2/3 of the last logged step) has |lambda_0 / (2/h) - 1| <= tol;
      ``edge_of_stability``: both.
    * ``sign_agreement``: over the steps whose observed change is above noise,
      |E(theta_n - h g_n) - E_n| > noise_rtol |E_n|, the fraction where
      sign(PF dE/dt) = sign(observed_dE_dt); ``signs_agree``: it is >= 0.9.
    * ``c0_flip_fraction``: fraction of logged steps in the last third with
      c_0 c_0,next < 0 (h lambda_0 > 1 makes c_0 flip every step).
    """
    rows = diagnosed(rows)
    if len(rows) < 3:
        raise GDFlowsError(f"eos_verdicts needs at least 3 diagnosed rows, got {len(rows)}; log more often")
    steps, edge = _col(rows, "step"), float(rows[0]["two_over_h"])
    ratio = _col(rows, "lambda_0") / edge
    last = steps >= 2 * steps[-1] / 3
    dev = float(np.max(np.abs(ratio[last] - 1)))
    loss, change = _col(rows, "loss"), _col(rows, "loss_next") - _col(rows, "loss")
    above = np.isfinite(change) & (np.abs(change) > noise_rtol * np.abs(loss))
    agree = np.sign(_col(rows, "dE_dt")[above]) == np.sign(change[above])
    share = float(np.mean(agree)) if above.any() else float("nan")
    flips = (_col(rows, "c_0") * _col(rows, "c_0_next"))[last] < 0
    rose = bool(np.any(ratio[~last] < 1 - tol))
    return {
        "lr": 2 / edge, "two_over_lr": edge, "min_ratio_before_last_third": float(np.min(ratio[~last])),
        "rose_from_below": rose, "mean_ratio_last_third": float(np.mean(ratio[last])),
        "max_deviation_last_third": dev, "hovers": dev <= tol, "edge_of_stability": rose and dev <= tol,
        "steps_above_noise": int(above.sum()), "sign_agreement": share, "signs_agree": share >= 0.9,
        "c0_flip_fraction": float(np.mean(flips)),
    }


def figures(run: Run, rows, tol: float) -> dict[str, Path]:
    """The four figures of a training run, drawn from its metrics rows."""
    rows = diagnosed(rows)
    return {
        "sharpness": eos_plots.sharpness(run.figure_path("sharpness.png"), rows, tol),
        "sc_0": eos_plots.stability_coefficient(run.figure_path("sc0.png"), rows),
        "c_0": eos_plots.projection(run.figure_path("c0.png"), rows),
        "loss": eos_plots.loss_change(run.figure_path("loss.png"), rows),
    }


VERDICT_COLUMNS = ("lr", "min_ratio_before_last_third", "mean_ratio_last_third", "max_deviation_last_third",
                   "edge_of_stability", "steps_above_noise", "sign_agreement", "c0_flip_fraction")
VERDICT_FORMAT = {"lr": "{:g}", "min_ratio_before_last_third": "{:.3f}", "mean_ratio_last_third": "{:.3f}",
                  "max_deviation_last_third": "{:.3f}", "sign_agreement": "{:.1%}", "c0_flip_fraction": "{:.0%}"}


def report_markdown(run: Run, cfg: TrainConfig, prefix: str = "") -> str:
    """Outcome, verdicts and figures of a run; image links are ``prefix + figures/...``."""
    rows = read_csv(run.file("metrics.csv"))
    lines = [f"Outcome: **{outcome(rows)}** after {rows[-1]['step']} of {cfg.steps} steps "
             f"({cfg.optimizer}, lr = {cfg.lr:g}, {cfg.net.model} {cfg.net.activation}, "
             f"{cfg.net.loss}, {cfg.net.n_train} training images).", ""]
    if len(diagnosed(rows)) >= 3:
        v = eos_verdicts(rows, cfg.hover_tol, cfg.noise_rtol)
        lines += [markdown_table([v], VERDICT_COLUMNS, VERDICT_FORMAT), "",
                  f"Ratios are lambda_0 / (2/lr); the edge-of-stability verdict asks the ratio to fall "
                  f"below {1 - cfg.hover_tol:g} before the last third and to stay within "
                  f"{cfg.hover_tol:.0%} of 1 in it. Sign agreement: sign(PF dE/dt) = sign(E_(n+1) - E_n) "
                  f"on steps where |E_(n+1) - E_n| > {cfg.noise_rtol:g} E_n.", ""]
    for name, path in figures(run, rows, cfg.hover_tol).items():
        lines.append(f"![{name}]({prefix}figures/{path.name})")
    return "\n".join(lines) + "\n"


def write_report(run: Run, cfg: TrainConfig, elapsed: float) -> Path:
    header = (f"# gdflows train\n\nComputed by `gdflows train` with the flags recorded in `config.json` "
              f"(this session: {elapsed:.0f} s). One row per logged step: "
              f"`metrics.csv` (definitions: `gdflows.experiments.train`).\n\n")
    return run.write_text("REPORT.md", header + report_markdown(run, cfg))


DEMO = TrainConfig(net=NetworkSetup(n_train=500, downsample=4), lr=0.2, steps=400, log_every=8)


def eos_section(parent: Run, cfg: TrainConfig = DEMO) -> str:
    """The demo's section: a short MNIST run into ``<parent>/eos`` and its Markdown."""
    cfg = dataclasses.replace(cfg, out=parent.path / "eos")
    run = Run.open(cfg.out, cfg)
    train(cfg.net.build(), cfg, run)
    intro = ("## Edge of stability on MNIST through the PF\n\n"
             "Full-batch GD on a tanh MLP (7x7 MNIST images): lambda_0 is driven to 2/h and hovers; "
             "there h lambda_0 > 1, so sc_0 is complex and c_0 flips sign every step, and the PF's "
             "dE/dt = sum_i sc_i c_i^2 predicts the sign of each step's loss change. "
             f"Run folder: `eos/` (resume or extend with `gdflows train`).\n\n")
    return intro + report_markdown(run, cfg, prefix="eos/")
