r"""The stability threshold of each optimizer: the largest (preconditioned) curvature at which its iterates
on a quadratic do not grow, with the preconditioner frozen (docs/theory.md, section 11).

Along an eigendirection with curvature :math:`\lambda` (of H for GD and momentum, of
:math:`P^{-1/2} H P^{-1/2}` for RMSProp and Adam), with :math:`a = \eta\lambda`, each optimizer is a
linear recurrence whose companion polynomial :math:`z^2 + b z + c` has both roots inside the unit circle
iff :math:`|c| < 1` and :math:`1 \pm b + c > 0` (Jury). That gives:

* GD and RMSProp: :math:`x_{t+1} = (1 - a) x_t`, stable iff :math:`a < 2`: :math:`\lambda < 2/\eta`;
* heavy-ball momentum :math:`\beta` (``optax.sgd(eta, momentum=beta)``: :math:`v_{t+1} = \beta v_t + g_t`,
  :math:`x_{t+1} = x_t - \eta v_{t+1}`): :math:`z^2 - (1 + \beta - a) z + \beta`, stable iff
  :math:`\lambda < (2 + 2\beta)/\eta`;
* Nesterov (``nesterov=True``: the update is :math:`g_t + \beta v_{t+1}`):
  :math:`z^2 - (1+\beta)(1-a) z + \beta(1-a)`, stable iff :math:`\lambda < (2 + 2\beta)/((1 + 2\beta)\eta)`;
* Adam (:math:`\beta_1`; :math:`m_{t+1} = \beta_1 m_t + (1-\beta_1) g_t`, :math:`x_{t+1} = x_t - \eta
  m_{t+1}`, bias correction spent): :math:`z^2 - (1 + \beta_1 - a(1-\beta_1)) z + \beta_1`, stable iff
  :math:`\lambda < (2 + 2\beta_1)/((1 - \beta_1)\eta)` (38/eta at beta_1 = 0.9; Cohen et al. 2022).
"""

from __future__ import annotations

from gdflows.errors import GDFlowsError
from gdflows.validation import check_lr

__all__ = ["OPTIMIZER_THRESHOLDS", "stability_threshold"]

OPTIMIZER_THRESHOLDS = ("gd", "momentum", "nesterov", "rmsprop", "adam")


def stability_threshold(optimizer: str, lr: float, momentum: float = 0.9, b1: float = 0.9) -> float:
    """The largest stable curvature of ``optimizer`` (one of :data:`OPTIMIZER_THRESHOLDS`) at rate ``lr``:
    ``momentum`` for momentum and nesterov, ``b1`` for adam (see the module)."""
    eta = check_lr(lr)
    for name, beta in (("momentum", momentum), ("b1", b1)):
        if not 0 <= beta < 1:
            raise GDFlowsError(f"{name} must be in [0, 1), got {beta!r}")
    factors = {
        "gd": 2.0,
        "rmsprop": 2.0,
        "momentum": 2 + 2 * momentum,
        "nesterov": (2 + 2 * momentum) / (1 + 2 * momentum),
        "adam": (2 + 2 * b1) / (1 - b1),
    }
    if optimizer not in factors:
        raise GDFlowsError(f"optimizer must be one of {', '.join(OPTIMIZER_THRESHOLDS)}, got {optimizer!r}")
    return factors[optimizer] / eta
