"""The ops: agreement with the NumPy port of augments.py, jit/vmap/grad, dtypes, bad input."""

from __future__ import annotations

import doctest
import functools
import inspect

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

import reference_augments as ref
from cutblur_jax import augment
from cutblur_jax.augment import (
  boxes,
  combinators,
  cutblur_ops,
  cutouts,
  cuts,
  flips,
  mixing,
  policy,
)

# name -> (op, sampler, apply, NumPy port apply, options used in the tests)
OPS = {
  "blend": (
    augment.blend,
    augment.sample_blend_params,
    augment.apply_blend,
    ref.apply_blend,
    dict(prob=0.8, alpha=0.6),
  ),
  "rgb": (augment.rgb, augment.sample_rgb_params, augment.apply_rgb, ref.apply_rgb, dict(prob=0.8)),
  "mixup": (
    augment.mixup,
    augment.sample_mixup_params,
    augment.apply_mixup,
    ref.apply_mixup,
    dict(prob=0.8, alpha=1.2),
  ),
  "cutout": (
    augment.cutout,
    augment.sample_cutout_params,
    augment.apply_cutout,
    ref.apply_cutout,
    dict(prob=0.8, alpha=0.3),
  ),
  "cutmix": (
    augment.cutmix,
    augment.sample_cutmix_params,
    augment.apply_cutmix,
    ref.apply_cutmix,
    dict(prob=0.8, alpha=0.5),
  ),
  "cutmixup": (
    augment.cutmixup,
    augment.sample_cutmixup_params,
    augment.apply_cutmixup,
    ref.apply_cutmixup,
    dict(mixup_prob=0.6, mixup_alpha=1.2, cutmix_prob=0.8, cutmix_alpha=0.5),
  ),
  "cutblur": (
    augment.cutblur,
    augment.sample_cutblur_params,
    augment.apply_cutblur,
    ref.apply_cutblur,
    dict(prob=0.8, alpha=0.5),
  ),
  "soft_cutblur": (
    augment.soft_cutblur,
    augment.sample_soft_cutblur_params,
    augment.apply_soft_cutblur,
    ref.apply_soft_cutblur,
    dict(prob=0.8, alpha=0.5, mix_alpha=1.2),
  ),
  "degradation_mixup": (
    augment.degradation_mixup,
    augment.sample_degradation_mixup_params,
    augment.apply_degradation_mixup,
    ref.apply_degradation_mixup,
    dict(prob=0.8, alpha=1.0),
  ),
  "box_cutout": (
    augment.box_cutout,
    augment.sample_box_cutout_params,
    augment.apply_box_cutout,
    ref.apply_box_cutout,
    dict(prob=0.8, alpha=0.5),
  ),
}
# Ops whose apply only selects or zeroes values: bit-exact under jit too.
PASTING = {"rgb", "cutout", "cutmix", "cutblur", "box_cutout"}
SHAPE = (4, 8, 8, 3)
NUM_DRAWS = 24


def make_images(shape=SHAPE, seed=0, dtype=np.float32):
  rng = np.random.default_rng(seed)
  hr = rng.uniform(0, 255, shape).astype(dtype)
  lr = rng.uniform(0, 255, shape).astype(dtype)
  return hr, lr


def as_tuple(output):
  return tuple(np.asarray(x) for x in output)


def take(params, i):
  """The ``i``-th params of a vmapped sampler's output."""
  return jax.tree.map(lambda x: x[i], params)


@functools.lru_cache(maxsize=None)
def sampled_params(name, per_sample=False):
  """NUM_DRAWS params sets per op, drawn in one vmapped, jitted call (cached)."""
  _, sampler, _, _, options = OPS[name]
  keys = jax.random.split(jax.random.key(1234), NUM_DRAWS)
  fn = jax.jit(jax.vmap(lambda k: sampler(k, SHAPE, per_sample=per_sample, **options)))
  return jax.device_get(fn(keys))


