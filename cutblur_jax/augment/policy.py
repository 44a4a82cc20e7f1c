"""``Policy``, the MoA presets and ``apply_augment``: one random op per batch, inside jit.

A ``Policy`` is the reference's ``(augs, probs, alphas, aux_prob, aux_alpha,
mix_p)`` as a frozen, hashable dataclass, validated when it is built, so it can
be a static argument of ``jax.jit`` (equal policies hit the same compiled
function). ``apply_augment(key, hr, lr, policy)`` then:

1. splits ``key`` into ``len(augs) + 1`` keys: ``keys[0]`` for the choice and
   ``keys[1 + i]`` for op ``i``;
2. draws the op index ``i ~ Categorical(mix_p)`` (uniform when ``mix_p`` is
   None), as the reference's ``np.random.choice(len(augs), p=mix_p)``;
3. runs op ``i`` with ``probs[i]`` and ``alphas[i]`` (and ``aux_prob``,
   ``aux_alpha`` where they apply) on ``keys[1 + i]``.

Batch mode (default, the reference's semantics): one index and one set of draws
for the batch. The ops are branches of one ``lax.switch``, so only the chosen
op runs. Outputs: ``hr, lr`` of the input shape and dtype, ``mask``
``[N, H, W, 1]`` of the image dtype (all ones unless a cutout fired) and
``index``, an int32 scalar (the position in ``policy.augs``).

Per-sample mode (``Policy(..., per_sample=True)``): each image draws its own op
and parameters; partners for mixup and the cut ops still come from one random
permutation of the batch. Every op of the policy is computed for the whole
batch and the results selected per image, so it costs about one pass per op
(a ``switch`` cannot pick a different branch per image). ``index`` is then an
int32 ``[N]`` vector. User functions in a per-sample policy are vmapped over
single-image batches ``[1, H, W, C]``.

Op names: ``"none"``, the seven of ``augments.py`` (``"blend"``, ``"rgb"``,
``"mixup"``, ``"cutout"``, ``"cutmix"``, ``"cutmixup"``, ``"cutblur"``) and
the three new ones (``"soft_cutblur"``, ``"degradation_mixup"``,
``"box_cutout"``). How a policy entry's numbers reach the op:

==================  ==========================================================
none                nothing (prob and alpha ignored).
rgb                 ``prob``; ``alpha`` ignored (the reference's ``rgb`` has none).
cutmixup            ``cutmix_prob=prob``, ``cutmix_alpha=alpha``,
                    ``mixup_prob=aux_prob``, ``mixup_alpha=aux_alpha``.
soft_cutblur        ``prob``, ``alpha`` (box), ``mix_alpha=aux_alpha``.
others              ``prob``, ``alpha``.
a callable          ``fn(key, hr, lr) -> (hr, lr)`` or ``(hr, lr, mask)``, run
                    with probability ``prob``; ``alpha`` ignored (bind options
                    with ``functools.partial``). Functions hash by identity:
                    build the policy once and reuse it to avoid recompiles.
==================  ==========================================================
"""

from __future__ import annotations

import collections.abc
import dataclasses
import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from cutblur_jax.augment import _checks, cutblur_ops, cutouts, cuts, mixing
from cutblur_jax.augment.dispatch import Output, draw_index, normalize_output, op_name, select_one


class _Entry(NamedTuple):
  prob: float
  alpha: float
  aux_prob: float
  aux_alpha: float


class _Builtin(NamedTuple):
  sample: Callable[..., Any]  # (key, shape, entry, per_sample) -> params
  apply: Callable[..., tuple]  # (params, hr, lr) -> (hr, lr) or (hr, lr, mask)


def _simple(sample_fn, apply_fn) -> _Builtin:
  return _Builtin(
    lambda key, shape, e, per_sample: sample_fn(
      key, shape, prob=e.prob, alpha=e.alpha, per_sample=per_sample
    ),
    apply_fn,
  )


