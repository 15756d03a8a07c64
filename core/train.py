"""Contrastive (SimCLR-style) training of the encoder on unlabelled tracks, and writing the run folder.

Two random ~3 s chunks of one track, each augmented, are a positive pair; every other chunk in the batch is a
negative (NT-Xent / InfoNCE). Augmentations work on log-mel dB tensors, which is far cheaper on a CPU than
re-synthesising audio: additive noise at a random SNR (exact in the power domain), random gain, a random
EQ tilt, small pitch (mel-band) and tempo (time-stretch) shifts, mixing in another track quietly, and
time/frequency masks. Labels are never read here except to evaluate the finished embedding.

Training saves a checkpoint (model, optimiser, schedule and random states) at least every
:data:`CHECKPOINT_SECONDS` under a key derived from the dataset and the config; running the same training
again (after kill -9, a power cut, Ctrl-C) resumes from it, and it is removed once the run folder is written.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Callable, Literal, Optional

import numpy as np
import torch
import torch.nn.functional as F

from .ann import index_run, needs_index
from .config import check_bounds, doc
from .dataset import Dataset, load_dataset
from .errors import DatasetError, RunError
from .evaluation import RecordingEvalConfig, recording_evaluation
from .features import mfcc_stats
from .index import knn_evaluation, standardise
from .io import atomic_write_bytes, atomic_write_json, atomic_write_npy, atomic_write_parquet
from .locks import Busy, describe, file_lock
from .model import Encoder, ProjectionHead, chunk_level, embed_mels, load_model, save_model
from .passages import Matcher, hop_frames_for, library_passages, write_passages
from .paths import checkpoints_dir
from .progress import Progress, or_silent
from .projection import fit_projections
from .runs import library_versions, new_run_id, run_folder

# A checkpoint at the end of an epoch once this long has passed since the last one (and after the last epoch):
# a kill loses at most about this much training, and writing a few MB every 30 s costs nothing.
CHECKPOINT_SECONDS = 30.0


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every hyper-parameter of a training run (each is also a ``python -m core train`` flag)."""

    epochs: int = doc(250, "passes over the tracks: 750 steps on 200 tracks, ~7 min on this 2-core machine (with the "
                           "teacher's first pass, under 10); 400 epochs of the old recipe took 14 min here", at_least=1)
    batch_size: int = doc(64, "tracks per batch; 2 views each, so 126 negatives per positive pair", at_least=2)
    chunk_seconds: float = doc(3.0, "length of a training chunk: long enough for a bar of music", above=0.0)
    lr: float = doc(2e-3, "AdamW peak learning rate, reached after a short warm-up, then cosine decay", above=0.0)
    weight_decay: float = doc(1e-4, "mild regularisation; the data are few")
    temperature: float = doc(0.1, "NT-Xent softmax temperature (SimCLR's value for small batches)", above=0.0)
    widths: tuple[int, ...] = doc((16, 32, 64, 128), "conv block widths, 4 blocks each halving time and frequency; "
                                  "as good as (32..256) on emotify-dev at a quarter of the cost")
    embedding_dim: int = doc(128, "size of the track embedding", at_least=2)
    pooling: str = doc("time", "'time' keeps the frequency axis (spectral envelope matters for genre); 'global' averages it too")
    level_norm: bool = doc(True, "bring each chunk to 0 dB mean power inside the model: embeddings ignore loudness "
                                 "(query by recording at random gain: 0.745 -> 0.89 top-1 on emotify-dev)")
    noise_snr_db: tuple[float, ...] = doc((0.0, 30.0), "additive noise SNR range in dB (white to pink); down to 0 dB: "
                                                       "phone recordings in a room are noisy")
    gain_db: float = doc(6.0, "random gain of each view, +- dB")
    eq_db: float = doc(0.0, "random spectral tilt, +- dB at the band edges; off: invariance to the spectral envelope "
                            "cost genre accuracy on emotify-dev (0.63 with 4 dB and pitch shifts vs 0.68 without)")
    pitch_bands: int = doc(0, "random shift of up to this many mel bands; off for the same reason as eq_db")
    stretch: float = doc(0.1, "random tempo change of up to +- 10 %")
    mix_prob: float = doc(0.3, "probability of mixing another track into a view at -20..-8 dB")
    freq_mask: int = doc(12, "SpecAugment: mask up to this many mel bands")
    time_mask: int = doc(24, "SpecAugment: mask up to this many frames")
    lowpass_prob: float = doc(0.8, "probability of a random low-pass (phone-like band limit) on a view, before the "
                                   "noise: recordings through a phone or a laptop lose the top octaves")
    lowpass_hz: tuple[float, ...] = doc((2000.0, 8000.0), "range of the random low-pass cut-off (log-uniform)")
    distill: float = doc(1.0, "weight of distillation from the frozen musicnn reference (its view of which tracks "
                              "are alike, beside the contrastive loss); 0 = none. 0.5: 5-NN 0.735 / 0.720 (two "
                              "seeds) instead of 0.750 / 0.745 on emotify-dev (README: what was tried)")
    distill_mode: Literal["relational", "regress"] = doc(
        "relational", "'relational': the embedding's in-batch similarities follow the teacher's (KL of softmaxes); "
                      "'regress': a linear head on the embedding predicts the teacher's vector (cosine loss)")
    distill_temperature: float = doc(0.1, "softmax temperature of relational distillation, teacher and student")
    match_dim: int = doc(128, "size of a second head (an MLP on the detached features, so the embedding is unchanged) "
                              "trained only contrastively, whose chunk embeddings are the stored passages; 0 = "
                              "passages use the embedding, which finds degraded recordings less often (README: what was tried)")
    teacher_layer: str = doc("penultimate+taggram", "musicnn layers the student learns from, '+'-joined, each "
                                                    "standardised (the best 5-NN space of the teacher's on emotify-dev)")
    teacher_patches: int = doc(8, "3 s patches per track the teacher embeds (computed once per dataset, cached)",
                               at_least=1)
    segment_seconds: float = doc(0.0, "split long tracks into pseudo-tracks of this length for training (0 = whole tracks)")
    embed_chunks: int = doc(16, "chunks averaged into a track embedding (evenly spread; caps long tracks)", at_least=1)
    passage_hop_seconds: float = doc(0.5, "step between the stored passages (chunk embeddings) a query by audio is "
                                          "matched on; 0 = track embeddings only. A 1.25 s step found fewer degraded "
                                          "recordings (0.920 against 0.945 with passages from the embedding, "
                                          "emotify-dev); 111 rows a minute of music")
    rerank_depth: int = doc(50, "best candidates by track embedding whose passages a query by audio is matched on "
                                "(the source of a degraded recording is in the first 5 in 95-99 % of queries)")
    seed: int = doc(0, "seeds numpy and torch; same data + same seed = same run on the CPU")
    device: str = doc("auto", "'auto' uses a GPU when present, else the CPU")
    precision: Literal["auto", "float32", "bfloat16"] = doc(
        "auto", "'auto': bfloat16 autocast where the CPU computes it natively (AVX-512 BF16 / AMX: 1.7x faster "
                "steps here), else float32; the weights and the losses stay float32")
    init: str = doc("", "optional model.pt to start from (fine-tuning); empty = random init")
    threads: int = doc(0, "torch CPU threads; 0 = all cores", at_least=0)

    def __post_init__(self):
        check_bounds(self)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, *, temperature: float) -> torch.Tensor:
    """NT-Xent loss of paired, L2-normalised views.

    Parameters
    ----------
    z1, z2 : torch.Tensor [shape=(batch, d)]
        Row i of ``z1`` and of ``z2`` come from the same track.

    Returns
    -------
    torch.Tensor (scalar)
    """
    z = torch.cat([z1, z2])
    n = z1.shape[0]
    sims = z @ z.T / temperature
    sims.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sims, targets)


