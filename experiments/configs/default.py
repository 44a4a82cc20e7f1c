r"""The default run: a small EDSR with MoA on the embedded photos, x2, in minutes on a CPU.

  python experiments/train.py            # this config, work directory printed at start

It needs no data set (``dataset="embedded"``: scikit-image's photos, 7 for
training and 2 held out for validation, LR made with MATLAB-bicubic
``imresize``) and checks the whole pipeline end to end: on a 2-core CPU it
trains, validates on the two full held-out photos and beats bicubic
upsampling (logged as ``bicubic_psnr``) in under ten minutes. It is a smoke
test and a demo, not a paper number; the paper's recipes are the other files
in this folder.
"""

from cutblur_jax.train import base_config


def get_config():
  config = base_config()
  config.model = "EDSR"
  config.dataset = "embedded"
  config.scale = 2
  config.use_moa = True
  # A small EDSR (the paper's is 32 blocks x 256 channels).
  config.num_blocks = 4
  config.num_channels = 32
  config.res_scale = 1.0
  config.patch_size = 24  # LR patches (HR 48x48)
  config.batch_size = 16
  config.num_train_steps = 1500
  config.lr = 1e-3  # a small network tolerates 10x the paper's rate, and needs it here
  config.decay = "1"  # halve it after 1k steps (milestones are in thousands, as option.py)
  config.eval_every_steps = 500
  config.checkpoint_every_steps = 500
  config.log_every_steps = 50
  return config
