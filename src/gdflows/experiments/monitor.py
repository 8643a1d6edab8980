r"""A monitor for your own training loop: ``gdflows train``'s metrics table, figures and REPORT.md, from a loop
gdflows does not run (any model, any optimizer, any framework whose parameters are a pytree).

.. code-block:: python

    with Monitor("runs/mine", lr=0.05, every=10) as monitor:
        for step in range(steps):
            monitor(step, params, lambda p: loss(p, batch), opt_state)  # diagnoses when step % every == 0
            params, opt_state = update(params, opt_state, batch)
    # runs/mine holds metrics.csv, figures/ and REPORT.md, also when the loop raised or diverged

At each diagnosed step n the monitor takes the loss E the caller passes (the full training set, a fixed
diagnosis batch: any function of the parameters) and the rate h (the optimizer's own when its state holds
one, as DAL's and CDAT's do; else ``lr``), and appends to ``metrics.csv`` the row ``gdflows train`` writes
(:func:`gdflows.experiments.train.pf_columns`): the top-k lambda_i against 2/h, sc_i, c_i (oriented to
follow the previous diagnosis), the PF's dE/dt over the whole spectrum and its top-k part, the one-step
quadratic model, and the probe

.. math:: \text{observed\_dE\_dt} = \frac{E(\theta_n - h g_n) - E(\theta_n)}{h},

so the PF's prediction and the observed change refer to one loss. A loss that is not finite, or above
10^6 times the first one logged, ends the monitoring with a row ``diverged at step n``.

The folder resumes: a monitor opened on it again with the same settings reads its rows and warm-start
eigenvectors and ignores the steps it has logged, so a loop restarted from its own checkpoint carries on
the same table; other settings are refused. :meth:`Monitor.report` (called on leaving the ``with``
block) writes the figures and REPORT.md with ``gdflows train``'s verdicts, predictor table and prose.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gdflows.curvature.batch_sharpness import batch_sharpness
from gdflows.curvature.chunked import grad_of
from gdflows.diagnosis import diagnose
from gdflows.errors import GDFlowsError
from gdflows.experiments.divergence import divergence_bound, is_diverged, outcome_diverged
from gdflows.experiments.eos import diagnosis_markdown, outcome
from gdflows.experiments.report.runs import Run, atomic_write_bytes, read_csv
from gdflows.experiments.steps import step_rate
from gdflows.experiments.train import matched_columns, pf_columns, sharpness_columns
from gdflows.params import flatten_loss
from gdflows.validation import check_lr, default_tol, is_integer_in

__all__ = ["Monitor"]


def d_tol(theta, tol):
    """The eigenpair tolerance: ``tol``, or what theta's dtype resolves."""
    return default_tol(theta.real.dtype) if tol is None else tol


MATCHED = ("gd", "sgd", "momentum", "adam", "rmsprop")  # the optimizers whose sharpness and threshold rows carry
VECTORS = "vectors.npy"  # the last diagnosis' oriented eigenvectors: the next one's warm start


