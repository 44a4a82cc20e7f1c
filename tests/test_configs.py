"""The experiment configs: presets as option.py sets them, CLI overrides, and 2 steps of each."""

from __future__ import annotations

import importlib
import pathlib

import jax
import numpy as np
import pytest
from PIL import Image

from cutblur_jax import augment, checkpoint, train
from test_train_loop import write_div2k  # pylint: disable=wrong-import-order

CONFIG_DIR = pathlib.Path(__file__).resolve().parent.parent / "experiments" / "configs"
PAPER_CONFIGS = (
  "edsr_div2k",
  "rcan_div2k",
  "carn_div2k",
  "edsr_realsr",
  "rcan_realsr",
  "carn_realsr",
  "edsr_div2k_dn",
  "edsr_div2k_jpeg",
)
FLAX_FIELDS = (
  "num_train_steps",
  "batch_size",
  "seed",
  "eval_every_steps",
  "checkpoint_every_steps",
  "log_every_steps",
)
OPTION_FIELDS = (
  "model",
  "dataset",
  "dataset_root",
  "scale",
  "div2k_range",
  "camera",
  "sigma",
  "quality",
  "patch_size",
  "use_moa",
  "augs",
  "prob",
  "alpha",
  "mix_p",
  "aux_prob",
  "aux_alpha",
  "lr",
  "decay",
  "gamma",
  "gclip",
  "pretrain",
  "num_blocks",
  "num_channels",
  "res_scale",
  "num_groups",
  "reduction",
)


def load(name: str):
  return importlib.import_module(f"experiments.configs.{name}").get_config()


def test_every_config_file_is_tested_and_has_the_fields_and_a_command():
  names = sorted(p.stem for p in CONFIG_DIR.glob("*.py") if p.stem != "__init__")
  assert names == sorted(PAPER_CONFIGS + ("default",))
  for name in names:
    config = load(name)
    for field in FLAX_FIELDS + OPTION_FIELDS:
      assert field in config, (name, field)


@pytest.mark.parametrize(
  "name, expected",
  [
    (
      "edsr_div2k",
      dict(
        num_blocks=32,
        num_channels=256,
        res_scale=0.1,
        num_train_steps=700_000,
        decay="200-400-600",
        batch_size=16,
        gclip=0.0,
        prob=(1.0,) * 7,
        mix_p=None,
        scale=2,
        patch_size=48,
      ),
    ),
    (
      "rcan_div2k",
      dict(
        num_groups=10,
        num_blocks=20,
        num_channels=64,
        reduction=16,
        res_scale=1.0,
        num_train_steps=1_000_000,
        decay="200-400-600-800",
        gclip=0.0,
        batch_size=16,
      ),
    ),
    (
      "carn_div2k",
      dict(
        num_groups=3,
        num_blocks=3,
        num_channels=64,
        batch_size=64,
        decay="400",
        num_train_steps=700_000,
        prob=(0.2,) * 7,
      ),
    ),
    (
      "edsr_realsr",
      dict(scale=4, camera="all", patch_size=48, prob=(1.0,) * 7, mix_p=(0.1,) * 6 + (0.4,)),
    ),
    ("carn_realsr", dict(batch_size=64, prob=(1.0,) * 7, mix_p=(0.1,) * 6 + (0.4,))),
    (
      "edsr_div2k_dn",
      dict(scale=1, num_train_steps=1_000_000, decay="300-550-800", prob=(0.6,) * 7),
    ),
    (
      "edsr_div2k_jpeg",
      dict(scale=1, num_train_steps=1_000_000, decay="300-550-800", prob=(0.6,) * 7, quality=10),
    ),
  ],
)
def test_presets_are_option_py_make_template(name, expected):
  resolved = train.resolve_config(load(name))
  assert resolved.use_moa and resolved.augs == (
    "blend",
    "rgb",
    "mixup",
    "cutout",
    "cutmix",
    "cutmixup",
    "cutblur",
  )
  assert resolved.alpha == (0.6, 1.0, 1.2, 0.001, 0.7, 0.7, 0.7)
  assert (resolved.aux_prob, resolved.aux_alpha, resolved.lr, resolved.gamma) == (
    1.0,
    1.2,
    1e-4,
    0.5,
  )
  for field, value in expected.items():
    assert resolved[field] == value, (field, resolved[field])
  assert train.resolve_config(resolved).to_dict() == resolved.to_dict()  # idempotent


