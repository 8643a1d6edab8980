"""The optimizers compared with DAL, each under a short stable name.

* ``gd_lr<r>``: GD (full batch) / SGD (minibatch) at fixed rate r.
* ``dal_p<p>_<hg>``: DAL-p with Hg by ``hvp``, ``fd`` or ``secant``.
* ``polyak``: optax ``polyak_sgd`` (SPS, f_min = 0, max rate = DAL's max_lr).
* ``dog``, ``prodigy``: optax.contrib's parameter-free methods at their defaults.
* ``momentum_lr<r>``, ``adam_lr<r>``: heavy ball (beta 0.9) and Adam at fixed rates;
  ``dal_momentum``, ``dal_adam``: the same directions with the DAL step length.
* ``cdat``: CDAT on the gradient at sigma = 2, "on the edge" (Roulet et al. 2024), capped at DAL's max_lr.
* ``schedule_free``: optax.contrib's schedule-free SGD (b1 0.9) at ``schedule_free_lr``
  (default: the largest fixed GD rate); its loss belongs at
  ``optax.contrib.schedule_free_eval_params(state, params)``, not at the iterate it steps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import optax

from gdflows.optim import cdat, dal, dal_adam, dal_momentum

MOMENTUM = 0.9


@dataclasses.dataclass(frozen=True)
class Method:
    name: str
    family: str  # gd, dal, polyak, dog, prodigy, momentum, adam, dal_momentum, dal_adam, cdat, schedule_free
    make: Callable[[], optax.GradientTransformationExtraArgs]
    lr: float | None = None  # fixed rate, where there is one
    evaluate_at: Callable | None = None  # (opt_state, params) -> the params to evaluate (None: params)


def _fixed(name, family, make, lr):
    return Method(f"{name}_lr{lr:g}", family, lambda: optax.with_extra_args_support(make(lr)), lr)


def methods(
    lrs,
    ps,
    hg_modes,
    max_lr: float,
    secant_lr: float,
    momentum_lr: float,
    adam_lr: float,
    schedule_free_lr: float | None = None,
) -> list[Method]:
    out = [_fixed("gd", "gd", optax.sgd, lr) for lr in lrs]
    out += [
        Method(
            f"dal_p{p:g}_{hg}",
            "dal",
            lambda p=p, hg=hg: dal(p=p, max_lr=max_lr, hg=hg, fixed_lr=secant_lr if hg == "secant" else None),
        )
        for p in ps
        for hg in hg_modes
    ]
    out += [
        Method("polyak", "polyak", lambda: optax.polyak_sgd(max_learning_rate=max_lr, f_min=0.0)),
        Method("dog", "dog", lambda: optax.with_extra_args_support(optax.contrib.dog())),
        Method("prodigy", "prodigy", lambda: optax.with_extra_args_support(optax.contrib.prodigy())),
        _fixed("momentum", "momentum", lambda lr: optax.sgd(lr, momentum=MOMENTUM), momentum_lr),
        _fixed("adam", "adam", optax.adam, adam_lr),
        Method("dal_momentum", "dal_momentum", lambda: dal_momentum(MOMENTUM, max_lr=max_lr)),
        Method("dal_adam", "dal_adam", lambda: dal_adam(max_lr=max_lr)),
        Method("cdat", "cdat", lambda: cdat(sigma=2.0, max_lr=max_lr)),
    ]
    sf_lr = schedule_free_lr if schedule_free_lr is not None else max(lrs, default=None)
    if sf_lr is not None:
        out.append(
            Method(
                "schedule_free",
                "schedule_free",
                lambda: optax.contrib.schedule_free_sgd(sf_lr, b1=MOMENTUM),
                sf_lr,
                optax.contrib.schedule_free_eval_params,
            )
        )
    return out
