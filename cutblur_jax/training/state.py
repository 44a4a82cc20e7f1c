"""The train state: parameters, optimizer state, optional EMA, and the static recipe.

Everything that changes the compiled train step is a static, value-compared field of
``TrainState`` (architecture, optimizer, augmentation policy, flips, dtype, EMA decay),
so two states built alike share one compiled program and the MoA choice is data inside
the graph, never a retrace. Array fields are donated to, and replaced by, every step.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from cutblur_jax import augment, models
from cutblur_jax import sharding as sharding_lib
from cutblur_jax.training.optimizer import OptimizerConfig, create_optimizer

__all__ = [
  "TrainState",
  "abstract_train_state",
  "create_train_state",
  "frozen_arch",
  "initial_params",
]


def frozen_arch(arch: Mapping[str, Any]) -> models.Arch:
  """``arch`` as the hashable ``models.Arch`` that the state keeps as a static field."""
  return models.canonical_arch(arch)


class TrainState(struct.PyTreeNode):
  """Everything a train step reads and writes.

  Array fields (donated and replaced by every step): ``step`` (int32 scalar),
  ``params``, ``opt_state`` and ``ema_params`` (the exponential moving average of the
  parameters, ``None`` when ``ema_decay`` is 0). Static fields (compared by value, part
  of the compiled program): ``arch`` (a ``models.Arch``),
  ``optimizer`` (``OptimizerConfig``), ``policy`` (``augment.Policy``),
  ``flip_and_rotate``, ``dtype`` (the model's compute dtype name) and ``ema_decay``.
  """

  step: jax.Array
  params: Any
  opt_state: Any
  arch: models.Arch = struct.field(pytree_node=False)
  optimizer: OptimizerConfig = struct.field(pytree_node=False)
  policy: Any = struct.field(pytree_node=False)
  flip_and_rotate: bool = struct.field(pytree_node=False, default=True)
  dtype: str = struct.field(pytree_node=False, default="float32")
  ema_params: Any = None
  ema_decay: float = struct.field(pytree_node=False, default=0.0)

  @property
  def eval_params(self) -> Any:
    """The weights to validate and ship: the moving average when EMA is on, else ``params``."""
    return self.ema_params if self.ema_decay > 0 else self.params

  @property
  def model(self):
    return models.create_model(self.arch, dtype=jnp.dtype(self.dtype))

  @property
  def tx(self) -> optax.GradientTransformation:
    return create_optimizer(self.optimizer)


def _init_input(arch: Mapping[str, Any]) -> jax.ShapeDtypeStruct:
  side = 8 * int(arch["scale"])  # any size divisible by the scale: parameters do not depend on it
  return jax.ShapeDtypeStruct((1, side, side, 3), jnp.float32)


@functools.lru_cache(maxsize=16)
def _optimizer_init_fn(optimizer: OptimizerConfig, sharding: jax.sharding.Sharding) -> Callable:
  return jax.jit(create_optimizer(optimizer).init, out_shardings=sharding)


def initial_params(key: jax.Array, arch: Mapping[str, Any], mesh: jax.sharding.Mesh) -> Any:
  """Freshly initialised parameters of ``arch``, replicated over ``mesh``.

  Initialised op by op, not as one jitted program: XLA's compile time for the unrolled
  initialisers of a deep network grows faster than linearly with its depth (RCAN's 200
  blocks took over 10 minutes to compile on a 2-core CPU, at any optimisation level),
  while running them eagerly takes about 2 s and compiles only a few small kernels, which
  same-shaped layers share. Every process computes the same values from the same key.
  """
  model = models.create_model(arch)
  params = model.init(key, jnp.zeros(_init_input(arch).shape, jnp.float32))["params"]
  return sharding_lib.replicate(params, mesh)


def create_train_state(
  key: jax.Array,
  arch: Mapping[str, Any],
  *,
  optimizer: OptimizerConfig = OptimizerConfig(),  # noqa: B008  # an immutable NamedTuple
  policy: Any = None,
  flip_and_rotate: bool = True,
  dtype: str = "float32",
  params: Any = None,
  mesh: jax.sharding.Mesh | None = None,
  ema_decay: float = 0.0,
  ema_params: Any = None,
) -> TrainState:
  """A fresh ``TrainState`` (step 0), replicated over ``mesh``.

  Args:
    key: initialisation key (ignored when ``params`` is given).
    arch: architecture dict (``models.model_arch``).
    optimizer: ``OptimizerConfig``.
    policy: ``augment.Policy`` (default: no augmentation).
    flip_and_rotate: random flips and transposes in the step.
    dtype: compute dtype name ("float32", "bfloat16", "float16").
    params: initial parameters (e.g. merged from a pretrained model).
    mesh: the device mesh (default: every device).
    ema_decay: keep ``ema = ema_decay * ema + (1 - ema_decay) * params`` after every
      update (0, the paper's setting, keeps none; 0.999 is the common choice).
    ema_params: the average to continue from (default: a copy of the initial params).

  Returns:
    The state, every array replicated over ``mesh``.

  Examples:
    >>> arch = models.model_arch("EDSR", 2, num_blocks=2, num_channels=8)  # doctest: +SKIP
    >>> state = create_train_state(jax.random.key(0), arch)  # doctest: +SKIP
  """
  if isinstance(ema_decay, bool) or not 0.0 <= float(ema_decay) < 1.0:
    raise ValueError(f"`ema_decay` must be in [0, 1), got {ema_decay!r}.")
  return _create_train_state(
    key,
    arch,
    optimizer=optimizer,
    policy=policy,
    flip_and_rotate=flip_and_rotate,
    dtype=dtype,
    params=params,
    mesh=mesh,
    ema_decay=ema_decay,
    ema_params=ema_params,
  )


def _create_train_state(
  key, arch, *, optimizer, policy, flip_and_rotate, dtype, params, mesh, ema_decay, ema_params
) -> TrainState:
  """``create_train_state`` for checked arguments (a resolved ``Recipe``'s)."""
  mesh = sharding_lib.create_mesh() if mesh is None else mesh
  replicated = sharding_lib.replicated_sharding(mesh)
  policy = augment.Policy(("none",), (1.0,), (1.0,)) if policy is None else policy
  params = (
    initial_params(key, arch, mesh) if params is None else sharding_lib.replicate(params, mesh)
  )
  opt_state = _optimizer_init_fn(optimizer, replicated)(params)
  step = sharding_lib.replicate(np.int32(0), mesh)
  if ema_decay > 0:
    # A copy, not the same buffers: the step donates both trees.
    ema_params = (
      jax.tree.map(jnp.copy, params)
      if ema_params is None
      else sharding_lib.replicate(ema_params, mesh)
    )
  else:
    ema_params = None
  return TrainState(
    step=step,
    params=params,
    opt_state=opt_state,
    arch=frozen_arch(arch),
    optimizer=optimizer,
    policy=policy,
    flip_and_rotate=bool(flip_and_rotate),
    dtype=str(dtype),
    ema_params=ema_params,
    ema_decay=float(ema_decay),
  )


def abstract_train_state(
  arch: Mapping[str, Any], optimizer: OptimizerConfig, mesh: jax.sharding.Mesh
) -> tuple[Any, Any]:
  """``(params, opt_state)`` as ``ShapeDtypeStruct`` trees replicated over ``mesh`` (to restore)."""
  model = models.create_model(arch)
  replicated = sharding_lib.replicated_sharding(mesh)
  params = jax.eval_shape(
    lambda k, x: model.init(k, x)["params"], jax.random.key(0), _init_input(arch)
  )
  opt_state = jax.eval_shape(create_optimizer(optimizer).init, params)
  with_sharding = lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated)
  return jax.tree.map(with_sharding, params), jax.tree.map(with_sharding, opt_state)