def test_explicit_fields_win_over_presets():
  config = load("rcan_div2k")
  config.update(decay="100", batch_size=8, num_train_steps=5, gclip=0.1, num_groups=2)
  resolved = train.resolve_config(config)
  assert (
    resolved.decay,
    resolved.batch_size,
    resolved.num_train_steps,
    resolved.gclip,
    resolved.num_groups,
    resolved.num_blocks,
  ) == ("100", 8, 5, 0.1, 2, 20)
  config = load("rcan_div2k")
  config.pretrain = "workdirs/rcan_x2"
  assert train.resolve_config(config).gclip == 0.5  # RCAN fine-tuning clips by default
  config = load("edsr_div2k_dn")
  config.model = "RCAN"  # the task's schedule comes after the model's, as in make_template
  assert train.resolve_config(config).decay == "300-550-800"
  config = load("edsr_div2k")
  config.model = "EDSR-baseline"  # the small EDSR preset of cutblur_jax.models
  resolved = train.resolve_config(config)
  assert (resolved.num_blocks, resolved.num_channels, resolved.res_scale) == (16, 64, 1.0)


def test_policy_fields():
  config = load("edsr_div2k")
  config.use_moa = False
  resolved = train.resolve_config(config)
  assert resolved.augs == ("none",) and resolved.prob == (1.0,) and resolved.mix_p is None
  config.update(augs=("cutblur", "mixup"), prob=(0.5,), alpha=(0.7, 1.2), mix_p=(0.8, 0.2))
  resolved = train.resolve_config(config)
  assert resolved.prob == (0.5, 0.5) and resolved.alpha == (0.7, 1.2)
  policy = train.resolve_recipe(resolved).policy
  assert policy.augs == ("cutblur", "mixup") and policy.mix_p == (0.8, 0.2)
  config.use_moa = True
  with pytest.raises(ValueError, match="use_moa=True sets `augs`"):
    train.resolve_config(config)
  config = load("edsr_div2k")
  config.update(use_moa=False, augs=("cutblur", "mixup"), prob=(0.5, 0.5, 0.5))
  with pytest.raises(ValueError, match="3 values for 2"):
    train.resolve_config(config)
  config = load("edsr_div2k")
  config.aux_alpha = 0.7  # MoA fixes aux_alpha (1.2) too: a different explicit value is an error
  with pytest.raises(ValueError, match="use_moa=True sets `aux_alpha` to 1.2"):
    train.resolve_config(config)
  with pytest.raises(ValueError, match="Unknown config fields"):
    train.resolve_config({"max_steps": 3})


def test_per_sample_and_num_train_images_fields():
  config = load("default")
  assert train.resolve_config(config).per_sample is False
  config.per_sample = True
  policy = train.resolve_recipe(config).policy
  assert policy.per_sample and policy.augs == augment.moa().augs
  config = load("default")
  config.num_train_images = 3
  assert train.resolve_config(config).num_train_images == 3
  config.num_train_images = 0
  with pytest.raises(ValueError, match="num_train_images"):
    train.resolve_config(config)


def test_a_tfds_copy_gets_the_presets_of_the_data_it_holds():
  config = load("edsr_div2k_dn")
  config.dataset = "tfds:cutblur_folders/div2k_dn_sigma10"
  resolved = train.resolve_config(config)
  assert (resolved.decay, resolved.num_train_steps, resolved.prob) == (
    "300-550-800",
    1_000_000,
    (0.6,) * 7,
  )
  config = load("edsr_realsr")
  config.dataset = "tfds:cutblur_folders/realsr_all_x4"
  assert train.resolve_config(config).mix_p == (0.1,) * 6 + (0.4,)


def _parse(argv: list[str]):
  """The CLI's flag parsing (experiments/train.py)."""
  return importlib.import_module("experiments.train").parse_args(argv[1:])


