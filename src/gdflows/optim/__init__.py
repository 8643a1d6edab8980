"""Optimizers: DAL, the drift-adjusted learning rate, as optax transformations."""

from gdflows.optim.dal import DALState, dal, dal_adam, dal_momentum, dal_rate, drift_adjusted

__all__ = ["dal", "dal_momentum", "dal_adam", "drift_adjusted", "dal_rate", "DALState"]
