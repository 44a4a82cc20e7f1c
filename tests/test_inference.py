"""Tests for cutblur_jax.inference and experiments/infer.py."""

from __future__ import annotations

import importlib
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.data

torch = pytest.importorskip("torch")

from cutblur_jax import image, inference, models  # noqa: E402
from cutblur_jax.data.io import read_image, write_image  # noqa: E402
import torch_twins  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
ARCHS = {
  "EDSR": models.model_arch("EDSR", 2, num_blocks=2, num_channels=8),
  "CARN": models.model_arch("CARN", 3, num_groups=2, num_blocks=1, num_channels=8),
  "RCAN": models.model_arch("RCAN", 2, num_groups=2, num_blocks=1, num_channels=16, reduction=4),
}
BUCKET = 16


def load_script(name: str):
  return importlib.import_module(f"experiments.{name}")


@pytest.fixture(scope="module")
def networks():
  """name -> (params, reference) with outputs spread over [0, 255].

  ``reference(lr)`` is the network on the whole nearest-upsampled image, ``reference(x,
  upsample=False)`` on an HR-sized image, computed directly (no padding, no tiles).
  """
  out = {}
  for name, arch in ARCHS.items():
    params = torch_twins.random_flax_params(arch, seed=7)
    params["tail"]["kernel"] = params["tail"]["kernel"] * 0.3
    apply = jax.jit(models.create_model(arch).apply)

    def reference(x, upsample=True, apply=apply, params=params, scale=arch["scale"]):
      x = jnp.asarray(x, jnp.float32)[None]
      x = image.upsample_nearest(x, scale) if upsample else x
      return np.asarray(apply({"params": params}, x))[0]

    out[name] = params, reference
  return out


def lr_image(height, width, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def float_sr(networks, name, lr, **kwargs):
  params, _ = networks[name]
  return inference.super_resolve(params, ARCHS[name], lr, bucket=BUCKET, quantize=False, **kwargs)


@pytest.mark.parametrize("name", list(ARCHS))
def test_output_shape_and_dtype(networks, name):
  params, reference = networks[name]
  lr = lr_image(13, 21)
  sr = inference.super_resolve(params, ARCHS[name], lr, bucket=BUCKET)
  scale = ARCHS[name]["scale"]
  assert sr.shape == (13 * scale, 21 * scale, 3) and sr.dtype == np.uint8
  np.testing.assert_array_equal(sr, image.quantize(reference(lr)))


@pytest.mark.parametrize("name", list(ARCHS))
def test_padding_to_bucket_is_exact(networks, name):
  lr = lr_image(13, 21, seed=1)  # Padded to 16 x 32.
  expected = networks[name][1](lr)
  np.testing.assert_allclose(float_sr(networks, name, lr, tile=None), expected, rtol=0, atol=1e-3)


@pytest.mark.parametrize("name", ["EDSR", "CARN"])
def test_tiled_equals_untiled(networks, name):
  arch = ARCHS[name]
  lr = lr_image(37, 30, seed=2)
  expected = networks[name][1](lr)
  assert inference.default_overlap(arch) == models.receptive_radius(arch)
  tiled = float_sr(networks, name, lr, tile=9)  # 5 x 4 tiles, cores of 9 LR pixels.
  np.testing.assert_allclose(tiled, expected, rtol=0, atol=1e-3)
  # One LR pixel less overlap than the receptive radius shows at the seams.
  short = float_sr(networks, name, lr, tile=9, overlap=models.receptive_radius(arch) - 1)
  assert np.abs(short - expected).max() > 1e-2


def test_hr_sized_input_equals_upsampled_lr(networks):
  """The network on the upsampled LR image given as is: super_resolve(lr), tiled or not."""
  lr = lr_image(13, 21, seed=5)
  expected = float_sr(networks, "CARN", lr, tile=None)
  hr_sized = np.asarray(image.upsample_nearest(lr, ARCHS["CARN"]["scale"]))
  for tile in (None, 5):  # 5: 3 x 5 tiles.
    got = float_sr(networks, "CARN", hr_sized, input_is_hr_size=True, tile=tile)
    assert got.shape == hr_sized.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-3)


def test_hr_sized_input_of_any_size(networks):
  """Sides that are not multiples of the scale: edge-padded to one, the output cropped."""
  hr = lr_image(40, 50, seed=6)  # CARN x3: padded to 42 x 51.
  expected = networks["CARN"][1](np.pad(hr, ((0, 2), (0, 1), (0, 0)), mode="edge"), upsample=False)[
    :40, :50
  ]
  got = float_sr(networks, "CARN", hr, input_is_hr_size=True, tile=5)
  np.testing.assert_allclose(got, expected, rtol=0, atol=1e-3)
  sr = inference.super_resolve(
    networks["CARN"][0], ARCHS["CARN"], hr, input_is_hr_size=True, tile=5, bucket=BUCKET
  )
  assert sr.dtype == np.uint8
  np.testing.assert_array_equal(sr, image.quantize(got))


