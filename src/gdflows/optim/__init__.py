"""Optimizers: DAL, the drift-adjusted learning rate, and CDAT, the edge-of-stability line search, for optax.

:data:`OPTIMIZERS` is the one registry of optimizer families that the commands train with (``gdflows train
--optimizer``, ``gdflows compare-optimizers``): family -> its factory in :mod:`gdflows.optim.families`, built
from keyword arguments by :func:`make_optimizer`. A family added there (one entry, one factory) is known to
both. The registry is readable without JAX: every name of this package loads on first use.
"""

import inspect

from gdflows._lazy import entry, lazy_package, load
from gdflows.errors import GDFlowsError

OPTIMIZERS: dict[str, str] = {
    family: f"gdflows.optim.families:{family}"
    for family in (
        "gd",
        "dal",
        "polyak",
        "dog",
        "prodigy",
        "momentum",
        "adam",
        "rmsprop",
        "dal_momentum",
        "dal_adam",
        "cdat",
        "schedule_free",
    )
}
DAL_FAMILIES = ("dal", "dal_momentum", "dal_adam")  # the families that take DAL's rate
HG_MODES = ("hvp", "fd", "secant")  # how DAL gets H g: an HVP, a finite difference, a secant (docs/dal.md)
# families whose loss belongs at other parameters than the iterate: family -> (opt_state, params) -> params
EVALUATE_AT: dict[str, str] = {"schedule_free": "optax.contrib:schedule_free_eval_params"}


REQUIRED = inspect.Parameter.empty  # a hyperparameter without a default


def hyperparameters(family: str) -> dict[str, object]:
    """The keyword arguments a family's factory takes (``lr``, ``max_lr``, ``p``, ``momentum``...), each with its
    default (:data:`REQUIRED` where it has none)."""
    parameters = inspect.signature(load(entry(OPTIMIZERS, family, "optimizer"))).parameters
    return {name: p.default for name, p in parameters.items()}


def make_optimizer(family: str, **hyper):
    """The optax transformation of ``family`` with the hyperparameters ``hyper`` (see :func:`hyperparameters`)."""
    takes = hyperparameters(family)
    unknown = set(hyper) - set(takes)
    if unknown:
        raise GDFlowsError(f"optimizer {family} takes {', '.join(takes)}, not {sorted(unknown)}")
    return load(OPTIMIZERS[family])(**hyper)


_API = {
    "dal": "gdflows.optim.dal",
    "dal_momentum": "gdflows.optim.dal",
    "dal_adam": "gdflows.optim.dal",
    "drift_adjusted": "gdflows.optim.dal",
    "dal_rate": "gdflows.optim.dal",
    "DALState": "gdflows.optim.dal",
    "cdat": "gdflows.optim.cdat",
    "cdat_rate": "gdflows.optim.cdat",
    "CDATState": "gdflows.optim.cdat",
}
__all__ = [
    "OPTIMIZERS",
    "DAL_FAMILIES",
    "HG_MODES",
    "EVALUATE_AT",
    "REQUIRED",
    "hyperparameters",
    "make_optimizer",
    *_API,
]
lazy_package(__name__, _API)
