"""Contrastive training of the encoder: configuration, batches and augmentations, losses, the loop."""