def test_rcan_tiles_differ_boundedly(networks):
  """Channel attention pools over the tile, not the image: close, not equal."""
  lr = lr_image(37, 30, seed=3)
  expected = networks["RCAN"][1](lr)
  radius = models.receptive_radius(ARCHS["RCAN"])
  difference = np.abs(float_sr(networks, "RCAN", lr, tile=12, overlap=radius) - expected)
  # Random attention weights are far more sensitive to the pooled mean than trained ones.
  assert 1e-3 < difference.mean() < 0.05 * expected.std()
  assert difference.max() < 0.5 * expected.std()
  # More context per tile, closer to the whole image.
  wider = np.abs(float_sr(networks, "RCAN", lr, tile=12, overlap=2 * radius) - expected)
  assert wider.mean() < difference.mean()


def test_second_image_in_the_same_bucket_does_not_recompile(networks):
  params, _ = networks["CARN"]
  arch = ARCHS["CARN"]
  forward = inference.forward_fn(arch)
  inference.super_resolve(params, arch, lr_image(17, 20), bucket=32)
  compiled = forward._cache_size()
  inference.super_resolve(params, arch, lr_image(30, 25), bucket=32)  # Also 32 x 32.
  assert forward._cache_size() == compiled
  inference.super_resolve(params, arch, lr_image(33, 25), bucket=32)  # 64 x 32: new.
  assert forward._cache_size() == compiled + 1
  # Tiles of a large image share one canvas size: one compilation for all of them.
  inference.super_resolve(params, arch, lr_image(50, 70), tile=20, bucket=32)
  inference.super_resolve(params, arch, lr_image(45, 66), tile=20, bucket=32)
  assert forward._cache_size() == compiled + 2


def test_bfloat16_inference_is_close(networks):
  params, reference = networks["CARN"]
  lr = lr_image(12, 12, seed=4)
  sr = inference.super_resolve(params, ARCHS["CARN"], lr, bucket=BUCKET, dtype=jnp.bfloat16)
  assert sr.dtype == np.uint8
  difference = np.abs(sr.astype(int) - image.quantize(reference(lr)).astype(int))
  assert difference.mean() < 3


@pytest.mark.parametrize(
  "kwargs, error, match",
  [
    ({"image": np.zeros((8, 8), np.uint8)}, ValueError, "image"),
    ({"image": np.zeros((8, 8, 4), np.uint8)}, ValueError, "image"),
    ({"image": np.zeros((0, 8, 3), np.uint8)}, ValueError, "image"),
    ({"tile": -3}, ValueError, "tile"),
    ({"bucket": 0}, ValueError, "bucket"),
    ({"overlap": 1.5}, TypeError, "overlap"),
  ],
)
def test_bad_arguments(networks, kwargs, error, match):
  params, _ = networks["CARN"]
  kwargs = {"image": np.zeros((8, 8, 3), np.uint8), **kwargs}
  with pytest.raises(error, match=match):
    inference.super_resolve(params, ARCHS["CARN"], **kwargs)


def test_defaults():
  assert inference.default_overlap(models.model_arch("EDSR", 4)) == 68
  assert (
    inference.default_overlap(models.model_arch("RCAN", 4))
    == models.network("RCAN").max_tile_overlap
    == 48
  )
  assert inference.default_tile(models.model_arch("EDSR", 4)) == 224
  for name in models.PRESETS:
    for scale in (2, 3, 4):
      arch = models.model_arch(name, scale)
      canvas = inference.default_tile(arch) + 2 * inference.default_overlap(arch)
      assert canvas**2 * scale**2 * arch["num_channels"] <= inference.ACTIVATION_BUDGET


# --- infer.py ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
  """A random-weight official EDSR twin, its .pt file converted with convert_torch.py."""
  root = tmp_path_factory.mktemp("converted")
  arch = ARCHS["EDSR"]
  net = torch_twins.randomize(torch_twins.build_twin(arch), seed=11)
  with torch.no_grad():
    net.tail[1].weight.mul_(0.3)  # Outputs spread over [0, 255], few clipped.
  torch.save(net.state_dict(), root / "edsr.pt")
  assert (
    load_script("convert_torch").main(
      [
        "--model",
        "EDSR",
        "--scale",
        "2",
        "--num_blocks",
        "2",
        "--num_channels",
        "8",
        "--res_scale",
        "0.1",
        "--checkpoint",
        str(root / "edsr.pt"),
        "--output",
        str(root / "ckpt"),
      ]
    )
    == 0
  )
  return net, root / "ckpt"


def official_inference(net, lr):
  """The official inference.py: nearest upsampling, the net, clamp-round-byte."""
  x = torch.from_numpy(np.ascontiguousarray(lr.transpose(2, 0, 1))).float()[None]
  x = torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")
  with torch.no_grad():
    sr = net(x)
  return sr[0].clamp(0, 255).round().byte().permute(1, 2, 0).numpy()


