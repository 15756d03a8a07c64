"""Live microphone recordings: audio frames from the browser (WebRTC) turned into a query signal.

The browser sends audio as a stream of short ``av.AudioFrame`` objects (typically 20 ms of 48 kHz stereo
``s16``). :class:`MicRecording` collects them, reports the elapsed time and an input level while recording,
stops taking audio at a length cap, and finally gives mono float32 at the project rate, or an
:class:`~core.base.errors.AudioDecodeError` that says plainly why the recording cannot be used (nothing arrived,
silence, too short). Nothing here needs a browser: tests feed it frames made with PyAV.
"""
from __future__ import annotations

import dataclasses
import queue
import time
from typing import Callable, Iterable, Iterator

import av
import numpy as np

from core.audio.decode import SAMPLE_RATE, check_signal, to_mono_resampled
from core.base.errors import AudioDecodeError

RECORDING_NAME = "microphone recording"


MAX_RECORD_SECONDS = 30.0


# Without any audio for this long, a recording loop gives up (the stream never connected, or it stalled).
IDLE_LIMIT_SECONDS = 10.0


# The level meter shows this range; quieter input reads as the floor.
METER_FLOOR_DBFS = -60.0


SILENT_DBFS = -120.0


class FrameConverter:
    """Audio frames to float samples through PyAV's resampler (ffmpeg), as :func:`core.audio.decode.load_audio` decodes
    files: any sample format, packed or planar, becomes packed float32 with channels and rate kept.

    One converter is kept per stream (setting ffmpeg's filter up costs far more than converting a 20 ms frame)
    and set up again only when the frames' format, layout or rate change.
    """

    def __init__(self) -> None:
        self._setup, self._resampler = None, None

    def __call__(self, frame) -> tuple[np.ndarray, int]:
        """Samples of ``frame`` (an ``av.AudioFrame``) in [-1, 1], np.ndarray [shape=(n_samples, n_channels),
        dtype=float32], and its sample rate."""
        channels, rate = max(1, len(frame.layout.channels)), int(frame.sample_rate)
        setup = (frame.format.name, frame.layout.name, rate)
        if setup != self._setup:
            self._setup, self._resampler = setup, av.AudioResampler(format="flt", layout=frame.layout.name, rate=rate)
        packed = [out.to_ndarray().reshape(-1, channels) for out in self._resampler.resample(frame)]
        data = np.concatenate(packed) if packed else np.zeros((0, channels), np.float32)
        return np.ascontiguousarray(data, dtype=np.float32), rate


def frame_to_array(frame) -> tuple[np.ndarray, int]:
    """Samples of one audio frame as floats in [-1, 1] (a one-off :class:`FrameConverter`).

    Parameters
    ----------
    frame : av.AudioFrame
        Any sample format (packed or planar, integer or float) and channel count.

    Returns
    -------
    samples : np.ndarray [shape=(n_samples, n_channels), dtype=float32]
    sample_rate : int
    """
    return FrameConverter()(frame)


def dbfs(samples: np.ndarray) -> float:
    """RMS level of ``samples`` [shape=(n,)] in dB relative to full scale (:data:`SILENT_DBFS` when empty or 0)."""
    if samples.size == 0:
        return SILENT_DBFS
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return max(SILENT_DBFS, 20.0 * np.log10(rms)) if rms > 0 else SILENT_DBFS


def meter_fraction(level_dbfs: float, *, floor: float = METER_FLOOR_DBFS) -> float:
    """A level in dBFS as a 0..1 bar length (``floor`` dBFS and below is empty, 0 dBFS is full)."""
    return float(np.clip((level_dbfs - floor) / -floor, 0.0, 1.0))


