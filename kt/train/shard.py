"""Data parallelism over devices with ``jax.sharding``.

A one-axis :class:`~jax.sharding.Mesh` (``"batch"``) over the chosen
devices; batches are split along their first axis, parameters and optimiser
state are replicated. The jitted train step is unchanged: XLA partitions it
from the input shardings and inserts the gradient all-reduce itself, so the
same program text serves one CPU, one GPU or several devices.

Multi-host runs (one process per host) call :func:`init_distributed` before
any JAX computation; every process then reads the same data and builds the
same global batch, and each contributes the shards of its own devices.
"""

from __future__ import annotations

import os
from typing import Any

import equinox as eqx
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from kt.errors import KTError

AXIS = "batch"
ENV_COORDINATOR = "KT_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "KT_NUM_PROCESSES"
ENV_PROCESS_ID = "KT_PROCESS_ID"


def init_distributed() -> None:
    """Join a multi-host JAX run (``jax.distributed.initialize``).

    Reads ``KT_COORDINATOR_ADDRESS`` (``host:port`` of process 0),
    ``KT_NUM_PROCESSES`` and ``KT_PROCESS_ID`` when set; otherwise JAX
    detects Slurm, Open MPI or TPU environments itself.

    Raises:
        KTError: a variable is malformed or the cluster cannot be joined.
    """
    kwargs: dict[str, Any] = {}
    if os.environ.get(ENV_COORDINATOR):
        kwargs["coordinator_address"] = os.environ[ENV_COORDINATOR]
    for env, name in ((ENV_NUM_PROCESSES, "num_processes"), (ENV_PROCESS_ID, "process_id")):
        if os.environ.get(env):
            try:
                kwargs[name] = int(os.environ[env])
            except ValueError:
                raise KTError(f"{env}={os.environ[env]!r} is not an integer") from None
    try:
        jax.distributed.initialize(**kwargs)
    except (RuntimeError, ValueError) as exc:
        raise KTError(
            f"--distributed: could not join the cluster ({' '.join(str(exc).split())}); set "
            f"{ENV_COORDINATOR}, {ENV_NUM_PROCESSES} and {ENV_PROCESS_ID}, or run under Slurm/Open MPI"
        ) from None


def data_mesh(devices: int | None) -> Mesh | None:
    """A one-axis mesh over the first ``devices`` devices, or ``None`` for one device.

    Args:
        devices: number of devices (``None``: all of them, across hosts).

    Returns:
        The mesh, or ``None`` when training runs on a single device (then
        nothing is sharded and results are bit-identical to unsharded code).

    Raises:
        KTError: more devices asked for than exist, or fewer than one.
    """
    avail = jax.devices()
    n = len(avail) if devices is None else int(devices)
    if n < 1 or n > len(avail):
        raise KTError(
            f"--devices {n}: this run sees {len(avail)} {avail[0].platform} device(s); use 1..{len(avail)} "
            "(fake CPU devices: XLA_FLAGS=--xla_force_host_platform_device_count=N)"
        )
    if n == 1:
        return None
    return Mesh(np.array(avail[:n]), (AXIS,))


def replicate(tree: Any, mesh: Mesh | None) -> Any:
    """Copy every array leaf of ``tree`` to all devices of ``mesh`` (no-op without a mesh)."""
    if mesh is None:
        return tree
    arrays, static = eqx.partition(tree, eqx.is_array)
    return eqx.combine(jax.device_put(arrays, NamedSharding(mesh, PartitionSpec())), static)


def gather(tree: Any, mesh: Mesh | None) -> Any:
    """Bring a replicated tree back to this process's first device (no-op without a mesh).

    Multi-host: every process copies its own replica to its first local
    device (``device_put`` onto one device refuses an array that spans other
    processes' devices; a replicated array holds the whole value on each).
    """
    if mesh is None:
        return tree
    arrays, static = eqx.partition(tree, eqx.is_array)
    device = jax.local_devices()[0]

    def local(x: jax.Array) -> jax.Array:
        if x.is_fully_addressable:
            return jax.device_put(x, device)
        return jax.device_put(x.addressable_data(0) if x.is_fully_replicated else to_numpy(x), device)

    return eqx.combine(jax.tree.map(local, arrays), static)


def to_numpy(x: Any) -> np.ndarray:
    """A (possibly batch-sharded, possibly multi-host) array as one NumPy array.

    An array sharded over several processes is all-gathered first: a
    collective, so every process must call this in the same order.
    """
    if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def shard_batch(batch: dict, mesh: Mesh | None) -> dict:
    """Split a batch's arrays along their first axis over ``mesh``.

    Rows are padded with zeros (``False`` for masks) to a multiple of the
    device count; padded rows have ``mask`` False and are never scored.

    Args:
        batch: dict of arrays with a common leading (batch) dimension.
        mesh: from :func:`data_mesh`; ``None`` returns ``batch`` unchanged.

    Returns:
        The batch as global arrays sharded over the mesh.
    """
    if mesh is None:
        return batch
    n = mesh.devices.size
    sharding = NamedSharding(mesh, PartitionSpec(AXIS))
    out = {}
    for name, value in batch.items():
        x = np.asarray(value)
        pad = -x.shape[0] % n
        if pad:
            x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
        # Every process holds the whole host batch; each supplies its own
        # devices' shards (single- and multi-host alike).
        out[name] = jax.make_array_from_callback(x.shape, sharding, x.__getitem__)
    return out