@pytest.mark.parametrize("tile", [None, "17"])
def test_infer_reproduces_official_network_on_a_photo(converted, tmp_path, tile):
  net, ckpt = converted
  lr = skimage.data.astronaut()[90:150, 140:219]  # 60 x 79, a face and a flag.
  write_image(tmp_path / "astronaut.png", lr)
  argv = [
    "--checkpoint",
    str(ckpt),
    "--input",
    str(tmp_path / "astronaut.png"),
    "--output",
    str(tmp_path / "out"),
  ]
  assert load_script("infer").main(argv + (["--tile", tile] if tile else [])) == 0
  sr = read_image(tmp_path / "out" / "astronaut.png")
  expected = official_inference(net, lr)
  # A meaningful comparison: intensities spread out, few pixels clipped.
  assert expected.std() > 20 and np.mean((expected == 0) | (expected == 255)) < 0.2
  difference = np.abs(sr.astype(int) - expected.astype(int))
  assert difference.max() <= 1
  assert np.mean(difference) < 1e-3


def test_infer_folder_with_mixed_inputs(converted, tmp_path, capsys):
  net, ckpt = converted
  folder = tmp_path / "in"
  folder.mkdir()
  photo = skimage.data.astronaut()[::16, ::16]  # 32 x 32
  write_image(folder / "rgb.png", photo)
  from PIL import Image  # pylint: disable=import-outside-toplevel

  Image.fromarray(photo[..., 0]).save(folder / "gray.png")
  Image.fromarray(np.dstack([photo, np.full(photo.shape[:2], 128, np.uint8)])).save(
    folder / "rgba.png"
  )
  Image.fromarray(photo).save(folder / "photo.JPEG", quality=95)
  (folder / "notes.txt").write_text("not an image")
  (folder / "broken.png").write_bytes(b"\x89PNG broken")  # First in order: skipped, named.
  assert (
    load_script("infer").main(
      ["--checkpoint", str(ckpt), "--input", str(folder), "--output", str(tmp_path / "out")]
    )
    == 1
  )
  said = capsys.readouterr()
  assert "broken.png" in said.err
  assert f"Checkpoint: {ckpt.absolute()}" in said.out  # which checkpoint it read
  for name in ("gray", "rgb", "rgba", "photo"):  # every file it wrote
    assert f"wrote {tmp_path / 'out' / name}.png" in said.out
  assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
    "gray.png",
    "photo.png",
    "rgb.png",
    "rgba.png",
  ]
  for name in ("gray", "rgb", "rgba", "photo"):
    lr = read_image(folder / (name + (".JPEG" if name == "photo" else ".png")))
    sr = read_image(tmp_path / "out" / f"{name}.png")
    assert sr.shape == (64, 64, 3)
    assert np.abs(sr.astype(int) - official_inference(net, lr).astype(int)).max() <= 1
  # The same network on the nearest-upsampled image, given as HR-sized input.
  write_image(tmp_path / "upsampled.png", np.asarray(image.upsample_nearest(photo, 2)))
  assert (
    load_script("infer").main(
      [
        "--checkpoint",
        str(ckpt),
        "--input_is_hr_size",
        "--input",
        str(tmp_path / "upsampled.png"),
        "--output",
        str(tmp_path / "hr_out"),
      ]
    )
    == 0
  )
  np.testing.assert_array_equal(
    read_image(tmp_path / "hr_out" / "upsampled.png"), read_image(tmp_path / "out" / "rgb.png")
  )


def test_infer_errors(converted, tmp_path, capsys):
  _, ckpt = converted
  script = load_script("infer")
  (tmp_path / "empty").mkdir()
  write_image(tmp_path / "in.png", lr_image(8, 8))

  def run(*argv):
    return script.main(["--checkpoint", str(ckpt), *argv])

  assert (
    script.main(
      [
        "--checkpoint",
        str(tmp_path / "empty"),
        "--input",
        str(tmp_path / "in.png"),
        "--output",
        str(tmp_path / "out"),
      ]
    )
    == 1
  )
  assert "empty' is not a model checkpoint" in capsys.readouterr().err
  assert run("--input", str(tmp_path / "empty"), "--output", str(tmp_path / "out")) == 1
  assert "No images (.png, .jpg, .jpeg, .bmp, .tif, .tiff)" in capsys.readouterr().err
  # An output folder that holds the inputs is a folder of inputs: refused, input intact.
  before = (tmp_path / "in.png").read_bytes()
  assert run("--input", str(tmp_path / "in.png"), "--output", str(tmp_path)) == 1
  assert "holds the input --input" in capsys.readouterr().err
  assert (tmp_path / "in.png").read_bytes() == before
  assert run("--input", str(tmp_path / "in.png"), "--output", str(tmp_path / "in.png")) == 1
  assert "onto the input --input" in capsys.readouterr().err
  for flag, value in (("--tile", "-2"), ("--bucket", "0"), ("--overlap", "-1")):
    with pytest.raises(SystemExit):
      run("--input", str(tmp_path / "in.png"), "--output", str(tmp_path / "out"), flag, value)
    assert flag in capsys.readouterr().err
  assert not (tmp_path / "out").exists()  # Nothing was started.
