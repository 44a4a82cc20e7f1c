"""Data-parallel sharding over every device, on one host or many.

The training mesh has a single axis, ``"data"``, over all devices of all
processes. Batches are split along their first dimension over it
(``NamedSharding(mesh, P("data"))``); parameters and optimizer state are
replicated (``NamedSharding(mesh, P())``). Under ``jax.jit`` XLA inserts the
gradient all-reduce, so the same train step runs on one CPU, eight GPUs or a
TPU pod.

Multi-host: ``initialize_distributed`` calls ``jax.distributed.initialize``
before anything touches a device, from the config fields
``coordinator_address``, ``num_processes`` and ``process_id`` (or with no
arguments where JAX detects the cluster itself: Cloud TPU pods, SLURM, Open MPI).
Each process then builds its own rows of every global batch
(``TrainPipeline(process_index=..., process_count=...)``) and
``jax.make_array_from_process_local_data`` assembles the global array.

Examples:
  >>> mesh = create_mesh()
  >>> tuple(batch_sharding(mesh).spec)
  ('data',)
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def _field(config: Any, name: str, default: Any = None) -> Any:
  if config is None:
    return default
  if hasattr(config, "get"):
    value = config.get(name, default)
  else:
    value = getattr(config, name, default)
  return default if value is None else value


def _cluster_detected() -> bool:
  """True where JAX's cluster detection would find more than one process."""
  hosts = os.environ.get("TPU_WORKER_HOSTNAMES", "")
  if len([h for h in hosts.split(",") if h.strip()]) > 1:
    return True
  if os.environ.get("MEGASCALE_COORDINATOR_ADDRESS"):
    return True
  for variable in ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE"):
    try:
      if int(os.environ.get(variable, "1")) > 1:
        return True
    except ValueError:
      pass
  return False


def initialize_distributed(config: Any = None) -> bool:
  """Starts JAX's distributed runtime when the config (or the cluster) asks for it.

  Call it before any other JAX call that touches a device.

  Args:
    config: a ConfigDict/dict/object with optional fields ``distributed``
      ("auto" (default), True/"on" or False/"off"), ``coordinator_address``
      ("host:port"), ``num_processes``, ``process_id``,
      ``local_device_ids``. With "auto" the runtime starts when
      ``coordinator_address`` is set or a multi-process cluster (Cloud TPU pod,
      SLURM with several tasks, Open MPI) is detected.

  Returns:
    True if this call (or an earlier one) initialised the distributed runtime.

  Raises:
    ValueError: for a bad ``distributed`` value, or ``num_processes`` /
      ``process_id`` without a ``coordinator_address`` outside a detected cluster.

  Examples:
    >>> initialize_distributed({"distributed": "off"})
    False
  """
  mode = _field(config, "distributed", "auto")
  if isinstance(mode, str):
    mode = mode.lower()
  if mode in (False, "off", "false", "no"):
    return False
  if mode not in (True, "on", "true", "yes", "auto"):
    raise ValueError(f"`distributed` must be 'auto', 'on' or 'off', got {mode!r}.")
  if jax.distributed.is_initialized():
    return True
  address = _field(config, "coordinator_address") or None
  num_processes = _field(config, "num_processes")
  process_id = _field(config, "process_id")
  local_device_ids = _field(config, "local_device_ids")
  if mode == "auto" and address is None and not _cluster_detected():
    if num_processes not in (None, 1):
      raise ValueError(
        f"`num_processes` is {num_processes} but `coordinator_address` is not set: set it to "
        "'host:port' of process 0 (the same on every process)."
      )
    return False
  kwargs = {}
  if address is not None:
    kwargs["coordinator_address"] = str(address)
  if num_processes is not None:
    kwargs["num_processes"] = int(num_processes)
  if process_id is not None:
    kwargs["process_id"] = int(process_id)
  if local_device_ids is not None:
    kwargs["local_device_ids"] = local_device_ids
  jax.distributed.initialize(**kwargs)
  return True