def test_command_line_overrides(capsys):
  config = _parse(
    [
      "train.py",
      f"--config={CONFIG_DIR / 'edsr_div2k.py'}",
      "--config.scale=4",
      "--config.use_moa=False",
      "--config.augs=cutblur",
      "--config.augs=cutmix",
      "--config.prob=(0.5,)",
      "--config.decay=300-600",
      "--config.num_train_steps=10",
      "--config.gclip=0.5",
    ]
  ).config
  resolved = train.resolve_config(config)
  assert (resolved.scale, resolved.use_moa, resolved.augs, resolved.prob) == (
    4,
    False,
    ("cutblur", "cutmix"),
    (0.5, 0.5),
  )
  assert (resolved.decay, resolved.num_train_steps, resolved.gclip) == ("300-600", 10, 0.5)
  assert _parse(["train.py"]).config.dataset == "embedded"
  with pytest.raises(SystemExit, match="2"):
    _parse(["train.py", "--config.max_steps=3"])
  assert "--config.max_steps: unknown config field" in capsys.readouterr().err


def test_flags_in_every_form_and_order(capsys):
  args = _parse(
    [
      "train.py",
      "--workdir",
      "runs/a",
      "--config",
      f"{CONFIG_DIR / 'rcan_div2k.py'}",
      "--config.scale",
      "3",
      "--noconfig.use_moa",
      "--verbose",
      "--config.augs",
      "cutblur",
      "--config.augs=mixup",
      "--config.lr=2e-4",
    ]
  )
  assert (args.workdir, args.verbose, args.config_filename) == (
    "runs/a",
    True,
    str(CONFIG_DIR / "rcan_div2k.py"),
  )
  config = args.config
  assert (config.model, config.scale, config.use_moa, config.augs, config.lr) == (
    "RCAN",
    3,
    False,
    ("cutblur", "mixup"),
    2e-4,
  )
  with pytest.raises(AttributeError):  # locked, as config_flags leaves it
    config.not_a_field = 1
  with pytest.raises(SystemExit, match="2"):  # several processes share one --workdir
    _parse(["train.py", "--config.num_processes=2", "--config.process_id=0"])
  assert "multi-process run needs an explicit --workdir" in capsys.readouterr().err
  with pytest.raises(SystemExit, match="0"):
    _parse(["train.py", "--help"])
  out = capsys.readouterr().out
  assert (
    "--config FILE[:ARG]" in out and "--config.num_train_steps (default: None, the preset)" in out
  )


# ------------------------------------------------------------------------ 2 steps of each


def _save(path: pathlib.Path, image: np.ndarray) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(image).save(path, quality=90) if path.suffix == ".jpg" else Image.fromarray(
    image
  ).save(path)


def _images(count: int, size=(32, 40), seed=0) -> list[np.ndarray]:
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
  return [
    (127 + 100 * np.sin(xx[..., None] / (2 + i) + yy[..., None] / 4 + rng.uniform(0, 6, 3))).astype(
      np.uint8
    )
    for i in range(count)
  ]


def write_realsr(root: pathlib.Path, scale: int = 4) -> pathlib.Path:
  """RealSR v1 (LR at HR size) for both cameras, train and test."""
  for camera in ("Canon", "Nikon"):
    for subdir, count in (("Train", 3), ("Test", 1)):
      for i, hr in enumerate(_images(count, seed=len(camera) + count), start=1):
        lr = np.asarray(Image.fromarray(hr[::scale, ::scale]).resize(hr.shape[1::-1]))
        _save(root / camera / subdir / str(scale) / f"{camera}_{i:03d}_HR.png", hr)
        _save(root / camera / subdir / str(scale) / f"{camera}_{i:03d}_LR{scale}.png", lr)
  return root


def write_div2k_restoration(root: pathlib.Path, task: str, level: int) -> pathlib.Path:
  """DIV2K_train_HR plus DIV2K_train_DN/<sigma> or DIV2K_train_JPEG/<quality>."""
  rng = np.random.default_rng(1)
  for i, hr in enumerate(_images(4, seed=2), start=1):
    _save(root / "DIV2K_train_HR" / f"{i:04d}.png", hr)
    if task == "DN":
      noisy = np.clip(hr + rng.normal(0, level, hr.shape), 0, 255).astype(np.uint8)
      _save(root / "DIV2K_train_DN" / str(level) / f"{i:04d}.png", noisy)
    else:
      _save(root / "DIV2K_train_JPEG" / str(level) / f"{i:04d}.jpg", hr)
  return root


