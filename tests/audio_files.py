"""Write test audio in every supported container, with the encoders the project itself depends on."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

# (extension, soundfile format, subtype); m4a is written with PyAV below
SOUNDFILE_FORMATS = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "opus": ("OGG", "OPUS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


def write_audio(path: Path, y: np.ndarray, sr: int) -> Path:
    """Write ``y`` [shape=(n,) or (n, channels)] as the format named by ``path``'s extension."""
    ext = path.suffix.lstrip(".").lower()
    if ext == "m4a":
        return _write_m4a(path, y, sr)
    fmt, subtype = SOUNDFILE_FORMATS[ext]
    sf.write(path, y, sr, format=fmt, subtype=subtype)
    return path


def _write_m4a(path: Path, y: np.ndarray, sr: int) -> Path:
    import av

    data = y if y.ndim == 2 else y[:, None]
    layout = "mono" if data.shape[1] == 1 else "stereo"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=sr, layout=layout)
        frame_len = 1024
        for start in range(0, len(data), frame_len):
            block = np.ascontiguousarray(data[start:start + frame_len].T.astype(np.float32))
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=layout)
            frame.sample_rate = sr
            frame.pts = start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def sine(freq: float = 440.0, seconds: float = 4.0, sr: int = 22_050, amp: float = 0.5) -> np.ndarray:
    """A pure tone, np.ndarray [shape=(seconds * sr,), dtype=float32]."""
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
