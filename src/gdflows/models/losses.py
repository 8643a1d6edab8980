"""Losses on logits f (N, K) and integer labels y (N,), holomorphic in f.

* ``mse``: E = (1/N) sum_n (1/2) |f_n - e_{y_n}|^2 with e_y the one-hot vector
  (squares, not |.|^2 of a complex number: holomorphic).
* ``cross_entropy``: E = (1/N) sum_n [ logsumexp(f_n) - f_{n, y_n} ], with
  logsumexp(f) = m + log sum_k exp(f_k - m) for the constant m = max_k Re f_k
  (exact for any constant, so the stop-gradient on m keeps it holomorphic).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def mse(logits, y):
    onehot = jax.nn.one_hot(y, logits.shape[-1], dtype=logits.real.dtype)
    return 0.5 * jnp.mean(jnp.sum((logits - onehot) ** 2, axis=-1))


def logsumexp(logits):
    m = jax.lax.stop_gradient(jnp.max(logits.real, axis=-1, keepdims=True))
    return (m + jnp.log(jnp.sum(jnp.exp(logits - m), axis=-1, keepdims=True)))[..., 0]


def cross_entropy(logits, y):
    picked = jnp.take_along_axis(logits, y[:, None], axis=-1)[:, 0]
    return jnp.mean(logsumexp(logits) - picked)