def ref_per_sample(port, params, batch_params, hr, lr):
  """The port of per-sample mode: image ``i`` is the batch op with image ``i``'s draws.

  A field is per image when it has one more axis than in batch mode (``applied``,
  ``v``, the box, ``inside``, rgb's ``perm``); the others (partner, colour,
  cutout's pixels) are shared.
  """
  n = hr.shape[0]
  outputs = []
  for i in range(n):
    params_i = jax.tree.map(
      lambda x, b: x[i] if np.ndim(x) == np.ndim(b) + 1 else x,  # noqa: B023  # called within this iteration
      params,
      batch_params,
    )
    outputs.append([np.asarray(o)[i] for o in port(ref.to_numpy(params_i), hr, lr)])
  return tuple(np.stack(o) for o in zip(*outputs))


# ----------------------------------------------------------------------------- NumPy port


@pytest.mark.parametrize("name", sorted(OPS))
def test_eager_apply_matches_numpy_port_exactly(name):
  _, _, apply, port, _ = OPS[name]
  hr, lr = make_images()
  params = sampled_params(name)
  applied = []
  for i in range(NUM_DRAWS):
    p = take(params, i)
    expected = port(ref.to_numpy(p), hr, lr)
    got = as_tuple(apply(p, jnp.asarray(hr), jnp.asarray(lr)))
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
      np.testing.assert_array_equal(g, e, err_msg=f"{name} draw {i}")
      assert g.dtype == np.float32
    applied.append(bool(p.applied))
  # prob 0.8 over 24 draws: both the applied and the skipped paths were compared.
  assert any(applied) and not all(applied)
  if hasattr(params, "inside"):
    inside = [bool(params.inside[i]) for i in range(NUM_DRAWS) if applied[i]]
    assert any(inside) and not all(inside)


@pytest.mark.parametrize(
  "name",
  [
    "blend",
    "rgb",
    "mixup",
    "cutout",
    "cutmix",
    "cutmixup",
    "cutblur",
    "soft_cutblur",
    "degradation_mixup",
    "box_cutout",
  ],
)
def test_per_sample_apply_matches_numpy_port(name):
  _, _, apply, port, _ = OPS[name]
  hr, lr = make_images(seed=2)
  params = sampled_params(name, per_sample=True)
  for i in range(6):
    p = take(params, i)
    assert p.applied.shape == (SHAPE[0],)
    expected = ref_per_sample(port, p, take(sampled_params(name), 0), hr, lr)
    got = as_tuple(apply(p, jnp.asarray(hr), jnp.asarray(lr)))
    for g, e in zip(got, expected):
      np.testing.assert_array_equal(g, e)


def test_cutblur_semantics_by_hand():
  hr = jnp.full((1, 6, 6, 1), 9.0)
  lr = jnp.zeros((1, 6, 6, 1))
  box = augment.Box(*map(jnp.int32, (1, 2, 3, 2)))
  inside = augment.CutBlurParams(jnp.bool_(True), box, jnp.bool_(True))
  _, out = augment.apply_cutblur(inside, hr, lr)
  expected = np.zeros((6, 6))
  expected[1:4, 2:4] = 9.0
  np.testing.assert_array_equal(out[0, :, :, 0], expected)
  outside = inside._replace(inside=jnp.bool_(False))
  hr_out, out = augment.apply_cutblur(outside, hr, lr)
  np.testing.assert_array_equal(out[0, :, :, 0], 9.0 - expected)
  np.testing.assert_array_equal(hr_out, hr)


def test_box_cutout_semantics_by_hand():
  hr = jnp.full((2, 6, 6, 1), 9.0)
  lr = jnp.full((2, 6, 6, 1), 5.0)
  box = augment.Box(*map(jnp.int32, (1, 2, 3, 2)))
  out_hr, out_lr, mask = augment.apply_box_cutout(
    augment.BoxCutoutParams(jnp.bool_(True), box), hr, lr
  )
  kept = np.ones((6, 6))
  kept[1:4, 2:4] = 0.0
  np.testing.assert_array_equal(mask[:, :, :, 0], np.stack([kept] * 2))
  np.testing.assert_array_equal(out_lr[:, :, :, 0], 5.0 * np.stack([kept] * 2))
  np.testing.assert_array_equal(out_hr, hr)
  # alpha 0.5 erases about a quarter of the area (sides 0.5 +- 0.01 of the image's).
  masks = jax.vmap(
    lambda k: augment.box_cutout(k, jnp.ones((1, 100, 100, 1)), jnp.ones((1, 100, 100, 1)))[2]
  )(jax.random.split(jax.random.key(0), 64))
  erased = 1.0 - np.asarray(masks).mean(axis=(1, 2, 3, 4))
  assert np.all((erased > 0.22) & (erased < 0.28)), erased


