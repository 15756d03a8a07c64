"""The one batching loop that turns log-mels into embeddings: whole tracks (mean of chunk embeddings) and
passages (one embedding per chunk every half second)."""
from __future__ import annotations

from typing import Callable, Iterator, Optional

import numpy as np
import torch

from core.base.progress import Progress, or_silent
from core.model.encoder import Encoder

# upload costs 16 forward passes, not 55 (alignment comes from the library's 0.5 s grid either way)
MAX_LIBRARY_PASSAGES = 128  # per track (64 s at a 0.5 s hop; longer tracks get a coarser hop): bounds the store


def chunk_starts(n_frames: int, *, chunk_frames: int, max_chunks: int) -> np.ndarray:
    """Start frames of up to ``max_chunks`` evenly spread chunks covering a track of ``n_frames``."""
    if n_frames <= chunk_frames:
        return np.zeros(1, dtype=np.int64)
    n = min(max_chunks, int(np.ceil(n_frames / chunk_frames)))
    return np.linspace(0, n_frames - chunk_frames, n).round().astype(np.int64)


def cut_chunks(mel: np.ndarray, *, chunk_frames: int, starts: Callable[[int], np.ndarray]) -> np.ndarray:
    """Cut one track's log-mel into chunks beginning at ``starts(n_frames)`` (a track shorter than a chunk is
    padded by repetition first).

    Parameters
    ----------
    mel : np.ndarray [shape=(n_mels, t)]
    starts : callable(n_frames) -> np.ndarray [shape=(n_chunks,)]

    Returns
    -------
    np.ndarray [shape=(n_chunks, n_mels, chunk_frames), dtype=float32]
    """
    mel = np.asarray(mel, dtype=np.float32)
    if mel.shape[1] < chunk_frames:
        mel = np.tile(mel, (1, int(np.ceil(chunk_frames / max(mel.shape[1], 1)))))[:, :chunk_frames]
    return np.stack([mel[:, s:s + chunk_frames] for s in starts(mel.shape[1])])


def track_chunks(mel: np.ndarray, *, chunk_frames: int, max_chunks: int) -> np.ndarray:
    """Up to ``max_chunks`` evenly spread chunks of one track's log-mel (:func:`cut_chunks`, :func:`chunk_starts`),
    np.ndarray [shape=(n_chunks, n_mels, chunk_frames), dtype=float32]."""
    return cut_chunks(mel, chunk_frames=chunk_frames,
                      starts=lambda n: chunk_starts(n, chunk_frames=chunk_frames, max_chunks=max_chunks))


