r"""A loss over a dataset, evaluated chunk by chunk so memory is bounded by the chunk.

.. math::

    E(\theta) = \frac{1}{N} \sum_{n=1}^{N} \ell(\theta, x_n)
              = \sum_{c} E_c(\theta), \qquad
    E_c(\theta) = \sum_{n \in c} w_n\, \ell(\theta, x_n),

with ``w_n = 1/N`` for a real example and ``w_n = 0`` for the padding that
fills the last chunk. Derivatives are sums over chunks as well,

.. math::

    g = \sum_c \nabla E_c, \qquad H v = \sum_c H_c v, \qquad
    D^3E[v, v] = \sum_c \nabla (v^T H_c v),

each accumulated by ``lax.scan``: only one chunk's activations are alive at a
time, whatever N. :class:`ChunkedLoss` is itself a callable loss, so
:func:`gdflows.curvature.hvp` and friends accept it too; calling it directly
under ``jax.grad`` rematerialises each chunk (``jax.checkpoint``) to keep that
bound, while :func:`grad_of`, :func:`hvp_of` and :func:`d3_of` use the cheaper
per-chunk accumulation.

Data parallelism: :meth:`ChunkedLoss.sharded` lays every chunk out across the
devices of a ``jax.sharding.Mesh`` along its batch axis (also a mesh over
several processes, :mod:`gdflows.parallel`); the per-chunk sums
become all-reduces that XLA inserts, so every function here runs
data-parallel unchanged, provided the loss reaches ``jit`` as an argument
(as :func:`gdflows.curvature.hessian_eigenpairs` and the scalable PF pass
it); a loss captured in a closure is a constant, which XLA does not
partition.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from gdflows.curvature.hvp import d3, gradient, hvp
from gdflows.errors import GDFlowsError
from gdflows.parallel import put, split
from gdflows.validation import is_integer_in


class ChunkedLoss(eqx.Module):
    """E(theta) = (1/N) sum_n example_loss(theta, x_n), summed in chunks.

    Build it with :func:`chunked_loss`. ``chunks`` holds the data as a pytree
    whose leaves have shape ``(n_chunks, chunk_size, ...)``; ``weights`` is
    ``(n_chunks, chunk_size)``.
    """

    example_loss: Callable = eqx.field(static=True)
    chunks: Any
    weights: jax.Array

    @property
    def chunk_size(self) -> int:
        return self.weights.shape[1]

    def chunk_loss(self, theta, chunk, weights):
        """E_c(theta) = sum_{n in c} w_n l(theta, x_n)."""
        losses = jax.vmap(self.example_loss, in_axes=(None, 0))(theta, chunk)
        return jnp.sum(weights.astype(losses.real.dtype) * losses)

    def chunk_sum(self, fn: Callable[[Callable], Any]):
        """sum_c fn(E_c), where ``fn`` maps a chunk's loss E_c to a pytree."""
        return _scan_sum(lambda c, w: fn(lambda th: self.chunk_loss(th, c, w)), self.chunks, self.weights)

    def __call__(self, theta):
        """E(theta); differentiable with memory bounded by one chunk (remat)."""
        return _value(self, theta)

    def sharded(self, mesh: Mesh, axis: str = "batch") -> ChunkedLoss:
        """This loss with each chunk split across ``mesh``'s ``axis`` (data parallel)."""
        if axis not in mesh.shape:
            raise GDFlowsError(f"mesh has no axis {axis!r} (axes: {tuple(mesh.shape)}); pass axis=")
        n_dev = mesh.shape[axis]
        if self.chunk_size % n_dev:
            raise GDFlowsError(
                f"chunk_size {self.chunk_size} is not divisible by the {n_dev} devices on "
                f"axis {axis!r}; rebuild with chunk_size a multiple of {n_dev}"
            )
        chunks, weights = put((self.chunks, self.weights), split(mesh, 1, axis))
        return eqx.tree_at(lambda m: (m.chunks, m.weights), self, (chunks, weights))

    def mean(self, theta, example_fn: Callable):
        """(1/N) sum_n example_fn(theta, x_n) for any pytree-valued ``example_fn``, chunk by chunk.

        E.g. the loss and the accuracy in one pass over the data; not for
        differentiating (use the chunk sums for that).
        """

        def term(chunk, weights):
            values = jax.vmap(example_fn, in_axes=(None, 0))(theta, chunk)
            return jax.tree.map(lambda v: jnp.tensordot(weights.astype(v.real.dtype), v, axes=1), values)

        return _scan_sum(term, self.chunks, self.weights)


@eqx.filter_jit
def _value(loss: ChunkedLoss, theta):
    value = jax.checkpoint(lambda th, c, w: loss.chunk_loss(th, c, w))
    return _scan_sum(lambda c, w: value(theta, c, w), loss.chunks, loss.weights)


def _scan_sum(term: Callable, chunks, weights):
    """sum_c term(chunk_c, weights_c) by lax.scan, starting from zeros of term's shape."""
    shapes = jax.eval_shape(term, jax.tree.map(lambda a: a[0], chunks), weights[0])
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

    def body(total, xs):
        return jax.tree.map(jnp.add, total, term(*xs)), None

    return jax.lax.scan(body, zeros, (chunks, weights))[0]


