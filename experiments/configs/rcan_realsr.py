r"""RCAN on RealSR (version 1, Canon + Nikon, x4), with MoA: the reference's real-world recipe.

Reproduces the RCAN rows of the paper's RealSR comparison of the baseline and
MoA (the reference README's "RealSR" training command). RealSR v1 LR images
are HR-sized, so the pipeline crops ``patch_size * scale`` = 192-pixel patches
from both (the reference's ``patch_size *= scale``) and the model keeps the
size; MoA on RealSR mixes its augmentations with ``mix_p`` (CutBlur 0.4, the
others 0.1 each). Evaluation: Y channel, ``scale`` pixels cropped.

  python experiments/train.py --config experiments/configs/rcan_realsr.py \
      --config.dataset_root=/data/RealSR --workdir workdirs/rcan_realsr
  # the baseline without augmentation: add --config.use_moa=False
  # one camera: --config.camera=canon (or nikon)

``dataset_root`` holds ``Canon/{Train,Test}/4/*_HR.png, *_LR4.png`` and the same for Nikon.
"""

from cutblur_jax.train import base_config


def get_config():
  config = base_config()
  config.model = "RCAN"
  config.dataset = "RealSR"
  config.scale = 4
  config.camera = "all"
  # The recipe, as option.py sets it (explicit here; the architecture is the model preset).
  config.patch_size = 48
  config.batch_size = 16
  config.num_train_steps = 1_000_000
  config.lr = 1e-4
  config.decay = "200-400-600-800"  # milestones in thousands of steps; the rate halves at each
  config.gamma = 0.5
  # gclip: unset, so option.py's rule applies: 0.5 when fine-tuning from --config.pretrain,
  # else 0 (no clipping).
  # MoA (make_template's --use_moa): the seven ops with prob 1.0 and alphas 0.6, 1.0, 1.2,
  # 0.001, 0.7, 0.7, 0.7, drawn with mix_p 0.1 each and CutBlur 0.4.
  # use_moa=False trains the paper's baseline (no augmentation).
  config.use_moa = True
  return config
