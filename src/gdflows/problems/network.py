r"""A neural network on a dataset as a loss over a flat parameter vector theta, at any dataset size.

.. math::

    E(\theta) = \frac{1}{N} \sum_{n=1}^{N} \ell\big(f(\mathrm{unravel}(\theta), x_n), y_n\big)

over the N training examples, with f a model from :mod:`gdflows.models` and
l ``mse`` or ``cross_entropy``. One :class:`NetworkProblem` (data and losses, no
optimizer and no diagnosis: those sit above it) serves training and diagnostics:

* Memory. ``loss`` is a :class:`gdflows.curvature.ChunkedLoss`: E, its
  gradient and its Hessian-vector products are sums over chunks of
  ``chunk_size`` examples accumulated by ``lax.scan``, so memory is bounded by
  one chunk whatever N (:meth:`NetworkProblem.evaluate` gives loss and
  accuracy the same way). The training set stays on the devices (``train_xy``),
  where the harness's minibatch steps gather their examples.
* Curvature subset. Diagnostics use ``curvature_loss``, E over a fixed
  subset of ``curvature_size`` training examples, class-balanced and
  deterministic (the first in round-robin class order), computed in
  ``curvature_dtype`` (float64 where a claim needs it; the problem's dtype by
  default). ``tol``, the eigenpair and PF-field tolerance, defaults to what
  that dtype resolves (:func:`gdflows.validation.default_tol`) and is checked
  before any work.
* Devices. Every array lives on ``mesh``, a 1-D mesh over the ``"batch"``
  axis (:func:`gdflows.parallel.batch_mesh`: all local devices of every
  process by default, ``devices`` to use fewer): chunks and minibatches are
  split across it and the parameters replicated, so every evaluation runs
  data-parallel, on one host or several.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from gdflows import parallel
from gdflows.curvature.chunked import ChunkedLoss, chunked_loss, example_bytes, fitting_chunk, hvp_of, value_and_grad_of
from gdflows.data import Dataset
from gdflows.data.dataset import stratified_order
from gdflows.errors import GDFlowsError
from gdflows.models import Model, get_loss, get_model
from gdflows.params import ravel
from gdflows.validation import check_tol, default_tol, is_integer_in

CHUNK_SIZE = 256  # most examples per chunk (all devices together) unless chunk_size is given
CPU_CHUNK_BYTES = 32 * 2**20  # on CPUs, one device's share of a chunk computes at most this (example_bytes)
CPU_CHUNK_MOST = 4096  # on CPUs, most examples per chunk: every chunk costs a pass (benchmarks/hvp_paths.py)
CURVATURE_SIZE = 1000  # examples in the curvature subset unless curvature_size is given


@dataclasses.dataclass(frozen=True)
class NetworkProblem:
    """A model, its data laid out on a device mesh, and the losses built from them.

    Build it with :func:`network_problem`.
    """

    loss: ChunkedLoss  # theta -> E(theta) over the full training set, chunked
    batch_loss: Callable  # (theta, x, y) -> mean loss over that batch
    theta0: jax.Array  # flat initial parameters, replicated on the mesh
    unravel: Callable  # theta -> params pytree
    model: Model
    data: Dataset  # the host copy (numpy)
    loss_name: str
    curvature_loss: ChunkedLoss  # E over the curvature subset, in curvature_dtype
    curvature_index: np.ndarray  # the training examples of the curvature subset (sorted)
    test_loss: ChunkedLoss  # E over the test set, chunked
    train_xy: tuple  # (x, y) of the training set on the mesh, replicated, for minibatches
    mesh: Mesh
    tol: float  # eigenpair / PF-field tolerance of the diagnostics
    example_metrics: Callable  # (theta, (x_n, y_n)) -> (loss_n, 1 if correct else 0)
    val_loss: ChunkedLoss | None = None  # E over the validation split, where the data has one

    @property
    def chunk_size(self) -> int:
        return self.loss.chunk_size

    @property
    def curvature_dtype(self):
        return self.curvature_loss.weights.dtype

    def logits(self, theta, x):
        return self.model.apply(self.unravel(theta), x)

    def accuracy(self, theta, x, y) -> jax.Array:
        """Fraction of the batch (x, y) whose largest (real part of the) logit is the label."""
        return jnp.mean(jnp.argmax(self.logits(theta, x).real, axis=-1) == y)

    def evaluate(self, theta, split: str = "train") -> tuple[jax.Array, jax.Array]:
        """(loss, accuracy) over the ``"train"``, ``"test"`` or ``"val"`` set, chunk by chunk, in one pass,
        jit-compiled."""
        losses = {"train": self.loss, "test": self.test_loss} | ({"val": self.val_loss} if self.val_loss else {})
        if split not in losses:
            raise GDFlowsError(f"split must be one of {', '.join(losses)}, got {split!r}")
        return _mean(losses[split], theta, self.example_metrics)

    def value_and_grad(self, theta, subset: bool = False) -> tuple[jax.Array, jax.Array]:
        """(E, g) over the training set (or the curvature subset), chunked, jit-compiled."""
        return _value_and_grad(self.curvature_loss if subset else self.loss, theta)

    def hvp(self, theta, v, subset: bool = False) -> jax.Array:
        """H(theta) v over the training set (or the curvature subset), chunked, jit-compiled."""
        return _hvp(self.curvature_loss if subset else self.loss, theta, v)

    def replicate(self, tree):
        """``tree`` replicated on the mesh (e.g. an optimizer state built on the host)."""
        return parallel.put(tree, parallel.replicated(self.mesh))


_mean = jax.jit(lambda loss, theta, example_fn: loss.mean(theta, example_fn), static_argnums=2)
_value_and_grad = jax.jit(lambda loss, theta: value_and_grad_of(loss)(theta))
_hvp = jax.jit(lambda loss, theta, v: hvp_of(loss)(theta, v))


def curvature_subset(y: np.ndarray, size: int | None) -> np.ndarray:
    """Indices (sorted) of the first ``size`` examples in round-robin class order (all when None)."""
    if size is None or size >= len(y):
        return np.arange(len(y))
    if not is_integer_in(size, 1):
        raise GDFlowsError(f"curvature_size must be an integer >= 1 (or None: all), got {size!r}")
    return np.sort(stratified_order(y)[: int(size)])


def _chunk(requested, n: int, devices: int, per_example: int | None = None) -> int:
    """Examples per chunk: ``requested``, capped at n, rounded up to a multiple of ``devices``.

    Default: :data:`CHUNK_SIZE`; given ``per_example`` (bytes, on CPUs), the
    largest power of two per device whose share stays under
    :data:`CPU_CHUNK_BYTES` (:func:`gdflows.curvature.chunked.fitting_chunk`),
    at most :data:`CPU_CHUNK_MOST` in all: on a CPU, fewer chunks are faster until a chunk's
    intermediates outgrow the caches (``benchmarks/hvp_paths.py``).
    """
    size = requested
    if requested is None:
        size = CHUNK_SIZE
        if per_example is not None:
            size = devices * fitting_chunk(per_example, CPU_CHUNK_BYTES, max(1, CPU_CHUNK_MOST // devices))
    if not is_integer_in(size, 1):
        raise GDFlowsError(f"chunk_size must be an integer >= 1, got {requested!r}")
    return devices * math.ceil(min(int(size), n) / devices)


def network_problem(
    model_name: str,
    data: Dataset,
    loss: str = "mse",
    seed: int = 0,
    dtype="float64",
    *,
    chunk_size: int | None = None,
    curvature_size: int | None = CURVATURE_SIZE,
    curvature_dtype=None,
    tol: float | None = None,
    devices: int | None = None,
    **model_kwargs,
) -> NetworkProblem:
    """Build the model, initialise it from ``seed``, and lay the data out on the devices.

    ``model_kwargs`` go to the model builder (e.g. ``depth``, ``width``,
    ``activation``). ``chunk_size``: examples per chunk over all devices
    (default :data:`CHUNK_SIZE`, on CPUs fewer where an example's
    intermediates are large, see ``_chunk``; at most N; rounded up to a
    multiple of the device count). ``curvature_size``: examples in the curvature subset
    (default :data:`CURVATURE_SIZE`; None: the whole training set).
    ``curvature_dtype``: dtype of the diagnostics (default ``dtype``).
    ``tol``: their tolerance (default: :func:`gdflows.validation.default_tol`
    of ``curvature_dtype``). ``devices``: local devices per process (default all).
    """
    curvature_dtype = jnp.dtype(dtype if curvature_dtype is None else curvature_dtype)
    tol = default_tol(curvature_dtype) if tol is None else check_tol(tol, curvature_dtype)
    index = curvature_subset(data.y_train, curvature_size)
    mesh = parallel.batch_mesh(devices)
    model = get_model(model_name, data.input_shape, data.num_classes, dtype=dtype, **model_kwargs)
    loss_fn = get_loss(loss)
    params = model.init(jax.random.PRNGKey(seed))
    theta0, unravel = ravel(params)
    unravel_c = ravel(jax.tree.map(lambda a: a.astype(curvature_dtype), params))[1]

    def batch_loss(theta, x, y):
        return loss_fn(model.apply(unravel(theta), x), y)

    def example(theta, xy, unravel=unravel):
        return loss_fn(model.apply(unravel(theta), xy[0][None]), xy[1][None])

    def metrics(theta, xy):
        logits = model.apply(unravel(theta), xy[0][None])
        return loss_fn(logits, xy[1][None]), (jnp.argmax(logits[0].real) == xy[1]).astype(logits.real.dtype)

    per_example = None
    if chunk_size is None and mesh.devices.flat[0].platform == "cpu":
        per_example = example_bytes(example, theta0, (data.x_train[0], data.y_train[0]))

    def chunked(x, y, example_loss, x_dtype=dtype):
        size = _chunk(chunk_size, len(y), mesh.devices.size, per_example)
        return chunked_loss(example_loss, (jnp.asarray(x, x_dtype), jnp.asarray(y)), size).sharded(mesh)

    x_c = data.x_train[index]
    return NetworkProblem(
        loss=chunked(data.x_train, data.y_train, example),
        batch_loss=batch_loss,
        theta0=parallel.put(theta0, parallel.replicated(mesh)),
        unravel=unravel,
        model=model,
        data=data,
        loss_name=loss,
        curvature_loss=chunked(x_c, data.y_train[index], lambda t, xy: example(t, xy, unravel_c), curvature_dtype),
        curvature_index=index,
        test_loss=chunked(data.x_test, data.y_test, example),
        train_xy=parallel.put((np.asarray(data.x_train, dtype), data.y_train), parallel.replicated(mesh)),
        mesh=mesh,
        tol=tol,
        example_metrics=metrics,
        val_loss=None if data.x_val is None else chunked(data.x_val, data.y_val, example),
    )