@pytest.fixture(scope="module")
def data_roots(tmp_path_factory):
  base = tmp_path_factory.mktemp("paper_data")
  div2k = write_div2k(base / "DIV2K", count=4, scale=2)
  write_div2k(div2k, count=4, scale=4)
  return {
    "DIV2K_SR": div2k,
    "RealSR": write_realsr(base / "RealSR"),
    "DIV2K_DN": write_div2k_restoration(base / "DIV2K_DN", "DN", 10),
    "DIV2K_JPEG": write_div2k_restoration(base / "DIV2K_JPEG", "JPEG", 10),
  }


def tiny(config, root: pathlib.Path, **overrides):
  """The config with a tiny network and run; its own presets (schedule, MoA, batch) stay."""
  model = config.model
  config.update(
    dataset_root=str(root),
    num_train_steps=2,
    num_blocks=1,
    num_channels=8,
    patch_size=4 if config.dataset == "RealSR" else 8,
    progress_bar=False,
    num_workers=0,
    num_sample_images=1,
  )
  if model in ("RCAN", "CARN"):
    config.num_groups = 1
  if model == "RCAN":
    config.reduction = 4
  if config.dataset.startswith("DIV2K"):
    config.div2k_range = "1-3/4-4"
  config.update(overrides)
  return config


# One config per network, task and data family (the others differ only in presets, which
# test_paper_configs_spell_out_what_option_py_presets_would_set checks for all of them).
RUN_CONFIGS = ("edsr_div2k", "carn_div2k", "rcan_realsr", "edsr_div2k_dn", "edsr_div2k_jpeg")


@pytest.mark.parametrize("name", RUN_CONFIGS)
def test_paper_config_runs_two_steps(name, data_roots, tmp_path):
  config = load(name)
  config = tiny(config, data_roots[config.dataset])
  resolved = train.resolve_config(config)
  result = train.train_and_evaluate(config, tmp_path)
  assert result["step"] == 2 and np.isfinite(result["loss"]) and np.isfinite(result["psnr"])
  baseline = "bicubic_psnr" if resolved.scale > 1 and resolved.dataset != "RealSR" else "input_psnr"
  assert baseline in result, result
  params, arch = checkpoint.load_model(tmp_path)
  assert arch == train.resolve_recipe(resolved).arch


def test_x4_fine_tunes_from_a_x2_run_keeping_the_body(data_roots, tmp_path):
  x2 = tiny(load("edsr_div2k"), data_roots["DIV2K_SR"], num_train_steps=1, use_moa=False)
  train.train_and_evaluate(x2, tmp_path / "x2")
  x2_params, _ = checkpoint.load_model(tmp_path / "x2")
  # A learning rate too small to move any weight: the x4 run's weights are its start.
  x4 = tiny(
    load("edsr_div2k"),
    data_roots["DIV2K_SR"],
    num_train_steps=1,
    use_moa=False,
    scale=4,
    pretrain=str(tmp_path / "x2"),
    lr=1e-30,
  )
  train.train_and_evaluate(x4, tmp_path / "x4")
  x4_params, x4_arch = checkpoint.load_model(tmp_path / "x4")
  assert x4_arch["scale"] == 4
  assert x4_params["head"]["kernel"].shape[2] == 48 != x2_params["head"]["kernel"].shape[2]
  flat2 = {jax.tree_util.keystr(k): v for k, v in jax.tree_util.tree_leaves_with_path(x2_params)}
  flat4 = {jax.tree_util.keystr(k): v for k, v in jax.tree_util.tree_leaves_with_path(x4_params)}
  copied = [k for k in flat2 if "head" not in k]
  assert any("body" in k or "block" in k for k in copied) and any("tail" in k for k in copied)
  for key in copied:
    np.testing.assert_array_equal(flat4[key], flat2[key], err_msg=key)


@pytest.mark.parametrize("name", PAPER_CONFIGS)
def test_paper_configs_spell_out_what_option_py_presets_would_set(name):
  """The explicit recipe of each paper config is the one make_template gives its model and data."""
  config = load(name)
  bare = train.base_config()
  for field in ("model", "dataset", "scale", "camera", "sigma", "quality", "use_moa"):
    bare[field] = config[field]
  explicit, preset = train.resolve_config(config), train.resolve_config(bare)
  assert explicit.to_dict() == preset.to_dict()
  for field in ("num_train_steps", "decay", "batch_size", "patch_size", "lr", "gamma"):
    assert config[field] is not None, (name, field)  # shown in the file, not left to presets
