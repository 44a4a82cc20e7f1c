r"""RCAN on DIV2K bicubic SR, with MoA: the reference's recipe (x2 first, then x4 from x2).

Reproduces the RCAN rows of the paper's comparison of the baseline and MoA on
the DIV2K-trained SR models (evaluated on the SR benchmarks: Set14, Urban100,
Manga109; see the reference README). The reference trains x2 from scratch and
fine-tunes x4 from that checkpoint (head/tail re-initialised as in its
``solver.load``).

  # x2, from scratch (1M steps, lr 1e-4 halved at 200k/400k/600k/800k, batch 16, patch 48;
  # 10 groups x 20 blocks x 64 channels; fine-tuning from `pretrain` clips gradients at 0.5)
  python experiments/train.py --config experiments/configs/rcan_div2k.py \
      --config.dataset_root=/data/DIV2K --workdir workdirs/rcan_div2k_x2
  # x4, fine-tuned from the x2 run
  python experiments/train.py --config experiments/configs/rcan_div2k.py \
      --config.dataset_root=/data/DIV2K --config.scale=4 \
      --config.pretrain=workdirs/rcan_div2k_x2 --workdir workdirs/rcan_div2k_x4
  # the baseline without augmentation: add --config.use_moa=False

``dataset_root`` holds ``DIV2K_train_HR`` and ``DIV2K_train_LR_bicubic/X{2,4}``
(valid images 801-900 in the same folders, as the reference README says, or
the official ``DIV2K_valid_*`` folders next to them).
"""

from cutblur_jax.train import base_config


def get_config():
  config = base_config()
  config.model = "RCAN"
  config.dataset = "DIV2K_SR"
  config.scale = 2
  # The recipe, as option.py sets it (explicit here; the architecture is the model preset).
  config.patch_size = 48
  config.batch_size = 16
  config.num_train_steps = 1_000_000
  config.lr = 1e-4
  config.decay = "200-400-600-800"  # milestones in thousands of steps; the rate halves at each
  config.gamma = 0.5
  # gclip: unset, so option.py's rule applies: 0.5 when fine-tuning from --config.pretrain,
  # else 0 (no clipping).
  # MoA (make_template's --use_moa): blend, rgb, mixup, cutout, cutmix, cutmixup, cutblur,
  # each with prob 1.0, alphas 0.6, 1.0, 1.2, 0.001, 0.7, 0.7, 0.7, aux_prob 1.0,
  # aux_alpha 1.2, one op per batch drawn uniformly.
  # use_moa=False trains the paper's baseline (no augmentation).
  config.use_moa = True
  return config
