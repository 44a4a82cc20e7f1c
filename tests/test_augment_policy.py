"""Policy, moa, apply_augment and the combinators."""

from __future__ import annotations

import dataclasses
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import reference_augments as ref
from cutblur_jax import augment

Z = 4.5
P_MIN = 1e-4
SHAPE = (4, 8, 8, 3)
TINY = (2, 4, 4, 3)

# One compiled MoA per process, shared by the tests below; it must trace once.
COUNTED_APPLY = jax.jit(
  chex.assert_max_traces(augment.apply_augment, n=1), static_argnames="policy"
)
APPLY = jax.jit(augment.apply_augment, static_argnames="policy")


def make_images(shape=SHAPE, seed=0, dtype=np.float32):
  rng = np.random.default_rng(seed)
  return (rng.uniform(0, 255, shape).astype(dtype), rng.uniform(0, 255, shape).astype(dtype))


@functools.lru_cache(maxsize=None)
def _vmapped_apply(policy, shape):
  return jax.jit(
    jax.vmap(lambda k, hr, lr: augment.apply_augment(k, hr, lr, policy), in_axes=(0, None, None))
  )


def indices(policy, n, seed=0, shape=TINY):
  """The op index of ``n`` keys, from one vmapped, jitted apply_augment."""
  hr, lr = make_images(shape)
  keys = jax.random.split(jax.random.key(seed), n)
  return np.asarray(_vmapped_apply(policy, shape)(keys, hr, lr)[3])


# ----------------------------------------------------------------------------- Policy


def test_policy_is_frozen_hashable_and_normalised():
  a = augment.Policy(["cutblur", "none"], [1, 0.5], [0.7, 0], mix_p=[0.75, 0.25])
  b = augment.Policy(("cutblur", "none"), (1.0, 0.5), (0.7, 0.0), mix_p=(0.75, 0.25))
  assert a == b and hash(a) == hash(b)
  assert a.augs == ("cutblur", "none") and a.probs == (1.0, 0.5) and a.mix_p == (0.75, 0.25)
  assert isinstance(a.probs[0], float) and len(a) == 2
  assert a != dataclasses.replace(a, per_sample=True)
  with pytest.raises(dataclasses.FrozenInstanceError):
    a.probs = (1.0, 1.0)  # type: ignore[misc]
  assert augment.Policy(["none"], [1], [0]).mix_p is None


@pytest.mark.parametrize(
  "kwargs,error,match",
  [
    (dict(augs=["cutblurr"]), ValueError, r"unknown op 'cutblurr'.*blend, rgb, mixup"),
    (dict(augs="cutblur"), TypeError, "`augs` must be a sequence"),
    (dict(augs=[]), ValueError, "at least one op"),
    (dict(augs=[3]), TypeError, "op names or callables"),
    (dict(probs=[1.0]), ValueError, "`probs` must have one value per op"),
    (dict(alphas=[0.7, 0.7, 0.7]), ValueError, "`alphas` must have one value per op"),
    (dict(probs=[1.0, 1.2]), ValueError, r"`probs` must be probabilities in \[0, 1\]"),
    (dict(probs=[-0.1, 1.0]), ValueError, "`probs`"),
    (dict(probs=[float("nan"), 1.0]), ValueError, "`probs` must be finite"),
    (dict(aux_prob=1.2), ValueError, "`aux_prob`.*1.2"),
    (dict(mix_p=[1.0]), ValueError, "`mix_p` must have one probability per op"),
    (dict(mix_p=[1.5, -0.5]), ValueError, "`mix_p` must be non-negative"),
    (dict(mix_p=[0.5, 0.6]), ValueError, "`mix_p` must sum to 1"),
    (dict(mix_p="ab"), ValueError, "`mix_p` must be a sequence"),
    (dict(per_sample="yes"), TypeError, "`per_sample` must be a bool"),
    (dict(augs=["blend", "none"], alphas=[1.5, 0.0]), ValueError, "at most 1"),
    (dict(alphas=["x", 0.7]), TypeError, "`alphas` must be a Python number"),
  ],
)
def test_policy_validation(kwargs, error, match):
  args = dict(augs=["cutblur", "mixup"], probs=[1.0, 1.0], alphas=[0.7, 1.2])
  with pytest.raises(error, match=match):
    augment.Policy(**{**args, **kwargs})


