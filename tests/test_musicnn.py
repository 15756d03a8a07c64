"""The musicnn port: equal to the original TensorFlow network (expected outputs saved by the converter), its
front end, and the reference encoder built on it. No TensorFlow is needed here."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.model import musicnn
from core.model.reference import ReferenceEncoder

EXPECTED = Path(__file__).parent / "data" / "musicnn_expected.npz"


@pytest.fixture(scope="module")
def net() -> musicnn.MusiCNN:
    return musicnn.load_musicnn()


def test_port_equals_the_original_network(net):
    """scripts/convert_musicnn.py ran musicnn's own TF graph on these patches; the port must agree to 1e-4."""
    expected = np.load(EXPECTED)
    with torch.inference_mode():
        out = net(torch.from_numpy(expected["patches"]))
    for name in ("taggram", "penultimate", "max_pool", "mean_pool"):
        scale = max(1.0, float(np.abs(expected[name]).max()))
        assert np.abs(out[name].numpy() - expected[name]).max() / scale < 1e-4, name


def test_front_end_reproduces_the_converters_patches():
    """The saved patches came from port_check_clip through the same front end: the clip and the front end are
    both still what the converter used."""
    expected = np.load(EXPECTED)["patches"]
    got = musicnn.patches(musicnn.musicnn_input(musicnn.port_check_clip()))
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_front_end_shape_and_a_sine_in_the_right_band():
    sr, f = musicnn.SR, 1000.0
    y = 0.5 * np.sin(2 * np.pi * f * np.arange(4 * sr) / sr).astype(np.float32)
    spec = musicnn.musicnn_input(y)
    assert spec.shape == (4 * sr // musicnn.HOP + 1, musicnn.N_MELS)
    import librosa

    centres = librosa.mel_frequencies(musicnn.N_MELS + 2, fmax=sr / 2)[1:-1]
    assert abs(centres[int(spec.mean(axis=0).argmax())] - f) < 60


def test_loud_input_stays_finite(net):
    """musicnn's own float16 front end turns a full-scale signal into inf; the port's stays finite."""
    loud = np.sign(np.sin(2 * np.pi * 220 * np.arange(3 * musicnn.SR) / musicnn.SR)).astype(np.float32)
    x = musicnn.patches(musicnn.musicnn_input(loud))
    assert np.isfinite(x).all()
    with torch.inference_mode():
        assert torch.isfinite(net(torch.from_numpy(x))["max_pool"]).all()


@pytest.mark.parametrize("seconds,expected", [(1.0, 1), (3.0, 1), (10.0, 3), (60.0, 5)])
def test_patches_repeat_short_clips_and_cap_long_ones(seconds, expected):
    spec = np.random.default_rng(0).random((int(seconds * musicnn.SR / musicnn.HOP) + 1, 96), dtype=np.float32)
    p = musicnn.patches(spec, max_patches=5)
    assert p.shape == (expected, musicnn.PATCH_FRAMES, 96)


def test_reference_encoder_resamples_queries(net):
    """The same music at 22.05 kHz and at 16 kHz embeds (almost) the same: queries arrive at the run's rate."""
    import soxr

    model = ReferenceEncoder(layer="max_pool")
    model.net.load_state_dict(net.state_dict())
    clip = musicnn.port_check_clip()
    at_22k = soxr.resample(clip, musicnn.SR, 22050)
    with torch.inference_mode():  # centre the features somewhere other than zero, as a library's mean would
        model.feature_mean.copy_(net(torch.from_numpy(musicnn.patches(musicnn.musicnn_input(clip))))["max_pool"].mean(0) / 2)
    a = model.embed_signals([clip], sr=musicnn.SR, max_patches=4)
    b = model.embed_signals([at_22k], sr=22050, max_patches=4)
    assert a.shape == (1, 753)
    assert np.isclose(np.linalg.norm(a), 1.0, atol=1e-5)
    assert float((a @ b.T)[0, 0]) > 0.99
