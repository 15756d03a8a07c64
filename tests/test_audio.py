import numpy as np
import pytest

from core.audio.decode import SAMPLE_RATE, load_audio, to_mono_resampled
from core.base.errors import AudioDecodeError, TimbreError
from tests.audio_files import OPUS_RATES, sine, write_audio

FORMATS = ("wav", "flac", "ogg", "opus", "mp3", "m4a")


def _rate_for(fmt: str, sr: int) -> int:
    return sr if fmt != "opus" or sr in OPUS_RATES else 48000


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("sr", (16000, 44100, 48000))
@pytest.mark.parametrize("channels", (1, 2))
def test_every_format_decodes_to_mono_project_rate(tmp_path, fmt, sr, channels):
    sr = _rate_for(fmt, sr)
    y = sine(440.0, seconds=2.0, sr=sr)
    data = np.stack([y, 0.5 * y], axis=1) if channels == 2 else y
    path = write_audio(tmp_path / f"tone.{fmt}", data, sr)

    out = load_audio(path)

    assert out.dtype == np.float32 and out.ndim == 1
    # lossy codecs pad or trim a few ms; the length must still match 2 s at the project rate
    assert abs(out.size / SAMPLE_RATE - 2.0) < 0.1
    spectrum = np.abs(np.fft.rfft(out[SAMPLE_RATE // 4: SAMPLE_RATE // 4 + 8192]))
    peak_hz = spectrum.argmax() * SAMPLE_RATE / 8192
    assert abs(peak_hz - 440.0) < 10.0


@pytest.mark.parametrize("sr", (8000, 11025, 96000))
def test_odd_sample_rates_are_resampled(tmp_path, sr):
    path = write_audio(tmp_path / "odd.wav", sine(300.0, 1.5, sr=sr), sr)
    out = load_audio(path, sr=22050)
    assert abs(out.size - int(1.5 * 22050)) <= 2


def test_max_seconds_caps_what_is_read(tmp_path):
    path = write_audio(tmp_path / "long.flac", sine(220.0, 12.0, sr=22050), 22050)
    assert load_audio(path, max_seconds=5.0).size == 5 * 22050


def test_uploads_decode_from_file_objects(tmp_path):
    import io

    path = write_audio(tmp_path / "up.mp3", sine(440.0, 2.0, sr=44100), 44100)
    upload = io.BytesIO(path.read_bytes())
    upload.name = "up.mp3"
    assert abs(load_audio(upload).size / SAMPLE_RATE - 2.0) < 0.1


def _bad_files(tmp_path, rng):
    import soundfile as sf

    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "corrupt.mp3").write_bytes(rng.integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    (tmp_path / "notes.ogg").write_text("this is a shopping list, not audio\n" * 100)
    write_audio(tmp_path / "short.wav", sine(440, 0.5), 22050)
    write_audio(tmp_path / "silent.flac", np.zeros(22050 * 4, np.float32), 22050)
    nan = sine(440, 4.0)
    nan[1000:2000] = np.nan
    sf.write(tmp_path / "nan.wav", nan, 22050, subtype="FLOAT")
    return {"empty.wav": "empty", "corrupt.mp3": "not a readable audio file", "notes.ogg": "not a readable audio file",
            "short.wav": "too short", "silent.flac": "silent", "nan.wav": "NaN"}


def test_each_bad_file_raises_the_typed_error_naming_file_and_reason(tmp_path, rng):
    for name, reason in _bad_files(tmp_path, rng).items():
        with pytest.raises(AudioDecodeError) as info:
            load_audio(tmp_path / name, min_seconds=3.0)
        assert name in str(info.value) and reason in str(info.value), str(info.value)
        assert isinstance(info.value, TimbreError)


def test_missing_file(tmp_path):
    with pytest.raises(AudioDecodeError, match="not found"):
        load_audio(tmp_path / "nope.wav")


def test_to_mono_resampled_averages_channels():
    stereo = np.stack([np.ones(100), -np.ones(100)], axis=1).astype(np.float32)
    assert np.allclose(to_mono_resampled(stereo, sr_in=22050), 0.0)


def _decompression_sized_flac(path, *, seconds: float, sr: int = 192_000, channels: int = 8) -> None:
    """A small FLAC that decodes to a lot: ``seconds`` of ``sr`` x ``channels``, a 1 s tone then silence."""
    import soundfile as sf

    block = np.zeros((sr, channels), np.float32)
    with sf.SoundFile(path, "w", samplerate=sr, channels=channels, format="FLAC", subtype="PCM_16") as f:
        f.write(np.repeat(sine(440, 1.0, sr=sr)[:, None], channels, axis=1) * 0.5)
        for _ in range(int(seconds) - 1):
            f.write(block)


PEAK_RSS = """
import resource, sys
from core.audio.decode import load_audio
load_audio(sys.argv[1], max_seconds=None)  # imports and decoder libraries loaded: the baseline
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
y = load_audio(sys.argv[2], max_seconds=None)
print(y.size, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
"""


def test_a_small_file_that_decodes_to_gigabytes_is_read_in_bounded_memory(tmp_path):
    """120 s at 192 kHz x 8 channels is 737 MB as float32; decoded in blocks the peak grows by the mono output
    (10.6 MB at 22.05 kHz) and a block, not by the file's declared size."""
    import subprocess
    import sys
    from pathlib import Path

    big, warm = tmp_path / "big.flac", tmp_path / "warm.flac"
    _decompression_sized_flac(big, seconds=120)
    _decompression_sized_flac(warm, seconds=2)
    assert big.stat().st_size < 2_000_000
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", PEAK_RSS, str(warm), str(big)], cwd=root, capture_output=True,
                         text=True, timeout=300, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)})
    assert out.returncode == 0, out.stderr[-2000:]
    samples, grown_mb = out.stdout.split()
    assert int(samples) == 120 * SAMPLE_RATE
    assert float(grown_mb) < 120, f"peak memory grew by {grown_mb} MB decoding a {big.stat().st_size} byte file"


