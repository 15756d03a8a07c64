import dataclasses

import numpy as np
import pytest
import torch

from core.audio.features import log_mel
from core.demo import synthesise_track
from core.model.encoder import Encoder
from core.training.augment import augment
from core.training.config import TrainConfig
from core.training.loop import train_encoder
from core.training.losses import nt_xent


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


def _old_lr(step: int, *, lr: float, total: int) -> float:
    """The hand-written schedule train_encoder used before lr_schedule (warm-up times cosine, per step)."""
    import math

    warmup = max(1, total // 20)
    return lr * min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / total))


def test_lr_schedule_equals_the_previous_hand_written_one():
    from core.training.loop import lr_schedule

    for total in (1, 3, 40, 1200):
        opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=2e-3)
        schedule = lr_schedule(opt, total_steps=total)
        seen = []
        for _ in range(total):
            seen.append(opt.param_groups[0]["lr"])
            opt.step()
            schedule.step()
        expected = [_old_lr(s, lr=2e-3, total=total) for s in range(total)]
        assert np.allclose(seen, expected, rtol=1e-9, atol=1e-15), total
    assert max(seen) == pytest.approx(2e-3, rel=1e-2) and seen[0] == pytest.approx(2e-3 / 60)  # warm-up, then peak


def _tiny_mels():
    return [log_mel(synthesise_track(s, seconds=4.0, seed=2)) for s in ("piano", "rock", "strings", "guitar")]


def test_interrupted_training_resumes_from_its_checkpoint_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr("core.training.loop.CHECKPOINT_SECONDS", 0.0)  # a checkpoint after every epoch
    cfg = TrainConfig(epochs=6, batch_size=4, widths=(4, 8), seed=5)
    whole, whole_losses = train_encoder(_tiny_mels(), cfg=cfg, chunk_frames=32, n_mels=96)

    checkpoint = tmp_path / "ckpt.pt"

    def stop_after_epoch_3(done, total, message="", **values):
        assert message == f"epoch {done}" and set(values) == {"loss"}
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_encoder(_tiny_mels(), cfg=cfg, chunk_frames=32, n_mels=96, checkpoint=checkpoint,
                      progress=stop_after_epoch_3)
    blob = torch.load(checkpoint, weights_only=True)  # no code is unpickled
    assert len(blob["losses"]) == 3
    told = []
    resumed, losses = train_encoder(_tiny_mels(), cfg=cfg, chunk_frames=32, n_mels=96, checkpoint=checkpoint,
                                    stage=told.append)
    assert told == ["resuming from the checkpoint after epoch 3"]
    assert losses == pytest.approx(whole_losses, rel=1e-6)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name


