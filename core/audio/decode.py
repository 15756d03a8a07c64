"""Decode any audio file to mono float32 at the project sample rate.

libsndfile (through ``soundfile``) reads wav, flac, ogg/vorbis, ogg/opus and mp3 quickly; PyAV (ffmpeg) takes
what it cannot (m4a/aac, odd containers). Both paths read at most ``max_seconds`` and downmix and resample block by
block, so memory is the mono output plus one block whatever the file declares (a 1 MB FLAC of silence can hold
five minutes of 192 kHz x 8 channels: 1.8 GB as float32 at once); rates above :data:`MAX_SAMPLE_RATE` and more than
:data:`MAX_CHANNELS` channels are refused. Every failure becomes an :class:`AudioDecodeError` naming the file and
the reason.
"""
from __future__ import annotations

import errno
import io
import os
import re
import stat
from pathlib import Path

import numpy as np
import soxr

from core.base.constants import SAMPLE_RATE
from core.base.errors import AudioDecodeError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".mp4", ".aiff", ".aif", ".wma", ".webm")


# Peak below this (about -80 dBFS) counts as silence: nothing to learn from, and queries would be noise.
SILENCE_PEAK = 1e-4


# Hi-res studio masters go to 192 kHz and surround mixes to 8 channels (7.1); nothing above is music to index.
MAX_SAMPLE_RATE = 192_000


MAX_CHANNELS = 8


# Frames decoded at a time: 2**16 frames x 8 channels x 4 bytes = 2 MB, whatever the file's length.
BLOCK_FRAMES = 1 << 16


def is_audio_path(path) -> bool:
    """True when the file name has one of :data:`AUDIO_EXTENSIONS`."""
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


def check_format(name, *, samplerate: int, channels: int) -> None:
    """Refuse what no music file needs and what would only cost memory: above :data:`MAX_SAMPLE_RATE` or
    :data:`MAX_CHANNELS` (a small, mostly silent file can declare 768 kHz and 64 channels)."""
    if samplerate > MAX_SAMPLE_RATE:
        raise AudioDecodeError(name, f"sample rate {samplerate} Hz is above the {MAX_SAMPLE_RATE} Hz this reads")
    if channels > MAX_CHANNELS:
        raise AudioDecodeError(name, f"{channels} channels, more than the {MAX_CHANNELS} this reads")
    if samplerate <= 0 or channels <= 0:
        raise AudioDecodeError(name, f"declares {samplerate} Hz and {channels} channel(s)")


class _MonoResampler:
    """Downmix and resample block by block: memory stays a block of the input plus the mono output."""

    def __init__(self, sr_in: int, sr: int):
        self.stream = None if sr_in == sr else soxr.ResampleStream(sr_in, sr, 1, dtype="float32", quality="HQ")
        self.parts: list[np.ndarray] = []

    def add(self, block: np.ndarray, *, last: bool = False) -> None:
        mono = np.ascontiguousarray(block.mean(axis=1) if block.ndim == 2 else block, dtype=np.float32)
        self.parts.append(mono if self.stream is None else self.stream.resample_chunk(mono, last=last))

    def result(self) -> np.ndarray:
        return np.concatenate(self.parts) if self.parts else np.zeros(0, np.float32)


def _read_soundfile(source, max_seconds: float | None, sr: int, name) -> np.ndarray:
    import soundfile as sf

    with sf.SoundFile(source) as f:
        check_format(name, samplerate=f.samplerate, channels=f.channels)
        n = f.frames if max_seconds is None else min(f.frames, int(max_seconds * f.samplerate))
        out, done = _MonoResampler(f.samplerate, sr), 0
        while True:  # mp3 frame counts can be estimates: read() stops at the real end of the stream anyway
            block = f.read(frames=max(min(BLOCK_FRAMES, n - done), 0), dtype="float32", always_2d=True)
            done += len(block)
            last = len(block) < BLOCK_FRAMES or done >= n
            out.add(block, last=last)
            if last:
                return out.result()


def _read_pyav(source, max_seconds: float | None, sr: int, name) -> np.ndarray:
    import av

    with av.open(source) as container:
        if not container.streams.audio:
            raise ValueError("no audio stream in the file")
        stream = container.streams.audio[0]
        check_format(name, samplerate=stream.rate or 0, channels=stream.channels or 0)
        # Let ffmpeg downmix and resample each frame while decoding: only the mono output is kept.
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
        limit = None if max_seconds is None else int(max_seconds * sr)
        chunks, total = [], 0
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunk = out.to_ndarray().reshape(-1)
                chunks.append(chunk)
                total += chunk.size
            if limit is not None and total >= limit:
                break
        for out in resampler.resample(None):  # flush
            chunks.append(out.to_ndarray().reshape(-1))
        y = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        return y if limit is None else y[:limit]


