"""Checks once, at the boundary: a public entry point validates its input, and the library's internals call
unchecked cores, so one diagnosis checks its learning rate exactly once."""

import sys

import jax.numpy as jnp
import numpy as np
import pytest

import gdflows
from gdflows import validation
from gdflows.errors import GDFlowsError


def _count_calls(monkeypatch, name: str) -> list:
    """Wrap ``validation.<name>`` in every loaded gdflows module that holds it; return the list of calls."""
    original, calls = getattr(validation, name), []

    def counted(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("gdflows") and getattr(module, name, None) is original:
            monkeypatch.setattr(module, name, counted)
    return calls


def _mlp_loss(theta):
    x = jnp.linspace(-1.0, 1.0, 12).reshape(6, 2)
    w1, w2 = theta[:8].reshape(2, 4), theta[8:]
    return jnp.mean((jnp.tanh(x @ w1) @ w2 - x[:, 0]) ** 2)


@pytest.mark.parametrize("dim", [12, 300])  # the dense path and the Lanczos path
def test_one_diagnosis_checks_lr_once(monkeypatch, dim):
    theta = jnp.asarray(np.random.default_rng(0).normal(size=dim))
    loss = _mlp_loss if dim == 12 else (lambda th: jnp.sum(jnp.cos(th) * jnp.arange(1.0, dim + 1.0)) / dim)
    gdflows.diagnose(loss, theta, 0.1, k=2)  # compiled once, so the counted call measures only the checks
    calls = _count_calls(monkeypatch, "check_lr")
    d = gdflows.diagnose(loss, theta, 0.1, k=2)
    assert calls == [(0.1,)]
    assert d.lr == 0.1 and d.eig_converged and d.pf_converged


def test_counting_sees_every_module_that_checks(monkeypatch):
    calls = _count_calls(monkeypatch, "check_lr")
    gdflows.stability_coefficients(jnp.array([1.0]), 0.5)  # checks through gdflows.stability.coefficients
    gdflows.flows.principal(_mlp_loss, 0.5)  # and through gdflows.flows.principal
    assert calls == [(0.5,), (0.5,)]


def test_diagnose_refuses_bad_input_before_any_work():
    theta = jnp.zeros(12)
    with pytest.raises(GDFlowsError, match="learning rate"):
        gdflows.diagnose(_mlp_loss, theta, -1.0, k=2)
    with pytest.raises(GDFlowsError, match="k must be an integer in"):
        gdflows.diagnose(_mlp_loss, theta, 0.1, k=13)
    with pytest.raises(GDFlowsError, match="tol"):
        gdflows.diagnose(_mlp_loss, theta, 0.1, k=2, tol=1e-20)
    with pytest.raises(GDFlowsError, match="max_size"):
        gdflows.diagnose(_mlp_loss, theta, 0.1, k=2, max_size=1)