@pytest.mark.parametrize(("sr", "channels", "reason"), [(384_000, 1, "sample rate 384000 Hz is above the 192000 Hz"),
                                                        (44_100, 16, "16 channels, more than the 8")])
def test_rates_and_channels_beyond_music_are_refused_with_the_reason(tmp_path, sr, channels, reason):
    import soundfile as sf

    path = tmp_path / "odd.wav"
    sf.write(path, np.repeat(sine(440, 1.0, sr=sr)[:, None], channels, axis=1), sr)
    with pytest.raises(AudioDecodeError, match=reason) as info:
        load_audio(path)
    assert "odd.wav" in str(info.value)


def test_block_decoding_equals_decoding_at_once(tmp_path, rng):
    """Blocks of the resampler join without seams: the result is what one call on the whole signal gives."""
    import soundfile as sf

    from core.audio.decode import BLOCK_FRAMES

    y = (0.1 * rng.standard_normal((3 * BLOCK_FRAMES + 123, 2))).astype(np.float32)
    sf.write(tmp_path / "noise.wav", y, 44_100, subtype="FLOAT")
    whole = to_mono_resampled(y, sr_in=44_100)
    assert np.allclose(load_audio(tmp_path / "noise.wav", max_seconds=None), whole, atol=1e-6)


def test_paths_that_are_not_plain_files_say_what_they_are(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe.wav")
    (tmp_path / "loop.wav").symlink_to(tmp_path / "loop.wav")
    (tmp_path / "dangling.wav").symlink_to(tmp_path / "gone.wav")
    (tmp_path / "folder.wav").mkdir()
    expected = {"pipe.wav": "not a regular file (a named pipe)", "loop.wav": "symlink loop",
                "dangling.wav": "broken symlink", "folder.wav": "not a regular file (a folder)"}
    for name, reason in expected.items():
        with pytest.raises(AudioDecodeError, match=reason.replace("(", r"\(").replace(")", r"\)")):
            load_audio(tmp_path / name)
