"""The optimizers compared with DAL: one :class:`Method` per family of :data:`gdflows.optim.OPTIMIZERS`, each
under a short stable name.

* ``gd_lr<r>``: GD (full batch) / SGD (minibatch) at each fixed rate r of the sweep.
* ``dal_p<p>_<hg>``: DAL-p with Hg by ``hvp``, ``fd`` or ``secant`` (the secant's first step at ``secant_lr``).
* ``momentum_lr<r>``, ``adam_lr<r>``: heavy ball (beta 0.9) and Adam at the rate ``rates`` gives them.
* every other family under its own name, with ``max_lr`` where it picks its own rate (polyak, cdat,
  dal_momentum, dal_adam), at ``rates[family]`` where it takes a fixed one (schedule_free: default the
  largest rate of the sweep), at its defaults otherwise (dog, prodigy). A family whose factory needs a
  rate that ``rates`` does not give is left out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from gdflows._lazy import load
from gdflows.optim import EVALUATE_AT, OPTIMIZERS, REQUIRED, hyperparameters, make_optimizer

NAMED_BY_RATE = ("gd", "momentum", "adam")  # families whose method name carries the rate (their runs' names)


@dataclasses.dataclass(frozen=True)
class Method:
    name: str
    family: str  # a key of gdflows.optim.OPTIMIZERS
    make: Callable  # () -> the optax transformation
    lr: float | None = None  # fixed rate, where there is one
    evaluate_at: Callable | None = None  # (opt_state, params) -> the params to evaluate (None: params)


def method(family: str, name: str | None = None, **hyper) -> Method:
    """The method of ``family`` with hyperparameters ``hyper``, named ``name`` (default: see the module)."""
    lr = hyper.get("lr")
    if name is None:
        name = f"{family}_lr{lr:g}" if family in NAMED_BY_RATE else family
    evaluate_at = load(EVALUATE_AT[family]) if family in EVALUATE_AT else None
    return Method(name, family, lambda: make_optimizer(family, **hyper), lr, evaluate_at)


def methods(
    *, sweep, ps, hg_modes, max_lr: float, secant_lr: float, rates: Mapping[str, float] | None = None
) -> list[Method]:
    """Every registered family's methods (see the module docstring), in the registry's order."""
    rates = {"schedule_free": max(sweep, default=None)} | dict(rates or {})
    out = []
    for family in OPTIMIZERS:
        if family == "gd":
            out += [method(family, lr=lr) for lr in sweep]
        elif family == "dal":
            out += [
                method(family, f"dal_p{p:g}_{hg}", p=p, max_lr=max_lr, hg=hg, fixed_lr=_secant(hg, secant_lr))
                for p in ps
                for hg in hg_modes
            ]
        elif (hyper := _hyper(family, max_lr, rates.get(family))) is not None:
            out.append(method(family, **hyper))
    return out


def _secant(hg: str, secant_lr: float) -> float | None:
    return secant_lr if hg == "secant" else None


def _hyper(family: str, max_lr: float, lr: float | None) -> dict | None:
    """The hyperparameters a family gets: ``max_lr`` if it takes one, ``lr`` if given; None when it needs a rate
    that is not given."""
    takes = hyperparameters(family)
    hyper = {"max_lr": max_lr} if "max_lr" in takes else {}
    if "lr" not in takes:
        return hyper
    if lr is not None:
        return hyper | {"lr": lr}
    return None if takes["lr"] is REQUIRED else hyper