def test_policy_rejects_traced_values():
  with pytest.raises(TypeError, match="traced"):
    jax.jit(lambda p: augment.Policy(["cutblur"], [p], [0.7]))(0.5)


@pytest.mark.parametrize(
  "dataset", ["DIV2K_SR", "RealSR", "DIV2K_DN", "DIV2K_JPEG", "Set5_SR", "RealSR_DN"]
)
@pytest.mark.parametrize("model", ["EDSR", "RCAN", "CARN"])
def test_moa_matches_make_template(dataset, model):
  augs, prob, alpha, aux_prob, aux_alpha, mix_p = ref.moa_template(dataset, model)
  policy = augment.moa(dataset, model)
  assert policy == augment.Policy(augs, prob, alpha, aux_prob, aux_alpha, mix_p)
  assert not policy.per_sample


def test_moa_defaults_and_spot_values():
  assert augment.moa() == augment.moa("DIV2K_SR", "EDSR")
  assert augment.moa().probs == (1.0,) * 7 and augment.moa().mix_p is None
  assert augment.moa("DIV2K_DN").probs == (0.6,) * 7
  assert augment.moa("DIV2K_JPEG", "CARN").probs == (0.2,) * 7
  assert augment.moa("RealSR", "CARN").probs == (1.0,) * 7
  assert augment.moa("RealSR").mix_p == (0.1,) * 6 + (0.4,)
  assert augment.moa().alphas == (0.6, 1.0, 1.2, 0.001, 0.7, 0.7, 0.7)
  assert (augment.moa().aux_prob, augment.moa().aux_alpha) == (1.0, 1.2)
  with pytest.raises(TypeError, match="`dataset`"):
    augment.moa(4)


# ----------------------------------------------------------------------------- apply_augment


def run_entry(policy, i, key, hr, lr):
  """Runs entry ``i`` of ``policy`` through the public op, as documented."""
  name = policy.augs[i]
  prob, alpha = policy.probs[i], policy.alphas[i]
  if name == "none":
    return hr, lr, np.ones(hr.shape[:3] + (1,), hr.dtype)
  if name == "rgb":
    out = augment.rgb(key, hr, lr, prob=prob)
  elif name == "cutmixup":
    out = augment.cutmixup(
      key,
      hr,
      lr,
      mixup_prob=policy.aux_prob,
      mixup_alpha=policy.aux_alpha,
      cutmix_prob=prob,
      cutmix_alpha=alpha,
    )
  elif name == "soft_cutblur":
    out = augment.soft_cutblur(key, hr, lr, prob=prob, alpha=alpha, mix_alpha=policy.aux_alpha)
  else:
    out = getattr(augment, name)(key, hr, lr, prob=prob, alpha=alpha)
  return out if len(out) == 3 else (*out, np.ones(hr.shape[:3] + (1,), hr.dtype))


def test_apply_augment_runs_the_drawn_op_with_the_documented_keys():
  hr, lr = make_images()
  policy = augment.moa()
  seen = set()
  for seed in range(24):
    key = jax.random.key(seed)
    new_hr, new_lr, mask, index = COUNTED_APPLY(key, hr, lr, policy=policy)
    assert index.dtype == jnp.int32 and index.shape == ()
    assert new_hr.shape == SHAPE and mask.shape == SHAPE[:3] + (1,) and mask.dtype == hr.dtype
    i = int(index)
    seen.add(i)
    keys = jax.random.split(key, len(policy) + 1)
    expected = run_entry(policy, i, keys[1 + i], hr, lr)
    for got, want in zip((new_hr, new_lr, mask), expected):
      np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=0, atol=3.1e-5)
    if policy.augs[i] != "cutout":
      np.testing.assert_array_equal(mask, 1.0)
  assert len(seen) >= 5  # most ops were exercised


