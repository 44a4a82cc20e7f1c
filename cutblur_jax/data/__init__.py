"""Data sets, image files and the training input pipeline.

Entry points:

* ``create_dataset(config, split)``: the data set a config names (DIV2K, RealSR,
  benchmark folders, DN, JPEG, ``tfds:NAME``, ``embedded``) as a
  ``Sequence[ImagePair]`` of whole uint8 images.
* ``create_pipeline(config)``: a deterministic, resumable ``TrainPipeline`` (on grain) of
  ``{"hr", "lr"}`` uint8 patch batches; ``prefetch_to_device`` puts them on the
  devices with the batch's sharding.
* ``read_image`` / ``write_image``: files <-> ``uint8 [H, W, 3]``;
  ``imresize``: MATLAB bicubic.

Public names are resolved lazily from their submodules, so importing
``cutblur_jax.data`` does not import TensorFlow Datasets or scikit-image until
they are needed.
"""

import importlib

# Public name -> submodule that defines it. Add a name here when you add a public
# function or class to a submodule of this package.
_EXPORTS = {
  # Image operations.
  "imresize": "bicubic",
  "embedded_dataset": "embedded",
  "EmbeddedDataset": "embedded",
  # Records and image files.
  "ImagePair": "types",
  "input_scale_of": "types",
  "read_image": "io",
  "write_image": "io",
  # Folder data sets, TFDS, the pipeline and selection by config.
  "FolderDataset": "image_folders",
  "Degradation": "degradations",
  "align_pair": "degradations",
  "benchmark_dataset": "folders",
  "bicubic_downsample": "degradations",
  "div2k_dataset": "folders",
  "folder_dataset": "folders",
  "gaussian_noise": "degradations",
  "jpeg_compress": "degradations",
  "list_images": "image_folders",
  "modcrop": "degradations",
  "parse_div2k_range": "folders",
  "realsr_dataset": "folders",
  "write_lr_folder": "image_folders",
  "TfdsDataset": "tfds_sources",
  "tfds_dataset": "tfds_sources",
  "CutblurFolders": "tfds_builders",
  "FolderSetConfig": "tfds_builders",
  "build_folder_tfds": "tfds_builders",
  "folder_config_name": "tfds_builders",
  "folder_set_config": "tfds_builders",
  "DevicePrefetcher": "prefetch",
  "TrainPipeline": "pipeline",
  "LoadedPairs": "prefetch",
  "load_pairs": "prefetch",
  "prefetch_to_device": "prefetch",
  "DATASET_NAMES": "registry",
  "create_dataset": "registry",
  "create_pipeline": "registry",
  "data_options": "registry",
  "data_spec": "registry",
  "first_images": "registry",
  "reference_dataset_name": "registry",
}


def __getattr__(name):
  if name in _EXPORTS:
    module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
    return getattr(module, name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
  return sorted(list(globals()) + list(_EXPORTS))


__all__ = sorted(_EXPORTS)
