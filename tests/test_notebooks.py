"""The Colab notebooks: stored clean, and run top to bottom (CI parameters) without an error."""

from __future__ import annotations

import pathlib
import re

import nbformat
import pytest
from nbclient import NotebookClient

from cutblur_jax import augment

COLAB = pathlib.Path(__file__).resolve().parents[1] / "colab"
# Notebook -> the least number of figures its CI run must draw.
NOTEBOOKS = {"augmentations.ipynb": 6, "train_and_compare.ipynb": 4}
# The ops the augmentation notebook must show: the paper's seven and our two.
SHOWN_OPS = ("blend", "rgb", "mixup", "cutout", "cutmix", "cutmixup", "cutblur", "soft_cutblur",
             "degradation_mixup")


def _read(name: str) -> nbformat.NotebookNode:
  return nbformat.read(COLAB / name, as_version=4)


def _code(notebook: nbformat.NotebookNode) -> str:
  return "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_is_stored_without_outputs_and_opens_with_colab_note(name):
  notebook = _read(name)
  nbformat.validate(notebook)
  for cell in notebook.cells:
    if cell.cell_type == "code":
      assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
  first = notebook.cells[0]
  assert first.cell_type == "markdown" and "Open in Colab" in first.source
  # No made-up repository address: the Colab link is a pattern the user fills in.
  assert not re.search(r"colab\.research\.google\.com/github/[A-Za-z0-9]", first.source)
  tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
  assert len(tagged) == 1 and tagged[0] is notebook.cells[1]
  assert 'CI = bool(os.environ.get("CI"))' in tagged[0].source
  assert notebook.metadata.kernelspec.name == "python3"


def test_augmentation_notebook_shows_every_op():
  source = _code(_read("augmentations.ipynb"))
  for op in SHOWN_OPS:
    assert f"augment.sample_{op}_params" in source and f"augment.apply_{op}" in source, op
    assert op in augment.OP_NAMES
  for name in ("augment.one_of", "augment.chain", "per_sample=True", "augment.moa()"):
    assert name in source


def test_train_notebook_compares_moa_and_runs_the_hr_input_test():
  source = _code(_read("train_and_compare.ipynb"))
  for name in ("train.train_and_evaluate", "read_metrics", "evaluation.hr_input_forward",
               "evaluation.bicubic_upscale", "hr_input_psnr", '"google.colab" in sys.modules'):
    assert name in source


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_runs_top_to_bottom(name, monkeypatch):
  monkeypatch.setenv("CI", "1")  # the parameter cell makes the run tiny
  monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
  notebook = _read(name)
  client = NotebookClient(notebook, kernel_name="python3", timeout=300,
                          resources={"metadata": {"path": str(COLAB)}})
  client.execute()  # raises CellExecutionError, naming the cell, on any error
  outputs = [output for cell in notebook.cells if cell.cell_type == "code"
             for output in cell.outputs]
  assert not [o for o in outputs if o.output_type == "error"]
  figures = [o for o in outputs if "image/png" in o.get("data", {})]
  assert len(figures) >= NOTEBOOKS[name], f"{name} drew {len(figures)} figures"
  text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
  if name == "train_and_compare.ipynb":
    assert "HR-input PSNR" in text and "validation PSNR" in text
  else:
    assert "same key, same output: True" in text
