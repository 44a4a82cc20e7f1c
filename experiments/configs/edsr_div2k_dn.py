r"""EDSR for colour Gaussian denoising on DIV2K, with MoA (the reference's ``DIV2K_DN`` task).

The paper's colour denoising setting (MoA on a same-size restoration task), here
with EDSR (``--config.model=RCAN`` or ``CARN`` for the others). ``option.py``'s
presets for it: 1M steps, lr 1e-4 halved at 300k/550k/800k, MoA with every
probability 0.6, RGB evaluation with 10 pixels cropped. The network keeps the
image size (``scale=1``; the data layer requires it for same-size tasks),
patches are 48x48.

  python experiments/train.py --config experiments/configs/edsr_div2k_dn.py \
      --config.dataset_root=/data/DIV2K --config.sigma=30 --workdir workdirs/edsr_dn30
  # noisy inputs synthesised from HR (seeded), when DIV2K_train_DN/<sigma> is absent:
  #   --config.synthesize_lr=True
  # the baseline without augmentation: add --config.use_moa=False

``dataset_root`` holds ``DIV2K_train_HR`` and ``DIV2K_train_DN/<sigma>``.
"""

from cutblur_jax.train import base_config


def get_config():
  config = base_config()
  config.model = "EDSR"
  config.dataset = "DIV2K_DN"
  config.scale = 1
  config.sigma = 10
  # The recipe, as option.py sets it (explicit here; the architecture is the model preset).
  config.patch_size = 48
  config.batch_size = 16
  config.num_train_steps = 1_000_000
  config.lr = 1e-4
  config.decay = "300-550-800"  # milestones in thousands of steps; the rate halves at each
  config.gamma = 0.5
  config.gclip = 0.0
  # MoA (make_template's --use_moa): the seven ops with every prob 0.6, alphas 0.6, 1.0,
  # 1.2, 0.001, 0.7, 0.7, 0.7.
  # use_moa=False trains the paper's baseline (no augmentation).
  config.use_moa = True
  return config
