"""Finding tracks: exact cosine, the ANN index, passages for recordings, and the 2-D projections."""
from core.base.faces import public_face

__all__, __getattr__, __dir__ = public_face(__name__, {
    "exact": ("l2_normalise", "cosine_topk"),
    "ann": ("AnnIndex", "EXACT_MAX_TRACKS", "build_index", "search", "index_run"),
    "passages": ("Matcher", "matcher_for"),
    "projection": ("PROJECTIONS=METHODS", "MapFit", "fit_projections", "place"),
    "fingerprints": ("FingerprintConfig", "FingerprintIndex"),
})