_BUILTINS: dict[str, _Builtin | None] = {
  "none": None,
  "blend": _simple(mixing.sample_blend_params, mixing._apply_blend),
  "rgb": _Builtin(
    lambda key, shape, e, per_sample: mixing.sample_rgb_params(
      key, shape, prob=e.prob, per_sample=per_sample
    ),
    mixing._apply_rgb,
  ),
  "mixup": _simple(mixing.sample_mixup_params, mixing._apply_mixup),
  "cutout": _simple(cutouts.sample_cutout_params, cutouts._apply_cutout),
  "cutmix": _simple(cuts.sample_cutmix_params, cuts._apply_cutmix),
  "cutmixup": _Builtin(
    lambda key, shape, e, per_sample: cuts.sample_cutmixup_params(
      key,
      shape,
      mixup_prob=e.aux_prob,
      mixup_alpha=e.aux_alpha,
      cutmix_prob=e.prob,
      cutmix_alpha=e.alpha,
      per_sample=per_sample,
    ),
    cuts._apply_cutmixup,
  ),
  "cutblur": _simple(cutblur_ops.sample_cutblur_params, cutblur_ops._apply_cutblur),
  "soft_cutblur": _Builtin(
    lambda key, shape, e, per_sample: cutblur_ops.sample_soft_cutblur_params(
      key, shape, prob=e.prob, alpha=e.alpha, mix_alpha=e.aux_alpha, per_sample=per_sample
    ),
    cutblur_ops._apply_soft_cutblur,
  ),
  "degradation_mixup": _simple(
    mixing.sample_degradation_mixup_params, mixing._apply_degradation_mixup
  ),
  "box_cutout": _simple(cutouts.sample_box_cutout_params, cutouts._apply_box_cutout),
}

#: Every op name a ``Policy`` accepts.
OP_NAMES = tuple(_BUILTINS)


def _as_float(value: Any, name: str) -> float:
  if isinstance(value, bool) or np.ndim(value) != 0:
    raise TypeError(f"Policy: `{name}` must be a Python number, got {value!r}.")
  try:
    number = float(value)
  except jax.errors.ConcretizationTypeError as error:
    raise TypeError(
      f"Policy: `{name}` must be a Python number (a Policy is static "
      f"configuration), got a traced value."
    ) from error
  except (TypeError, ValueError) as error:
    raise TypeError(f"Policy: `{name}` must be a Python number, got {value!r}.") from error
  if not math.isfinite(number):
    raise ValueError(f"Policy: `{name}` must be finite, got {number!r}.")
  return number


def _as_tuple(values: Any, name: str) -> tuple:
  if isinstance(values, (str, bytes)) or not isinstance(
    values, (collections.abc.Sequence, np.ndarray)
  ):
    raise TypeError(f"Policy: `{name}` must be a sequence (list or tuple), got {values!r}.")
  return tuple(values)