def create_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A one-axis ``("data",)`` mesh over ``devices`` (default: every device of every process).

  Examples:
    >>> create_mesh().axis_names
    ('data',)
  """
  if devices is None:
    return jax.make_mesh((jax.device_count(),), (DATA_AXIS,), axis_types=(AxisType.Auto,))
  devices = list(devices)
  return Mesh(np.asarray(devices), (DATA_AXIS,), axis_types=(AxisType.Auto,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Splits an array's leading (batch) axis over the mesh's data axis."""
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated_sharding(mesh: Mesh) -> NamedSharding:
  """Keeps a full copy of an array on every device of the mesh."""
  return NamedSharding(mesh, PartitionSpec())


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
  """Raises a ``ValueError`` unless ``batch_size`` splits evenly over the mesh.

  Examples:
    >>> check_batch_size(16, create_mesh())
  """
  devices = mesh.devices.size
  if (
    isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1
  ):
    raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
  if batch_size % devices:
    raise ValueError(
      f"`batch_size` {batch_size} is not divisible by the number of devices {devices} "
      f"({jax.process_count()} process(es)); use a multiple of {devices}."
    )


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Copies host or single-device arrays to every device of ``mesh`` (all processes).

  Every process must pass the same values (true of parameters loaded from one
  checkpoint or built from one seed).
  """
  sharding = replicated_sharding(mesh)

  def put(leaf):
    leaf = np.asarray(jax.device_get(leaf))
    return jax.make_array_from_callback(leaf.shape, sharding, lambda index: leaf[index])

  return jax.tree.map(put, tree)


def to_local(tree: Any) -> Any:
  """The first local replica of every (replicated) array: usable in single-device code.

  On one process this is the array itself when it lives on one device, or its
  copy on the first local device; it never moves data between hosts.
  """

  def local(leaf):
    if isinstance(leaf, jax.Array) and len(leaf.sharding.device_set) > 1:
      if not leaf.is_fully_replicated:
        raise ValueError(f"to_local needs replicated arrays; got one sharded as {leaf.sharding}.")
      return leaf.addressable_data(0)
    return leaf

  return jax.tree.map(local, tree)


def from_process_0(values: Mapping[str, float]) -> dict[str, float]:
  """Process 0's ``values`` on every process, bit for bit (``values`` itself on one process).

  A decision taken from host-computed floats (is this validation the best?) must be taken
  once: hosts on different CPUs may round a near-tie apart, and one that decides to join a
  collective save while another does not hangs the run. The floats travel as the uint32
  words of their float64 bits, so no float32 cast (JAX without x64) rounds them.

  Every process must call this with the same keys.

  Examples:
    >>> from_process_0({"psnr": 31.25})
    {'psnr': 31.25}
  """
  values = {key: float(value) for key, value in values.items()}
  if jax.process_count() == 1:
    return values
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

  words = np.array([values[key] for key in sorted(values)], np.float64).view(np.uint32)
  words = np.asarray(multihost_utils.broadcast_one_to_all(words), np.uint32)
  return dict(zip(sorted(values), words.view(np.float64).tolist()))


def gather_rows(rows: np.ndarray, count: int) -> np.ndarray:
  """Every process's rows of a ``[count, m]`` float64 table, on every process, bit for bit.

  Process ``p`` of ``n`` holds rows ``p, p + n, ...`` (``training.validation.process_share``);
  the rows travel as the uint32 words of their float64 bits, as in ``from_process_0``.

  Examples:
    >>> gather_rows(np.array([[30.5, 0.9]]), 1)
    array([[30.5,  0.9]])
  """
  rows = np.asarray(rows, np.float64)
  n = jax.process_count()
  if n == 1:
    return rows
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

  width = rows.shape[1]
  padded = np.full((-(-count // n), width), np.nan)
  padded[: len(rows)] = rows
  words = multihost_utils.process_allgather(padded.view(np.uint32))
  table = np.asarray(words, np.uint32).view(np.float64)  # [n, ceil(count / n), width]
  gathered = np.empty((count, width))
  for process in range(n):
    share = len(range(process, count, n))
    gathered[process::n] = table[process, :share]
  return gathered
