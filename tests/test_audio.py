import numpy as np
import pytest

from core.audio import SAMPLE_RATE, load_audio, to_mono_resampled
from core.errors import AudioDecodeError, TimbreError
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