@dataclasses.dataclass(frozen=True)
class Policy:
  """A mixture of augmentations: which ops, how often, and with which strengths.

  Attributes:
    augs: op names (see ``OP_NAMES``) or callables ``fn(key, hr, lr) -> (hr, lr)``
      or ``(hr, lr, mask)``.
    probs: per op, the probability that it is applied once chosen, in [0, 1].
    alphas: per op, its strength (``alpha``; ignored by ``none``, ``rgb`` and callables).
    aux_prob: CutMixup's mixup probability, in [0, 1]. (The reference's
      ``solver.py`` passes ``aux_alpha`` here, a "probability" of 1.2 that acts
      as 1.0; 1.0 reproduces it.)
    aux_alpha: CutMixup's mixup Beta parameter, and soft CutBlur's ``mix_alpha``.
    mix_p: probabilities of choosing each op (non-negative, summing to 1), or
      None for uniform.
    per_sample: draw the op and its parameters per image instead of per batch.

  Examples:
    >>> policy = Policy(["cutblur", "none"], [1.0, 1.0], [0.7, 0.0], mix_p=[0.8, 0.2])
    >>> policy.augs, hash(policy) == hash(Policy(("cutblur", "none"), (1, 1), (0.7, 0),
    ...                                          mix_p=(0.8, 0.2)))
    (('cutblur', 'none'), True)
  """

  augs: tuple[str | Callable[..., Any], ...]
  probs: tuple[float, ...]
  alphas: tuple[float, ...]
  aux_prob: float = 1.0
  aux_alpha: float = 1.2
  mix_p: tuple[float, ...] | None = None
  per_sample: bool = False

  def __post_init__(self):
    augs = _as_tuple(self.augs, "augs")
    if not augs:
      raise ValueError("Policy: `augs` must name at least one op.")
    for aug in augs:
      if isinstance(aug, str):
        if aug not in _BUILTINS:
          raise ValueError(
            f"Policy: unknown op {aug!r} in `augs`; valid names are "
            f"{', '.join(OP_NAMES)} (or pass a callable)."
          )
      elif not callable(aug):
        raise TypeError(f"Policy: `augs` entries must be op names or callables, got {aug!r}.")
      else:
        try:
          hash(aug)
        except TypeError as error:
          raise TypeError(f"Policy: callable {aug!r} in `augs` must be hashable.") from error
    probs = tuple(_as_float(p, "probs") for p in _as_tuple(self.probs, "probs"))
    alphas = tuple(_as_float(a, "alphas") for a in _as_tuple(self.alphas, "alphas"))
    for name, values in (("probs", probs), ("alphas", alphas)):
      if len(values) != len(augs):
        raise ValueError(
          f"Policy: `{name}` must have one value per op in `augs` "
          f"({len(augs)}), got {len(values)}: {values!r}."
        )
    for aug, p in zip(augs, probs):
      if not 0.0 <= p <= 1.0:
        raise ValueError(f"Policy: `probs` must be probabilities in [0, 1], got {p!r} for {aug!r}.")
    aux_prob = _as_float(self.aux_prob, "aux_prob")
    if not 0.0 <= aux_prob <= 1.0:
      raise ValueError(
        f"Policy: `aux_prob` must be a probability in [0, 1], got {aux_prob!r} "
        "(the reference passes aux_alpha = 1.2 there, which acts as 1.0)."
      )
    aux_alpha = _as_float(self.aux_alpha, "aux_alpha")
    for aug, alpha in zip(augs, alphas):
      upper = 1.0 if aug in ("blend", "cutout") else None
      if upper is not None and alpha > upper:
        raise ValueError(f"Policy: `alphas` for {aug!r} must be at most {upper}, got {alpha!r}.")
    mix_p = _checks.check_distribution(self.mix_p, "mix_p", len(augs), op="Policy")
    if not isinstance(self.per_sample, (bool, np.bool_)):
      raise TypeError(f"Policy: `per_sample` must be a bool, got {self.per_sample!r}.")
    for name, value in (
      ("augs", augs),
      ("probs", probs),
      ("alphas", alphas),
      ("aux_prob", aux_prob),
      ("aux_alpha", aux_alpha),
      ("mix_p", mix_p),
      ("per_sample", bool(self.per_sample)),
    ):
      object.__setattr__(self, name, value)

  def __len__(self) -> int:
    return len(self.augs)

  def __call__(self, key: jax.Array, hr: jax.Array, lr: jax.Array) -> Output:
    """The policy as an op: ``apply_augment`` without the index, for ``chain``/``one_of``."""
    hr, lr, mask, _ = apply_augment(key, hr, lr, self)
    return hr, lr, mask


# ----------------------------------------------------------------------------- running ops
# apply_augment checked the images once: the ops run their unchecked halves.


def _run_builtin(
  aug: str, entry: _Entry, key: jax.Array, hr: jax.Array, lr: jax.Array, per_sample: bool
) -> Output:
  builtin = _BUILTINS[aug]
  if builtin is None:  # "none"
    return hr, lr, jnp.ones(hr.shape[:3] + (1,), hr.dtype)
  params = builtin.sample(key, hr.shape, entry, per_sample)
  return normalize_output(builtin.apply(params, hr, lr), hr, lr, name=aug)


def _run_batch(aug: Any, entry: _Entry, key: jax.Array, hr: jax.Array, lr: jax.Array) -> Output:
  """Runs one policy entry with one draw for the batch."""
  if isinstance(aug, str):
    return _run_builtin(aug, entry, key, hr, lr, per_sample=False)

  if entry.prob >= 1.0:  # as one_of runs it: the op gets the entry's key as it is
    return normalize_output(aug(key, hr, lr), hr, lr, name=op_name(aug))
  key_gate, key_fn = jax.random.split(key)

  def run(hr, lr):
    return normalize_output(aug(key_fn, hr, lr), hr, lr, name=op_name(aug))

  def skip(hr, lr):
    return hr, lr, jnp.ones(hr.shape[:3] + (1,), hr.dtype)

  return lax.cond(jax.random.uniform(key_gate) < entry.prob, run, skip, hr, lr)


