"""The encoders: the project's CNN, the frozen musicnn reference, saving and loading, and embedding."""
from core.base.faces import public_face

__all__, __getattr__, __dir__ = public_face(__name__, {
    "encoder": ("Encoder", "load_model", "save_model"),
    "embed": ("embed_mels", "embed_signals", "embed_passages"),
    "musicnn": ("MusiCNN", "load_musicnn"),
    "reference": ("ReferenceEncoder", "pretrained_encoder"),
})
