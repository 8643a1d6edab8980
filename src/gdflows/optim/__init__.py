"""Optimizers: DAL, the drift-adjusted learning rate, and CDAT, the edge-of-stability line search, for optax."""

from gdflows.optim.cdat import CDATState, cdat, cdat_rate
from gdflows.optim.dal import DALState, dal, dal_adam, dal_momentum, dal_rate, drift_adjusted

__all__ = [
    "dal",
    "dal_momentum",
    "dal_adam",
    "drift_adjusted",
    "dal_rate",
    "DALState",
    "cdat",
    "cdat_rate",
    "CDATState",
]