@pytest.mark.parametrize(
  "augs,probs,alphas,aux_prob,aux_alpha",
  [
    # Extreme gates tell prob from aux_prob with any key: swapped, cutmixup is the identity.
    (["cutmixup"], [1.0], [0.45], 0.0, 0.8),
    (["cutmixup"], [1.0], [0.45], 1.0, 0.3),
    (["soft_cutblur"], [1.0], [0.45], 1.0, 0.3),
    (["rgb"], [0.0], [5.0], 1.0, 0.3),  # rgb takes prob (0: the identity), ignores alpha
  ],
)
def test_policy_numbers_reach_the_ops_as_documented(augs, probs, alphas, aux_prob, aux_alpha):
  policy = augment.Policy(augs, probs, alphas, aux_prob=aux_prob, aux_alpha=aux_alpha)
  hr, lr = make_images()
  for seed in range(3):
    key = jax.random.key(seed)
    *got, index = augment.apply_augment(key, hr, lr, policy)  # eager
    i = int(index)
    expected = run_entry(policy, i, jax.random.split(key, len(policy) + 1)[1 + i], hr, lr)
    for g, e in zip(got, expected):
      np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=0, atol=3.1e-5)


def test_no_retrace_on_later_calls_or_equal_policies():
  hr, lr = make_images()
  for seed in (100, 101):
    COUNTED_APPLY(jax.random.key(seed), hr, lr, policy=augment.moa())  # a new, equal policy
  COUNTED_APPLY(jax.random.key(102), hr + 1, lr, policy=augment.Policy(*ref.moa_template()))


def test_mix_p_frequencies():
  # The draw does not depend on the ops, so cheap "none" entries stand in for MoA's.
  n = 7000
  policy = augment.Policy(["none"] * 7, [1.0] * 7, [0.0] * 7, mix_p=augment.moa("RealSR").mix_p)
  counts = np.bincount(indices(policy, n, seed=1), minlength=7)
  assert scipy.stats.chisquare(counts, n * np.array(policy.mix_p)).pvalue > P_MIN
  uniform = augment.Policy(["none"] * 5, [1.0] * 5, [0.0] * 5)
  counts = np.bincount(indices(uniform, 5000, seed=2), minlength=5)
  assert scipy.stats.chisquare(counts).pvalue > P_MIN
  skewed = dataclasses.replace(uniform, mix_p=(0.0, 0.0, 1.0, 0.0, 0.0))
  np.testing.assert_array_equal(indices(skewed, 200, seed=3), 2)


def test_cutout_mask_only_when_cutout_fired():
  policy = augment.Policy(["none", "cutout"], [1.0, 1.0], [0.0, 1.0])  # cutout drops all
  hr, lr = make_images(TINY)
  keys = jax.random.split(jax.random.key(4), 400)
  new_hr, new_lr, mask, index = _vmapped_apply(policy, TINY)(keys, hr, lr)
  fired = np.asarray(index) == 1
  assert 0.3 < fired.mean() < 0.7
  np.testing.assert_array_equal(np.asarray(mask)[fired], 0.0)
  np.testing.assert_array_equal(np.asarray(mask)[~fired], 1.0)
  np.testing.assert_array_equal(np.asarray(new_lr)[fired], 0.0)
  np.testing.assert_array_equal(
    np.asarray(new_lr)[~fired], np.broadcast_to(lr, ((~fired).sum(),) + TINY)
  )
  np.testing.assert_array_equal(np.asarray(new_hr), np.broadcast_to(hr, (400,) + TINY))


