"""Model checkpoints: orbax directories holding the params and the arch that built them.

Format: an orbax composite checkpoint with two items, ``params`` (the params pytree,
``StandardSave``) and ``arch`` (the arch dict, ``JsonSave``), so a checkpoint alone rebuilds
its network (``models.create_model(arch)``). Invariants:

* ``load_model(save_model(d, params, arch))`` returns equal params and the canonical arch.
* ``load_model`` reads (a) a ``save_model`` directory, (b) an orbax ``CheckpointManager``
  root whose step directories hold ``params`` and ``arch`` (the latest step), and (c) a
  training workdir: ``WORKDIR/checkpoints/best`` if it has a step, else
  ``WORKDIR/checkpoints/latest``. Any other path raises ``ValueError`` naming it, and
  params that do not fit the stored arch raise ``ValueError`` naming the tensor.
* ``load_model`` restores onto one device (or a given sharding), whatever device layout
  the params were saved from.
* ``save_model`` is atomic: it writes a temporary sibling directory and renames it, so a
  failure leaves nothing at the destination.

Examples:
  >>> arch = models.model_arch("CARN", 2, num_groups=1, num_blocks=1, num_channels=8)
  >>> params = models.create_model(arch).init(jax.random.key(0), jnp.zeros((1, 4, 4, 3)))
  >>> path = save_model(tempfile.mkdtemp() + "/carn_x2", params["params"], arch)
  >>> params, arch = load_model(path)
  >>> arch["model"], sorted(params)[:2]
  ('CARN', ['fusions_0', 'groups_0'])
"""

from __future__ import annotations

import glob
import json
import math
import os
import pathlib
import re
import shutil
import uuid
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from flax import traverse_util

from cutblur_jax import models
from cutblur_jax.paths import absolute, as_path, check_backend, is_url
from cutblur_jax.models import check_params

# The items of a checkpoint step: a model checkpoint has the first three, a training step
# (``checkpoints/latest``) all but EVAL, a best step (``checkpoints/best``) all but the state.
PARAMS_ITEM = "params"
EMA_ITEM = "ema_params"  # written by training with ema_decay > 0
ARCH_ITEM = "arch"
OPT_STATE_ITEM = "opt_state"
TRAIN_META_ITEM = "train_meta"  # step, run key, input position, best PSNR
EVAL_ITEM = "eval"  # the validation record of a best step
# A training work directory (layout (c)); ``training.checkpoints`` writes it.
CHECKPOINTS_DIR = "checkpoints"
LATEST_DIR = "latest"
BEST_DIR = "best"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
# The reference's fine-tuning (solver.py load()) lets only these modules differ in shape,
# so a model to fine-tune from must agree on the arch fields that shape the rest.
_HEAD_AND_TAIL = ("head", "upsampler", "tail")
BODY_FIELDS = ("model", "num_blocks", "num_channels", "num_groups", "reduction")


def _checkpointer() -> ocp.Checkpointer:
  return ocp.Checkpointer(ocp.CompositeCheckpointHandler())


def save_model(
  directory: str | os.PathLike, params: Any, arch: Mapping[str, Any], *, overwrite: bool = False
) -> pathlib.Path:
  """Writes ``params`` and ``arch`` as a model checkpoint at ``directory``, atomically.

  Args:
    directory: the checkpoint directory to create.
    params: the params pytree of ``models.create_model(arch)``.
    arch: the arch dict (``models.model_arch``); stored in canonical form.
    overwrite: replace an existing ``directory`` (otherwise it is an error).

  Returns:
    The absolute path of the checkpoint.

  Raises:
    FileExistsError: ``directory`` exists and ``overwrite`` is False.
    ValueError: ``params`` does not fit ``arch`` (naming the first tensor that differs).
  """
  arch = models.canonical_arch(arch)
  check_params(params, arch)
  directory = absolute(directory)
  if directory.exists() and not overwrite:
    raise FileExistsError(
      f"Checkpoint directory {str(directory)!r} exists; pass overwrite=True "
      "(--overwrite) to replace it."
    )
  directory.parent.mkdir(parents=True, exist_ok=True)
  tag = uuid.uuid4().hex[:8]
  temporary = directory.with_name(f".{directory.name}.tmp-{tag}")
  trash = directory.with_name(f".{directory.name}.old-{tag}")
  try:
    params = jax.tree.map(np.asarray, params)
    with _checkpointer() as checkpointer:
      checkpointer.save(
        temporary,
        args=ocp.args.Composite(
          **{PARAMS_ITEM: ocp.args.StandardSave(params), ARCH_ITEM: ocp.args.JsonSave(arch)}
        ),
      )
    if is_url(directory):  # no rename on an object store: orbax commits in place there
      if directory.exists():
        directory.rmtree()
      temporary.rename(directory)
    else:
      if directory.exists():
        os.replace(directory, trash)
      os.replace(temporary, directory)
  finally:
    # Also orbax's own unfinished "<temporary>.orbax-checkpoint-tmp-*" after a crash.
    for leftover in directory.parent.glob(f".{glob.escape(directory.name)}.*-{tag}*"):
      if is_url(leftover):
        leftover.rmtree(missing_ok=True)
      else:
        shutil.rmtree(leftover, ignore_errors=True)
  return directory


