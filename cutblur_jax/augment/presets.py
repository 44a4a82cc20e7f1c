"""The paper's MoA policy (``moa``), as ``option.py``'s ``make_template`` sets it.

The augmentation library knows no data set names: ``moa`` takes the three facts of the
option.py table that change the policy as keyword flags. The training presets
(``cutblur_jax.training.presets.moa_flags``) map a data set and model name to them;
``moa("DIV2K_SR", "EDSR")``, the reference's names, is kept as a thin call through that
mapping.
"""

from __future__ import annotations

from cutblur_jax.augment.policy import Policy

__all__ = ["MOA_ALPHAS", "MOA_AUGS", "MOA_MODELS", "MOA_REALSR_MIX_P", "moa"]

MOA_AUGS = ("blend", "rgb", "mixup", "cutout", "cutmix", "cutmixup", "cutblur")
# The reference's --model names (and EDSR-baseline); make_template treats only CARN apart.
MOA_MODELS = ("EDSR", "EDSR-baseline", "RCAN", "CARN")
MOA_ALPHAS = (0.6, 1.0, 1.2, 0.001, 0.7, 0.7, 0.7)
# RealSR's MoA favours CutBlur (option.py).
MOA_REALSR_MIX_P = (0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.4)


def moa(
  dataset: str | None = None,
  model: str | None = None,
  *,
  realsr: bool = False,
  same_size: bool = False,
  carn: bool = False,
) -> Policy:
  """The paper's MoA policy (``option.py``'s ``--use_moa``).

  All seven ops with alphas ``(0.6, 1.0, 1.2, 0.001, 0.7, 0.7, 0.7)`` for
  ``blend, rgb, mixup, cutout, cutmix, cutmixup, cutblur``, ``aux_alpha = 1.2``,
  chosen uniformly; then, in ``make_template``'s order:

  * ``realsr`` (RealSR data): ``mix_p = (0.1,) * 6 + (0.4,)`` (CutBlur 40%).
  * ``same_size`` (denoising or JPEG data): every prob 0.6.
  * ``carn`` (a CARN model) and not ``realsr``: every prob 0.2 (overrides 0.6).
  * otherwise every prob 1.0.

  ``aux_prob`` is 1.0. The reference's ``solver.py`` passes ``aux_alpha``
  (1.2) as the mixup probability of CutMixup, which acts as 1.0: the same
  behaviour.

  Args:
    dataset, model: the reference's ``--dataset`` and ``--model`` names (``"DIV2K_SR"``,
      ``"RealSR"``, ``"DIV2K_DN"``, ...; ``"EDSR"``, ``"RCAN"``, ``"CARN"``): a
      compatibility call, mapped to the flags by
      ``cutblur_jax.training.presets.moa_flags``. Give names or flags, not both.
    realsr, same_size, carn: the flags above.

  Returns:
    A batch-mode ``Policy``; ``dataclasses.replace(moa(), per_sample=True)`` for per-image draws.

  Raises:
    ValueError: an unknown data set or model name (listing the known ones), or names
      together with flags.

  Examples:
    >>> moa(realsr=True, carn=True).mix_p[-1], moa(same_size=True).probs[0]
    (0.4, 0.6)
    >>> moa("RealSR", "CARN") == moa(realsr=True, carn=True), moa(model="CARN").probs[0]
    (True, 0.2)
  """
  if dataset is not None or model is not None:
    if realsr or same_size or carn:
      raise ValueError("moa: give data set and model names, or the flags, not both.")
    # The one call from augment up to training: the name mapping lives with the presets.
    from cutblur_jax.training.presets import moa_flags  # pylint: disable=g-import-not-at-top

    return moa(
      **moa_flags("DIV2K_SR" if dataset is None else dataset, "EDSR" if model is None else model)
    )
  prob = 1.0
  if same_size:
    prob = 0.6
  if carn and not realsr:
    prob = 0.2
  mix_p = MOA_REALSR_MIX_P if realsr else None
  return Policy(
    MOA_AUGS, (prob,) * len(MOA_AUGS), MOA_ALPHAS, aux_prob=1.0, aux_alpha=1.2, mix_p=mix_p
  )