def _run_per_sample(
  aug: Any, entry: _Entry, key: jax.Array, hr: jax.Array, lr: jax.Array
) -> Output:
  """Runs one policy entry with one draw per image (the whole batch is computed)."""
  if isinstance(aug, str):
    return _run_builtin(aug, entry, key, hr, lr, per_sample=True)

  n = hr.shape[0]
  key_gate, key_fn = jax.random.split(key)

  def run_one(key, hr1, lr1):
    hr1, lr1 = hr1[None], lr1[None]
    out = normalize_output(aug(key, hr1, lr1), hr1, lr1, name=op_name(aug))
    return tuple(x[0] for x in out)

  new_hr, new_lr, mask = jax.vmap(run_one)(jax.random.split(key_fn, n), hr, lr)
  applied = (jax.random.uniform(key_gate, (n,)) < entry.prob).reshape(n, 1, 1, 1)
  return (
    jnp.where(applied, new_hr, hr),
    jnp.where(applied, new_lr, lr),
    jnp.where(applied, mask, jnp.ones((), hr.dtype)),
  )


def apply_augment(
  key: jax.Array, hr: jax.Array, lr: jax.Array, policy: Policy
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  """Applies one op of ``policy``, chosen at random, to a batch (the reference's ``apply_augment``).

  Jit it with the policy static, e.g. ``jax.jit(apply_augment, static_argnames="policy")``,
  or call it inside a jitted train step.

  Args:
    key: a JAX PRNG key.
    hr: ``[N, H, W, C]`` float batch in [0, 255].
    lr: LR batch of the same shape and dtype (upsampled to HR size).
    policy: a ``Policy`` (e.g. ``moa()``).

  Returns:
    ``(hr, lr, mask, index)``: hr and lr of the input shape and dtype; ``mask``
    ``[N, H, W, 1]`` of the image dtype (1 kept, 0 dropped; all ones unless
    a cutout fired), to multiply both the prediction and hr by before the loss;
    ``index``, the chosen entry of ``policy.augs``: an int32 scalar, or an
    int32 ``[N]`` vector in per-sample mode.

  Examples:
    >>> hr = jnp.full((4, 16, 16, 3), 128.0)
    >>> lr = jnp.full((4, 16, 16, 3), 64.0)
    >>> policy = Policy(["cutblur", "cutout"], [1.0, 1.0], [0.7, 0.5])
    >>> hr2, lr2, mask, index = apply_augment(jax.random.key(0), hr, lr, policy)
    >>> mask.shape, index.dtype, policy.augs[int(index)] in ("cutblur", "cutout")
    ((4, 16, 16, 1), dtype('int32'), True)
  """
  if not isinstance(policy, Policy):
    raise TypeError(
      f"apply_augment: `policy` must be a cutblur_jax.augment.Policy "
      f"(e.g. moa()), got {type(policy).__name__}."
    )
  hr, lr = _checks.check_images(hr, lr, op="apply_augment")
  for aug in policy.augs:
    if aug == "rgb" and hr.shape[-1] != 3:
      raise ValueError(
        f"apply_augment: the policy contains 'rgb', which needs 3 channels, "
        f"but `hr` has {hr.shape[-1]} channels."
      )
  entries = [
    _Entry(p, a, policy.aux_prob, policy.aux_alpha) for p, a in zip(policy.probs, policy.alphas)
  ]

  if policy.per_sample:
    keys = jax.random.split(key, len(policy) + 1)
    key_choice, op_keys = keys[0], keys[1:]
    index = draw_index(key_choice, policy.mix_p, len(policy), (hr.shape[0],))
    outputs = [
      _run_per_sample(aug, entry, op_keys[i], hr, lr)
      for i, (aug, entry) in enumerate(zip(policy.augs, entries))
    ]
    if len(outputs) == 1:
      new_hr, new_lr, mask = outputs[0]
    else:
      which = index.reshape(-1, 1, 1, 1)
      new_hr, new_lr, mask = (
        lax.select_n(jnp.broadcast_to(which, outs[0].shape), *outs) for outs in zip(*outputs)
      )
    return new_hr, new_lr, mask, index

  branches = [functools.partial(_run_batch, aug, entry) for aug, entry in zip(policy.augs, entries)]
  return select_one(key, branches, policy.mix_p, hr, lr)
