"""The training job's configuration: one dataclass whose fields are the ``train`` command's flags."""
from __future__ import annotations

import dataclasses
from typing import Literal

from core.base.config import check_bounds, doc


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


def chunk_frames_for(seconds: float, params) -> int:
    return int(round(seconds * params.frames_per_second()))