class ApplyAugmentVariantsTest(chex.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  def test_eager_and_jit_agree(self):
    policy = augment.Policy(["cutblur", "blend", "none", "cutout"], [1.0] * 4, [0.5, 0.6, 0.0, 0.2])
    hr, lr = make_images()
    fn = self.variant(functools.partial(augment.apply_augment, policy=policy))
    for seed in range(4):
      key = jax.random.key(seed)
      got = fn(key, hr, lr)
      i = int(got[3])
      keys = jax.random.split(key, len(policy) + 1)
      for g, e in zip(got[:3], run_entry(policy, i, keys[1 + i], hr, lr)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=0, atol=3.1e-5)


def test_bfloat16_and_grad_through_apply_augment():
  policy = augment.Policy(["cutout", "mixup", "cutblur"], [1.0] * 3, [0.2, 1.2, 0.5])
  hr, lr = make_images()
  out = APPLY(jax.random.key(0), hr.astype(jnp.bfloat16), lr.astype(jnp.bfloat16), policy=policy)
  assert [x.dtype for x in out] == [jnp.bfloat16] * 3 + [jnp.int32]

  def loss(lr, key):
    new_hr, new_lr, mask, _ = augment.apply_augment(key, jnp.asarray(hr), lr, policy)
    return jnp.mean(jnp.abs(new_lr * mask - new_hr * mask))

  grad = jax.jit(jax.grad(loss))
  for seed in range(3):
    g = grad(jnp.asarray(lr), jax.random.key(seed))
    assert g.shape == SHAPE and bool(jnp.all(jnp.isfinite(g)))


def test_apply_augment_bad_input():
  hr, lr = make_images()
  with pytest.raises(TypeError, match="`policy`"):
    augment.apply_augment(jax.random.key(0), hr, lr, ["cutblur"])
  with pytest.raises(ValueError, match="upsample_nearest"):
    APPLY(jax.random.key(0), hr, lr[:, ::2, ::2], policy=augment.moa())
  with pytest.raises(TypeError, match="`lr`"):
    APPLY(jax.random.key(0), hr, lr.astype(np.uint8), policy=augment.moa())
  with pytest.raises(ValueError, match="`hr`"):
    APPLY(jax.random.key(0), hr[0], lr[0], policy=augment.moa())
  with pytest.raises(ValueError, match="'rgb'.*3 channels"):
    APPLY(jax.random.key(0), hr[..., :1], lr[..., :1], policy=augment.moa())


# ----------------------------------------------------------------------------- per-sample


def test_per_sample_uses_each_images_own_op_and_draws():
  policy = augment.Policy(
    ["cutblur", "mixup", "none", "cutout"],
    [0.8, 1.0, 1.0, 1.0],
    [0.5, 1.2, 0.0, 0.3],
    per_sample=True,
  )
  n = 8
  hr, lr = make_images((n, 8, 8, 3))
  apply = jax.jit(functools.partial(augment.apply_augment, policy=policy))
  samplers = [
    lambda k: augment.sample_cutblur_params(k, hr.shape, prob=0.8, alpha=0.5, per_sample=True),
    lambda k: augment.sample_mixup_params(k, hr.shape, alpha=1.2, per_sample=True),
    None,
    lambda k: augment.sample_cutout_params(k, hr.shape, alpha=0.3, per_sample=True),
  ]
  appliers = [augment.apply_cutblur, augment.apply_mixup, None, augment.apply_cutout]
  mixed_batches = 0
  for seed in range(3):
    key = jax.random.key(seed)
    new_hr, new_lr, mask, index = apply(key, hr, lr)
    assert index.shape == (n,) and index.dtype == jnp.int32
    mixed_batches += len(set(np.asarray(index).tolist())) > 1
    keys = jax.random.split(key, len(policy) + 1)
    for j, i in enumerate(np.asarray(index)):
      if samplers[i] is None:
        expected = (hr[j], lr[j], np.ones((8, 8, 1), np.float32))
      else:
        out = appliers[i](samplers[i](keys[1 + i]), hr, lr)
        expected = tuple(np.asarray(x)[j] for x in out) + (
          (np.ones((8, 8, 1)),) if len(out) == 2 else ()
        )
      for got, want in zip((new_hr[j], new_lr[j], mask[j]), expected):
        np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=3.1e-5)
  assert mixed_batches == 3  # images of one batch draw different ops