TRAIN = """
import sys
import core.training.loop
core.training.loop.CHECKPOINT_SECONDS = 0.0
from core.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def test_kill_9_during_training_then_the_same_command_resumes_and_lists_no_half_run(tiny_run_id):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from core.base.paths import checkpoints_dir, runs_dir
    from core.data.dataset import load_dataset
    from core.runs.folder import list_runs, load_run
    from core.training.checkpoint import checkpoint_path

    root = Path(__file__).resolve().parent.parent
    before = set(list_runs())
    args = ["train", "--dataset", "tiny", "--epochs", "16", "--batch-size", "12", "--set", "widths=4,8",
            "--set", "embed_chunks=2", "--seed", "11"]
    checkpoint = checkpoint_path(load_dataset("tiny"), TrainConfig(epochs=16, batch_size=12, widths=(4, 8),
                                                                   embed_chunks=2, seed=11))
    env = {**os.environ, "PYTHONPATH": str(root)}
    log = checkpoints_dir().parent / "killed-train.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", TRAIN, *args], cwd=root, env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=err)
    epochs_done = 0
    try:
        deadline = time.monotonic() + 300
        while epochs_done < 3:
            assert proc.poll() is None, f"training ended before it was killed: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "no checkpoint after 300 s"
            if checkpoint.exists():
                epochs_done = len(torch.load(checkpoint, weights_only=True)["losses"])  # written atomically
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert set(list_runs()) == before
    saved = torch.load(checkpoint, weights_only=True)["losses"]
    assert 3 <= len(saved) < 16
    out = subprocess.run([sys.executable, "-m", "core", *args], cwd=root, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"resuming from the checkpoint after epoch {len(saved)}" in out.stderr
    run_id = out.stdout.split("run: ")[1].split()[0]
    losses = load_run(run_id).metrics["loss"]
    assert len(losses) == 16 and losses[:len(saved)] == pytest.approx(saved)
    assert not checkpoint.exists() and not checkpoint.with_suffix(".lock").exists()
    assert set(list_runs()) == before | {run_id}
    assert not [p for p in runs_dir().iterdir() if p.name.startswith(".partial")]


def test_relational_distillation_is_zero_when_the_student_shares_the_teachers_geometry():
    from core.training.losses import relational_loss

    teacher = torch.nn.functional.normalize(torch.randn(12, 40, generator=torch.Generator().manual_seed(0)), dim=1)
    same = teacher @ torch.linalg.qr(torch.randn(40, 40))[0]  # a rotation: the same similarities
    other = torch.randn(12, 40, requires_grad=True)
    assert float(relational_loss((same, same), teacher, temperature=0.1)) == pytest.approx(0.0, abs=1e-5)
    loss = relational_loss((other, other), teacher, temperature=0.1)
    assert float(loss) > 0.1
    loss.backward()
    assert other.grad.abs().sum() > 0


def test_distillation_skips_tracks_without_a_target():
    from core.training.losses import relational_loss

    teacher = torch.nn.functional.normalize(torch.randn(6, 10), dim=1)
    e = torch.randn(6, 8)
    whole = relational_loss((e[[0, 1, 3, 4, 5]],), teacher[[0, 1, 3, 4, 5]], temperature=0.1)
    teacher[2] = float("nan")
    assert float(relational_loss((e,), teacher, temperature=0.1)) == pytest.approx(float(whole))  # as if absent
    assert float(relational_loss((e,), torch.full((6, 10), float("nan")), temperature=0.1)) == 0.0


def test_lowpass_augmentation_removes_the_top_bands_only():
    from core.audio.features import MelParams
    from core.training.teacher import mel_band_hz

    cfg = TrainConfig(lowpass_prob=1.0, lowpass_hz=(3000.0, 3000.0), noise_snr_db=(200.0, 200.0), gain_db=0,
                      mix_prob=0, freq_mask=0, time_mask=0)
    hz = torch.as_tensor(mel_band_hz(MelParams()), dtype=torch.float32)
    x = torch.full((2, 96, 64), -20.0)
    out = augment(x, cfg=cfg, others=x, gen=torch.Generator().manual_seed(0), band_hz=hz)
    assert torch.allclose(out[:, hz < 1500], x[:, hz < 1500], atol=0.05)  # 1 octave below: -0.02 dB
    assert (out[:, hz > 6000] < x[:, hz > 6000] - 20).all()  # 4th-order Butterworth: 24 dB down an octave up


def test_a_distilled_training_resumes_from_its_checkpoint(tmp_path):
    mels = [log_mel(synthesise_track(s, seconds=4.0, seed=2)) for s in ("piano", "rock", "strings", "guitar")]
    teacher = np.eye(4, dtype=np.float32)
    cfg = TrainConfig(epochs=4, batch_size=4, widths=(4, 8), seed=1, distill=1.0, precision="float32")
    whole, losses = train_encoder(mels, cfg=cfg, chunk_frames=32, n_mels=96, teacher=teacher)
    checkpoint = tmp_path / "ck.pt"
    short = TrainConfig(**{**cfg.__dict__, "epochs": 4})
    stop = {"at": 2}

    def interrupt(done, total, message="", **values):
        if done == stop["at"]:
            raise KeyboardInterrupt

    import core.training.loop as train

    saved = train.CHECKPOINT_SECONDS
    train.CHECKPOINT_SECONDS = 0.0
    try:
        with pytest.raises(KeyboardInterrupt):
            train_encoder(mels, cfg=short, chunk_frames=32, n_mels=96, teacher=teacher, checkpoint=checkpoint,
                          progress=interrupt)
        resumed, again = train_encoder(mels, cfg=short, chunk_frames=32, n_mels=96, teacher=teacher,
                                       checkpoint=checkpoint)
    finally:
        train.CHECKPOINT_SECONDS = saved
    assert again == pytest.approx(losses, rel=1e-5)


def test_the_match_head_learns_beside_the_embedding_without_changing_it():
    cfg = TrainConfig(epochs=2, batch_size=4, widths=(4, 8), seed=3, distill=0.0, match_dim=0)
    plain, plain_losses = train_encoder(_tiny_mels(), cfg=cfg, chunk_frames=32, n_mels=96)
    matched, losses = train_encoder(_tiny_mels(), cfg=dataclasses.replace(cfg, match_dim=8), chunk_frames=32, n_mels=96)
    assert plain.match_head is None and matched.match_head[-1].out_features == 8
    torch.manual_seed(cfg.seed)
    untrained = Encoder(n_mels=96, widths=(4, 8), level_norm=cfg.level_norm, match_dim=8)
    assert not torch.allclose(matched.match_head[0].weight, untrained.match_head[0].weight)  # it was trained
    for name, value in plain.state_dict().items():  # and the features and the embedding are exactly as without it
        assert torch.equal(value, matched.state_dict()[name]), name
    # its own NT-Xent over 4 tracks' 8 views adds about log(7) to every step's loss
    assert losses[0] > plain_losses[0] + 0.5 * np.log(7)