def is_model_checkpoint(path: str | os.PathLike) -> bool:
  """Whether ``path`` is a model checkpoint (a ``save_model`` directory or a step folder)."""
  path = as_path(path)
  return (path / PARAMS_ITEM).is_dir() and (path / ARCH_ITEM).is_dir()


def is_work_directory(path: str | os.PathLike) -> bool:
  """Whether ``path`` is a training work directory of this project (layout (c)).

  It is when its ``config.json`` is a training config, or when its ``checkpoints/`` holds
  nothing but ``latest`` and ``best`` (a start killed before it wrote ``config.json``).
  """
  path = as_path(path)
  try:
    config = json.loads((path / CONFIG_FILE).read_text())
    if isinstance(config, dict) and {"dataset", "num_train_steps"} <= set(config):
      return True
  except (OSError, ValueError):
    pass
  checkpoints = path / CHECKPOINTS_DIR
  return checkpoints.is_dir() and {p.name for p in checkpoints.iterdir()} <= {LATEST_DIR, BEST_DIR}


def latest_step_directory(root: str | os.PathLike) -> pathlib.Path | None:
  """The highest-step directory of a ``CheckpointManager`` root that holds a model, or None.

  Steps are orbax's finalised step directories (its step API: unfinished
  ``*.orbax-checkpoint-tmp-*`` saves are not steps).
  """
  root = as_path(root)
  if not root.is_dir():
    return None
  steps = []
  for child in ocp.path.step.checkpoint_steps_paths(root):
    child = as_path(child)
    try:
      step = ocp.path.step.step_from_checkpoint_name(child.name)
    except ValueError:
      continue
    if is_model_checkpoint(child):
      steps.append((step, child))
  return max(steps)[1] if steps else None


def run_checkpoint(workdir: str | os.PathLike, kind: str = BEST_DIR) -> pathlib.Path | None:
  """The newest step folder of a work directory's ``checkpoints/<kind>``, or None.

  Examples:
    >>> run_checkpoint("workdir", LATEST_DIR)  # doctest: +SKIP
    PosixPath('workdir/checkpoints/latest/1500')
  """
  return latest_step_directory(as_path(workdir) / CHECKPOINTS_DIR / kind)


def resolve_checkpoint(path: str | os.PathLike) -> pathlib.Path:
  """The model checkpoint directory that ``path`` names in layout (a), (b) or (c).

  Raises:
    ValueError: ``path`` is none of them, naming the path.
  """
  check_backend(path, what="Checkpoint")
  path = as_path(path)
  if not path.is_dir():
    raise ValueError(f"Checkpoint {str(path)!r} does not exist or is not a directory.")
  if is_model_checkpoint(path):
    return path
  checkpoints = path / CHECKPOINTS_DIR
  if checkpoints.is_dir():
    step = run_checkpoint(path, BEST_DIR) or run_checkpoint(path, LATEST_DIR)
    if step is not None:
      return step
    raise ValueError(
      f"Training workdir {str(path)!r} has no saved step under "
      f"{str(checkpoints / BEST_DIR)!r} or {str(checkpoints / LATEST_DIR)!r}."
    )
  step = latest_step_directory(path)
  if step is not None:
    return step
  raise ValueError(
    f"{str(path)!r} is not a model checkpoint: expected a directory with items "
    f"'{PARAMS_ITEM}' and '{ARCH_ITEM}', a CheckpointManager root with such steps, or a "
    "training workdir with checkpoints/best or checkpoints/latest."
  )