def example_bytes(example_loss: Callable, theta, example) -> int:
    """Bytes one more example adds to a chunk's values: b(2) - b(1), with b(n) the sum of the
    outputs of the top-level operations of the loss vmapped over n copies of ``example``
    (traced, not run; what depends on theta alone, e.g. reshaping it, cancels).

    A proxy for an example's activations; see :func:`fitting_chunk`.
    """

    def total(n):
        batch = jax.tree.map(lambda a: jnp.broadcast_to(jnp.asarray(a), (n,) + jnp.shape(a)), example)
        jaxpr = jax.make_jaxpr(jax.vmap(example_loss, in_axes=(None, 0)))(theta, batch).jaxpr
        return sum(math.prod(v.aval.shape) * v.aval.dtype.itemsize for eqn in jaxpr.eqns for v in eqn.outvars)

    return max(0, total(2) - total(1))


def fitting_chunk(per_example: int, limit_bytes: int, most: int) -> int:
    """The largest power of two c <= ``most`` with c * ``per_example`` <= ``limit_bytes`` (at least 1).

    Why a limit: on a CPU a chunk whose intermediates outgrow the caches makes
    every pass memory-bound (a VGG Hessian-vector product on 1,000 images:
    4.2 s in chunks of 256, 3.2 s in chunks of 32).
    """
    if not (is_integer_in(per_example, 0) and is_integer_in(limit_bytes, 1) and is_integer_in(most, 1)):
        raise GDFlowsError(
            f"per_example >= 0, limit_bytes >= 1 and most >= 1 must be integers, got {per_example!r}, "
            f"{limit_bytes!r}, {most!r}"
        )
    fits = most if per_example == 0 else max(1, min(most, limit_bytes // per_example))
    return 1 << (fits.bit_length() - 1)


def chunked_loss(
    example_loss: Callable, data, chunk_size: int, mesh: Mesh | None = None, axis: str = "batch"
) -> ChunkedLoss:
    """Wrap ``example_loss(theta, example) -> scalar`` over ``data`` as a :class:`ChunkedLoss`.

    ``data`` is an array or a pytree of arrays sharing the leading axis N
    (e.g. ``(x, y)``); ``example`` is one slice of it. The last chunk is padded
    with copies of example 0 carrying weight 0. With ``mesh``, the chunks are
    sharded along ``axis`` (see :meth:`ChunkedLoss.sharded`).
    """
    leaves = jax.tree.leaves(data)
    if not leaves:
        raise GDFlowsError("data holds no arrays; pass e.g. (x, y) with a leading example axis")
    sizes = {jnp.shape(a)[0] if jnp.ndim(a) else None for a in leaves}
    if len(sizes) != 1 or None in sizes:
        raise GDFlowsError(f"every data array needs the same leading (example) axis, got sizes {sizes}")
    n = sizes.pop()
    if not is_integer_in(chunk_size, 1):
        raise GDFlowsError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    chunk_size = int(chunk_size)
    n_chunks = math.ceil(n / chunk_size)
    pad = n_chunks * chunk_size - n

    def layout(a):
        a = jnp.asarray(a)
        a = jnp.concatenate([a, jnp.broadcast_to(a[:1], (pad,) + a.shape[1:])]) if pad else a
        return a.reshape((n_chunks, chunk_size) + a.shape[1:])

    real_dtype = jnp.result_type(*[jnp.asarray(a).real.dtype for a in leaves], jnp.float32)
    weights = jnp.where(jnp.arange(n_chunks * chunk_size) < n, 1.0 / n, 0.0).astype(real_dtype)
    loss = ChunkedLoss(example_loss, jax.tree.map(layout, data), weights.reshape(n_chunks, chunk_size))
    return loss if mesh is None else loss.sharded(mesh, axis)


# The chunk-accumulated derivatives, compiled once per loss: called outside jit (e.g. by a user,
# at every diagnosis) they would otherwise retrace and recompile their scan at every call.
_grad = eqx.filter_jit(lambda loss, theta: loss.chunk_sum(lambda e: gradient(e)(theta)))
_value_and_grad = eqx.filter_jit(lambda loss, theta: loss.chunk_sum(lambda e: _value_and_gradient(e, theta)))
_hvp = eqx.filter_jit(lambda loss, theta, v: loss.chunk_sum(lambda e: hvp(e, theta, v)))
_d3 = eqx.filter_jit(lambda loss, theta, v: loss.chunk_sum(lambda e: d3(e, theta, v)))


def grad_of(loss: Callable) -> Callable:
    """theta -> g(theta); chunk-accumulated for a :class:`ChunkedLoss`."""
    if isinstance(loss, ChunkedLoss):
        return functools.partial(_grad, loss)
    return gradient(loss)


def value_and_grad_of(loss: Callable) -> Callable:
    """theta -> (E(theta), g(theta)) in one pass; chunk-accumulated for a :class:`ChunkedLoss`."""
    if isinstance(loss, ChunkedLoss):
        return functools.partial(_value_and_grad, loss)
    return functools.partial(_value_and_gradient, loss)


def _value_and_gradient(loss: Callable, theta):
    """(E, g), g holomorphic at complex theta (as :func:`gdflows.curvature.gradient`)."""
    return jax.value_and_grad(loss, holomorphic=jnp.iscomplexobj(theta))(theta)


def hvp_of(loss: Callable) -> Callable:
    """(theta, v) -> H(theta) v; chunk-accumulated for a :class:`ChunkedLoss`."""
    if isinstance(loss, ChunkedLoss):
        return functools.partial(_hvp, loss)
    return lambda theta, v: hvp(loss, theta, v)


def d3_of(loss: Callable) -> Callable:
    """(theta, v) -> D3E[v, v]; chunk-accumulated for a :class:`ChunkedLoss`."""
    if isinstance(loss, ChunkedLoss):
        return functools.partial(_d3, loss)
    return lambda theta, v: d3(loss, theta, v)