def test_per_sample_op_choice_is_independent_across_images():
  # The draw does not depend on the ops (their per-image draws are tested in
  # test_augment_sampling.py), so cheap "none" entries stand in for MoA's.
  policy = augment.Policy(["none"] * 7, [1.0] * 7, [0.0] * 7, per_sample=True)
  n = 3000
  index = indices(policy, n, seed=5, shape=(4, 4, 4, 3))
  assert index.shape == (n, 4)
  for column in index.T:
    assert scipy.stats.chisquare(np.bincount(column, minlength=7)).pvalue > P_MIN
  same = (index[:, 0] == index[:, 1]).astype(float)
  p = 1 / 7
  assert abs(same.mean() - p) < Z * np.sqrt(p * (1 - p) / n)


# ----------------------------------------------------------------------------- user functions


def invert(key, hr, lr):
  del key
  return 255.0 - hr, 255.0 - lr


def drop_left_half(key, hr, lr):
  del key
  mask = jnp.ones(hr.shape[:3] + (1,), hr.dtype).at[:, :, : hr.shape[2] // 2].set(0)
  return hr, lr * mask, mask


def test_policy_accepts_user_functions():
  policy = augment.Policy([invert, "none"], [0.5, 1.0], [0.0, 0.0], mix_p=[1.0, 0.0])
  hr, lr = make_images(TINY)
  keys = jax.random.split(jax.random.key(6), 2000)
  new_hr, new_lr, mask, _ = _vmapped_apply(policy, TINY)(keys, hr, lr)
  inverted = np.all(np.isclose(np.asarray(new_hr), 255.0 - hr), axis=(1, 2, 3, 4))
  kept = np.all(np.asarray(new_hr) == hr, axis=(1, 2, 3, 4))
  assert np.all(inverted | kept)
  p = 0.5
  assert abs(inverted.mean() - p) < Z * np.sqrt(p * (1 - p) / 2000)
  np.testing.assert_array_equal(mask, 1.0)

  masked = augment.Policy([drop_left_half], [1.0], [0.0], per_sample=True)
  _, new_lr, mask, index = APPLY(jax.random.key(0), hr, lr, policy=masked)
  assert index.shape == (TINY[0],)
  np.testing.assert_array_equal(np.asarray(mask)[:, :, :2], 0.0)
  np.testing.assert_array_equal(np.asarray(mask)[:, :, 2:], 1.0)
  np.testing.assert_array_equal(np.asarray(new_lr)[:, :, 2:], lr[:, :, 2:])


def test_bad_user_function_outputs_are_reported():
  hr, lr = make_images(TINY)
  for fn, match in (
    (lambda k, h, l: h, "must return"),
    (lambda k, h, l: (h[:, :2], l), "input shape and dtype"),
    (lambda k, h, l: (h.astype(jnp.bfloat16), l), "input shape and dtype"),
    (lambda k, h, l: (h, l, jnp.ones((7,))), "mask of shape"),
  ):
    with pytest.raises(TypeError, match=match):
      augment.apply_augment(jax.random.key(0), hr, lr, augment.Policy([fn], [1.0], [0.0]))


# ----------------------------------------------------------------------------- combinators


def test_chain_composes_in_order_with_split_keys_and_multiplies_masks():
  op = augment.chain(
    augment.rgb, drop_left_half, functools.partial(augment.cutout, alpha=0.3), invert
  )
  hr, lr = make_images()
  key = jax.random.key(7)
  new_hr, new_lr, mask = jax.jit(op)(key, hr, lr)
  k = jax.random.split(key, 4)
  h, l = augment.rgb(k[0], hr, lr)
  h, l, m1 = drop_left_half(k[1], h, l)
  h, l, m2 = augment.cutout(k[2], h, l, alpha=0.3)
  h, l = invert(k[3], h, l)
  for got, want in ((new_hr, h), (new_lr, l), (mask, m1 * m2)):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=0, atol=3.1e-5)
  assert 0 < float(mask.mean()) < 0.5


