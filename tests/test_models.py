"""Tests for cutblur_jax.models: layers against PyTorch, presets, parameter counts, shapes."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cutblur_jax import image, models  # noqa: E402
from cutblur_jax.models import layers  # noqa: E402
import torch_twins  # noqa: E402

TINY = {
  "EDSR": {"num_blocks": 2, "num_channels": 8},
  "RCAN": {"num_groups": 2, "num_blocks": 2, "num_channels": 16, "reduction": 4},
  "CARN": {"num_groups": 2, "num_blocks": 2, "num_channels": 8},
}


def tiny_arch(name: str, scale: int) -> dict:
  return models.model_arch(name, scale, **TINY[name])


@pytest.fixture(scope="module")
def tiny_models():
  """name -> (model, params, jitted apply) for tiny x2 networks."""
  out = {}
  for name in TINY:
    arch = tiny_arch(name, 2)
    model = models.create_model(arch)
    out[name] = (model, torch_twins.random_flax_params(arch, seed=1), jax.jit(model.apply))
  return out


# --- Layers --------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_space_to_depth_equals_official_downblock(scale):
  x = np.random.default_rng(scale).normal(size=(2, 3, 4 * scale, 5 * scale)).astype(np.float32)
  expected = torch_twins.DownBlock(scale)(torch.from_numpy(x)).numpy().transpose(0, 2, 3, 1)
  got = layers.space_to_depth(jnp.asarray(x.transpose(0, 2, 3, 1)), scale)
  np.testing.assert_array_equal(got, expected)


def test_space_to_depth_channel_formula():
  scale, channels = 3, 2
  x = np.random.default_rng(0).normal(size=(1, 6, 9, channels)).astype(np.float32)
  out = np.asarray(layers.space_to_depth(jnp.asarray(x), scale))
  for sy in range(scale):
    for sx in range(scale):
      for c in range(channels):
        np.testing.assert_array_equal(
          out[0, :, :, (sy * scale + sx) * channels + c], x[0, sy::scale, sx::scale, c]
        )


@pytest.mark.parametrize("scale", [2, 3])
def test_pixel_shuffle_equals_torch(scale):
  x = np.random.default_rng(scale).normal(size=(2, 4 * scale**2, 3, 5)).astype(np.float32)
  expected = torch.nn.PixelShuffle(scale)(torch.from_numpy(x)).numpy().transpose(0, 2, 3, 1)
  got = layers.pixel_shuffle(jnp.asarray(x.transpose(0, 2, 3, 1)), scale)
  np.testing.assert_array_equal(got, expected)


def test_pixel_shuffle_and_space_to_depth_are_not_inverses_but_both_scale_1_identity():
  x = jnp.arange(2 * 4 * 4 * 3, dtype=jnp.float32).reshape(2, 4, 4, 3)
  np.testing.assert_array_equal(layers.space_to_depth(x, 1), x)
  np.testing.assert_array_equal(layers.pixel_shuffle(x, 1), x)
  # The official DownBlock order differs from PixelUnshuffle's (c * s * s + ...).
  assert not np.array_equal(layers.pixel_shuffle(layers.space_to_depth(x, 2), 2), x)


def test_mean_shift_constant_equals_official_bias():
  official = torch_twins.MeanShift(+1).bias.detach().numpy()
  np.testing.assert_array_equal(layers.RGB_MEAN_255, official)
  assert layers.MEAN_SHIFT_PARAM_COUNT == sum(
    p.numel() for m in (torch_twins.MeanShift(-1), torch_twins.MeanShift(1)) for p in m.parameters()
  )


@pytest.mark.parametrize(
  "scale, factors", [(1, ()), (2, (2,)), (3, (3,)), (4, (2, 2)), (8, (2, 2, 2))]
)
def test_upsampler_factors(scale, factors):
  assert layers.upsampler_factors(scale) == factors


@pytest.mark.parametrize("scale", [0, 5, 6, 2.0, True])
def test_upsampler_factors_rejects(scale):
  with pytest.raises(ValueError, match="scale"):
    layers.upsampler_factors(scale)


def test_conv_init_matches_torch_bounds():
  arch = models.model_arch("EDSR", 2, num_blocks=1, num_channels=32)
  # An rbg key: threefry's sampler compiles slowly on CPU, and the distribution is the same.
  params = jax.jit(models.create_model(arch).init)(
    jax.random.key(0, impl="rbg"), jnp.zeros((1, 2, 2, 3))
  )
  params = params["params"]
  kernel, bias = params["blocks_0"]["conv_0"]["kernel"], params["blocks_0"]["conv_0"]["bias"]
  bound = 1 / math.sqrt(3 * 3 * 32)
  for values in (kernel, bias):
    assert float(jnp.max(jnp.abs(values))) <= bound
  # Uniform on +-bound: the std is bound / sqrt(3) (not lecun normal's 1/sqrt(fan_in)).
  np.testing.assert_allclose(float(jnp.std(kernel)), bound / math.sqrt(3), rtol=0.05)
  assert kernel.dtype == jnp.float32


# --- Presets and arch dicts ----------------------------------------------------------------


def test_presets_equal_option_py():
  assert models.model_arch("EDSR", 4) == {
    "model": "EDSR",
    "scale": 4,
    "num_blocks": 32,
    "num_channels": 256,
    "res_scale": 0.1,
  }
  assert models.model_arch("edsr-baseline", 2) == {
    "model": "EDSR",
    "scale": 2,
    "num_blocks": 16,
    "num_channels": 64,
    "res_scale": 1.0,
  }
  assert models.model_arch("RCAN", 3) == {
    "model": "RCAN",
    "scale": 3,
    "num_groups": 10,
    "num_blocks": 20,
    "num_channels": 64,
    "reduction": 16,
    "res_scale": 1.0,
  }
  assert models.model_arch("CARN", 2) == {
    "model": "CARN",
    "scale": 2,
    "num_groups": 3,
    "num_blocks": 3,
    "num_channels": 64,
    "res_scale": 1.0,
  }


def test_model_arch_overrides_and_canonical():
  arch = models.model_arch("RCAN", 2, num_groups=2, res_scale=1)
  assert arch["num_groups"] == 2 and isinstance(arch["res_scale"], float)
  assert models.canonical_arch({"model": "RCAN", "scale": 2, "num_groups": 2}) == arch
  assert models.canonical_arch(arch) == arch


@pytest.mark.parametrize(
  "call, error, match",
  [
    (lambda: models.model_arch("SRGAN", 2), ValueError, "Unknown model"),
    (lambda: models.model_arch("EDSR", 2, reduction=4), TypeError, "reduction"),
    (lambda: models.model_arch("EDSR", 2, num_blocks=0), ValueError, "num_blocks"),
    (lambda: models.model_arch("EDSR", 2, num_blocks=2.0), TypeError, "num_blocks"),
    (lambda: models.model_arch("EDSR", 2, res_scale=-1.0), ValueError, "res_scale"),
    (lambda: models.model_arch("EDSR", 5), ValueError, "scale"),
    (lambda: models.model_arch("RCAN", 2, num_channels=8), ValueError, "reduction"),
    (lambda: models.canonical_arch({"model": "EDSR"}), ValueError, "scale"),
    (lambda: models.create_model({"scale": 2}), ValueError, "model"),
  ],
)
def test_arch_errors(call, error, match):
  with pytest.raises(error, match=match):
    call()


@pytest.mark.parametrize("name", ["EDSR", "EDSR-baseline", "RCAN", "CARN"])
def test_param_counts_equal_official_networks(name):
  for scale in (2, 3, 4):
    arch = models.model_arch(name, scale)
    ours = models.count_params(models.abstract_params(arch))
    official = torch_twins.official_param_count(arch)
    assert ours + models.MEAN_SHIFT_PARAM_COUNT == official
    assert models.official_param_count(arch) == official


def test_count_params_of_arrays():
  assert models.count_params({"a": jnp.zeros((2, 3)), "b": [np.zeros(4)]}) == 10


# --- Networks --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(TINY))
def test_forward_shape_dtype_and_finite(tiny_models, name):
  _, params, apply = tiny_models[name]
  x = jnp.asarray(np.random.default_rng(0).uniform(0, 255, (2, 10, 14, 3)), jnp.float32)
  y = apply({"params": params}, x)
  assert y.shape == x.shape and y.dtype == jnp.float32
  assert bool(jnp.all(jnp.isfinite(y)))


@pytest.mark.parametrize("name", list(TINY))
def test_bfloat16_compute_keeps_float32_params_and_output(tiny_models, name):
  model, params, apply = tiny_models[name]
  x = jnp.asarray(np.random.default_rng(1).uniform(0, 255, (1, 8, 10, 3)), jnp.float32)
  low = models.create_model(tiny_arch(name, 2), dtype=jnp.bfloat16)
  low_params = jax.eval_shape(low.init, jax.random.key(1), jnp.zeros((1, 4, 4, 3)))["params"]
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(low_params))
  y16 = jax.jit(low.apply)({"params": params}, x)
  y32 = apply({"params": params}, x)
  assert y16.dtype == jnp.float32
  # bfloat16 has 8 mantissa bits: close, not equal.
  spread = float(jnp.std(y32)) + 1.0
  assert 0 < float(jnp.max(jnp.abs(y16 - y32))) < 0.1 * spread


@pytest.mark.parametrize(
  "shape, match",
  [
    ((1, 9, 10, 3), "divisible"),
    ((1, 10, 10, 1), r"\[N, H, W, 3\]"),
    ((10, 10, 3), r"\[N, H, W, 3\]"),
  ],
)
def test_bad_input_shapes(tiny_models, shape, match):
  model, params, _ = tiny_models["EDSR"]
  with pytest.raises(ValueError, match=match):
    model.apply({"params": params}, jnp.zeros(shape))


@pytest.mark.parametrize("name", list(TINY))
def test_valid_size_makes_padding_exact(tiny_models, name):
  """A padded input with valid_size gives, inside the region, the unpadded output."""
  _, params, apply = tiny_models[name]
  rng = np.random.default_rng(2)
  x = rng.uniform(0, 255, (2, 10, 14, 3)).astype(np.float32)
  padded = np.pad(x, ((0, 0), (0, 6), (0, 4), (0, 0)))
  padded[:, 10:, :] = 255.0
  padded[:, :, 14:] = 77.0
  y = apply({"params": params}, x)
  y_padded = apply({"params": params}, padded, jnp.array([10, 14]))
  np.testing.assert_allclose(y_padded[:, :10, :14], y, rtol=1e-5, atol=1e-3)
  # Without the mask, padding changes the border (so the comparison above can fail).
  y_unmasked = apply({"params": params}, padded)
  assert float(jnp.max(jnp.abs(y_unmasked[:, :10, :14] - y))) > 1e-2


def test_receptive_radius_is_tight():
  """Changing one LR pixel changes outputs exactly up to receptive_radius LR pixels away."""
  arch = models.model_arch("EDSR", 2, num_blocks=1, num_channels=8)
  radius = models.receptive_radius(arch)
  assert radius == 1 + 2 + 1 + 1 + 1
  model = models.create_model(arch)
  params = torch_twins.random_flax_params(arch, seed=3)
  size, centre = 2 * radius + 5, radius + 2
  lr = np.random.default_rng(3).uniform(0, 255, (1, size, size, 3)).astype(np.float32)
  changed = lr.copy()
  changed[0, centre, centre] += 50.0
  apply = jax.jit(lambda p, v: model.apply({"params": p}, image.upsample_nearest(v, 2)))
  diff = np.abs(np.asarray(apply(params, changed) - apply(params, lr)))[0].max(-1)
  lr_diff = diff.reshape(size, 2, size, 2).max((1, 3))
  rows, cols = np.nonzero(lr_diff > 0)
  reach = max(np.abs(rows - centre).max(), np.abs(cols - centre).max())
  assert reach == radius


def test_receptive_radius_values():
  assert models.receptive_radius(models.model_arch("EDSR", 4)) == 1 + 64 + 1 + 1 + 1
  assert models.receptive_radius(models.model_arch("CARN", 3)) == 1 + 18 + 1 + 1
  assert models.receptive_radius(models.model_arch("RCAN", 2)) == 1 + 10 * 41 + 1 + 1 + 1
  assert models.receptive_radius(models.model_arch("EDSR", 1, num_blocks=1)) == 1 + 2 + 1 + 1


def test_every_registered_network_is_complete():
  """A network is one file plus a registry line: everything else reads its declaration."""
  assert set(models.PRESETS) == {"EDSR", "EDSR-baseline", "RCAN", "CARN"}
  for name, network in models.NETWORKS.items():
    arch = models.model_arch(
      name, 2, **{k: 1 for k in ("num_blocks", "num_groups") if k in network.fields}
    )
    assert models.create_model(arch).__class__ is network.module
    flax_paths = {tuple(p) for p in _param_paths(models.abstract_params(arch))}
    assert set(models.torch_parameter_names(arch).values()) == flax_paths, name
    assert models.receptive_radius(arch) >= network.body_convs(arch) >= 1


def _param_paths(tree, prefix=()):
  for key, value in tree.items():
    if isinstance(value, dict):
      yield from _param_paths(value, prefix + (key,))
    else:
      yield prefix + (key,)
