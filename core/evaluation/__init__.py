"""How good an embedding is: k-NN genre accuracy (beside MFCCs) and query by recording."""
from core.base.faces import public_face

__all__, __getattr__, __dir__ = public_face(__name__, {
    "knn": ("evaluate_embeddings", "knn_evaluation"),
    "recording": ("RecordingEvalConfig", "evaluate_run"),
})