def test_one_of_draws_by_weight_and_runs_the_drawn_op():
  ops = [augment.cutblur, invert, functools.partial(augment.blend, alpha=0.5)]
  op = augment.one_of(ops, weights=[2, 1, 1])
  assert op.probs == (0.5, 0.25, 0.25)
  hr, lr = make_images(TINY)
  n = 3000
  keys = jax.random.split(jax.random.key(8), n)
  new_hr = np.asarray(jax.jit(jax.vmap(op, in_axes=(0, None, None)))(keys, hr, lr)[0])
  inverted = np.all(np.isclose(new_hr, 255.0 - hr), axis=(1, 2, 3, 4))
  unchanged = np.all(new_hr == hr, axis=(1, 2, 3, 4))  # only cutblur leaves hr as is
  assert abs(inverted.mean() - 0.25) < Z * np.sqrt(0.25 * 0.75 / n)
  assert abs(unchanged.mean() - 0.5) < Z * np.sqrt(0.25 / n)
  # The documented keys: keys[0] chooses, op i runs on keys[1 + i].
  key = jax.random.key(9)
  k = jax.random.split(key, 4)
  i = int(jax.random.categorical(k[0], jnp.log(jnp.array(op.probs))))
  expected = ops[i](k[1 + i], hr, lr)
  for got, want in zip(op(key, hr, lr), expected):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=0, atol=3.1e-5)


def test_combinators_nest_hash_and_compile_once():
  inner = augment.one_of([augment.cutblur, augment.moa()], weights=[1, 1])
  assert inner == augment.one_of([augment.cutblur, augment.moa()], weights=[3, 3])
  assert hash(augment.chain(augment.rgb, inner)) == hash(augment.chain(augment.rgb, inner))
  policy = augment.Policy(
    [augment.chain(augment.rgb, augment.cutblur), "none"], [1.0, 1.0], [0.0, 0.0]
  )
  assert hash(policy) == hash(dataclasses.replace(policy))
  op = augment.chain(augment.rgb, inner)

  def run(key, hr, lr):
    return op(key, hr, lr)

  counted = jax.jit(chex.assert_max_traces(run, n=1))
  hr, lr = make_images(TINY)
  for seed in range(3):
    out = counted(jax.random.key(seed), hr, lr)
  assert out[2].shape == TINY[:3] + (1,)


def test_combinator_validation():
  with pytest.raises(ValueError, match="at least one op"):
    augment.chain()
  with pytest.raises(TypeError, match="callable"):
    augment.chain(augment.rgb, "cutblur")
  with pytest.raises(TypeError, match="sequence of callables"):
    augment.one_of(augment.rgb)
  with pytest.raises(ValueError, match="one weight per op"):
    augment.one_of([augment.rgb, augment.cutblur], weights=[1.0])
  with pytest.raises(ValueError, match="non-negative"):
    augment.one_of([augment.rgb, augment.cutblur], weights=[1.0, -1.0])
  with pytest.raises(ValueError, match="positive sum"):
    augment.one_of([augment.rgb, augment.cutblur], weights=[0.0, 0.0])
  hr, lr = make_images(TINY)
  with pytest.raises(ValueError, match="one_of: `hr` and `lr`"):
    augment.one_of([augment.rgb])(jax.random.key(0), hr, lr[:, :2])


def test_one_of_and_a_policy_of_the_same_ops_share_one_dispatcher():
  hr = jax.random.uniform(jax.random.key(1), (2, 8, 8, 3), maxval=255.0)
  lr = jnp.roll(hr, 1, axis=1)
  ops = (functools.partial(augment.mixup, alpha=0.4), functools.partial(augment.cutblur, alpha=0.7))
  combined = jax.jit(augment.one_of(ops, weights=[0.25, 0.75]))
  policy = augment.Policy(ops, (1.0, 1.0), (0.0, 0.0), mix_p=(0.25, 0.75))
  by_policy_fn = jax.jit(augment.apply_augment, static_argnames="policy")
  for seed in range(3):
    key = jax.random.key(seed)
    by_one_of = combined(key, hr, lr)
    by_policy = by_policy_fn(key, hr, lr, policy=policy)[:3]
    for a, b in zip(by_one_of, by_policy):  # two programs: XLA may fuse a mix differently
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=3.1e-5)