class Monitor:
    """Diagnose GD-like training every ``every`` steps into the run folder ``out`` (see the module).

    ``lr``: the rate h the diagnoses use when the optimizer state holds none; ``k``: eigenpairs per
    diagnosis; ``tol``: their tolerance (default: what the parameters' dtype resolves); ``max_hvps``: the
    HVP budget of each Lanczos solve; ``hover_tol``, ``noise_rtol``: the report's edge-of-stability band
    and the loss changes too small to call (as ``gdflows train --hover-tol --noise-rtol``); ``optimizer``
    (``gd``, ``sgd``, ``momentum``, ``adam`` or ``rmsprop``, with optax's defaults) and ``momentum``: whose
    sharpness and threshold the rows carry and the report judges against (momentum: (2 + 2 beta)/h; adam:
    lambda_max of P^-1/2 H P^-1/2 against 38/h, P read from ``opt_state``; rmsprop: the same against 2/h; sgd:
    the batch sharpness of the minibatches passed with each call against 2/h; gd: lambda_0 against 2/h).
    """

    def __init__(
        self,
        out,
        lr: float,
        every: int = 10,
        k: int = 2,
        tol: float | None = None,
        max_hvps: int = 100,
        hover_tol: float = 0.1,
        noise_rtol: float = 1e-6,
        optimizer: str = "gd",
        momentum: float = 0.9,
    ):
        check_lr(lr)
        if optimizer not in MATCHED:
            raise GDFlowsError(f"optimizer must be one of {', '.join(MATCHED)}, got {optimizer!r}")
        if not 0 <= momentum < 1:
            raise GDFlowsError(f"momentum must be in [0, 1), got {momentum!r}")
        for name, value, low in (("every", every, 1), ("k", k, 1), ("max_hvps", max_hvps, 2)):
            if not is_integer_in(value, low):
                raise GDFlowsError(f"{name} must be an integer >= {low}, got {value!r}")
        for name, value in (("hover_tol", hover_tol), ("noise_rtol", noise_rtol)):
            if not 0 < value < 1:
                raise GDFlowsError(f"{name} must be in (0, 1), got {value!r}")
        self.settings = {"lr": lr, "every": every, "k": k, "tol": tol, "max_hvps": max_hvps}
        self.settings |= {
            "hover_tol": hover_tol,
            "noise_rtol": noise_rtol,
            "optimizer": optimizer,
            "momentum": momentum,
        }
        self.run = Run.open(out, {"monitor": self.settings})
        self.rows = self.run.read_table("metrics")
        vectors = self.run.file(VECTORS)
        self.vectors = np.load(vectors) if vectors.exists() else None

    @property
    def last_step(self) -> int:
        """The last step logged (-1: none)."""
        return int(float(self.rows[-1]["step"])) if self.rows else -1

    @property
    def ended(self) -> bool:
        """Whether the monitored run diverged (no more diagnoses)."""
        return bool(self.rows) and is_diverged(self.rows[-1].get("outcome"))

    def __call__(
        self, step: int, params, loss: Callable, opt_state=None, batch_loss: Callable | None = None, batches=None
    ) -> dict | None:
        """Diagnose at ``params`` (a pytree) on ``loss`` (params -> scalar) when ``step`` is due; returns the
        row written, or None (not due, logged before, or the run diverged). With ``optimizer="sgd"``, also
        ``batch_loss(params, batch)`` and ``batches`` (minibatches drawn as the loop draws them): the row then
        carries their batch sharpness E_B[g_B^T H_B g_B / |g_B|^2] against 2/h."""
        if not is_integer_in(step, 0):
            raise GDFlowsError(f"step must be an integer >= 0, got {step!r}")
        if self.settings["optimizer"] == "sgd" and (batch_loss is None or batches is None):
            raise GDFlowsError(
                "a monitor of minibatch SGD needs batch_loss and batches: pass monitor(step, params, loss, "
                "opt_state, batch_loss=f(params, batch), batches=[...]) (or optimizer='gd' for full batches)"
            )
        if step % self.settings["every"] or step <= self.last_step or self.ended:
            return None
        flat_loss, theta, _ = flatten_loss(loss, params)
        value = float(flat_loss(theta))
        if not math.isfinite(value) or (self.rows and value > divergence_bound(float(self.rows[0]["loss"]))):
            return self._append({"step": step, "loss": value, "outcome": outcome_diverged(step)})
        h = float(step_rate(opt_state, self.settings["lr"]))
        s = self.settings
        d = diagnose(flat_loss, theta, h, s["k"], s["tol"], self.vectors, s["max_hvps"])
        grad = grad_of(flat_loss)
        g = grad(theta)
        nxt = theta - h * g
        columns, self.vectors = pf_columns(d, self.vectors, (value, g, flat_loss(nxt), grad(nxt)), h)
        if s["optimizer"] == "sgd":
            columns |= sharpness_columns(batch_sharpness(batch_loss, params, batches), h)
        else:
            columns |= matched_columns(
                s["optimizer"], h, opt_state, flat_loss, theta, d, d_tol(theta, s["tol"]), s["momentum"]
            )
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(self.vectors))
        atomic_write_bytes(self.run.file(VECTORS), buffer.getvalue())
        return self._append({"step": step, "loss": value, "rate": h} | columns)

    def _append(self, row: dict) -> dict:
        self.rows.append(row)
        self.run.write_table("metrics", self.rows)
        return row

    def report(self) -> Path:
        """Write the figures and REPORT.md from the rows logged so far; returns the report's path."""
        rows = read_csv(self.run.file("metrics.csv")) if self.rows else []
        if not rows:
            text = "# gdflows monitor\n\nNo step was diagnosed yet.\n"
            return self.run.write_text("REPORT.md", text)
        s = self.settings
        state = outcome(rows) if self.ended else "monitored"
        head = (
            f"# gdflows monitor\n\nOutcome: **{state}** through step {rows[-1]['step']}; diagnosed every "
            f"{s['every']} steps (k = {s['k']}, lr = {s['lr']:g} unless the optimizer's state holds its rate). "
            "One row per diagnosed step: `metrics.csv` (definitions: `gdflows.experiments.monitor`).\n\n"
        )
        body = diagnosis_markdown(self.run, rows, s["hover_tol"], s["noise_rtol"])
        return self.run.write_text("REPORT.md", head + body)

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc) -> None:
        self.report()
