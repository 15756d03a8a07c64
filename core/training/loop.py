"""The training loop: contrastive (SimCLR-style) training of the encoder on unlabelled log-mels.

Two random ~3 s chunks of one track, each augmented (:mod:`core.training.augment`), are a positive pair; every
other chunk in the batch is a negative (NT-Xent). With a teacher, the embedding's in-batch similarities also
follow the frozen musicnn reference's (relational distillation); with a match head, a second NT-Xent trains the
passage head on detached features (:mod:`core.training.losses`). Labels are never read here.

Training saves a checkpoint (model, optimiser, schedule and random states; :mod:`core.training.checkpoint`) at
least every :data:`CHECKPOINT_SECONDS`; running the same training again (after kill -9, a power cut, Ctrl-C)
resumes from it. :func:`core.runs.build.train_run` builds a whole run around this loop.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from core.base.errors import DatasetError
from core.base.progress import Progress, or_silent
from core.model.encoder import Encoder, ProjectionHead, load_model
from core.training.augment import ChunkSampler, augment, band_stats
from core.training.checkpoint import load_checkpoint, save_checkpoint
from core.training.config import TrainConfig
from core.training.losses import nt_xent, relational_loss

# A checkpoint at the end of an epoch once this long has passed since the last one (and after the last epoch):
# a kill loses at most about this much training, and writing a few MB every 30 s costs nothing.
CHECKPOINT_SECONDS = 30.0


def use_bfloat16(precision: str, device: torch.device) -> bool:
    """Whether training autocasts to bfloat16: asked for, or 'auto' on a CPU with native bfloat16 (elsewhere it
    would be emulated, and slower than float32)."""
    if precision == "auto":
        return device.type == "cpu" and bool(torch.backends.mkldnn.is_available()
                                            and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return precision == "bfloat16"


def pick_device(name: str) -> torch.device:
    """``name`` as a torch device; 'auto' is a GPU when there is one, else the CPU."""
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


def use_threads(threads: int) -> None:
    """Torch's CPU threads for training and the teacher's pass: ``threads``, or every core when 0. On a busy
    2-core machine one thread is several times faster than two waiting for each other (the demo's musicnn pass:
    1.1 s a track against 4.2 s)."""
    torch.set_num_threads(threads or os.cpu_count() or 1)


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
    n_mels : int
        Mel bands of the log-mels.
    progress : Progress or None
        ``progress(epoch, epochs, "epoch 12", loss=mean_loss)`` after each epoch.
    checkpoint : Path or None
        Save the training state here now and then, and resume from it when it exists.
    stage : callable(message) or None
        Told when training resumes from a checkpoint.
    band_hz : np.ndarray [shape=(n_mels,)] or None
        Centre frequencies of the mel bands, for the random low-pass (``cfg.lowpass_prob``).
    teacher : np.ndarray [shape=(n_tracks, d)] or None
        With ``cfg.distill > 0``: each track's L2-normalised teacher embedding (NaN rows: no target); the
        embedding's in-batch similarities learn to follow the teacher's, weighted ``cfg.distill``.

    Returns
    -------
    encoder : Encoder
        In eval mode, on the CPU.
    losses : list of float
        Mean loss of each epoch.
    """
    if len(mels) < 2:
        raise DatasetError("contrastive training needs at least 2 tracks (the other tracks are the negatives)")
    targets = None if teacher is None or cfg.distill <= 0 else torch.as_tensor(np.asarray(teacher, dtype=np.float32))
    torch.manual_seed(cfg.seed)
    use_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    device = pick_device(cfg.device)
    bf16 = use_bfloat16(cfg.precision, device)

    encoder, head = build_model(mels, cfg=cfg, n_mels=n_mels)
    encoder.to(device), head.to(device)
    opt = torch.optim.AdamW(list(encoder.parameters()) + list(head.parameters()), lr=cfg.lr,
                            weight_decay=cfg.weight_decay)
    sampler = ChunkSampler(mels, chunk_frames=chunk_frames, stretch=cfg.stretch, rng=rng)
    lowpass = None if band_hz is None else torch.as_tensor(np.asarray(band_hz), dtype=torch.float32)
    batch = min(cfg.batch_size, len(mels))
    steps_per_epoch = max(1, len(mels) // batch)
    schedule = lr_schedule(opt, total_steps=cfg.epochs * steps_per_epoch)
    progress = or_silent(progress)

    state = {"encoder": encoder, "head": head, "opt": opt, "schedule": schedule, "rng": rng, "gen": gen}
    losses: list[float] = []
    if checkpoint is not None and checkpoint.exists():
        losses = load_checkpoint(checkpoint, state, device=device)
        (stage or (lambda message: None))(f"resuming from the checkpoint after epoch {len(losses)}")
    saved_at = time.monotonic()
    for epoch in range(len(losses), cfg.epochs):
        encoder.train(), head.train()
        order = rng.permutation(len(mels))
        epoch_loss = 0.0
        for s in range(steps_per_epoch):
            idx = order[s * batch:(s + 1) * batch]
            views = [random_view(sampler, idx, cfg=cfg, gen=gen, lowpass=lowpass).to(device) for _ in range(2)]
            target = None if targets is None else targets[idx].to(device)
            loss = batch_loss(encoder, head, views, target=target, cfg=cfg, bf16=bf16)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
            epoch_loss += float(loss.detach())
        losses.append(epoch_loss / steps_per_epoch)
        last = epoch + 1 == cfg.epochs
        if checkpoint is not None and (last or time.monotonic() - saved_at >= CHECKPOINT_SECONDS):
            save_checkpoint(checkpoint, state, losses)
            saved_at = time.monotonic()
        progress(epoch + 1, cfg.epochs, f"epoch {epoch + 1}", loss=losses[-1])
    return encoder.cpu().eval(), losses


def build_model(mels: list[np.ndarray], *, cfg: TrainConfig, n_mels: int) -> tuple[Encoder, ProjectionHead]:
    """A fresh encoder (or ``cfg.init``'s weights) whose input statistics are ``mels``', and the projection head
    NT-Xent works on. Built in this order from torch's global generator: a seeded run depends on it."""
    encoder = Encoder(n_mels=n_mels, widths=tuple(cfg.widths), embedding_dim=cfg.embedding_dim, pooling=cfg.pooling,
                      level_norm=cfg.level_norm, match_dim=cfg.match_dim)
    if cfg.init:
        base = load_model(cfg.init)
        if base.model_args != encoder.model_args:
            raise DatasetError(f"{cfg.init}: model args {base.model_args} differ from this config's {encoder.model_args}")
        encoder.load_state_dict(base.state_dict())
    encoder.set_input_stats(*band_stats(mels, level_norm=cfg.level_norm))  # always the user's library: its levels are what queries see
    return encoder, ProjectionHead(dim_in=cfg.embedding_dim)


def random_view(sampler: ChunkSampler, idx: np.ndarray, *, cfg: TrainConfig, gen: torch.Generator,
                   lowpass: Optional[torch.Tensor]) -> torch.Tensor:
    """One augmented view of tracks ``idx`` [shape=(len(idx), n_mels, chunk_frames)]: a random chunk of each,
    with chunks of random tracks to mix in (drawn first)."""
    others = sampler.random_batch(len(idx))
    return augment(sampler.batch(idx), cfg=cfg, others=others, gen=gen, band_hz=lowpass)


def batch_loss(encoder: Encoder, head: ProjectionHead, views: list[torch.Tensor], *, target: Optional[torch.Tensor],
               cfg: TrainConfig, bf16: bool) -> torch.Tensor:
    """The loss of one batch of two views: NT-Xent on the projection head, plus NT-Xent of the match head on
    detached features (when the encoder has one), plus ``cfg.distill`` x relational distillation (with a target)."""
    device_type = views[0].device.type
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
        f1, f2 = (encoder.features(v) for v in views)
        e1, e2 = (encoder.embed(f).float() for f in (f1, f2))
    loss = nt_xent(head(e1), head(e2), temperature=cfg.temperature)
    if encoder.match_head is not None:  # passages: told apart by track only; detached, so the embedding's
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):  # genre grouping is untouched
            m1, m2 = (F.normalize(encoder.match_head(f.detach()).float(), dim=1) for f in (f1, f2))
        loss = loss + nt_xent(m1, m2, temperature=cfg.temperature)
    if target is not None:
        loss = loss + cfg.distill * relational_loss((e1, e2), target, temperature=cfg.distill_temperature)
    return loss
