"""The Colab notebooks: stored clean, and run top to bottom (CI parameters) without an error."""

from __future__ import annotations

import pathlib

import nbformat
import pytest
from nbclient import NotebookClient


COLAB = pathlib.Path(__file__).resolve().parents[1] / "colab"
# Notebook -> the least number of figures its CI run must draw.
NOTEBOOKS = {"augmentations.ipynb": 6, "train_and_compare.ipynb": 4}


def _read(name: str) -> nbformat.NotebookNode:
  return nbformat.read(COLAB / name, as_version=4)


def _code(notebook: nbformat.NotebookNode) -> str:
  return "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_is_stored_without_outputs(name):
  notebook = _read(name)
  nbformat.validate(notebook)
  for cell in notebook.cells:
    if cell.cell_type == "code":
      assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
  tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
  assert len(tagged) == 1 and tagged[0] is notebook.cells[1]  # papermill/Colab parameters
  assert notebook.metadata.kernelspec.name == "python3"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_runs_top_to_bottom(name, monkeypatch):
  monkeypatch.setenv("CI", "1")  # the parameter cell makes the run tiny
  monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
  notebook = _read(name)
  client = NotebookClient(
    notebook, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(COLAB)}}
  )
  client.execute()  # raises CellExecutionError, naming the cell, on any error
  outputs = [
    output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
  ]
  assert not [o for o in outputs if o.output_type == "error"]
  figures = [o for o in outputs if "image/png" in o.get("data", {})]
  assert len(figures) >= NOTEBOOKS[name], f"{name} drew {len(figures)} figures"
  text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
  if name == "train_and_compare.ipynb":
    assert "HR-input PSNR" in text and "validation PSNR" in text
  else:
    assert "same key, same output: True" in text