class ChunkSampler:
    """Draws random (optionally time-stretched) chunks from the dataset's log-mels."""

    def __init__(self, mels: list[np.ndarray], *, chunk_frames: int, stretch: float, rng: np.random.Generator):
        self.mels, self.chunk_frames, self.stretch, self.rng = mels, chunk_frames, stretch, rng

    def chunk(self, i: int) -> np.ndarray:
        """One chunk of track ``i``, np.ndarray [shape=(n_mels, chunk_frames)]."""
        mel = self.mels[i]
        factor = 1.0 + self.rng.uniform(-self.stretch, self.stretch)
        length = max(2, int(round(self.chunk_frames * factor)))
        if mel.shape[1] <= length:
            reps = int(np.ceil((length + 1) / mel.shape[1]))
            mel = np.tile(mel, (1, reps))
        start = self.rng.integers(0, mel.shape[1] - length + 1)
        piece = torch.from_numpy(np.asarray(mel[:, start:start + length], dtype=np.float32))
        if length != self.chunk_frames:
            piece = F.interpolate(piece[None], size=self.chunk_frames, mode="linear", align_corners=False)[0]
        return piece

    def batch(self, idx: np.ndarray) -> torch.Tensor:
        return torch.stack([self.chunk(i) for i in idx])


def augment(x: torch.Tensor, *, cfg: TrainConfig, others: torch.Tensor, gen: torch.Generator,
            band_hz: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Randomly augment a batch of log-mel dB chunks.

    Parameters
    ----------
    x : torch.Tensor [shape=(batch, n_mels, frames)]
    others : torch.Tensor [shape=(batch, n_mels, frames)]
        Chunks of other tracks to mix in.
    band_hz : torch.Tensor [shape=(n_mels,)] or None
        Centre frequency of each mel band (for the random low-pass; None = no low-pass).

    Returns
    -------
    torch.Tensor [shape=(batch, n_mels, frames)]
    """
    b, m, t = x.shape

    def u(lo, hi, *shape):
        return lo + (hi - lo) * torch.rand(*shape, generator=gen)

    power = torch.pow(10.0, x / 10.0)
    # mix another track quietly (a different song in the background must not change what this one is)
    mix = (torch.rand(b, 1, 1, generator=gen) < cfg.mix_prob).float()
    power = power + mix * torch.pow(10.0, u(-20, -8, b, 1, 1) / 10.0) * torch.pow(10.0, others / 10.0)
    # a phone-like band limit: a 4th-order Butterworth low-pass's power response at each band's centre
    if cfg.lowpass_prob > 0 and band_hz is not None:
        lo, hi = np.log(cfg.lowpass_hz[0]), np.log(cfg.lowpass_hz[-1])
        cutoff = torch.exp(u(lo, hi, b, 1, 1))
        response = 1.0 / (1.0 + (band_hz.view(1, m, 1) / cutoff) ** 8)
        on = torch.rand(b, 1, 1, generator=gen) < cfg.lowpass_prob
        power = torch.where(on, power * response, power)
    # additive noise at a random SNR, spectrally between white and pink, with frame-to-frame fluctuation
    snr = u(cfg.noise_snr_db[0], cfg.noise_snr_db[-1], b, 1, 1)
    level = power.mean(dim=(1, 2), keepdim=True) * torch.pow(10.0, -snr / 10.0)
    tilt = torch.linspace(0, 1, m).view(1, m, 1)
    shape = torch.pow(10.0, -u(0, 1.5, b, 1, 1) * tilt)
    shape = shape / shape.mean(dim=1, keepdim=True)
    power = power + level * shape * _gamma(b, m, t, gen)
    x = 10.0 * torch.log10(torch.clamp(power, min=1e-10))
    # gain and EQ tilt
    x = x + u(-cfg.gain_db, cfg.gain_db, b, 1, 1) + u(-cfg.eq_db, cfg.eq_db, b, 1, 1) * (2 * tilt - 1)
    # small pitch shift: move the spectrum up or down a few mel bands, repeating the edge band
    if cfg.pitch_bands:
        shifts = torch.randint(-cfg.pitch_bands, cfg.pitch_bands + 1, (b,), generator=gen)
        rows = (torch.arange(m).view(1, m) - shifts.view(b, 1)).clamp(0, m - 1)
        x = torch.gather(x, 1, rows.view(b, m, 1).expand(b, m, t))
    # SpecAugment masks, filled with the chunk's mean level
    fill = x.mean(dim=(1, 2), keepdim=True)
    x = _mask(x, fill, axis=1, width=cfg.freq_mask, gen=gen)
    x = _mask(x, fill, axis=2, width=cfg.time_mask, gen=gen)
    return x


def _gamma(b: int, m: int, t: int, gen: torch.Generator) -> torch.Tensor:
    # mean of 4 unit exponentials: the power of noise averaged over a few FFT bins per mel band
    e = -torch.log(torch.clamp(torch.rand(4, b, m, t, generator=gen), min=1e-12))
    return e.mean(dim=0)


def _mask(x: torch.Tensor, fill: torch.Tensor, *, axis: int, width: int, gen: torch.Generator) -> torch.Tensor:
    if width <= 0:
        return x
    b, size = x.shape[0], x.shape[axis]
    w = torch.randint(0, width + 1, (b, 1), generator=gen)
    start = (torch.rand(b, 1, generator=gen) * (size - w + 1)).long()
    pos = torch.arange(size).view(1, size)
    hit = (pos >= start) & (pos < start + w)
    hit = hit.view(b, size, 1) if axis == 1 else hit.view(b, 1, size)
    return torch.where(hit, fill.expand_as(x), x)


def split_segments(mels: list[np.ndarray], *, frames: int) -> list[np.ndarray]:
    """Cut each log-mel into pieces of ``frames`` (views, no copies); a short last piece joins the one before."""
    if frames <= 0:
        return mels
    pieces = []
    for mel in mels:
        starts = list(range(0, max(1, mel.shape[1] - frames + 1), frames))
        ends = starts[1:] + [mel.shape[1]]
        pieces.extend(mel[:, a:b] for a, b in zip(starts, ends))
    return pieces


def band_stats(mels: list[np.ndarray], *, max_frames: int = 2_000_000,
               level_norm: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and std (dB) over the training log-mels (subsampled past ``max_frames``); with
    ``level_norm``, of each track brought to 0 dB mean power, as the model sees its chunks."""
    step = max(1, sum(m.shape[1] for m in mels) // max_frames)
    parts = [np.asarray(m[:, ::step], dtype=np.float32) for m in mels]
    if level_norm:
        parts = [p - float(chunk_level(torch.from_numpy(p)[None])) for p in parts]
    stacked = np.concatenate(parts, axis=1)
    return stacked.mean(axis=1), stacked.std(axis=1)


def use_bfloat16(precision: str, device: torch.device) -> bool:
    """Whether training autocasts to bfloat16: asked for, or 'auto' on a CPU with native bfloat16 (elsewhere it
    would be emulated, and slower than float32)."""
    if precision == "auto":
        return device.type == "cpu" and bool(torch.backends.mkldnn.is_available()
                                            and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return precision == "bfloat16"


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def lr_schedule(opt: torch.optim.Optimizer, *, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Linear warm-up over the first 5 % of steps times a cosine decay over all of them (stepped per batch).

    The two factors multiply (``ChainedScheduler``): lr(s) = lr * min(1, (s + 1) / warmup) * (1 + cos(pi s / total)) / 2.
    """
    sched = torch.optim.lr_scheduler
    warmup = max(1, total_steps // 20)
    return sched.ChainedScheduler([
        sched.LinearLR(opt, start_factor=1.0 / warmup, end_factor=1.0, total_iters=warmup - 1),
        sched.CosineAnnealingLR(opt, T_max=total_steps)])


def train_encoder(mels: list[np.ndarray], *, cfg: TrainConfig, chunk_frames: int, n_mels: int,
                  progress: Optional[Progress] = None, checkpoint: Optional[Path] = None,
                  stage: Optional[Callable[[str], None]] = None, band_hz: Optional[np.ndarray] = None,
                  teacher: Optional[np.ndarray] = None) -> tuple[Encoder, list[float]]:
    """Train an encoder contrastively on unlabelled log-mels.

    Parameters
    ----------
    mels : list of np.ndarray [shape=(n_mels, t_i)]
        One log-mel (dB) per track; at least 2 tracks.
    cfg : TrainConfig
    chunk_frames : int
        Frames per training chunk.
    progress : Progress or None
        ``progress(epoch, epochs, "epoch 12", loss=mean_loss)`` after each epoch.
    checkpoint : Path or None
        Save the training state here now and then, and resume from it when it exists.
    stage : callable(message) or None
        Told when training resumes from a checkpoint.
    band_hz : np.ndarray [shape=(n_mels,)] or None
        Centre frequencies of the mel bands, for the random low-pass (``cfg.lowpass_prob``).
    teacher : np.ndarray [shape=(n_tracks, d)] or None
        With ``cfg.distill > 0``: each track's L2-normalised teacher embedding (NaN rows: no target). A linear
        head on the student's embedding learns to point the same way (cosine loss), weighted ``cfg.distill``.

    Returns
    -------
    encoder : Encoder
        In eval mode, on the CPU.
    losses : list of float
        Mean loss of each epoch.
    """
    if len(mels) < 2:
        raise DatasetError("contrastive training needs at least 2 tracks (the other tracks are the negatives)")
    segment_frames = int(cfg.segment_seconds * (chunk_frames / cfg.chunk_seconds))
    if teacher is not None and cfg.distill > 0:  # each piece of a track keeps the track's target
        owners = np.concatenate([np.full(len(split_segments([m], frames=segment_frames)), i) for i, m in enumerate(mels)])
        targets = torch.as_tensor(np.asarray(teacher, dtype=np.float32)[owners])
    else:
        targets = None
    mels = split_segments(mels, frames=segment_frames)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads or os.cpu_count() or 1)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    device = pick_device(cfg.device)

    encoder = Encoder(n_mels=n_mels, widths=tuple(cfg.widths), embedding_dim=cfg.embedding_dim, pooling=cfg.pooling,
                      level_norm=cfg.level_norm, match_dim=cfg.match_dim)
    if cfg.init:
        base = load_model(cfg.init)
        if base.model_args != encoder.model_args:
            raise DatasetError(f"{cfg.init}: model args {base.model_args} differ from this config's {encoder.model_args}")
        encoder.load_state_dict(base.state_dict())
    encoder.set_input_stats(*band_stats(mels, level_norm=cfg.level_norm))  # always the user's library: its levels are what queries see
    head = ProjectionHead(dim_in=cfg.embedding_dim)
    encoder.to(device), head.to(device)
    params = list(encoder.parameters()) + list(head.parameters())
    distill_head = None
    if targets is not None and cfg.distill_mode == "regress":
        distill_head = torch.nn.Linear(cfg.embedding_dim, targets.shape[1]).to(device)
        params += list(distill_head.parameters())
    lowpass = None if band_hz is None else torch.as_tensor(np.asarray(band_hz), dtype=torch.float32)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

    bf16 = use_bfloat16(cfg.precision, device)
    sampler = ChunkSampler(mels, chunk_frames=chunk_frames, stretch=cfg.stretch, rng=rng)
    batch = min(cfg.batch_size, len(mels))
    steps_per_epoch = max(1, len(mels) // batch)
    schedule = lr_schedule(opt, total_steps=cfg.epochs * steps_per_epoch)
    progress = or_silent(progress)
    state = {"encoder": encoder, "head": head, "opt": opt, "schedule": schedule, "rng": rng, "gen": gen,
             "distill_head": distill_head}
    losses: list[float] = []
    if checkpoint is not None and checkpoint.exists():
        losses = _load_checkpoint(checkpoint, state, device=device)
        (stage or (lambda message: None))(f"resuming from the checkpoint after epoch {len(losses)}")
    saved_at = time.monotonic()
    for epoch in range(len(losses), cfg.epochs):
        encoder.train(), head.train()
        order = rng.permutation(len(mels))
        epoch_loss = 0.0
        for s in range(steps_per_epoch):
            idx = order[s * batch:(s + 1) * batch]
            views = []
            for _ in range(2):
                others = sampler.batch(rng.integers(0, len(mels), size=len(idx)))
                views.append(augment(sampler.batch(idx), cfg=cfg, others=others, gen=gen, band_hz=lowpass).to(device))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                f1, f2 = (encoder.features(v) for v in views)
                e1, e2 = (encoder.embed(f).float() for f in (f1, f2))
            loss = nt_xent(head(e1), head(e2), temperature=cfg.temperature)
            if encoder.match_head is not None:  # passages: told apart by track only; detached, so the embedding's
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):  # genre grouping is untouched
                    m1, m2 = (F.normalize(encoder.match_head(f.detach()).float(), dim=1) for f in (f1, f2))
                loss = loss + nt_xent(m1, m2, temperature=cfg.temperature)
            if targets is not None:
                target = targets[idx].to(device)
                loss = loss + cfg.distill * (
                    distill_loss(distill_head, (e1, e2), target) if distill_head is not None
                    else relational_loss((e1, e2), target, temperature=cfg.distill_temperature))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
            epoch_loss += float(loss.detach())
        losses.append(epoch_loss / steps_per_epoch)
        last = epoch + 1 == cfg.epochs
        if checkpoint is not None and (last or time.monotonic() - saved_at >= CHECKPOINT_SECONDS):
            _save_checkpoint(checkpoint, state, losses)
            saved_at = time.monotonic()
        progress(epoch + 1, cfg.epochs, f"epoch {epoch + 1}", loss=losses[-1])
    return encoder.cpu().eval(), losses


def distill_loss(head: torch.nn.Module, embeddings: tuple[torch.Tensor, ...], target: torch.Tensor) -> torch.Tensor:
    """Mean cosine distance between ``head`` of each view's embedding and the teacher's [shape=(batch, d)];
    rows whose target is NaN (no audio for the teacher) take no part."""
    ok = ~torch.isnan(target).any(dim=1)
    if not bool(ok.any()):
        return target.new_zeros(())
    losses = [1 - F.cosine_similarity(head(e[ok]), target[ok], dim=1).mean() for e in embeddings]
    return sum(losses) / len(losses)


def relational_loss(embeddings: tuple[torch.Tensor, ...], target: torch.Tensor, *, temperature: float) -> torch.Tensor:
    """How far the batch's similarity structure is from the teacher's: for each track, KL divergence from the
    teacher's softmax over its cosine similarities to the other tracks to the student's (embedding space, not
    the projection head's), averaged over views. Tracks without a teacher target (NaN) take no part.

    Parameters
    ----------
    embeddings : tuple of torch.Tensor [shape=(batch, d)]
        Each view's embedding before L2 normalisation.
    target : torch.Tensor [shape=(batch, d_teacher)]
        L2-normalised teacher embeddings.
    """
    ok = ~torch.isnan(target).any(dim=1)
    if int(ok.sum()) < 3:
        return target.new_zeros(())
    t = target[ok]
    eye = torch.eye(len(t), dtype=torch.bool, device=t.device)
    teacher = F.softmax((t @ t.T / temperature).masked_fill(eye, float("-inf")), dim=1)
    losses = []
    for e in embeddings:
        z = F.normalize(e[ok], dim=1)
        student = F.log_softmax((z @ z.T / temperature).masked_fill(eye, float("-inf")), dim=1)
        losses.append((teacher * (torch.log(teacher.clamp_min(1e-12)) - student.masked_fill(eye, 0))).sum(dim=1).mean())
    return sum(losses) / len(losses)


def _save_checkpoint(path: Path, state: dict, losses: list[float]) -> None:
    """Everything training needs to go on exactly where it stopped, readable with ``weights_only=True``."""
    import io

    blob = {"format": 1, "losses": list(losses), "encoder": state["encoder"].state_dict(),
            "head": state["head"].state_dict(), "opt": state["opt"].state_dict(),
            "schedule": state["schedule"].state_dict(), "numpy_rng": state["rng"].bit_generator.state,
            "torch_gen": state["gen"].get_state(), "torch_rng": torch.get_rng_state()}
    if state.get("distill_head") is not None:
        blob["distill_head"] = state["distill_head"].state_dict()
    buffer = io.BytesIO()
    torch.save(blob, buffer)
    atomic_write_bytes(path, buffer.getvalue())  # a kill mid-write leaves the previous checkpoint


def _load_checkpoint(path: Path, state: dict, *, device: torch.device) -> list[float]:
    """Restore ``state`` from :func:`_save_checkpoint`'s file; returns the losses of the finished epochs."""
    blob = torch.load(path, map_location=device, weights_only=True)
    state["encoder"].load_state_dict(blob["encoder"])
    state["head"].load_state_dict(blob["head"])
    if state.get("distill_head") is not None:
        state["distill_head"].load_state_dict(blob["distill_head"])
    state["opt"].load_state_dict(blob["opt"])
    state["schedule"].load_state_dict(blob["schedule"])
    state["rng"].bit_generator.state = blob["numpy_rng"]
    state["gen"].set_state(blob["torch_gen"])
    torch.set_rng_state(blob["torch_rng"])
    return list(blob["losses"])


def checkpoint_path(ds: Dataset, cfg: TrainConfig) -> Path:
    """Where training ``ds`` with ``cfg`` keeps its checkpoint: the same data and config give the same file."""
    key = json.dumps({"dataset": str(ds.path), "tracks": ds.tracks["track_id"].tolist(),
                      "frames": ds.tracks["n_frames"].astype(int).tolist(), "mel": ds.params.to_dict(),
                      "train": dataclasses.asdict(cfg)}, sort_keys=True)
    return checkpoints_dir() / f"{ds.name}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.pt"


def mfcc_baseline(mels: list[np.ndarray]) -> np.ndarray:
    """Standardised MFCC means and standard deviations per track, np.ndarray [shape=(n, 40)]."""
    return standardise(np.stack([mfcc_stats(np.asarray(m, dtype=np.float32)) for m in mels]))


def evaluate(embeddings: np.ndarray, mels: list[np.ndarray], labels) -> dict:
    """k-NN evaluation (k=5) of the learned embeddings and, computed the same way, of the MFCC baseline."""
    return {"knn_eval": knn_evaluation(embeddings, labels, k=5),
            "baseline_mfcc_knn_eval": knn_evaluation(mfcc_baseline(mels), labels, k=5)}


def evaluate_embeddings(embeddings: np.ndarray, *, tracks, mels: list[np.ndarray], sr: int,
                        score: Callable[[list[np.ndarray]], np.ndarray], seed: int = 0,
                        progress: Optional[Progress] = None) -> dict:
    """Everything ``metrics.json`` reports about a library's embeddings: 5-NN genre scores beside the MFCC
    baseline, and query by recording (:mod:`core.evaluation`; absent when no track's audio can be read).

    Parameters
    ----------
    embeddings : np.ndarray [shape=(n, d)]
    tracks : pd.DataFrame
        The run's track table (``label``, ``path``), rows as ``embeddings``.
    mels : list of np.ndarray [shape=(n_mels, t_i)]
    sr : int
        Rate of the audio ``score`` takes.
    score : callable(list of np.ndarray [shape=(n_samples,)]) -> np.ndarray [shape=(q, n_tracks)]
        Ranks the library for query audio as the run will (:meth:`core.passages.Matcher.scores`).
    """
    out = evaluate(embeddings, mels, tracks["label"].tolist())
    recording = recording_evaluation(tracks["path"].astype(str).tolist(), sr=sr, score=score,
                                     cfg=RecordingEvalConfig(seed=seed), progress=progress)
    if recording is not None:
        out["recording_eval"] = recording
    return out


def mel_band_hz(params) -> np.ndarray:
    """Centre frequency (Hz) of each mel band of ``params``, np.ndarray [shape=(n_mels,)]."""
    import librosa

    return librosa.mel_frequencies(params.n_mels + 2, fmin=params.fmin, fmax=params.fmax)[1:-1]


def teacher_targets(ds: Dataset, *, layer: str, max_patches: int, progress: Optional[Progress] = None) -> np.ndarray:
    """Each track's musicnn embedding as a distillation target: the layer's mean over patches, standardised
    over the library and L2-normalised, np.ndarray [shape=(n_tracks, d)] (NaN rows: audio unreadable)."""
    from .reference import library_patch_features

    parts = []
    for name in layer.split("+"):
        feats = library_patch_features(ds, layer=name, max_patches=max_patches, progress=progress)
        ok = np.array([f is not None for f in feats])
        if not ok.any():
            raise DatasetError(f"dataset {ds.name!r}: no audio file can be read for the distillation teacher")
        means = np.stack([f.mean(axis=0) if f is not None else np.full(feats[int(ok.argmax())].shape[1], np.nan)
                          for f in feats])
        z = (means - np.nanmean(means, axis=0)) / np.maximum(np.nanstd(means, axis=0), 1e-6)
        parts.append(z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12))
    joined = np.hstack(parts)
    return (joined / np.linalg.norm(joined, axis=1, keepdims=True)).astype(np.float32)  # NaN rows stay NaN


def chunk_frames_for(seconds: float, params) -> int:
    return int(round(seconds * params.frames_per_second()))


def train_run(dataset: str | Dataset, *, cfg: TrainConfig | None = None, progress: Optional[Progress] = None,
              stage: Optional[Callable[[str], None]] = None) -> str:
    """Train on a dataset and write a complete run folder.

    Parameters
    ----------
    dataset : str or Dataset
        Name of an ingested dataset.
    cfg : TrainConfig or None
        Default ``TrainConfig()``.
    progress : Progress or None
        ``progress(epoch, epochs, "epoch 12", loss=mean_loss)`` after each epoch.
    stage : callable(message) or None
        Told when training resumes from a checkpoint and when each stage after training starts
        (embedding, evaluation, maps).

    Returns
    -------
    str
        The run id (folder name under ``artifacts/runs``).

    Raises
    ------
    DatasetError
        No such dataset, or too few tracks.
    RunError
        The same training (same dataset and config) is running in another process.
    """
    ds = load_dataset(dataset) if isinstance(dataset, str) else dataset
    cfg = cfg or TrainConfig()
    ds.require_audio()  # an imported feature table has no frames to key a checkpoint on, nor audio to train on
    checkpoint = checkpoint_path(ds, cfg)
    try:
        with file_lock(checkpoint.with_suffix(".lock"), what=f"train {ds.name}"):
            run_id = _train_run(ds, cfg, checkpoint, progress, stage or (lambda message: None))
    except Busy as busy:
        raise RunError(f"this training of dataset {ds.name!r} (same data, same settings) is already running in "
                       f"{describe(busy.holder)}; wait for it, or stop it and run this again to resume it") from None
    checkpoint.unlink(missing_ok=True)
    checkpoint.with_suffix(".lock").unlink(missing_ok=True)
    return run_id


def _train_run(ds: Dataset, cfg: TrainConfig, checkpoint: Path, progress: Optional[Progress],
               say: Callable[[str], None]) -> str:
    started = time.perf_counter()
    mels = ds.mels()
    chunk_frames = chunk_frames_for(cfg.chunk_seconds, ds.params)
    teacher = None
    if cfg.distill > 0:
        say("the musicnn teacher embeds the library (once per dataset; cached)")
        teacher = teacher_targets(ds, layer=cfg.teacher_layer, max_patches=cfg.teacher_patches, progress=progress)
        say("training")
    encoder, losses = train_encoder(mels, cfg=cfg, chunk_frames=chunk_frames, n_mels=ds.params.n_mels,
                                    progress=progress, checkpoint=checkpoint, stage=say,
                                    band_hz=mel_band_hz(ds.params), teacher=teacher)
    train_seconds = time.perf_counter() - started
    say("embedding tracks")
    embeddings = embed_mels(encoder, mels, chunk_frames=chunk_frames, max_chunks=cfg.embed_chunks)
    say("embedding passages")
    passages = library_passages(encoder, mels, params=ds.params, chunk_frames=chunk_frames,
                                hop_seconds=cfg.passage_hop_seconds, progress=progress)
    matcher = Matcher(model=encoder, params=ds.params, chunk_frames=chunk_frames, embed_chunks=cfg.embed_chunks,
                      embeddings=embeddings, passages=passages, depth=cfg.rerank_depth,
                      hop_frames=hop_frames_for(cfg.passage_hop_seconds, ds.params))
    say("evaluating")
    evaluation = evaluate_embeddings(embeddings, tracks=ds.tracks, mels=mels, sr=ds.params.sr, seed=cfg.seed,
                                     progress=progress, score=matcher.scores)
    say("computing PCA, t-SNE and UMAP maps")
    coords, arrays = fit_projections(embeddings, track_ids=ds.tracks["track_id"], seed=cfg.seed)

    run_id = new_run_id(ds.name)
    with run_folder(run_id) as folder:
        tracks = ds.tracks[["track_id", "path", "label", "duration_s", "artist", "title"]]
        atomic_write_parquet(folder / "tracks.parquet", tracks)
        atomic_write_npy(folder / "embeddings.npy", embeddings.astype(np.float32))
        atomic_write_parquet(folder / "projections.parquet", coords)
        np.savez(folder / "projection.npz", **arrays)
        save_model(folder / "model.pt", encoder)
        if passages is not None:
            write_passages(folder, *passages)
        if needs_index(len(embeddings)):  # above core.ann.EXACT_MAX_TRACKS tracks: a FAISS index
            say("building the search index")
            index_run(folder, embeddings, seed=cfg.seed)
        atomic_write_json(folder / "config.json", {
            "run_id": run_id, "dataset": ds.name, "dataset_path": str(ds.path), "created": dt.datetime.now().isoformat(timespec="seconds"),
            "train": dataclasses.asdict(cfg), "seed": cfg.seed, "mel_params": ds.params.to_dict(),
            "chunk_frames": chunk_frames, "chunk_seconds": cfg.chunk_seconds, "model_args": encoder.model_args,
            "device": str(pick_device(cfg.device)), "versions": library_versions()})
        atomic_write_json(folder / "metrics.json", {
            "loss": losses, "train_seconds": round(train_seconds, 2),
            "total_seconds": round(time.perf_counter() - started, 2), "n_tracks": len(ds.tracks), **evaluation})
    return run_id
