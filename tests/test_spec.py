"""Data set names parsed once: ``parse_dataset`` and ``DataSpec``."""

import pytest

from cutblur_jax import augment, metrics
from cutblur_jax.data import registry
from cutblur_jax.data.spec import DataSpec, EvalProtocol, parse_dataset, tfds_scale


@pytest.mark.parametrize(
  "name, kind, task, reference",
  [
    ("DIV2K_SR", "div2k", "SR", "DIV2K_SR"),
    ("DIV2K_DN", "div2k", "DN", "DIV2K_DN"),
    ("DIV2K_JPEG", "div2k", "JPEG", "DIV2K_JPEG"),
    ("DF2K_SR", "df2k", "SR", "DF2K_SR"),
    ("DF2K_DN", "df2k", "DN", "DF2K_DN"),
    ("tfds:cutblur_folders/df2k_sr_x2", "tfds", "SR", "DF2K_SR"),
    ("RealSR", "realsr", "SR", "RealSR"),
    ("Set5_SR", "benchmark", "SR", "Set5_SR"),
    ("CBSD68_DN", "benchmark", "DN", "CBSD68_DN"),
    ("LIVE1_JPEG", "benchmark", "JPEG", "LIVE1_JPEG"),
    ("embedded", "embedded", "SR", "embedded"),
    ("embedded_DN", "embedded", "DN", "embedded_DN"),
    ("embedded_JPEG", "embedded", "JPEG", "embedded_JPEG"),
    ("tfds:div2k/bicubic_x4", "tfds", "SR", "DIV2K_SR"),
    ("tfds:div2k/realistic_wild_x4:2.0.0", "tfds", "SR", "DIV2K_SR"),
    ("tfds:cutblur_folders/div2k_dn_sigma30", "tfds", "DN", "DIV2K_DN"),
    ("tfds:cutblur_folders/set5_sr_x4", "tfds", "SR", "Set5_SR"),
    ("tfds:cutblur_folders/realsr_canon_x4", "tfds", "SR", "RealSR"),
    ("tfds:other/config", "tfds", "SR", "tfds:other/config"),
  ],
)
def test_names_parse_to_their_kind_task_and_reference(name, kind, task, reference):
  parsed = parse_dataset(name)
  assert (parsed.kind, parsed.task, parsed.reference) == (kind, task, reference)
  assert registry.reference_dataset_name(name) == reference


@pytest.mark.parametrize("name", ["DIV2K_XX", "Nope", "My-Set_SR", "Set5_sr", "tfds:", ""])
def test_unknown_names_are_refused_everywhere_alike(name):
  with pytest.raises(ValueError, match="dataset"):
    parse_dataset(name)
  with pytest.raises(ValueError):
    metrics.eval_protocol(name, 4)
  with pytest.raises(ValueError):
    augment.moa(name)
  with pytest.raises(ValueError):
    registry.create_dataset({"dataset": name, "dataset_root": "/nonexistent"})


def test_protocols_and_moa_presets_follow_the_reference_rules():
  assert metrics.eval_protocol("DIV2K_SR", 4) == {"crop_border": 10, "y_only": False}
  assert metrics.eval_protocol("DIV2K_DN", 1) == {"crop_border": 10, "y_only": False}
  assert metrics.eval_protocol("Set5_JPEG", 1) == {"crop_border": 4, "y_only": True}
  assert metrics.eval_protocol("tfds:div2k/bicubic_x2", 2) == metrics.eval_protocol("DIV2K_SR", 2)
  assert augment.moa("tfds:cutblur_folders/realsr_all_x4").mix_p[-1] == 0.4
  assert augment.moa("DIV2K_JPEG").probs[0] == 0.6
  assert augment.moa("RealSR", "CARN").probs[0] == 1.0  # RealSR wins over CARN's 0.2
  # The embedded photos with noise are a denoising benchmark: RGB, 4 pixels, MoA at 0.6.
  assert metrics.eval_protocol("embedded_DN", 1) == {"crop_border": 4, "y_only": False}
  assert augment.moa("embedded_DN").probs == (0.6,) * 7


def test_data_spec_from_a_config_carries_every_option_once():
  spec = DataSpec.from_config({"dataset": "DIV2K_DN", "scale": 4, "sigma": 30, "camera": None})
  assert spec.task == "DN" and spec.data_scale == 1 and spec.sigma == 30.0
  assert spec.camera == "all"  # None takes the default
  assert spec.eval_protocol == EvalProtocol(crop_border=10, y_only=False, round_y=True)
  assert spec.replace(dataset="Set14_SR").data_scale == 4
  with pytest.raises(TypeError, match="Unknown data options"):
    DataSpec.from_config({"dataset": "DIV2K_SR"}, sigmaa=3)
  assert tfds_scale("div2k/bicubic_x3") == 3 and tfds_scale("div2k/bicubic") is None


def test_df2k_is_measured_and_augmented_as_div2k():
  assert parse_dataset("DF2K_SR").eval_protocol(4) == parse_dataset("DIV2K_SR").eval_protocol(4)
  assert augment.moa("DF2K_DN") == augment.moa("DIV2K_DN")
  with pytest.raises(ValueError, match="DF2K_SR, DF2K_DN or DF2K_JPEG"):
    parse_dataset("DF2K_XX")