def chunk_embeddings(forward: Callable[[torch.Tensor], torch.Tensor], mels, *,
                     cut: Callable[[np.ndarray], np.ndarray], batch_size: int = 256, device: str = "cpu",
                     progress: Optional[Progress] = None, stage: str = "embedding") -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The one batching loop: each track's chunks (``cut(mel)``), in track order, through ``forward`` in batches of
    about ``batch_size`` chunks (a batch closes once it holds that many; a track's chunks are split across batches
    only when it has more).

    Parameters
    ----------
    forward : callable
        torch.Tensor [shape=(b, n_mels, chunk_frames)] -> torch.Tensor [shape=(b, d)] (the model or its match head).
    mels : sequence of np.ndarray [shape=(n_mels, t_i)]
    cut : callable
        One track's log-mel -> its chunks, np.ndarray [shape=(c_i, n_mels, chunk_frames)].
    progress : Progress or None
        ``progress(tracks_started, n_tracks, stage)`` after each batch.

    Yields
    ------
    owners : np.ndarray [shape=(b,), dtype=int64]
        The track (index into ``mels``) of each row.
    z : np.ndarray [shape=(b, d), dtype=float32]
    """
    progress = or_silent(progress)
    pending: list[tuple[int, np.ndarray]] = []
    n_pending = 0

    def batch():
        owners = np.concatenate([np.full(len(c), i, dtype=np.int64) for i, c in pending])
        with torch.inference_mode():
            z = forward(torch.from_numpy(np.concatenate([c for _, c in pending])).to(device)).cpu().numpy()
        pending.clear()
        return owners, z

    for i, mel in enumerate(mels):
        chunks = cut(mel)
        for start in range(0, len(chunks), batch_size):
            pending.append((i, chunks[start:start + batch_size]))
            n_pending += len(pending[-1][1])
            if n_pending >= batch_size:
                yield batch()
                n_pending = 0
                progress(i + 1, len(mels), stage)
    if pending:
        yield batch()
    progress(len(mels), len(mels), stage)


def embed_mels(model: Encoder, mels, *, chunk_frames: int = 128, max_chunks: int = 32,
               batch_size: int = 256, progress=None, device: str = "cpu") -> np.ndarray:
    """Track embeddings: the L2-normalised mean of each track's chunk embeddings.

    Parameters
    ----------
    model : Encoder
    mels : sequence of np.ndarray [shape=(n_mels, t_i)]
        One log-mel per track (lengths may differ).
    chunk_frames : int
        Frames per chunk (as in training).
    max_chunks : int
        At most this many evenly spread chunks per track (caps the cost of very long tracks).
    batch_size : int
        Chunks per forward pass.
    progress : Progress or None
        ``progress(tracks_done, n_tracks, "embedding")`` now and then.
    device : str
        Torch device of the forward passes ("cuda" on a GPU); the model is moved there.

    Returns
    -------
    np.ndarray [shape=(n_tracks, embedding_dim), dtype=float32]
    """
    model.eval().to(device)
    sums = np.zeros((len(mels), model.model_args["embedding_dim"]), dtype=np.float32)
    cut = lambda mel: track_chunks(mel, chunk_frames=chunk_frames, max_chunks=max_chunks)  # noqa: E731
    for owners, z in chunk_embeddings(model, mels, cut=cut, batch_size=batch_size, device=device,
                                      progress=progress, stage="embedding"):
        np.add.at(sums, owners, z)
    return (sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def embed_signals(model, signals, *, params, chunk_frames: int, max_chunks: int) -> np.ndarray:
    """Embeddings of mono signals at ``params.sr`` by a run's model (:class:`Encoder` or the musicnn reference).

    Parameters
    ----------
    model : Encoder or core.model.reference.ReferenceEncoder
    signals : sequence of np.ndarray [shape=(n_samples_i,)]
    params : core.audio.features.MelParams
        The run's log-mel parameters (the reference resamples to its own 16 kHz front end instead).

    Returns
    -------
    np.ndarray [shape=(len(signals), embedding_dim), dtype=float32]
    """
    if not isinstance(model, Encoder):
        return model.embed_signals(signals, sr=params.sr, max_patches=max_chunks)
    from core.audio.features import log_mel

    return embed_mels(model, [log_mel(y, params=params) for y in signals], chunk_frames=chunk_frames,
                      max_chunks=max_chunks)


def passage_starts(n_frames: int, *, chunk_frames: int, hop_frames: int, max_passages: int) -> np.ndarray:
    """Start frames of chunks every ``hop_frames`` (evenly spread over the track when there would be more than
    ``max_passages``), np.ndarray [shape=(m,), dtype=int64]."""
    if n_frames <= chunk_frames:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, n_frames - chunk_frames + 1, max(1, hop_frames), dtype=np.int64)
    if len(starts) > max_passages:
        starts = np.linspace(0, n_frames - chunk_frames, max_passages).round().astype(np.int64)
    return starts


def passage_chunks(mel: np.ndarray, *, chunk_frames: int, hop_frames: int, max_passages: int) -> np.ndarray:
    """One track's log-mel cut into passages (:func:`core.model.embed.cut_chunks` at :func:`passage_starts`),
    np.ndarray [shape=(m, n_mels, chunk_frames), dtype=float32]."""
    return cut_chunks(mel, chunk_frames=chunk_frames, starts=lambda n: passage_starts(
        n, chunk_frames=chunk_frames, hop_frames=hop_frames, max_passages=max_passages))


def embed_passages(model: Encoder, mels, *, chunk_frames: int, hop_frames: int,
                   max_passages: int = MAX_LIBRARY_PASSAGES, batch_size: int = 256,
                   progress: Optional[Progress] = None) -> tuple[np.ndarray, np.ndarray]:
    """Passage embeddings of tracks.

    Parameters
    ----------
    model : Encoder
    mels : sequence of np.ndarray [shape=(n_mels, t_i)]
    chunk_frames, hop_frames : int
        Passage length (the training chunk) and the step between passages.
    max_passages : int
        At most this many per track.

    Returns
    -------
    passages : np.ndarray [shape=(n_passages, embedding_dim), dtype=float32]
        L2-normalised.
    offsets : np.ndarray [shape=(len(mels) + 1,), dtype=int64]
        Track ``i`` owns ``passages[offsets[i]:offsets[i + 1]]`` (at least one row each).
    """
    model.eval()
    cut = lambda mel: passage_chunks(mel, chunk_frames=chunk_frames, hop_frames=hop_frames,  # noqa: E731
                                     max_passages=max_passages)
    parts, owners = [], []
    for rows, z in chunk_embeddings(model.match, mels, cut=cut, batch_size=batch_size, progress=progress,
                                    stage="passages"):
        parts.append(z)
        owners.append(rows)
    dim = model.model_args.get("match_dim") or model.model_args["embedding_dim"]
    z = np.concatenate(parts) if parts else np.zeros((0, dim), dtype=np.float32)
    z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    counts = np.bincount(np.concatenate(owners), minlength=len(mels)) if owners else np.zeros(len(mels), np.int64)
    return z.astype(np.float32), np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
