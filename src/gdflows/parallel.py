r"""Data parallelism on JAX's own engine: one mesh axis over the batch, across devices and hosts.

A loss over N examples is a sum over examples, so its value, gradient and
Hessian-vector products split over devices: each device holds a slice of
every chunk (or minibatch) and computes its partial sum; XLA adds the partial
sums with an all-reduce. Parameters, optimizer states and Lanczos vectors are
replicated. This module builds the pieces:

* :func:`batch_mesh`: a 1-D ``jax.sharding.Mesh`` whose axis ``"batch"`` runs
  over the first ``devices`` local devices of every process (all by default);
* :func:`put`: arrays laid out on a mesh, also when the mesh spans several
  processes (each process supplies its own devices' part);
* :func:`initialize`: join a multi-process run through ``jax.distributed``.

Several hosts: start the same command on every host, one process per host,
with ``JAX_COORDINATOR_ADDRESS=host0:port`` (process 0's address and a free
port), ``JAX_NUM_PROCESSES`` (the number of hosts) and ``JAX_PROCESS_ID`` (0 on
the host at that address, then 1, 2, ...), and call :func:`initialize` first.
The mesh then holds every process's devices and each jitted computation runs
as one program across them; on CPUs the cross-process collectives go through
gloo (JAX's default there).
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gdflows.errors import GDFlowsError
from gdflows.validation import is_integer_in

AXIS = "batch"
ENV = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def initialize(coordinator_address: str | None = None, num_processes=None, process_id=None) -> bool:
    """Join a multi-process run via ``jax.distributed.initialize``; return whether one was joined.

    Each argument defaults to its environment variable (:data:`ENV`). With no
    coordinator address anywhere this is a single-process run and nothing
    happens (False). Call it before any other JAX computation.
    """
    env = [os.environ.get(name) for name in ENV]
    address = coordinator_address or env[0]
    if not address:
        return False
    count = _env_int(num_processes, env[1], ENV[1])
    index = _env_int(process_id, env[2], ENV[2])
    if count is not None and index is not None and not 0 <= index < count:
        raise GDFlowsError(f"process_id must be in [0, num_processes = {count}), got {index}")
    jax.distributed.initialize(address, num_processes=count, process_id=index)
    return True


def _env_int(value, text, name):
    if value is None and text:
        try:
            value = int(text)
        except ValueError:
            raise GDFlowsError(f"${name} must be an integer, got {text!r}") from None
    return None if value is None else int(value)


def batch_mesh(devices: int | None = None, axis: str = AXIS) -> Mesh:
    """A 1-D mesh over the first ``devices`` local devices of each process (default: all of them)."""
    local = jax.local_device_count()
    count = local if devices is None else devices
    if not is_integer_in(count, 1, local):
        raise GDFlowsError(
            f"devices must be an integer in [1, {local}] (local devices of this process), got {devices!r}"
        )
    by_process = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    chosen = [d for p in range(jax.process_count()) for d in [d for d in by_process if d.process_index == p][:count]]
    return Mesh(np.array(chosen), (axis,))


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds the whole array."""
    return NamedSharding(mesh, PartitionSpec())


def split(mesh: Mesh, dim: int = 0, axis: str = AXIS) -> NamedSharding:
    """Array axis ``dim`` split across the mesh's ``axis``, the rest whole."""
    return NamedSharding(mesh, PartitionSpec(*([None] * dim), axis))


def put(tree, sharding: NamedSharding):
    """Every array of ``tree`` laid out by ``sharding``; every process passes the same values.

    Within one process this is ``jax.device_put``; across processes each one
    supplies the slices of its own devices (``jax.make_array_from_callback``).
    """
    if sharding.is_fully_addressable:
        return jax.device_put(tree, sharding)

    def one(a):
        a = np.asarray(a)
        return jax.make_array_from_callback(a.shape, sharding, lambda index: a[index])

    return jax.tree.map(one, tree)