@dataclasses.dataclass
class MicRecording:
    """Audio frames of one recording, kept mono at the rate they arrived in.

    Parameters
    ----------
    max_seconds : float
        Length cap: frames past it are dropped and :attr:`is_full` turns true.
    sr : int
        Rate of the audio that :meth:`audio` returns (the project rate).
    """

    max_seconds: float = MAX_RECORD_SECONDS
    sr: int = SAMPLE_RATE
    n_frames: int = 0
    input_rate: int | None = None
    input_channels: int | None = None
    _chunks: list = dataclasses.field(default_factory=list, repr=False)
    _convert: FrameConverter = dataclasses.field(default_factory=FrameConverter, repr=False)
    _seconds: float = 0.0

    @property
    def seconds(self) -> float:
        """Length of the audio collected so far."""
        return self._seconds

    @property
    def is_full(self) -> bool:
        """True once the length cap is reached."""
        return self._seconds >= self.max_seconds - 1e-9

    def add_frames(self, frames: Iterable) -> float:
        """Append ``av.AudioFrame`` objects (downmixed to mono); returns the seconds actually taken."""
        taken = 0.0
        for frame in frames:
            if self.is_full:
                break
            samples, rate = self._convert(frame)
            mono = samples.mean(axis=1)
            room = int(round((self.max_seconds - self._seconds) * rate))
            mono = mono[:max(room, 0)]
            self._chunks.append((mono, rate))
            self.n_frames += 1
            self.input_rate, self.input_channels = rate, samples.shape[1]
            self._seconds += mono.size / rate
            taken += mono.size / rate
        return taken

    def since(self, start: int) -> tuple[np.ndarray, int | None, int]:
        """What arrived after the first ``start`` frame batches, for a listener that follows the recording:
        mono samples at the input rate [shape=(n,)] (only the batches at the newest rate, should it change), that
        rate (None before any audio), and the count of batches so far (the next call's ``start``)."""
        new = self._chunks[start:]
        if not new:
            return np.zeros(0, np.float32), self.input_rate, len(self._chunks)
        rate = new[-1][1]
        return np.concatenate([m for m, r in new if r == rate]).astype(np.float32), rate, len(self._chunks)

    def level_dbfs(self, window_seconds: float = 0.3) -> float:
        """Input level of the most recent ``window_seconds`` of audio, in dBFS."""
        recent, seconds = [], 0.0
        for mono, rate in reversed(self._chunks):
            recent.append(mono)
            seconds += mono.size / rate
            if seconds >= window_seconds:
                break
        return dbfs(np.concatenate(recent[::-1])) if recent else SILENT_DBFS

    def audio(self, sr: int | None = None) -> np.ndarray:
        """Everything collected, mono float32 at ``sr`` (default :attr:`sr`), np.ndarray [shape=(n,)]."""
        sr = sr or self.sr
        if not self._chunks:
            return np.zeros(0, np.float32)
        pieces, run, run_rate = [], [], self._chunks[0][1]
        for mono, rate in self._chunks:  # resample runs of equal rate in one go (no seams between frames)
            if rate != run_rate:
                pieces.append(to_mono_resampled(np.concatenate(run), sr_in=run_rate, sr=sr))
                run, run_rate = [], rate
            run.append(mono)
        pieces.append(to_mono_resampled(np.concatenate(run), sr_in=run_rate, sr=sr))
        return np.concatenate(pieces).astype(np.float32)

    def finish(self, *, min_seconds: float, sr: int | None = None) -> np.ndarray:
        """The recording as a query signal at ``sr`` (default :attr:`sr`; see :meth:`audio`).

        Raises
        ------
        AudioDecodeError
            No frames arrived, the audio is silent or non-finite, or shorter than ``min_seconds``.
        """
        if self.n_frames == 0:
            raise AudioDecodeError(RECORDING_NAME, "no audio arrived from the microphone; allow microphone "
                                                   "access in the browser, press Start and let it run a few seconds")
        sr = sr or self.sr
        return check_signal(self.audio(sr), name=RECORDING_NAME, sr=sr, min_seconds=min_seconds)


@dataclasses.dataclass(frozen=True)
class RecordingProgress:
    """What the page shows while recording."""

    seconds: float
    level_dbfs: float
    idle_seconds: float
    is_full: bool


def pull_frames(recording: MicRecording, get_frames: Callable[[float], list], *, poll_seconds: float = 0.1,
                update_seconds: float = 0.25, idle_limit: float = IDLE_LIMIT_SECONDS,
                clock: Callable[[], float] = time.monotonic) -> Iterator[RecordingProgress]:
    """Move frame batches into ``recording`` and report progress about every ``update_seconds``.

    Parameters
    ----------
    recording : MicRecording
    get_frames : callable
        ``get_frames(timeout)`` returns a list of ``av.AudioFrame`` (an empty list or :class:`queue.Empty`
        when nothing arrived in ``timeout`` seconds), as ``streamlit_webrtc``'s ``AudioReceiver.get_frames``.
    poll_seconds : float
        Longest wait for one batch.
    update_seconds : float
        Least time between two reports (the page redraws on each).
    idle_limit : float
        Give up after this long without any audio.
    clock : callable
        Seconds, monotonic (tests pass a fake one).

    Yields
    ------
    RecordingProgress
        The last one has ``is_full`` true, or ``idle_seconds >= idle_limit``.
    """
    last_audio = last_report = clock()
    while True:
        try:
            frames = get_frames(poll_seconds)
        except queue.Empty:
            frames = []
        now = clock()
        if frames:
            recording.add_frames(frames)
            last_audio = now
        idle = now - last_audio
        done = recording.is_full or idle >= idle_limit
        if done or now - last_report >= update_seconds:
            last_report = now
            yield RecordingProgress(recording.seconds, recording.level_dbfs(), idle, recording.is_full)
        if done:
            return
