"""The draws, tested by distribution with fixed seeds and tolerances that can fail.

Every test draws thousands of samples in one vmapped, jitted call. Tolerances
are set from the standard error (``Z`` standard errors, a two-sided false
alarm rate below 1e-5 per check) or from a goodness-of-fit p-value floor.
"""

from __future__ import annotations

import functools
import inspect
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
import scipy.stats

import reference_augments as ref
from cutblur_jax import augment
from cutblur_jax.augment import _sampling

Z = 4.5  # standard errors
P_MIN = 1e-4  # smallest accepted goodness-of-fit p-value
SHAPE = (4, 8, 8, 3)


@functools.lru_cache(maxsize=None)
def _vmapped(sampler, shape, per_sample):
  # Options are traced arguments, so one compilation serves every test of a sampler.
  def one(key, options):
    return sampler(key, shape, per_sample=per_sample, **options)

  return jax.jit(jax.vmap(one, in_axes=(0, None)))


def draw(sampler, n, seed=0, shape=SHAPE, per_sample=False, **options):
  """``n`` params sets of ``sampler`` in one vmapped, jitted call."""
  defaults = {
    p.name: p.default
    for p in inspect.signature(sampler).parameters.values()
    if p.kind is p.KEYWORD_ONLY and p.name != "per_sample"
  }
  options = {k: jnp.float32(v) for k, v in {**defaults, **options}.items()}
  keys = jax.random.split(jax.random.key(seed), n)
  return jax.device_get(_vmapped(sampler, tuple(shape), per_sample)(keys, options))


def assert_rate(hits, p, name=""):
  hits = np.asarray(hits, np.float64).ravel()
  se = np.sqrt(p * (1 - p) / hits.size)
  assert abs(hits.mean() - p) < Z * se, (
    f"{name}: rate {hits.mean():.5f}, expected {p} ± {Z * se:.5f}"
  )


def assert_uniform_counts(values, categories, name=""):
  counts = np.array([(np.asarray(values) == c).sum() for c in categories])
  p = scipy.stats.chisquare(counts).pvalue
  assert p > P_MIN, f"{name}: counts {counts} not uniform (p = {p:.2g})"


# ----------------------------------------------------------------------------- transforms


def test_transforms_are_exactly_distributed():
  (bits,) = _sampling.split_bits(jax.random.key(0), [(20000,)])
  bits = np.asarray(bits)
  u = np.asarray(_sampling.unit(bits))
  assert u.min() >= 0 and u.max() < 1
  assert scipy.stats.kstest(u, "uniform").pvalue > P_MIN
  assert scipy.stats.kstest(np.asarray(_sampling.open_unit(bits)), "uniform").pvalue > P_MIN
  assert scipy.stats.kstest(np.asarray(_sampling.normal(bits)), "norm").pvalue > P_MIN
  integers = np.asarray(_sampling.randint(bits, 7))
  assert integers.min() == 0 and integers.max() == 6
  assert_uniform_counts(integers, range(7), "randint")
  perms = np.asarray(jax.vmap(_sampling.permutation)(bits.reshape(-1, 4)))
  codes = [tuple(p) for p in perms]
  assert all(sorted(c) == [0, 1, 2, 3] for c in codes)
  assert_uniform_counts(
    [hash(c) for c in codes], [hash(c) for c in itertools.permutations(range(4))], "permutation"
  )


def test_open_unit_and_normal_at_the_extreme_words():
  # Every word, including all-ones, maps strictly inside (0, 1), symmetrically about 1/2,
  # so no normal draw (box ratio, gamma proposal) is ever infinite.
  extremes = np.array(
    [0, 1, 0xFF, 0x100, 0x7FFFFFFF, 0x80000000, 0xFFFFFEFF, 0xFFFFFF00, 0xFFFFFFFF], np.uint32
  )
  bits = np.concatenate(
    [extremes, np.asarray(_sampling.split_bits(jax.random.key(21), [(4000,)])[0])]
  )
  u = np.asarray(_sampling.open_unit(bits), np.float64)
  assert u.min() > 0 and u.max() < 1
  np.testing.assert_array_equal(u + np.asarray(_sampling.open_unit(~bits), np.float64), 1.0)
  z = np.asarray(_sampling.normal(bits))
  assert np.all(np.isfinite(z)) and np.abs(z).max() < 5.5
  np.testing.assert_array_equal(z, -np.asarray(_sampling.normal(~bits)))


