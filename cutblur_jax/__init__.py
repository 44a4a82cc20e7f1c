"""cutblur-jax: CutBlur and the MoA augmentation policy for super-resolution, in JAX.

Submodules are imported on first use, so ``import cutblur_jax`` stays cheap:

* ``cutblur_jax.augment``: stateless, jit-compiled augmentations and policies.
* ``cutblur_jax.models``: Flax EDSR, RCAN and CARN.
* ``cutblur_jax.data``: MATLAB bicubic ``imresize``, image I/O, data sets, input pipeline.
* ``cutblur_jax.metrics``: PSNR and SSIM as super-resolution papers report them.
* ``cutblur_jax.checkpoint``: orbax model checkpoints.
* ``cutblur_jax.inference``: tiled, bucketed super-resolution of whole images.
* ``cutblur_jax.train``: the fused, sharded train step and ``train_and_evaluate``.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = ("augment", "checkpoint", "data", "image", "inference", "metrics", "models", "train")


def __getattr__(name):
  if name in _SUBMODULES:
    return importlib.import_module(f"{__name__}.{name}")
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
  return sorted(list(globals()) + list(_SUBMODULES))