def test_box_mask_matches_slices():
  mask = augment.box_mask(augment.Box(*map(jnp.int32, (2, 1, 3, 4))), 7, 6)
  expected = np.zeros((1, 7, 6, 1), bool)
  expected[:, 2:5, 1:5] = True
  np.testing.assert_array_equal(mask, expected)
  per_image = augment.Box(*(jnp.array(v, jnp.int32) for v in ([0, 5], [0, 2], [7, 0], [6, 3])))
  masks = augment.box_mask(per_image, 7, 6)
  assert masks.shape == (2, 7, 6, 1)
  assert bool(masks[0].all()) and not bool(masks[1].any())
  # The rows view used by the ops: the same mask with every pixel repeated C times.
  for box in (augment.Box(*map(jnp.int32, (2, 1, 3, 4))), per_image):
    rows = augment.box_row_mask(box, 7, 6, 3)
    expected = np.repeat(np.asarray(augment.box_mask(box, 7, 6)), 3, axis=-1)
    np.testing.assert_array_equal(rows, expected.reshape(expected.shape[0], 7, 18))


def test_identity_cases_return_inputs_exactly():
  hr, lr = map(jnp.asarray, make_images())
  key = jax.random.key(3)
  for name, (op, *_rest, options) in OPS.items():
    for disabled in ({"prob": 0.0}, {"alpha": 0.0}, {"alpha": -1.0}):
      if name == "rgb" and "alpha" in disabled:
        continue
      if name == "cutmixup":
        disabled = {"cutmix_" + k: v for k, v in disabled.items()}
      out = op(key, hr, lr, **{**options, **disabled})
      np.testing.assert_array_equal(out[0], hr)
      np.testing.assert_array_equal(out[1], lr)
      if len(out) == 3:
        np.testing.assert_array_equal(out[2], np.ones(SHAPE[:3] + (1,)))


def test_cutmixup_mixup_alpha_zero_pastes_partner():
  # The reference raises in np.random.beta(0, 0); here the partner is pasted unmixed.
  hr, lr = map(jnp.asarray, make_images())
  params = augment.sample_cutmixup_params(
    jax.random.key(0), SHAPE, mixup_alpha=0.0, cutmix_alpha=0.5
  )
  assert not bool(params.mixup_applied)
  expected = ref.apply_cutmixup(ref.to_numpy(params), np.asarray(hr), np.asarray(lr))
  for g, e in zip(augment.apply_cutmixup(params, hr, lr), expected):
    np.testing.assert_array_equal(g, e)


def test_soft_cutblur_with_v_one_is_cutblur():
  hr, lr = map(jnp.asarray, make_images())
  params = augment.sample_soft_cutblur_params(jax.random.key(5), SHAPE, alpha=0.5)
  hard = augment.CutBlurParams(params.applied, params.box, params.inside)
  np.testing.assert_array_equal(
    augment.apply_soft_cutblur(params._replace(v=jnp.float32(1)), hr, lr)[1],
    augment.apply_cutblur(hard, hr, lr)[1],
  )


def test_ratio_past_one_covers_the_image():
  hr, lr = map(jnp.asarray, make_images())
  params = augment.sample_cutblur_params(jax.random.key(0), SHAPE, alpha=1.3)
  assert int(params.box.height) == SHAPE[1] and int(params.box.top) == 0
  _, out = augment.apply_cutblur(params, hr, lr)
  np.testing.assert_array_equal(out, hr if bool(params.inside) else lr)
  with pytest.raises(ValueError):  # where the reference crashes
    ref.sample_cutblur(np.random.default_rng(0), SHAPE, alpha=1.3)


# ----------------------------------------------------------------------------- jit / vmap / grad


def assert_matches(got, expected, name):
  """Pasting ops are bit-exact; mixing ops within 2 ulp of 255 (XLA may fuse a multiply-add)."""
  for g, e in zip(got, expected):
    if name in PASTING:
      np.testing.assert_array_equal(np.asarray(g), e)
    else:
      np.testing.assert_allclose(np.asarray(g), e, rtol=0, atol=3.1e-5)