@pytest.mark.parametrize("a", [0.05, 0.3, 1.0, 3.0])
def test_gamma_matches_scipy(a):
  (bits,) = _sampling.split_bits(jax.random.key(1), [(50000, 2 * _sampling.GAMMA_PROPOSALS + 1)])
  log_g = jax.jit(_sampling._log_gamma)(bits, jnp.float32(a))  # pylint: disable=protected-access
  g = np.exp(np.asarray(log_g, np.float64))
  assert scipy.stats.kstest(g, scipy.stats.gamma(a).cdf).pvalue > P_MIN


@pytest.mark.parametrize("a", [0.05, 0.3, 1.0, 1.2, 4.0, 300.0])
def test_beta_matches_scipy(a):
  (bits,) = _sampling.split_bits(jax.random.key(2), [(50000, _sampling.BETA_WORDS)])
  v = np.asarray(jax.jit(_sampling.beta)(bits, a), np.float64)
  assert v.min() >= 0 and v.max() <= 1
  # KS on the probability integral transform of the logit, in float64 and by symmetry on
  # the upper half: float32 v rounds draws within 6e-8 of 1 to 1 (22% of them for a = 0.05).
  logit = jax.jit(_sampling._beta_logit)  # pylint: disable=protected-access
  z = np.asarray(logit(bits, a), np.float64)
  np.testing.assert_allclose(scipy.special.expit(z), v, rtol=1e-6, atol=1e-30)
  lower_tail = scipy.special.betainc(a, a, scipy.special.expit(-np.abs(z)))
  pit = np.where(z < 0, lower_tail, 1.0 - lower_tail)
  assert scipy.stats.kstest(pit, "uniform").pvalue > P_MIN


def test_beta_with_a_tiny_parameter_is_a_fair_coin_not_nan():
  # Beta(a, a) tends to Bernoulli(1/2) on {0, 1} as a -> 0; log(U) / a overflows to -inf.
  (bits,) = _sampling.split_bits(jax.random.key(22), [(4000, _sampling.BETA_WORDS)])
  for a in (1e-20, 1e-38, 1e-44):
    v = np.asarray(jax.jit(_sampling.beta)(bits, a))
    assert set(np.unique(v)) == {0.0, 1.0}, a
    assert_rate(v == 1.0, 0.5, f"Beta({a}, {a}) = 1")


# ----------------------------------------------------------------------------- boxes


