"""The project's audio constants: one sample rate and one set of log-mel parameters.

Every dataset and run also stores the parameters it was made with (``MelParams``), so changing a value here
changes new datasets only; old runs keep working with what they recorded.
"""
from __future__ import annotations

from typing import Literal

SAMPLE_RATE = 22_050  # every file is resampled to this: 11 kHz bandwidth keeps timbre cues at half the cost of 44.1 kHz


N_FFT = 2048  # 93 ms window at 22.05 kHz: fine frequency resolution for low notes


HOP_LENGTH = 512  # 23 ms hop, 43 frames/s: enough for onsets, 4x cheaper than hop 128


N_MELS = 96  # the usual size for music CNNs; divisible by 2^4 for pooling


FMIN = 20.0  # below 20 Hz is rumble, not music


FMAX = SAMPLE_RATE / 2  # Nyquist of the project rate


TOP_DB = 100.0  # floor at -100 dB so digital silence does not produce -inf


# Query limits, defined here only: the Recommend page, the API, the bot and the CLI read them, and
# .streamlit/config.toml's server.maxUploadSize must equal MAX_UPLOAD_MB (tests/test_service.py checks it).
DEFAULT_K = 5  # similar tracks one answer lists unless asked otherwise
DEFAULT_SET_K = 10  # tracks a query by several library tracks lists unless asked otherwise
MAX_K = 100  # the most similar tracks one API request may ask for
MAX_UPLOAD_MB = 200  # largest query upload: a full album as one FLAC fits
MAX_QUERY_SECONDS = 600.0  # a query reads at most 10 minutes of its audio, as ingest does


MAP_METHODS = ("pca", "tsne", "umap")  # the 2-D projections a run's map is drawn with (core.search.projection)


MusicnnLayer = Literal["penultimate", "max_pool", "mean_pool", "taggram"]  # what core.model.reference reads out


# musicnn's 50 Million Song Dataset tags, in the order of the network's outputs (core.model.musicnn)
MSD_TAGS = ("rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s", "alternative rock",
            "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock", "soul", "indie rock", "Mellow",
            "electronica", "80s", "folk", "90s", "chill", "instrumental", "punk", "oldies", "blues", "hard rock",
            "ambient", "acoustic", "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country",
            "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb",
            "indie pop", "sad", "House", "happy")