def short_cause(error: BaseException) -> str:
  """The root cause of a failed orbax read or write, in a few words, without TensorStore's
  spec dump.

  Examples:
    >>> error = ValueError('NOT_FOUND: Error reading "conv.kernel/0.0" in OCDBT database at '
    ...                    'local file "/run/params/": no such file [tensorstore_spec={...}]')
    >>> short_cause(Exception("Encountered error. See full TensorStore details: <...>"))
    'Encountered error.'
    >>> try:
    ...   raise RuntimeError("reading failed") from error
    ... except RuntimeError as chained:
    ...   short_cause(chained)
    'NOT_FOUND: Error reading "conv.kernel/0.0": no such file'
  """
  chain, seen = [], set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    chain.append(error)
    error = error.__cause__ or error.__context__
  text = " ".join(str(chain[-1]).split()) or type(chain[-1]).__name__
  for marker in (" See full TensorStore details", " [tensorstore_spec=", " tensorstore_spec="):
    text = text.split(marker, 1)[0]
  text = re.sub(r' in OCDBT database at local file "[^"]*"', "", text)
  return text[:200]


def _damaged(directory: pathlib.Path, error: BaseException) -> ValueError:
  """One line: which step is damaged, why, and the other checkpoint to use instead."""
  root = directory.parent
  others = (
    [step for step in ocp.path.step.checkpoint_steps_paths(root) if as_path(step) != directory]
    if root.is_dir()
    else []
  )
  if root.name == BEST_DIR and latest_step_directory(root.parent / LATEST_DIR) is not None:
    instead = root.parent / LATEST_DIR
  elif others:
    instead = max(
      others, key=lambda path: ocp.path.step.step_from_checkpoint_name(pathlib.Path(path).name)
    )
  else:
    instead = None
  hint = (
    f"; use --checkpoint {instead} instead"
    if instead is not None
    else "; convert or train it again"
  )
  try:
    what = f"step {ocp.path.step.step_from_checkpoint_name(directory.name)} in {root}"
  except ValueError:
    what = str(directory)
  return ValueError(f"Checkpoint {what} is damaged ({short_cause(error)}){hint}.")


def describe(path: str | os.PathLike) -> str:
  """The checkpoint folder ``path`` names, and its training step when it is a step folder.

  Examples:
    >>> describe("workdir")  # doctest: +SKIP
    '/abs/workdir/checkpoints/best/1500 (step 1500)'
  """
  directory = absolute(resolve_checkpoint(path))
  try:
    return f"{directory} (step {ocp.path.step.step_from_checkpoint_name(directory.name)})"
  except ValueError:
    return str(directory)


def load_model(
  path: str | os.PathLike, *, sharding: jax.sharding.Sharding | None = None, use_ema: bool = True
) -> tuple[Any, dict[str, Any]]:
  """Reads ``(params, arch)`` from a checkpoint in layout (a), (b) or (c).

  A training checkpoint made with ``ema_decay > 0`` holds the weights' moving average
  (item ``ema_params``) beside the raw weights; that average is what training validated,
  and what this returns unless ``use_ema=False``.

  The params are restored against the arch's own shapes with one sharding for every
  tensor, never with the sharding they were saved with: a checkpoint written from arrays
  sharded over any devices or processes loads on any machine.

  Args:
    path: a ``save_model`` directory, a ``CheckpointManager`` root or a training workdir.
    sharding: where every params tensor goes, e.g. ``NamedSharding(mesh, PartitionSpec())``
      to replicate over a mesh; default: the first local device.
    use_ema: return the EMA weights when the checkpoint has them (else the raw weights).

  Returns:
    The params pytree (float32 ``jax.Array`` leaves) and the canonical arch dict.

  Raises:
    ValueError: ``path`` is not a checkpoint, or its params do not fit its arch (naming
      the path and the tensor).

  Examples:
    >>> mesh = jax.make_mesh((jax.device_count(),), ("data",))  # doctest: +SKIP
    >>> params, arch = load_model("workdir", sharding=NamedSharding(mesh, P()))  # doctest: +SKIP
  """
  directory = absolute(resolve_checkpoint(path))  # orbax refuses relative paths.
  with _checkpointer() as checkpointer:
    try:
      arch = checkpointer.restore(
        directory, args=ocp.args.Composite(**{ARCH_ITEM: ocp.args.JsonRestore()})
      )[ARCH_ITEM]
      arch = models.canonical_arch(arch)
    except (TypeError, ValueError, KeyError, FileNotFoundError) as error:
      raise ValueError(f"Checkpoint {str(directory)!r} has no valid arch: {error}") from error
    # The stored shapes, checked first: a restore against a target that does not fit fails
    # with an error that does not name the tensor.
    item = EMA_ITEM if use_ema and (directory / EMA_ITEM).is_dir() else PARAMS_ITEM
    handler = ocp.StandardCheckpointHandler()
    try:
      stored = handler.metadata(directory / item).tree
    except Exception as error:  # orbax raises many types for a damaged checkpoint.
      raise _damaged(directory, error) from error
    finally:
      handler.close()
    try:
      check_params(stored, arch)
    except ValueError as error:
      raise ValueError(f"Checkpoint {str(directory)!r}: {error}") from error
    if sharding is None:
      sharding = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(
      lambda leaf: jax.ShapeDtypeStruct(leaf.shape, jnp.float32, sharding=sharding),
      models.abstract_params(arch),
    )
    try:
      params = checkpointer.restore(
        directory, args=ocp.args.Composite(**{item: ocp.args.StandardRestore(target)})
      )[item]
    except Exception as error:  # orbax raises many types for a damaged checkpoint.
      raise _damaged(directory, error) from error
  return params, arch


