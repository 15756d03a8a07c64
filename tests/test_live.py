"""core.audio.live: browser audio frames -> a mono query signal at the project rate."""
from __future__ import annotations

import queue

import av
import numpy as np
import pytest

from core.audio.decode import SAMPLE_RATE
from core.audio.live import MicRecording, dbfs, frame_to_array, meter_fraction, pull_frames
from core.base.errors import AudioDecodeError


def make_frames(signal: np.ndarray, *, rate: int = 48_000, layout: str = "stereo", fmt: str = "s16",
                samples_per_frame: int = 960) -> list:
    """``signal`` [shape=(n,)] in [-1, 1] cut into av.AudioFrames (the same value on every channel)."""
    channels = 2 if layout == "stereo" else 1
    frames, pts = [], 0
    for start in range(0, len(signal), samples_per_frame):
        block = np.repeat(signal[start:start + samples_per_frame, None], channels, axis=1)
        if fmt.startswith("s16"):
            block = np.round(block * 32767).astype(np.int16)
        else:
            block = block.astype(np.float32)
        data = block.T.copy() if fmt.endswith("p") else block.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(data, format=fmt, layout=layout)
        frame.sample_rate, frame.pts = rate, pts
        pts += block.shape[0]
        frames.append(frame)
    return frames


def tone(freq: float, seconds: float, rate: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return amp * np.sin(2 * np.pi * freq * t)


@pytest.mark.parametrize("fmt,layout", [("s16", "stereo"), ("s16p", "stereo"), ("fltp", "stereo"),
                                        ("flt", "mono"), ("s16", "mono")])
def test_frame_to_array_scales_and_shapes_every_format(fmt, layout):
    signal = tone(440, 0.02, 48_000, amp=0.25)
    frame = make_frames(signal, fmt=fmt, layout=layout)[0]
    samples, rate = frame_to_array(frame)
    assert rate == 48_000
    assert samples.shape == (960, 2 if layout == "stereo" else 1)
    assert samples.dtype == np.float32
    np.testing.assert_allclose(samples[:, 0], signal, atol=1e-4)
    np.testing.assert_allclose(samples[:, -1], signal, atol=1e-4)


def test_recording_of_48k_stereo_is_mono_at_project_rate_with_the_same_pitch():
    rec = MicRecording()
    rec.add_frames(make_frames(tone(440, 2.0, 48_000), rate=48_000))
    y = rec.audio()
    assert rec.input_rate == 48_000 and rec.input_channels == 2 and rec.n_frames == 100
    assert rec.seconds == pytest.approx(2.0)
    assert y.dtype == np.float32 and y.ndim == 1
    assert y.size == pytest.approx(2 * SAMPLE_RATE, abs=2)
    spectrum = np.abs(np.fft.rfft(y))
    peak_hz = np.argmax(spectrum) * SAMPLE_RATE / y.size
    assert peak_hz == pytest.approx(440, abs=2)


def test_recording_stops_taking_audio_at_the_cap():
    rec = MicRecording(max_seconds=1.0)
    taken = rec.add_frames(make_frames(tone(220, 3.0, 48_000), rate=48_000))
    assert taken == pytest.approx(1.0)
    assert rec.is_full and rec.seconds == pytest.approx(1.0)
    assert rec.add_frames(make_frames(tone(220, 0.5, 48_000))) == 0.0
    assert rec.audio().size == pytest.approx(SAMPLE_RATE, abs=2)


def test_level_meter_reads_the_recent_input_in_dbfs():
    rec = MicRecording()
    assert rec.level_dbfs() <= -100  # nothing yet
    rec.add_frames(make_frames(tone(440, 1.0, 48_000, amp=1.0)))
    assert rec.level_dbfs() == pytest.approx(-3.01, abs=0.1)  # full-scale sine: RMS 1/sqrt(2)
    rec.add_frames(make_frames(np.zeros(48_000)))
    assert rec.level_dbfs() <= -100  # the meter follows the latest audio, not the whole recording
    assert dbfs(np.full(10, 0.1)) == pytest.approx(-20.0)
    assert meter_fraction(0.0) == 1.0 and meter_fraction(-60.0) == 0.0 and meter_fraction(-30.0) == 0.5
    assert meter_fraction(-200.0) == 0.0


def test_mixed_input_rates_are_each_resampled():
    rec = MicRecording()
    rec.add_frames(make_frames(tone(440, 1.0, 48_000), rate=48_000))
    rec.add_frames(make_frames(tone(440, 1.0, 16_000), rate=16_000, samples_per_frame=320, layout="mono"))
    assert rec.seconds == pytest.approx(2.0)
    assert rec.audio().size == pytest.approx(2 * SAMPLE_RATE, abs=4)


def test_finish_gives_clear_errors_for_no_frames_silence_and_short_audio():
    with pytest.raises(AudioDecodeError, match="no audio arrived from the microphone"):
        MicRecording().finish(min_seconds=3.0)
    silent = MicRecording()
    silent.add_frames(make_frames(np.zeros(4 * 48_000)))
    with pytest.raises(AudioDecodeError, match="silent"):
        silent.finish(min_seconds=3.0)
    short = MicRecording()
    short.add_frames(make_frames(tone(440, 1.0, 48_000)))
    with pytest.raises(AudioDecodeError, match="too short: 1.00 s, at least 3.00 s"):
        short.finish(min_seconds=3.0)


def test_finish_returns_a_query_signal_for_enough_audio():
    rec = MicRecording()
    rec.add_frames(make_frames(tone(330, 4.0, 48_000)))
    y = rec.finish(min_seconds=3.0)
    assert y.size == pytest.approx(4 * SAMPLE_RATE, abs=4)
    assert 0.4 < np.abs(y).max() < 0.6


class FakeReceiver:
    """Hands out frame batches on a fake clock, like AudioReceiver.get_frames(timeout=...)."""

    def __init__(self, batches: list, clock: list):
        self.batches, self.clock = list(batches), clock

    def get_frames(self, timeout: float) -> list:
        self.clock[0] += timeout if not self.batches or not self.batches[0] else 0.02
        if not self.batches:
            raise queue.Empty
        return self.batches.pop(0)


def test_pull_frames_reports_progress_and_stops_at_the_cap():
    clock = [0.0]
    frames = make_frames(tone(440, 3.0, 48_000))
    receiver = FakeReceiver([frames[i:i + 5] for i in range(0, len(frames), 5)], clock)
    rec = MicRecording(max_seconds=2.0)
    reports = list(pull_frames(rec, receiver.get_frames, update_seconds=0.1, clock=lambda: clock[0]))
    assert reports[-1].is_full and reports[-1].seconds == pytest.approx(2.0)
    assert [r.seconds for r in reports] == sorted(r.seconds for r in reports)
    assert len(reports) >= 3  # the page redraws while recording, not just at the end
    assert all(-10 < r.level_dbfs < -5 for r in reports)  # a 0.5 amplitude sine: -9 dBFS


def test_pull_frames_gives_up_when_no_audio_arrives():
    clock = [0.0]
    receiver = FakeReceiver([[]] * 3, clock)  # empty batches, then queue.Empty forever
    rec = MicRecording()
    reports = list(pull_frames(rec, receiver.get_frames, poll_seconds=0.5, idle_limit=4.0,
                               clock=lambda: clock[0]))
    assert reports[-1].idle_seconds >= 4.0 and not reports[-1].is_full
    assert rec.n_frames == 0


def test_finish_can_deliver_another_rate():
    rec = MicRecording()
    rec.add_frames(make_frames(tone(440, 4.0, 48_000)))
    assert rec.finish(min_seconds=3.0, sr=16_000).size == pytest.approx(4 * 16_000, abs=4)


@pytest.mark.parametrize("fmt,dtype,scale,offset", [("s16", np.int16, 32768.0, 0), ("s16p", np.int16, 32768.0, 0),
                                                    ("s32p", np.int32, 2.0 ** 31, 0), ("u8", np.uint8, 128.0, 128)])
def test_integer_frames_scale_as_full_scale_fractions(rng, fmt, dtype, scale, offset):
    """The resampler's conversion equals the plain integer scaling the recording used before it (exactly)."""
    ints = (rng.uniform(-0.99, 0.99, (960, 2)) * (scale - 1) + offset).round().astype(dtype)
    frame = av.AudioFrame.from_ndarray(ints.T.copy() if fmt.endswith("p") else ints.reshape(1, -1),
                                       format=fmt, layout="stereo")
    frame.sample_rate = 44_100
    samples, rate = frame_to_array(frame)
    np.testing.assert_array_equal(samples, ((ints.astype(np.float64) - offset) / scale).astype(np.float32))
    assert rate == 44_100


def test_a_recording_converts_a_stream_whose_format_changes():
    rec = MicRecording()
    rec.add_frames(make_frames(tone(440, 0.5, 48_000), fmt="s16"))
    rec.add_frames(make_frames(tone(440, 0.5, 48_000), fmt="fltp"))
    assert rec.seconds == pytest.approx(1.0)
    np.testing.assert_allclose(rec.audio(48_000), tone(440, 1.0, 48_000), atol=1e-3)
