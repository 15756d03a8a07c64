"""Contrastive training of the encoder, as small pieces a reader can follow in order:

* :mod:`~core.training.config`: :class:`TrainConfig` (every value), the named recipes in ``configs/*.toml``
  (:func:`load_recipe`, :func:`recipe_names`) and the ``train`` command's product options.
* :mod:`~core.training.augment`: random chunks and the augmentations that make two views of a track.
* :mod:`~core.training.losses`: NT-Xent and relational distillation.
* :mod:`~core.training.teacher`: the frozen musicnn reference's targets for distillation.
* :mod:`~core.training.checkpoint`: saving and resuming a training in progress.
* :mod:`~core.training.loop`: :func:`train_encoder`, the loop itself.

The default recipe: 250 epochs of NT-Xent on pairs of 3 s chunks (batch 64), augmented by a tempo change of
+-10 %, another track mixed in (p 0.3), a phone-like low-pass (p 0.8), noise at 0-30 dB SNR, a gain of +-6 dB
and SpecAugment masks; relational distillation (weight 1.0) from musicnn's penultimate layer and taggram; level
normalisation inside the model; a 128-d match head on detached features for the stored passages.
"""
from core.base.faces import public_face

__all__, __getattr__, __dir__ = public_face(__name__, {
    "config": ("TrainConfig", "load_recipe", "recipe_names"),
    "loop": ("train_encoder",),
})