def same_value(a: Any, b: Any) -> bool:
  """Equal, numbers to a relative 1e-9 (a JSON round trip may move a float's last digit)."""
  if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
    return math.isclose(a, b, rel_tol=1e-9) or (math.isnan(a) and math.isnan(b))
  return a == b


def arch_differences(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
  """``"field: checkpoint A vs config B"`` for each arch field that differs (``same_value``)."""
  return [
    f"{key}: checkpoint {stored.get(key)!r} vs config {wanted.get(key)!r}"
    for key in sorted(set(stored) | set(wanted))
    if not same_value(stored.get(key), wanted.get(key))
  ]


def load_pretrained(path: str | os.PathLike, arch: Mapping[str, Any]) -> Any:
  """The params of a model to fine-tune ``arch`` from (``merge_pretrained`` takes them).

  Raises:
    ValueError: ``path`` holds another network body (``BODY_FIELDS`` differ; the scale, hence
      the head and tail, may), naming the fields.
  """
  pretrained, pretrained_arch = load_model(path)
  differences = arch_differences(
    {k: pretrained_arch.get(k) for k in BODY_FIELDS}, {k: arch.get(k) for k in BODY_FIELDS}
  )
  if differences:
    raise ValueError(
      f"`pretrain` {path} holds another network ({'; '.join(differences)}); "
      "only the scale may differ when fine-tuning."
    )
  return pretrained


def merge_pretrained(init_params: Any, pretrained_params: Any) -> Any:
  """Fine-tuning start: ``init_params`` with every tensor of ``pretrained_params`` copied in.

  The reference's ``Solver.load`` (``strict_load`` off): a pretrained tensor whose shape
  matches is copied; one in the head, upsampler or tail whose shape differs keeps its
  initial value (e.g. x4 from a x2 checkpoint: the space-to-depth head conv has 48 instead
  of 12 input channels, and the second x2 stage is new); a tensor ``init_params`` lacks or a
  body tensor of another shape is an error.

  Args:
    init_params: freshly initialised params of the network to train.
    pretrained_params: params of the pretrained network.

  Returns:
    A new params pytree with the structure of ``init_params``.

  Raises:
    ValueError: naming the pretrained tensor that has no place in ``init_params``.
  """
  initial = traverse_util.flatten_dict(dict(init_params))
  merged = dict(initial)
  for path, value in traverse_util.flatten_dict(dict(pretrained_params)).items():
    name = "/".join(path)
    if path not in initial:
      raise ValueError(f"Pretrained tensor {name!r} does not exist in the model to fine-tune.")
    target_shape, shape = tuple(np.shape(initial[path])), tuple(np.shape(value))
    if shape == target_shape:
      merged[path] = jnp.asarray(value, initial[path].dtype)
    elif path[0] not in _HEAD_AND_TAIL:
      raise ValueError(
        f"Pretrained tensor {name!r} has shape {shape}, the model's has "
        f"{target_shape}; only head and tail tensors may differ."
      )
  return traverse_util.unflatten_dict(merged)