class JitAgreementTest(chex.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.named_parameters(*[(name, name) for name in sorted(OPS)])
  def test_variants_agree_with_the_port(self, name):
    # The op on NUM_DRAWS keys (vmapped) against the port given the same keys' draws.
    op, _, _, port, options = OPS[name]
    hr, lr = make_images(seed=4)
    keys = jax.random.split(jax.random.key(1234), NUM_DRAWS)  # as sampled_params
    outputs = self.variant(jax.vmap(functools.partial(op, **options), in_axes=(0, None, None)))(
      keys, hr, lr
    )
    params = sampled_params(name)
    for i in range(NUM_DRAWS):
      expected = port(ref.to_numpy(take(params, i)), hr, lr)
      assert_matches([o[i] for o in outputs], expected, name)


@pytest.mark.parametrize("name", sorted(OPS))
def test_vmap_and_keys(name):
  """vmap over batches equals separate calls; same key, same output; keys differ."""
  op, *_, options = OPS[name]
  options = {**options, **({"prob": 1.0} if "prob" in options else {"cutmix_prob": 1.0})}
  hr, lr = make_images(shape=(6,) + SHAPE)
  hr[:] = hr[0]  # the same images in every batch: only the key differs
  lr[:] = lr[0]
  keys = jax.random.split(jax.random.key(7), 6)
  batched = jax.jit(jax.vmap(functools.partial(op, **options)))
  first = as_tuple(batched(keys, hr, lr))
  for a, b in zip(first, as_tuple(batched(keys, hr, lr))):
    np.testing.assert_array_equal(a, b)
  distinct = {first[1][i].tobytes() for i in range(6)}
  assert len(distinct) >= (3 if name == "rgb" else 5), name
  for b in (0, 5):
    single = as_tuple(op(keys[b], hr[b], lr[b], **options))  # eager, unbatched
    assert_matches([x[b] for x in first], single, name)


def test_grad_of_cutblur_is_the_mask():
  hr, lr = map(jnp.asarray, make_images())
  params = augment.sample_cutblur_params(jax.random.key(2), SHAPE, alpha=0.5)
  region = np.asarray(
    ref.apply_cutblur(
      ref.to_numpy(params), np.ones(SHAPE, np.float32), np.zeros(SHAPE, np.float32)
    )[1]
  )

  def loss(hr, lr):
    return augment.apply_cutblur(params, hr, lr)[1].sum()

  grad_hr, grad_lr = jax.jit(jax.grad(loss, argnums=(0, 1)))(hr, lr)
  np.testing.assert_array_equal(grad_hr, region)
  np.testing.assert_array_equal(grad_lr, 1.0 - region)


def test_grad_flows_through_every_op():
  hr, lr = map(jnp.asarray, make_images())
  params = {name: take(sampled_params(name), 1) for name in OPS}

  def loss(name, hr, lr):
    out = OPS[name][2](params[name], hr, lr)
    return jnp.sum(out[0] * 0.3) + jnp.sum(out[1] * 0.7)

  grads = jax.jit(
    lambda hr, lr: {name: jax.grad(functools.partial(loss, name), (0, 1))(hr, lr) for name in OPS}
  )(hr, lr)
  for name, (grad_hr, grad_lr) in grads.items():
    assert bool(jnp.all(jnp.isfinite(grad_hr)) & jnp.all(jnp.isfinite(grad_lr))), name
    # Output pixels are convex mixes (or copies) of inputs: the weights sum to 0.3 + 0.7,
    # except where cutout zeroes LR pixels.
    total = float(grad_hr.sum() + grad_lr.sum())
    assert 0.29 * hr.size < total <= 1.0001 * hr.size, name


@pytest.mark.parametrize("name", sorted(OPS))
def test_bfloat16_keeps_dtype_and_values(name):
  _, _, apply, port, _ = OPS[name]
  hr, lr = make_images()
  params = take(sampled_params(name), 2)
  expected = port(ref.to_numpy(params), hr, lr)
  got = apply(params, jnp.asarray(hr, jnp.bfloat16), jnp.asarray(lr, jnp.bfloat16))
  for g, e in zip(got, expected):
    assert g.dtype == jnp.bfloat16, name
    # bfloat16 keeps 8 significant bits: within 1 unit of 255, half a unit of rounding.
    np.testing.assert_allclose(np.asarray(g, np.float32), e, rtol=2**-8, atol=0.51)


# ----------------------------------------------------------------------------- bad input


def _call(name, hr, lr, **overrides):
  op, *_, options = OPS[name]
  return op(jax.random.key(0), hr, lr, **{**options, **overrides})


@pytest.mark.parametrize("name", sorted(OPS))
def test_shape_mismatch_suggests_upsampling(name):
  hr = jnp.zeros((2, 8, 8, 3))
  lr = jnp.zeros((2, 4, 4, 3))
  with pytest.raises(ValueError, match=r"`hr` and `lr`.*upsample_nearest"):
    _call(name, hr, lr)
  with pytest.raises(ValueError, match="upsample_nearest"):  # at trace time under jit
    jax.jit(functools.partial(_call, name))(hr, lr)


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("arg", ["hr", "lr"])
def test_not_4d_or_integer_is_rejected_naming_the_argument(name, arg):
  good = jnp.zeros((2, 8, 8, 3))
  bad_rank = jnp.zeros((8, 8, 3))
  bad_dtype = np.zeros((2, 8, 8, 3), np.uint8)
  for bad, error in ((bad_rank, ValueError), (bad_dtype, TypeError)):
    args = {"hr": good, "lr": good, arg: bad}
    with pytest.raises(error, match=f"`{arg}`"):
      _call(name, args["hr"], args["lr"])


@pytest.mark.parametrize("name", sorted(OPS))
def test_prob_outside_unit_interval_is_rejected(name):
  hr, lr = make_images()
  names = ["mixup_prob", "cutmix_prob"] if name == "cutmixup" else ["prob"]
  for prob_name in names:
    for value in (-0.1, 1.5, float("nan")):
      with pytest.raises(ValueError, match=f"`{prob_name}`"):
        _call(name, hr, lr, **{prob_name: value})


def test_other_bad_options_and_inputs():
  hr, lr = make_images()
  with pytest.raises(ValueError, match="3 channels"):
    augment.rgb(jax.random.key(0), hr[..., :1], lr[..., :1])
  with pytest.raises(ValueError, match="3 channels"):
    augment.sample_rgb_params(jax.random.key(0), (2, 8, 8, 4))
  with pytest.raises(ValueError, match="`alpha`"):
    augment.blend(jax.random.key(0), hr, lr, alpha=1.5)
  with pytest.raises(ValueError, match="`alpha`"):
    augment.cutout(jax.random.key(0), hr, lr, alpha=1.5)
  with pytest.raises(ValueError, match="`alpha`"):
    augment.cutblur(jax.random.key(0), hr, lr, alpha=float("inf"))
  with pytest.raises(TypeError, match="same dtype"):
    augment.cutblur(jax.random.key(0), hr, lr.astype(jnp.bfloat16))
  with pytest.raises(ValueError, match="`shape`"):
    augment.sample_cutblur_params(jax.random.key(0), (8, 8, 3))
  with pytest.raises(TypeError, match="`hr`"):
    augment.cutblur(jax.random.key(0), hr.tolist(), lr)
  with pytest.raises(ValueError, match="`hr` must not be empty"):
    augment.cutblur(jax.random.key(0), hr[:0], lr[:0])
  with pytest.raises(ValueError, match="`prob` must be a real scalar"):
    augment.cutblur(jax.random.key(0), hr, lr, prob="0.5")


def test_traced_options_are_accepted():
  # A vmapped alpha cannot be range-checked but must still work.
  hr, lr = map(jnp.asarray, make_images())
  alphas = jnp.array([0.0, 0.5])
  out = jax.vmap(lambda a: augment.cutblur(jax.random.key(0), hr, lr, alpha=a)[1])(alphas)
  np.testing.assert_array_equal(out[0], lr)
  expected = augment.cutblur(jax.random.key(0), hr, lr, alpha=0.5)[1]
  np.testing.assert_array_equal(out[1], expected)


# ----------------------------------------------------------------------------- API


OP_NAMES = [
  "blend",
  "rgb",
  "mixup",
  "cutout",
  "cutmix",
  "cutmixup",
  "cutblur",
  "soft_cutblur",
  "degradation_mixup",
  "box_cutout",
]
DOCUMENTED_DEFAULTS = {
  "blend": dict(prob=1.0, alpha=0.6),
  "rgb": dict(prob=1.0),
  "mixup": dict(prob=1.0, alpha=1.2),
  "cutout": dict(prob=1.0, alpha=0.001),
  "cutmix": dict(prob=1.0, alpha=0.7),
  "cutmixup": dict(mixup_prob=1.0, mixup_alpha=1.2, cutmix_prob=1.0, cutmix_alpha=0.7),
  "cutblur": dict(prob=1.0, alpha=0.7),
  "soft_cutblur": dict(prob=1.0, alpha=0.7, mix_alpha=1.2),
  "degradation_mixup": dict(prob=1.0, alpha=1.0),
  "box_cutout": dict(prob=1.0, alpha=0.5),
}


def _params(fn):
  return list(inspect.signature(fn).parameters.values())


@pytest.mark.parametrize("name", OP_NAMES)
def test_api_of_every_op(name):
  op = getattr(augment, name)
  params = _params(op)
  assert [p.name for p in params[:3]] == ["key", "hr", "lr"]
  assert all(p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty for p in params[:3])
  options = {p.name: p.default for p in params[3:]}
  assert all(p.kind is p.KEYWORD_ONLY for p in params[3:])
  assert options == DOCUMENTED_DEFAULTS[name]

  sampler = getattr(augment, f"sample_{name}_params")
  params = _params(sampler)
  assert [p.name for p in params[:2]] == ["key", "shape"]
  assert all(p.kind is p.KEYWORD_ONLY for p in params[2:])
  assert {p.name: p.default for p in params[2:]} == {
    **DOCUMENTED_DEFAULTS[name],
    "per_sample": False,
  }

  apply = getattr(augment, f"apply_{name}")
  params = _params(apply)
  assert [p.name for p in params] == ["params", "hr", "lr"]
  assert all(p.default is p.empty for p in params)
  for fn in (op, sampler, apply):
    assert fn.__module__.startswith("cutblur_jax.augment")


def test_api_of_the_rest():
  assert [p.name for p in _params(augment.apply_augment)] == ["key", "hr", "lr", "policy"]
  moa_params = {p.name: p.default for p in _params(augment.moa)}
  assert moa_params == {
    "dataset": None,
    "model": None,
    "realsr": False,
    "same_size": False,
    "carn": False,
  }
  flags = [p for p in _params(augment.moa) if p.name in ("realsr", "same_size", "carn")]
  assert all(p.kind is p.KEYWORD_ONLY for p in flags)
  policy_params = {p.name: p.default for p in _params(augment.Policy)}
  assert list(policy_params)[:6] == ["augs", "probs", "alphas", "aux_prob", "aux_alpha", "mix_p"]
  assert (
    policy_params["aux_prob"],
    policy_params["aux_alpha"],
    policy_params["mix_p"],
    policy_params["per_sample"],
  ) == (1.0, 1.2, None, False)
  assert [p.name for p in _params(augment.sample_box)] == ["key", "shape", "alpha", "per_sample"]
  assert _params(augment.sample_box)[2].kind is inspect.Parameter.KEYWORD_ONLY
  assert [p.name for p in _params(augment.box_mask)] == ["box", "height", "width"]
  assert [p.name for p in _params(augment.box_row_mask)] == ["box", "height", "width", "channels"]
  assert [p.name for p in _params(augment.one_of)] == ["ops", "weights"]
  assert _params(augment.chain)[0].kind is inspect.Parameter.VAR_POSITIONAL
  for name in augment.__all__:
    assert getattr(augment, name) is not None, name
  assert set(OP_NAMES) < set(augment.__all__)
  assert set(augment.OP_NAMES) == set(OP_NAMES) | {"none"}


def test_docstring_examples_run():
  for module in (augment, boxes, combinators, cutblur_ops, cutouts, cuts, flips, mixing, policy):
    result = doctest.testmod(
      module, extraglobs={"jax": jax, "jnp": jnp}, optionflags=doctest.ELLIPSIS
    )
    assert result.failed == 0 and result.attempted > 0, module.__name__


def test_legacy_uint32_keys_give_the_same_draws():
  hr, lr = map(jnp.asarray, make_images())
  for op in (augment.cutblur, augment.mixup):
    typed = op(jax.random.key(3), hr, lr)
    legacy = op(jax.random.PRNGKey(3), hr, lr)
    for a, b in zip(typed, legacy):
      np.testing.assert_array_equal(a, b)
