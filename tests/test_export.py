"""Exported networks (StableHLO and ONNX) against ``super_resolve`` on a real photo, and the CLI."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cutblur_jax import checkpoint, export, inference, models
from cutblur_jax.data.embedded import load_photo
from cutblur_jax.data import imresize

# The ONNX half needs the export extra, whose jax2onnx pins an older orbax: this module runs
# in the second test environment (tests/run.sh), with the checkpoint-format tests.
pytestmark = pytest.mark.onnx
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("jax2onnx")

TINY = {
  "EDSR": {"num_blocks": 2, "num_channels": 8},
  "RCAN": {"num_groups": 1, "num_blocks": 2, "num_channels": 16, "reduction": 4},
  "CARN": {"num_groups": 1, "num_blocks": 2, "num_channels": 8},
}


def _network(name: str, scale: int):
  arch = models.model_arch(name, scale, **TINY[name])
  params = models.create_model(arch).init(
    jax.random.key(1), jnp.zeros((1, 4 * scale, 4 * scale, 3))
  )["params"]
  return params, arch


def _photo_lr(scale: int, size: int = 96) -> np.ndarray:
  hr = load_photo("chelsea")[:size, :size]
  return imresize(hr, 1 / scale)


def _onnx_run(data: bytes, images: np.ndarray) -> np.ndarray:
  session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
  return session.run(None, {session.get_inputs()[0].name: images})[0]


@pytest.mark.parametrize("name", sorted(TINY))
def test_both_formats_give_super_resolve_within_one_level_on_a_photo(name, tmp_path):
  params, arch = _network(name, 2)
  stablehlo = tmp_path / "net.stablehlo"
  export.save(export.export_stablehlo(params, arch), stablehlo)
  onnx = export.export_onnx(params, arch)
  run = export.load(stablehlo)
  # One file, any size: symbolic batch, height and width.
  for size in (96, 70):
    lr = _photo_lr(2, size)
    expected = inference.super_resolve(params, arch, lr).astype(np.int32)
    batch = np.stack([lr, lr[::-1]]).astype(np.float32)
    for got in (run(batch), _onnx_run(onnx, batch)):
      assert got.shape == (2, lr.shape[0] * 2, lr.shape[1] * 2, 3) and got.dtype == np.float32
      assert 0 <= got.min() and got.max() <= 255
      assert np.abs(np.rint(got[0]).astype(np.int32) - expected).max() <= 1
      flipped = inference.super_resolve(params, arch, lr[::-1]).astype(np.int32)
      assert np.abs(np.rint(got[1]).astype(np.int32) - flipped).max() <= 1


@pytest.mark.parametrize("scale, input_is_hr_size", [(1, False), (4, True)])
def test_same_size_networks_take_and_return_hr_sized_images(scale, input_is_hr_size):
  params, arch = _network("EDSR", scale)
  exported = export.export_stablehlo(params, arch, input_is_hr_size=input_is_hr_size)
  assert str(exported.in_avals[0].shape) == ("(n, h, w, 3)" if scale == 1 else "(n, 4*h, 4*w, 3)")
  image = load_photo("chelsea")[:64, :48]
  expected = inference.super_resolve(params, arch, image, input_is_hr_size=True)
  got = np.asarray(exported.call(jnp.asarray(image[None], jnp.float32)))[0]
  assert got.shape == image.shape
  assert np.abs(np.rint(got) - expected).max() <= 1
  onnx = export.export_onnx(params, arch, input_is_hr_size=input_is_hr_size, shape=(1, 64, 48))
  assert np.abs(np.rint(_onnx_run(onnx, image[None].astype(np.float32))[0]) - expected).max() <= 1


def test_sizes_and_networks_the_exporter_cannot_take_are_refused_by_name(monkeypatch):
  params, arch = _network("EDSR", 4)
  with pytest.raises(ValueError, match="multiples of 4, got 30x32"):
    export.export_onnx(params, arch, input_is_hr_size=True, shape=(1, 30, 32))
  import jax2onnx  # pylint: disable=import-outside-toplevel

  def refuse(*args, **kwargs):
    raise NotImplementedError("no ONNX rule for primitive 'foo'")

  monkeypatch.setattr(jax2onnx, "to_onnx", refuse)
  with pytest.raises(ValueError, match=r"cannot export EDSR x4 .*primitive 'foo'"):
    export.export_onnx(params, arch)


def test_load_refuses_a_file_that_is_not_an_export(tmp_path):
  bad = tmp_path / "bad.stablehlo"
  bad.write_bytes(b"not a flatbuffer")
  with pytest.raises(ValueError, match="bad.stablehlo"):
    export.load(bad)


# experiments/export.py


ROOT = pathlib.Path(__file__).resolve().parents[1]


def _cli(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run(
    [sys.executable, str(ROOT / "experiments" / "export.py"), *args],
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
    cwd=ROOT,
  )


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
  params, arch = _network("CARN", 2)
  return checkpoint.save_model(tmp_path_factory.mktemp("ckpt") / "carn", params, arch), params, arch


@pytest.mark.parametrize("fmt", ["stablehlo", "onnx"])
def test_cli_writes_checks_and_refuses_to_overwrite(saved, tmp_path, fmt):
  path, params, arch = saved
  output = tmp_path / f"carn.{fmt}"
  result = _cli("--checkpoint", str(path), "--format", fmt, "--output", str(output))
  assert result.returncode == 0, result.stderr[-2000:]
  assert f"Wrote {output}" in result.stdout and "Checked: " in result.stdout
  assert "input float32 [n, h, w, 3]" in result.stdout
  lr = _photo_lr(2, 48)[None].astype(np.float32)
  got = export.load(output)(lr) if fmt == "stablehlo" else _onnx_run(output.read_bytes(), lr)
  expected = inference.super_resolve(params, arch, lr[0].astype(np.uint8))
  assert np.abs(np.rint(got[0]) - expected).max() <= 1
  again = _cli("--checkpoint", str(path), "--format", fmt, "--output", str(output))
  assert again.returncode == 1 and again.stderr.startswith("error: ")
  assert "--overwrite" in again.stderr and again.stderr.count("\n") == 1


@pytest.mark.parametrize(
  "args, needle",
  [
    (["--format", "stablehlo", "--shape", "1", "8", "8"], "--shape is for ONNX"),
    (
      ["--format", "onnx", "--output", "{ckpt}/inside.onnx"],
      "inside the input folder of --checkpoint",
    ),
    (["--format", "stablehlo", "--output", "{tmp}"], "is a folder"),
  ],
)
def test_cli_bad_input_is_one_line(saved, tmp_path, args, needle):
  path = saved[0]
  args = [a.format(ckpt=path, tmp=tmp_path) for a in args]
  if "--output" not in args:
    args += ["--output", str(tmp_path / "x.out")]
  result = _cli("--checkpoint", str(path), *args)
  assert result.returncode == 1 and result.stderr.startswith("error: "), result.stderr[-2000:]
  assert needle in result.stderr and result.stderr.count("\n") == 1
  assert not (tmp_path / "x.out").exists()
