"""One run of a study: trained (or resumed), measured, recorded; read back once finished.

``run_cell(study, cell, config, workdir, test_dataset)`` trains the run in
``workdir/<cell.name>`` with ``train.train_and_evaluate``, measures it on the test photos
(``measure.measure``) and writes ``RUN_FILE`` there. Rerunning reads that record back instead,
after checking that the config it was made with is the same (``differences``: the fields
listed in ``IRRELEVANT`` may differ, a field newer than the record must hold its default).
``report_run`` and ``shared_config`` shape the runs for the study's report.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time
from typing import Any, Sequence

from cutblur_jax import train
from cutblur_jax.data.io import write_json
from cutblur_jax.studies import measure
from cutblur_jax.studies.definitions import Cell, Study

__all__ = [
  "IRRELEVANT",
  "RUN_FILE",
  "comparable",
  "differences",
  "report_run",
  "run_cell",
  "shared_config",
]

RUN_FILE = "study_run.json"
# Fields a run's result does not depend on: they may differ between a run and its rerun.
IRRELEVANT = (
  "progress_bar",
  "num_workers",
  "prefetch",
  "log_every_steps",
  "distributed",
  "coordinator_address",
  "num_processes",
  "process_id",
  "num_sample_images",
  "data_source",
  "data_cache_dir",
  "worker_processes",
  "dataset_root",  # where the photos are: the same photos anywhere
)


def comparable(config) -> dict[str, Any]:
  values = json.loads(json.dumps(config.to_dict()))
  return {key: value for key, value in values.items() if key not in IRRELEVANT}


def differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
  """The fields whose values differ; a field newer than the record must hold its default."""
  defaults = comparable(train.base_config())
  return sorted(
    key
    for key in set(recorded) | set(current)
    if recorded.get(key, defaults.get(key)) != current.get(key, defaults.get(key))
  )


def run_cell(
  study: Study, cell: Cell, config, workdir: pathlib.Path, test_dataset: str
) -> dict[str, Any]:
  """Trains (or resumes) one run and measures it; a finished run is read back instead."""
  run_dir = workdir / cell.name
  record_path = run_dir / RUN_FILE
  if record_path.exists():
    record = json.loads(record_path.read_text())
    differing = differences(record.get("config", {}), comparable(config))
    if differing:
      raise ValueError(
        f"{str(run_dir)!r} holds a run of another config ({', '.join(differing)} "
        "differ); use another --workdir or the same flags."
      )
    if record.get("test_dataset", test_dataset) != test_dataset:
      raise ValueError(
        f"{str(run_dir)!r} was measured on {record['test_dataset']}, not {test_dataset}; "
        "use another --workdir or the same --test_dataset."
      )
    return record["run"]
  start = time.perf_counter()
  result = train.train_and_evaluate(config, run_dir)
  measured = measure.measure(study, config, run_dir, test_dataset)
  run = {
    **dataclasses.asdict(cell),
    "num_train_steps": int(config.num_train_steps),
    "run": cell.name,
    "steps": int(result["step"]),
    "train_wall_time_s": float(result["wall_time_s"]),
    "wall_time_s": time.perf_counter() - start,  # training and measuring, this invocation's
    **measured,
  }
  run = {key: value for key, value in run.items() if value is not None}
  write_json(record_path, {"config": comparable(config), "test_dataset": test_dataset, "run": run})
  return run


def report_run(run: dict[str, Any]) -> dict[str, Any]:
  """A run as the report lists it: without the shared baseline, with ``final_psnr`` (the
  final step's PSNR, also ``psnr``) beside ``best_psnr``, per photo too."""
  run = {key: value for key, value in run.items() if key != "baseline"}
  run["final_psnr"] = run["psnr"]
  run["per_image"] = {**run["per_image"], "final_psnr": run["per_image"]["psnr"]}
  return run


def shared_config(configs: Sequence[Any]) -> dict[str, Any]:
  """The fields whose value every run shares."""
  dicts = [comparable(config) for config in configs]
  return {
    key: value
    for key, value in dicts[0].items()
    if all(other.get(key) == value for other in dicts[1:])
  }