def to_mono_resampled(data: np.ndarray, *, sr_in: int, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Downmix ``data`` and resample it to ``sr``.

    Parameters
    ----------
    data : np.ndarray [shape=(n,) or (n, channels)]
        Samples, any channel count.
    sr_in : int
        Sample rate of ``data``.
    sr : int
        Target rate.

    Returns
    -------
    np.ndarray [shape=(m,), dtype=float32]
    """
    data = np.asarray(data, dtype=np.float32)
    y = data.mean(axis=1) if data.ndim == 2 else data
    if sr_in != sr and y.size:
        y = soxr.resample(y, sr_in, sr, quality="HQ")
    return np.ascontiguousarray(y, dtype=np.float32)


def check_signal(y: np.ndarray, *, name, sr: int, min_seconds: float = 0.0) -> np.ndarray:
    """Raise :class:`AudioDecodeError` for empty, non-finite, too short or silent audio; else return ``y``."""
    if y.size == 0:
        raise AudioDecodeError(name, "contains no audio samples")
    if not np.isfinite(y).all():
        raise AudioDecodeError(name, "contains NaN or infinite samples")
    duration = y.size / sr
    if duration < min_seconds:
        raise AudioDecodeError(name, f"too short: {duration:.2f} s, at least {min_seconds:.2f} s needed")
    if float(np.abs(y).max()) < SILENCE_PEAK:
        raise AudioDecodeError(name, "is silent (peak below -80 dBFS)")
    return y


def load_audio(path, *, sr: int = SAMPLE_RATE, max_seconds: float | None = 600.0,
               min_seconds: float = 0.0) -> np.ndarray:
    """Decode an audio file to mono float32 at ``sr``.

    Parameters
    ----------
    path : str, Path or file-like
        The file (any of :data:`AUDIO_EXTENSIONS`; the content decides, not the name).
    sr : int
        Output sample rate.
    max_seconds : float or None
        Read at most this much audio from the start (None: all of it).
    min_seconds : float
        Shorter audio raises :class:`AudioDecodeError`.

    Returns
    -------
    np.ndarray [shape=(n,), dtype=float32]

    Raises
    ------
    AudioDecodeError
        Missing, empty, corrupt, not audio, too short or silent.
    """
    name = getattr(path, "name", path)
    if isinstance(path, (str, os.PathLike)):
        p = Path(path)
        _check_file(p, name)
        sources = (lambda: str(p), lambda: str(p))
    else:  # a file-like object (an upload): buffer it so both decoders can rewind
        raw = path.read() if hasattr(path, "read") else bytes(path)
        if not raw:
            raise AudioDecodeError(name, "file is empty (0 bytes)")
        sources = (lambda: io.BytesIO(raw), lambda: io.BytesIO(raw))
    try:
        y = _read_soundfile(sources[0](), max_seconds, sr, name)
    except AudioDecodeError:
        raise
    except Exception as sf_error:  # libsndfile cannot read it: let ffmpeg try
        try:
            y = _read_pyav(sources[1](), max_seconds, sr, name)
        except AudioDecodeError:
            raise
        except Exception as av_error:
            raise AudioDecodeError(name, f"not a readable audio file ({_short(av_error) or _short(sf_error)})") from av_error
    return check_signal(y, name=name, sr=sr, min_seconds=min_seconds)


def _check_file(p: Path, name) -> None:
    """A clear reason for a path that is not a regular, non-empty file (a FIFO would block the decoder)."""
    problem = path_problem(p)
    if problem:
        raise AudioDecodeError(name, problem)
    if p.stat().st_size == 0:
        raise AudioDecodeError(name, "file is empty (0 bytes)")


def path_problem(p: Path) -> str | None:
    """Why ``p`` cannot be opened as a file (a symlink loop, a broken symlink, a named pipe, a folder, ...), or
    None when it is a regular file."""
    try:
        mode = p.stat().st_mode
    except OSError as error:
        return _stat_reason(p, error)
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a named pipe" if stat.S_ISFIFO(mode) else "a device or socket"
        return f"not a regular file ({kind})"
    return None


def _stat_reason(p: Path, error: OSError) -> str:
    """Why ``p`` cannot be opened: a symlink loop, a broken symlink, no permission, or not there."""
    if error.errno == errno.ELOOP:
        return "symlink loop (the link leads back to itself)"
    if p.is_symlink():
        return "broken symlink (what it points to does not exist)"
    if error.errno == errno.EACCES:
        return "permission denied"
    return "file not found"


def _short(error: Exception) -> str:
    """The first line of a decoder's message, without errno numbers or the repr of the source object."""
    text = str(error).strip().splitlines()
    if not text:
        return type(error).__name__
    line = re.sub(r"^\[Errno -?\d+\]\s*", "", text[0])
    line = re.sub(r":\s*'<[^>]*>'$|:\s*'[^']*'$", "", line)  # ffmpeg appends the path or BytesIO repr
    return line[:160]


def audio_info(path) -> dict:
    """Sample rate, channels and duration as stored in the file (best effort, no full decode)."""
    try:
        import soundfile as sf

        info = sf.info(str(path))
        return {"samplerate": info.samplerate, "channels": info.channels, "duration_s": info.duration}
    except Exception:
        try:
            import av

            with av.open(str(path)) as c:
                s = c.streams.audio[0]
                dur = float(c.duration / 1e6) if c.duration else float("nan")
                return {"samplerate": s.rate, "channels": s.channels, "duration_s": dur}
        except Exception as error:
            raise AudioDecodeError(path, f"not a readable audio file ({_short(error)})") from error
