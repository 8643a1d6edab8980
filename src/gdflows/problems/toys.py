r"""Small landscapes where the flows part ways.

* :class:`SharpDip`: a broad bowl with a narrow dip (a sharp minimum next to a
  flat one), :math:`E(x) = \frac{c}{2}x^2 - w\, e^{-(x - x_1)^2 / (2 s^2)}`.
  With h lambda_sharp > 2 GD is pushed out of the dip and settles in the bowl;
  NGF and IGR stay in the dip; the PF leaves with GD.
* :class:`Saddle`: :math:`E(x, y) = \frac{a}{2} x^2 - \frac12 y^2 + \frac14 y^4`,
  a saddle at the origin between minima at y = +-1. GD escapes along y with
  factor 1 + h per step, slower than NGF's e^{h}.
* :class:`SmoothCubic`: a non-quadratic polynomial with non-zero third
  derivatives, for measuring one-step error orders.

All are entire functions (holomorphic), so the PF may visit complex states.
"""

import equinox as eqx
import jax.numpy as jnp


class SharpDip(eqx.Module):
    """E(x) = c x^2 / 2 - w exp(-(x - x1)^2 / (2 s^2)), x of shape (1,)."""

    c: float = 1.0
    w: float = 2.0
    x1: float = 2.0
    s: float = 0.5

    def __call__(self, theta):
        x = theta[0]
        return 0.5 * self.c * x**2 - self.w * jnp.exp(-((x - self.x1) ** 2) / (2 * self.s**2))


class Saddle(eqx.Module):
    """E(x, y) = a x^2 / 2 - y^2 / 2 + y^4 / 4."""

    a: float = 1.0

    def __call__(self, theta):
        x, y = theta[0], theta[1]
        return 0.5 * self.a * x**2 - 0.5 * y**2 + 0.25 * y**4


class SmoothCubic(eqx.Module):
    """E(x, y) = (x^2 + 2 y^2)/2 + 0.3 x^3 + 0.2 x y^2 + 0.1 y^4."""

    def __call__(self, theta):
        x, y = theta[0], theta[1]
        return 0.5 * (x**2 + 2 * y**2) + 0.3 * x**3 + 0.2 * x * y**2 + 0.1 * y**4
