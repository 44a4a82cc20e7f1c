"""Tests for cutblur_jax.convert, cutblur_jax.checkpoint and experiments/convert_torch.py."""

from __future__ import annotations

import importlib
import os
import pathlib
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

torch = pytest.importorskip("torch")

from cutblur_jax import checkpoint, convert, models  # noqa: E402
import torch_twins  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = {
  "EDSR": {"num_blocks": 2, "num_channels": 8},
  "RCAN": {
    "num_groups": 2,
    "num_blocks": 2,
    "num_channels": 16,
    "reduction": 4,
    "res_scale": 0.5,
  },  # Not the preset 1.0, so the RCABs must apply it.
  "CARN": {"num_groups": 2, "num_blocks": 2, "num_channels": 8},
}


def tiny_arch(name: str, scale: int) -> dict:
  return models.model_arch(name, scale, **TINY[name])


def load_script(name: str):
  return importlib.import_module(f"experiments.{name}")


def twin_state(arch, seed=0):
  return torch_twins.randomize(torch_twins.build_twin(arch), seed).state_dict()


def assert_trees_equal(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# --- Flax equals PyTorch -------------------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("name", list(TINY))
def test_converted_network_equals_official(name, scale):
  arch = tiny_arch(name, scale)
  net = torch_twins.randomize(torch_twins.build_twin(arch), seed=scale)
  params = convert.torch_to_flax(net.state_dict(), arch)
  # Non-square, and the LR grid is odd-sized so a transposed layout would show.
  x = np.random.default_rng(scale).uniform(0, 255, (2, 5 * scale, 7 * scale, 3))
  x = x.astype(np.float32)
  with torch.no_grad():
    expected = net(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
  got = np.asarray(jax.jit(models.create_model(arch).apply)({"params": params}, x))
  assert expected.std() > 10  # The random network is far from the identity and from constant.
  relative = np.abs(got - expected).max() / np.abs(expected).max()
  assert relative < 1e-5


def test_parameter_names_cover_every_param():
  archs = [models.model_arch(name, 4) for name in models.PRESETS]  # Full-size bodies.
  archs += [tiny_arch(name, scale) for name in TINY for scale in (1, 2, 3, 4, 8)]
  for arch in archs:
    names = convert.torch_parameter_names(arch)
    paths = {
      tuple(str(k.key) for k in keys)
      for keys, _ in jax.tree_util.tree_flatten_with_path(models.abstract_params(arch))[0]
    }
    assert set(names.values()) == paths
    assert len(names) == len(paths)


@pytest.mark.parametrize("name", list(TINY))
def test_state_dict_round_trip_and_strict_load(name):
  arch = tiny_arch(name, 4)
  net = torch_twins.randomize(torch_twins.build_twin(arch), seed=1)
  state = net.state_dict()
  back = convert.flax_to_torch(convert.torch_to_flax(state, arch), arch)
  assert set(back) == set(state)
  for key, value in state.items():
    np.testing.assert_array_equal(back[key], value.numpy(), err_msg=key)
  fresh = torch_twins.build_twin(arch)
  fresh.load_state_dict({k: torch.from_numpy(v) for k, v in back.items()}, strict=True)


def test_data_parallel_prefix_and_numpy_values():
  arch = tiny_arch("CARN", 2)
  state = twin_state(arch)
  wrapped = {f"module.{k}": v.numpy() for k, v in state.items()}
  assert_trees_equal(convert.torch_to_flax(wrapped, arch), convert.torch_to_flax(state, arch))


def test_bfloat16_checkpoint_is_upcast():
  arch = tiny_arch("EDSR", 2)
  state = {
    k: v.to(torch.bfloat16) if not k.endswith("mean.bias") else v
    for k, v in twin_state(arch).items()
  }
  params = convert.torch_to_flax(state, arch)
  assert all(leaf.dtype == np.float32 for leaf in jax.tree.leaves(params))


@pytest.fixture(scope="module")
def edsr_state():
  arch = tiny_arch("EDSR", 2)
  return arch, twin_state(arch)


@pytest.mark.parametrize(
  "edit, match",
  [
    (lambda s: s.pop("body.1.body.2.weight"), r"lacks tensor\(s\) 'body.1.body.2.weight'"),
    (lambda s: s.pop("sub_mean.bias"), "'sub_mean.bias'"),
    (lambda s: s.__setitem__("body.9.weight", torch.zeros(1)), "'body.9.weight'"),
    (
      lambda s: s.__setitem__("tail.1.bias", torch.zeros(4)),
      r"'tail.1.bias' has shape \(4,\), expected \(3,\)",
    ),
    (lambda s: s.__setitem__("head.1.weight", torch.zeros(8, 12, 3)), "'head.1.weight'"),
    (
      lambda s: s.__setitem__("head.1.weight", s["head.1.weight"].permute(0, 1, 3, 2)[:, :, :2]),
      "'head.1.weight'",
    ),
    (lambda s: s.__setitem__("add_mean.bias", s["add_mean.bias"] + 1), "'add_mean.bias'"),
    (lambda s: s.__setitem__("sub_mean.weight", s["sub_mean.weight"] * 2), "'sub_mean.weight'"),
    (lambda s: s["body.0.body.0.bias"].__setitem__(0, float("nan")), "'body.0.body.0.bias'"),
    (lambda s: s.__setitem__("tail.1.bias", torch.zeros(3, dtype=torch.int64)), "'tail.1.bias'"),
  ],
)
def test_bad_state_dicts_are_rejected_naming_the_tensor(edsr_state, edit, match):
  arch, state = edsr_state
  state = {k: v.clone() for k, v in state.items()}
  edit(state)
  with pytest.raises(ValueError, match=match):
    convert.torch_to_flax(state, arch)


def test_wrong_architecture_is_rejected():
  state = twin_state(tiny_arch("EDSR", 2))
  with pytest.raises(ValueError, match="'head.1.weight' has shape .*12.*expected .*27"):
    convert.torch_to_flax(state, tiny_arch("EDSR", 3))  # 27 instead of 12 input channels.
  with pytest.raises(ValueError, match="lacks tensor.* 'tail.0.2.bias'"):
    convert.torch_to_flax(state, tiny_arch("EDSR", 4))  # A second x2 stage.
  with pytest.raises(ValueError, match="lacks"):
    convert.torch_to_flax(state, models.model_arch("EDSR", 2, num_blocks=3, num_channels=8))


def test_carn_res_scale_other_than_one_is_rejected():
  """The official CARN never passes res_scale to its blocks: 0.5 would be another network."""
  arch = tiny_arch("CARN", 2)
  with pytest.raises(ValueError, match="CARN ignores res_scale"):
    convert.torch_to_flax(twin_state(arch), {**arch, "res_scale": 0.5})


def test_flax_to_torch_rejects_bad_params():
  arch = tiny_arch("CARN", 2)
  params = torch_twins.random_flax_params(arch)
  del params["tail"]
  with pytest.raises(ValueError, match="tail"):
    convert.flax_to_torch(params, arch)


def test_load_torch_state_dict(tmp_path):
  arch = tiny_arch("CARN", 2)
  torch.save(twin_state(arch), tmp_path / "net.pt")
  state = convert.load_torch_state_dict(tmp_path / "net.pt")
  assert set(state) == set(twin_state(arch))
  torch.save({"step": 3}, tmp_path / "other.pt")
  with pytest.raises(ValueError, match="other.pt"):
    convert.load_torch_state_dict(tmp_path / "other.pt")
  (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
  with pytest.raises(ValueError, match="junk.pt"):
    convert.load_torch_state_dict(tmp_path / "junk.pt")
  with pytest.raises(ValueError, match="missing.pt"):
    convert.load_torch_state_dict(tmp_path / "missing.pt")


# --- Checkpoints -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def carn():
  arch = tiny_arch("CARN", 2)
  return torch_twins.random_flax_params(arch, seed=5), arch


def manager_save(root, step, params, arch, extra=True):
  """Saves a step the way training does (items params, arch and its own extras)."""
  items = {"params": ocp.args.StandardSave(params), "arch": ocp.args.JsonSave(arch)}
  if extra:
    items["opt_state"] = ocp.args.StandardSave({"mu": np.zeros(3, np.float32)})
  with ocp.CheckpointManager(root) as manager:
    manager.save(step, args=ocp.args.Composite(**items))
    manager.wait_until_finished()


@pytest.mark.checkpoint_format
def test_save_and_load_model(tmp_path, carn):
  params, arch = carn
  path = checkpoint.save_model(tmp_path / "ckpt", params, arch)
  assert path == (tmp_path / "ckpt").absolute()
  loaded, loaded_arch = checkpoint.load_model(tmp_path / "ckpt")
  assert loaded_arch == arch
  assert_trees_equal(loaded, params)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(loaded))
  assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # No temporaries left.


@pytest.mark.checkpoint_format
def test_save_model_refuses_existing_and_overwrites(tmp_path, carn):
  params, arch = carn
  checkpoint.save_model(tmp_path / "ckpt", params, arch)
  with pytest.raises(FileExistsError, match="ckpt"):
    checkpoint.save_model(tmp_path / "ckpt", params, arch)
  doubled = jax.tree.map(lambda x: x * 2, params)
  checkpoint.save_model(tmp_path / "ckpt", doubled, arch, overwrite=True)
  assert_trees_equal(checkpoint.load_model(tmp_path / "ckpt")[0], doubled)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


@pytest.mark.checkpoint_format
def test_save_model_failure_leaves_nothing(tmp_path, carn):
  params, arch = carn
  with pytest.raises(ValueError, match="tail"):
    checkpoint.save_model(tmp_path / "ckpt", {**params, "tail": {"bias": np.zeros(4)}}, arch)

  def fail(*args, **kwargs):
    raise OSError("disk full")

  original = ocp.Checkpointer.save
  ocp.Checkpointer.save = fail
  try:
    with pytest.raises(OSError, match="disk full"):
      checkpoint.save_model(tmp_path / "ckpt", params, arch)
  finally:
    ocp.Checkpointer.save = original
  assert list(tmp_path.iterdir()) == []


@pytest.mark.checkpoint_format
def test_load_model_relative_path_and_given_sharding(tmp_path, carn, monkeypatch):
  params, arch = carn
  monkeypatch.chdir(tmp_path)
  checkpoint.save_model("ckpt", params, arch)
  mesh = jax.make_mesh((1,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  loaded, _ = checkpoint.load_model("ckpt", sharding=replicated)  # orbax wants absolute paths.
  assert_trees_equal(loaded, params)
  assert all(leaf.sharding == replicated for leaf in jax.tree.leaves(loaded))


@pytest.mark.checkpoint_format
def test_load_model_saved_from_arrays_sharded_over_other_devices(tmp_path):
  """Params saved as device arrays sharded over 2 devices load on this 1-device process."""
  script = """
    import sys
    import jax, numpy as np, orbax.checkpoint as ocp
    from jax.sharding import NamedSharding, PartitionSpec as P
    from cutblur_jax import models
    assert jax.device_count() == 2
    arch = models.model_arch("CARN", 2, num_groups=1, num_blocks=1, num_channels=8)
    mesh = jax.make_mesh((2,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    def put(leaf):  # Split the output channels over the devices where they divide.
      value = np.arange(leaf.size, dtype=np.float32).reshape(leaf.shape) / leaf.size
      spec = P(*[None] * (leaf.ndim - 1), "data") if leaf.shape[-1] % 2 == 0 else P()
      return jax.device_put(value, NamedSharding(mesh, spec))
    params = jax.tree.map(put, models.abstract_params(arch))
    with ocp.CheckpointManager(sys.argv[1]) as manager:
      manager.save(7, args=ocp.args.Composite(params=ocp.args.StandardSave(params),
                                              arch=ocp.args.JsonSave(arch)))
  """
  env = {
    **os.environ,
    "XLA_FLAGS": os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2",
    "JAX_PLATFORMS": "cpu",
  }
  result = subprocess.run(
    [sys.executable, "-c", textwrap.dedent(script), str(tmp_path / "run")],
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert jax.device_count() == 1
  loaded, arch = checkpoint.load_model(tmp_path / "run")
  expected = jax.tree.map(
    lambda leaf: np.arange(leaf.size, dtype=np.float32).reshape(leaf.shape) / leaf.size,
    models.abstract_params(arch),
  )
  assert_trees_equal(loaded, expected)
  device = jax.local_devices()[0]
  assert all(
    leaf.sharding == jax.sharding.SingleDeviceSharding(device) for leaf in jax.tree.leaves(loaded)
  )


@pytest.mark.checkpoint_format
def test_load_manager_root_takes_latest_step(tmp_path, carn):
  params, arch = carn
  manager_save(tmp_path / "root", 10, params, arch)
  manager_save(tmp_path / "root", 200, jax.tree.map(lambda x: x + 1, params), arch)
  loaded, loaded_arch = checkpoint.load_model(tmp_path / "root")
  assert loaded_arch == arch
  assert_trees_equal(loaded, jax.tree.map(lambda x: x + 1, params))


@pytest.mark.checkpoint_format
def test_load_training_workdir_prefers_best(tmp_path, carn):
  params, arch = carn
  manager_save(tmp_path / "work" / "checkpoints" / "latest", 300, params, arch)
  (tmp_path / "work" / "checkpoints" / "best").mkdir()  # Best not saved yet: latest is used.
  assert_trees_equal(checkpoint.load_model(tmp_path / "work")[0], params)
  manager_save(
    tmp_path / "work" / "checkpoints" / "best", 100, jax.tree.map(lambda x: x * 3, params), arch
  )
  assert_trees_equal(
    checkpoint.load_model(tmp_path / "work")[0], jax.tree.map(lambda x: x * 3, params)
  )


@pytest.mark.checkpoint_format
def test_not_a_checkpoint_is_rejected_naming_the_path(tmp_path, carn):
  (tmp_path / "empty").mkdir()
  with pytest.raises(ValueError, match="empty' is not a model checkpoint"):
    checkpoint.load_model(tmp_path / "empty")
  with pytest.raises(ValueError, match="nowhere"):
    checkpoint.load_model(tmp_path / "nowhere")
  (tmp_path / "work" / "checkpoints" / "best").mkdir(parents=True)
  with pytest.raises(ValueError, match="work' has no saved step"):
    checkpoint.load_model(tmp_path / "work")


@pytest.mark.checkpoint_format
def test_damaged_checkpoint_is_rejected_naming_the_path(tmp_path, carn):
  params, arch = carn
  path = checkpoint.save_model(tmp_path / "ckpt", params, arch)
  (path / "params" / "_METADATA").unlink()  # As an interrupted copy may lose it.
  with pytest.raises(ValueError, match="Checkpoint .*ckpt is damaged"):
    checkpoint.load_model(path)


@pytest.mark.checkpoint_format
def test_checkpoint_whose_params_do_not_fit_its_arch(tmp_path, carn):
  params, arch = carn
  manager_save(tmp_path / "root", 1, params, {**arch, "num_blocks": 1}, extra=False)
  with pytest.raises(ValueError, match="root.*blocks_1"):
    checkpoint.load_model(tmp_path / "root")


def test_merge_pretrained_x2_to_x4():
  x2, x4 = tiny_arch("EDSR", 2), tiny_arch("EDSR", 4)
  pretrained = torch_twins.random_flax_params(x2, seed=1)
  init = torch_twins.random_flax_params(x4, seed=2)
  merged = checkpoint.merge_pretrained(init, pretrained)
  assert jax.tree.structure(merged) == jax.tree.structure(init)
  np.testing.assert_array_equal(
    merged["blocks_1"]["conv_0"]["kernel"], pretrained["blocks_1"]["conv_0"]["kernel"]
  )
  np.testing.assert_array_equal(merged["tail"]["kernel"], pretrained["tail"]["kernel"])
  np.testing.assert_array_equal(
    merged["upsampler"]["conv_0"]["kernel"], pretrained["upsampler"]["conv_0"]["kernel"]
  )
  # Different shapes or absent from the x2 network: the x4 network's initial values.
  np.testing.assert_array_equal(merged["head"]["kernel"], init["head"]["kernel"])
  np.testing.assert_array_equal(merged["head"]["bias"], pretrained["head"]["bias"])
  np.testing.assert_array_equal(
    merged["upsampler"]["conv_1"]["kernel"], init["upsampler"]["conv_1"]["kernel"]
  )


def test_merge_pretrained_errors():
  small = torch_twins.random_flax_params(tiny_arch("EDSR", 2))
  wide = torch_twins.random_flax_params(models.model_arch("EDSR", 2, num_blocks=2, num_channels=16))
  with pytest.raises(ValueError, match=r"blocks_0/conv_0/bias. has shape \(8,\)"):
    checkpoint.merge_pretrained(wide, small)
  deeper = torch_twins.random_flax_params(
    models.model_arch("EDSR", 2, num_blocks=3, num_channels=8)
  )
  with pytest.raises(ValueError, match="blocks_2"):
    checkpoint.merge_pretrained(small, deeper)


# --- convert_torch.py --------------------------------------------------------------------


def test_convert_cli_end_to_end(tmp_path, capsys):
  script = load_script("convert_torch")
  arch = models.model_arch("RCAN", 3, num_groups=1, num_blocks=2, num_channels=8, reduction=4)
  state = twin_state(arch)
  torch.save(state, tmp_path / "rcan.pt")
  argv = [
    "--model",
    "RCAN",
    "--scale",
    "3",
    "--checkpoint",
    str(tmp_path / "rcan.pt"),
    "--output",
    str(tmp_path / "out"),
    "--num_groups",
    "1",
    "--num_blocks",
    "2",
    "--num_channels",
    "8",
    "--reduction",
    "4",
  ]
  assert script.main(argv) == 0
  params, loaded_arch = checkpoint.load_model(tmp_path / "out")
  assert loaded_arch == arch
  assert_trees_equal(params, convert.torch_to_flax(state, arch))
  # An existing output is refused unless --overwrite.
  assert script.main(argv) == 1
  assert "exists; pass --overwrite" in capsys.readouterr().err
  assert script.main(argv + ["--overwrite"]) == 0


def test_convert_cli_failure_leaves_nothing(tmp_path, capsys):
  script = load_script("convert_torch")
  torch.save(twin_state(tiny_arch("CARN", 2)), tmp_path / "carn.pt")
  argv = [
    "--model",
    "CARN",
    "--scale",
    "3",
    "--checkpoint",
    str(tmp_path / "carn.pt"),
    "--output",
    str(tmp_path / "out"),
    "--num_groups",
    "2",
    "--num_blocks",
    "2",
    "--num_channels",
    "8",
  ]
  assert script.main(argv) == 1
  assert "'head.1.weight'" in capsys.readouterr().err
  assert sorted(p.name for p in tmp_path.iterdir()) == ["carn.pt"]


def test_convert_overwrite_never_replaces_an_input_its_folder_or_a_run(tmp_path, capsys):
  script = load_script("convert_torch")
  weights = tmp_path / "w.pt"
  torch.save(twin_state(tiny_arch("CARN", 2)), weights)
  (tmp_path / "notes.txt").write_text("mine")
  run = tmp_path / "run"  # a training work directory
  (run / "checkpoints" / "latest").mkdir(parents=True)
  (run / "config.json").write_text('{"dataset": "embedded", "num_train_steps": 5}')
  argv = [
    "--model",
    "CARN",
    "--scale",
    "2",
    "--checkpoint",
    str(weights),
    "--num_groups",
    "2",
    "--num_blocks",
    "2",
    "--num_channels",
    "8",
    "--overwrite",
    "--output",
  ]
  weights_before = weights.read_bytes()
  for output, reason in (
    (weights, "onto the input --checkpoint"),
    (tmp_path, "holds the input --checkpoint"),
    (run, "is the work directory"),
  ):
    assert script.main(argv + [str(output)]) == 1
    assert reason in capsys.readouterr().err
  assert weights.read_bytes() == weights_before
  assert (tmp_path / "notes.txt").read_text() == "mine"
  assert sorted(p.name for p in run.iterdir()) == ["checkpoints", "config.json"]
  # A folder of anything else is left alone; the command's own output is replaced.
  other = tmp_path / "other"
  other.mkdir()
  (other / "a.txt").write_text("x")
  assert script.main(argv + [str(other)]) == 1
  assert "not an output of this command" in capsys.readouterr().err
  assert (other / "a.txt").read_text() == "x"
  assert script.main(argv + [str(tmp_path / "out")]) == 0
  assert script.main(argv + [str(tmp_path / "out")]) == 0
  assert checkpoint.is_model_checkpoint(tmp_path / "out")


@pytest.mark.checkpoint_format
def test_format_helpers_name_the_layout_the_fine_tuning_rule_and_the_cause(tmp_path, carn):
  params, arch = carn
  assert checkpoint.run_checkpoint(tmp_path, checkpoint.LATEST_DIR) is None
  manager_save(tmp_path / "checkpoints" / "latest", 3, params, arch)
  assert checkpoint.run_checkpoint(tmp_path, checkpoint.LATEST_DIR).name == "3"
  assert (
    checkpoint.arch_differences(
      {"scale": 2, "res_scale": 0.1}, {"scale": 2, "res_scale": 0.1 + 1e-12}
    )
    == []
  )
  assert checkpoint.arch_differences({"scale": 2}, {"scale": 4}) == [
    "scale: checkpoint 2 vs config 4"
  ]
  assert checkpoint.same_value(float("nan"), float("nan")) and not checkpoint.same_value(True, 1.5)
  chained = RuntimeError("reading failed")
  chained.__cause__ = ValueError(
    'NOT_FOUND: Error reading "k/0" in OCDBT database at local file "/r/": gone '
    "[tensorstore_spec={...}]"
  )
  assert checkpoint.short_cause(chained) == 'NOT_FOUND: Error reading "k/0": gone'