def test_box_ratio_mean_sd_and_normality():
  n, alpha, size = 4000, 0.7, 100_000  # only the shape is used: no image is allocated
  box = draw(augment.sample_box, n, shape=(1, size, size // 2, 3), alpha=alpha)
  ratio = box.height / size
  assert abs(ratio.mean() - alpha) < Z * 0.01 / np.sqrt(n)
  assert abs(ratio.std() - 0.01) < Z * 0.01 / np.sqrt(2 * n)
  assert scipy.stats.kstest(ratio, scipy.stats.norm(alpha, 0.01).cdf).pvalue > P_MIN
  # One ratio for both sides, truncated: width = int(W * ratio) with W = H / 2.
  np.testing.assert_array_less(np.abs(box.width - box.height / 2), 1.0)


def test_box_size_truncates_like_int():
  # 10 * N(0.55, 0.01^2) lies in (5.0, 6.0) to 5 sigma: int() gives 5, rounding would give 6.
  box = draw(augment.sample_box, 2000, shape=(1, 10, 10, 3), alpha=0.55)
  np.testing.assert_array_equal(box.height, 5)


def test_box_position_uniform_and_inside():
  box = draw(augment.sample_box, 4000, shape=(1, 8, 8, 3), alpha=0.5)
  assert set(np.unique(box.height)) == {3, 4}  # int(8 * N(0.5, 0.01^2))
  assert np.all(box.top + box.height <= 8) and np.all(box.left + box.width <= 8)
  for h in (3, 4):
    chosen = box.height == h
    assert chosen.sum() > 800
    assert_uniform_counts(box.top[chosen], range(8 - h + 1), f"top | height {h}")
    assert_uniform_counts(box.left[chosen], range(8 - h + 1), f"left | height {h}")


def test_box_distribution_matches_the_reference_port():
  n = 4000
  ours = draw(augment.sample_cutblur_params, n, seed=3, alpha=0.5)
  rng = np.random.default_rng(3)
  theirs = [ref.sample_cutblur(rng, SHAPE, alpha=0.5) for _ in range(n)]
  ours_pairs = [(int(h), int(t)) for h, t in zip(ours.box.height, ours.box.top)]
  theirs_pairs = [(p["box"]["height"], p["box"]["top"]) for p in theirs]
  cells = sorted(set(ours_pairs) | set(theirs_pairs))
  table = np.array([[pairs.count(c) for c in cells] for pairs in (ours_pairs, theirs_pairs)])
  assert scipy.stats.chi2_contingency(table).pvalue > P_MIN


def test_box_past_the_image_is_clamped():
  box = draw(augment.sample_box, 4000, shape=(1, 8, 8, 3), alpha=1.2)
  np.testing.assert_array_equal(box.height, 8)
  np.testing.assert_array_equal(box.top, 0)
  with pytest.raises(ValueError):  # where the reference crashes
    ref.sample_cutblur(np.random.default_rng(0), SHAPE, alpha=1.2)


def test_box_with_tiny_alpha_may_be_empty_but_never_negative():
  box = draw(augment.sample_box, 4000, shape=(1, 8, 8, 3), alpha=0.001)
  assert box.height.min() == 0 and box.width.min() >= 0 and box.top.max() <= 8


# ----------------------------------------------------------------------------- op draws


def test_sides_are_fair_coins():
  for sampler in (augment.sample_cutblur_params, augment.sample_soft_cutblur_params):
    assert_rate(draw(sampler, 4000, seed=4).inside, 0.5, sampler.__name__)
  assert_rate(draw(augment.sample_cutmixup_params, 4000, seed=4).inside, 0.5, "cutmixup")


@pytest.mark.parametrize(
  "sampler,field,options,a",
  [
    (augment.sample_mixup_params, "v", dict(alpha=1.2), 1.2),
    (augment.sample_cutmixup_params, "v", dict(mixup_alpha=0.4), 0.4),
    (augment.sample_soft_cutblur_params, "v", dict(mix_alpha=2.0), 2.0),
    (augment.sample_degradation_mixup_params, "v", dict(alpha=1.0), 1.0),
  ],
)
def test_beta_draws(sampler, field, options, a):
  v = getattr(draw(sampler, 4000, seed=5, **options), field).astype(np.float64)
  assert scipy.stats.kstest(v, scipy.stats.beta(a, a).cdf).pvalue > P_MIN


def test_blend_uniform_draws():
  params = draw(augment.sample_blend_params, 20000, seed=6, alpha=0.6)
  assert scipy.stats.kstest(params.v, scipy.stats.uniform(0.6, 0.4).cdf).pvalue > P_MIN
  colour = params.colour.reshape(-1)  # [draws * N * C], independent draws
  assert colour.shape == (20000 * 4 * 3,)
  assert scipy.stats.kstest(colour, scipy.stats.uniform(0, 255).cdf).pvalue > P_MIN


def test_permutations_are_uniform():
  partner = draw(augment.sample_mixup_params, 6000, seed=7, shape=(3, 8, 8, 3)).partner
  perms = list(itertools.permutations(range(3)))
  codes = [perms.index(tuple(p)) for p in partner]
  assert_uniform_counts(codes, range(6), "mixup partner")
  rgb = draw(augment.sample_rgb_params, 4000, seed=8).perm
  assert_uniform_counts([perms.index(tuple(p)) for p in rgb], range(6), "rgb")


def test_cutout_drop_rate_and_independence():
  # draw() passes alpha traced, which takes the dense path (one word per pixel).
  keep = draw(augment.sample_cutout_params, 50, seed=10, shape=(8, 32, 32, 3), alpha=0.1).keep
  assert keep.shape == (50, 8, 32, 32, 1)  # one draw per pixel, shared by the channels
  assert_rate(~keep, 0.1, "drop rate")
  dropped = (~keep).astype(np.float64)
  # Neighbouring pixels are independent: P(both dropped) = 0.01.
  assert_rate(dropped[:, :, :, 1:] * dropped[:, :, :, :-1], 0.01, "pairs")
  # The MoA drop rate, 0.001, over a million pixels.
  keep = draw(augment.sample_cutout_params, 16, seed=11, shape=(16, 64, 64, 3), alpha=0.001).keep
  assert_rate(~keep, 0.001, "drop rate 0.001")


def test_sparse_cutout_path_is_the_same_bernoulli_field():
  shape, alpha, n, pixels = (2, 32, 32, 3), 0.01, 2000, 2 * 32 * 32
  assert _sampling.sparse_bernoulli_capacity(pixels, alpha) is not None
  keys = jax.random.split(jax.random.key(19), n)
  # A Python alpha takes the sparse path (one word per dropped pixel).
  keep = jax.jit(jax.vmap(lambda k: augment.sample_cutout_params(k, shape, alpha=alpha).keep))(keys)
  dropped = ~np.asarray(keep)[..., 0]
  counts = dropped.reshape(n, -1).sum(axis=1)
  mean, var = pixels * alpha, pixels * alpha * (1 - alpha)  # Binomial(pixels, alpha)
  assert abs(counts.mean() - mean) < Z * np.sqrt(var / n)
  assert abs(counts.var() / var - 1) < Z * np.sqrt(2 / (n - 1))
  # Every pixel equally likely: about n * alpha = 20 drops each.
  assert scipy.stats.chisquare(dropped.sum(axis=0).ravel()).pvalue > P_MIN
  assert_rate(dropped[..., 1:] & dropped[..., :-1], alpha**2, "neighbours")
  assert_rate(dropped[:, 0] & dropped[:, 1], alpha**2, "images")
  # The same law as the dense path: drop counts compared by a chi-square contingency test.
  dense = ~draw(augment.sample_cutout_params, n, seed=20, shape=shape, alpha=alpha).keep
  dense_counts = dense.reshape(n, -1).sum(axis=1)
  bins = [0, 14, 17, 19, 21, 23, 26, 10**6]
  table = [np.histogram(c, bins)[0] for c in (counts, dense_counts)]
  assert scipy.stats.chi2_contingency(table).pvalue > P_MIN


@pytest.mark.parametrize(
  "sampler,options",
  [
    (augment.sample_blend_params, dict(prob=0.3)),
    (augment.sample_rgb_params, dict(prob=0.3)),
    (augment.sample_mixup_params, dict(prob=0.3)),
    (augment.sample_cutout_params, dict(prob=0.3)),
    (augment.sample_cutmix_params, dict(prob=0.3)),
    (augment.sample_cutmixup_params, dict(cutmix_prob=0.3)),
    (augment.sample_cutblur_params, dict(prob=0.3)),
    (augment.sample_soft_cutblur_params, dict(prob=0.3)),
    (augment.sample_degradation_mixup_params, dict(prob=0.3)),
    (augment.sample_box_cutout_params, dict(prob=0.3)),
  ],
)
def test_prob_gate_frequency(sampler, options):
  assert_rate(draw(sampler, 4000, seed=12, **options).applied, 0.3, sampler.__name__)


def test_cutmixup_mixup_gate_frequency():
  params = draw(augment.sample_cutmixup_params, 4000, seed=13, mixup_prob=0.6)
  assert_rate(params.mixup_applied, 0.6, "mixup_prob")
  assert np.all(params.applied)


# ----------------------------------------------------------------------------- per-sample


def test_per_sample_draws_are_independent_across_images():
  n = 4000
  params = draw(
    augment.sample_cutblur_params,
    n,
    seed=14,
    shape=(4, 100, 100, 3),
    alpha=0.5,
    prob=0.5,
    per_sample=True,
  )
  assert params.applied.shape == (n, 4) and params.box.height.shape == (n, 4)
  # Marginals per image, then pairwise independence of images 0 and 1.
  for i in range(4):
    assert_rate(params.applied[:, i], 0.5, f"gate {i}")
    assert_rate(params.inside[:, i], 0.5, f"side {i}")
  assert_rate(params.applied[:, 0] & params.applied[:, 1], 0.25, "joint gate")
  assert_rate(params.inside[:, 0] & params.inside[:, 1], 0.25, "joint side")
  r = np.corrcoef(params.box.height[:, 0], params.box.height[:, 1])[0, 1]
  assert abs(r) < Z / np.sqrt(n), f"box heights correlate across images: r = {r:.3f}"
  r = np.corrcoef(params.box.top[:, 0], params.box.top[:, 1])[0, 1]
  assert abs(r) < Z / np.sqrt(n), f"box tops correlate across images: r = {r:.3f}"
  v = draw(augment.sample_mixup_params, n, seed=15, per_sample=True).v
  assert scipy.stats.kstest(v[:, 2], scipy.stats.beta(1.2, 1.2).cdf).pvalue > P_MIN
  r = np.corrcoef(v[:, 0], v[:, 1])[0, 1]
  assert abs(r) < Z / np.sqrt(n), f"mixup v correlates across images: r = {r:.3f}"
  perm = draw(augment.sample_rgb_params, n, seed=16, per_sample=True).perm
  assert perm.shape == (n, 4, 3)
  assert np.mean(np.all(perm[:, 0] == perm[:, 1], axis=-1)) < 1 / 6 + Z * np.sqrt(5 / 36 / n)


def test_same_key_same_draws_different_keys_differ():
  key = jax.random.key(17)
  first = augment.sample_cutblur_params(key, SHAPE)
  again = augment.sample_cutblur_params(key, SHAPE)
  chex_equal = jax.tree.map(lambda a, b: bool(np.array_equal(a, b)), first, again)
  assert all(jax.tree.leaves(chex_equal))
  v = {
    float(augment.sample_mixup_params(k, SHAPE).v) for k in jax.random.split(jax.random.key(18), 8)
  }
  assert len(v) == 8
