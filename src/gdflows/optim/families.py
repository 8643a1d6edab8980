"""The optimizer families of :data:`gdflows.optim.OPTIMIZERS`, each built from keyword arguments.

Every factory returns an optax transformation that accepts ``value`` and ``value_fn`` (the loss of the
batch and its function), so any family runs in the same step (``update(g, state, params, value=...,
value_fn=...)``). Rates: ``lr`` is a fixed rate; ``max_lr`` caps the rate a family picks itself.

* ``gd``: GD / SGD at ``lr``; ``momentum``: heavy ball (``momentum`` = beta) at ``lr``; ``adam``: Adam at ``lr``;
  ``rmsprop``: RMSProp at ``lr`` (optax's defaults).
* ``dal``: DAL-p (h = min(c 2 / (|Hg|/|g|)^p, max_lr), c = ``rate_scale``, Hg by ``hg``); ``dal_momentum``,
  ``dal_adam``: the same rule along heavy ball's and Adam's directions (:mod:`gdflows.optim.dal`).
* ``cdat``: CDAT on the gradient at ``sigma`` (2: "on the edge"); ``polyak``: optax's ``polyak_sgd`` (SPS,
  f_min = 0); ``dog``, ``prodigy``: optax.contrib's parameter-free methods at their defaults;
  ``schedule_free``: optax.contrib's schedule-free SGD (b1 = ``momentum``) at ``lr``, whose loss belongs at
  ``optax.contrib.schedule_free_eval_params(state, params)`` (:data:`gdflows.optim.EVALUATE_AT`).
"""

from __future__ import annotations

import optax

from gdflows.optim.cdat import cdat as cdat_rule
from gdflows.optim.dal import dal as dal_rule
from gdflows.optim.dal import dal_adam as dal_adam_rule
from gdflows.optim.dal import dal_momentum as dal_momentum_rule

MOMENTUM = 0.9


def _extra(tx) -> optax.GradientTransformationExtraArgs:
    return optax.with_extra_args_support(tx)


def gd(lr: float):
    return _extra(optax.sgd(lr))


def momentum(lr: float, momentum: float = MOMENTUM):
    return _extra(optax.sgd(lr, momentum=momentum))


def adam(lr: float):
    return _extra(optax.adam(lr))


def rmsprop(lr: float):
    return _extra(optax.rmsprop(lr))


def dal(p: float = 1.0, max_lr: float = 5.0, hg: str = "hvp", fixed_lr: float | None = None, rate_scale: float = 1.0):
    return dal_rule(p=p, max_lr=max_lr, hg=hg, fixed_lr=fixed_lr, rate_scale=rate_scale)


def dal_momentum(max_lr: float = 5.0, momentum: float = MOMENTUM):
    return dal_momentum_rule(momentum, max_lr=max_lr)


def dal_adam(max_lr: float = 5.0):
    return dal_adam_rule(max_lr=max_lr)


def cdat(max_lr: float = 5.0, sigma: float = 2.0):
    return cdat_rule(sigma=sigma, max_lr=max_lr)


def polyak(max_lr: float = 5.0):
    return optax.polyak_sgd(max_learning_rate=max_lr, f_min=0.0)


def dog():
    return _extra(optax.contrib.dog())


def prodigy():
    return _extra(optax.contrib.prodigy())


def schedule_free(lr: float, momentum: float = MOMENTUM):
    return optax.contrib.schedule_free_sgd(lr, b1=momentum)
