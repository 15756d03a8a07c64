import numpy as np
import torch

from core.demo import synthesise_track
from core.features import log_mel
from core.train import TrainConfig, augment, nt_xent, train_encoder


def test_nt_xent_is_low_for_matching_views_and_high_for_shuffled():
    z = torch.nn.functional.normalize(torch.randn(16, 32), dim=1)
    matched = nt_xent(z, z, temperature=0.1)
    shuffled = nt_xent(z, z[torch.randperm(16)], temperature=0.1)
    assert matched < 0.5 < shuffled


def test_augment_keeps_shape_and_changes_the_input():
    cfg = TrainConfig()
    x = torch.randn(4, 96, 128) * 10 - 40
    out = augment(x, cfg=cfg, others=torch.randn(4, 96, 128) * 10 - 40, gen=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert not torch.allclose(out, x)


def test_noise_augmentation_respects_the_snr():
    # only noise, no other augmentation: at 20 dB SNR the total power rises by about 10*log10(1.01)
    cfg = TrainConfig(noise_snr_db=(20.0, 20.0), gain_db=0, eq_db=0, pitch_bands=0, mix_prob=0, freq_mask=0, time_mask=0)
    x = torch.full((2, 96, 128), -30.0)
    out = augment(x, cfg=cfg, others=x, gen=torch.Generator().manual_seed(0))
    gain_db = 10 * torch.log10(torch.pow(10, out / 10).mean() / torch.pow(10, x / 10).mean())
    assert abs(float(gain_db) - 10 * np.log10(1.01)) < 0.01


def test_a_few_training_steps_lower_the_loss():
    mels = [log_mel(synthesise_track(style, seconds=6.0, seed=i)) for i, style in
            enumerate(("electronic", "strings", "piano", "rock", "guitar", "hiphop") * 2)]
    # mild augmentation, so that the drop is the model learning rather than noise in the views
    cfg = TrainConfig(epochs=30, batch_size=12, widths=(8, 16, 32), lr=3e-3, seed=0, mix_prob=0, freq_mask=0,
                      time_mask=0, pitch_bands=0, stretch=0, noise_snr_db=(30.0, 40.0))
    _, losses = train_encoder(mels, cfg=cfg, chunk_frames=64, n_mels=96)
    assert len(losses) == 30
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3])


def test_training_is_seeded():
    mels = [log_mel(synthesise_track(s, seconds=4.0, seed=1)) for s in ("piano", "rock", "strings")]
    cfg = TrainConfig(epochs=2, batch_size=3, widths=(4, 8), seed=3)
    a, la = train_encoder(mels, cfg=cfg, chunk_frames=32, n_mels=96)
    b, lb = train_encoder(mels, cfg=cfg, chunk_frames=32, n_mels=96)
    assert la == lb


def test_split_segments_cuts_long_tracks_into_views():
    from core.train import split_segments

    mel = np.arange(10 * 250, dtype=np.float32).reshape(10, 250)
    pieces = split_segments([mel, mel[:, :40]], frames=100)
    assert [p.shape[1] for p in pieces] == [100, 150, 40]
    assert np.shares_memory(pieces[0], mel)
    assert split_segments([mel], frames=0)[0] is mel
