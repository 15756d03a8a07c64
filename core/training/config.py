"""What a training runs with: :class:`TrainConfig` (every value), named recipes, and the product options.

A **recipe** is a TOML file in ``configs/`` (``configs/<name>.toml``) that sets some :class:`TrainConfig` fields;
the fields it leaves out keep their defaults, which *are* the ``default`` recipe. ``load_recipe(name, overrides)``
reads one, applies ``overrides`` (``--set key=value`` on the command line) and returns the resolved config, whose
``recipe`` field names where it started; the run folder's config.json records every resolved value. The recipes
of earlier defaults (``old-default``, ``previous-*``) sit in ``configs/history/``: ``--recipe NAME`` still loads them
(docs/experiments.md names them), but neither ``--help`` nor an error offers them.

:class:`TrainOptions` are the few settings a user of ``python -m core train`` chooses (length, batch, seed,
device, ...): they are the command's flags, and each one given replaces the recipe's value.
"""
from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any, Literal, Mapping, Optional

from core.base.config import MAX_EPOCHS, MAX_SEED, MAX_SNR_DB, MAX_THREADS, check_bounds, config_from_dict, doc
from core.base.constants import FMAX, FMIN, N_MELS
from core.base.errors import TimbreError

RECIPES_DIR = Path(__file__).resolve().parents[2] / "configs"
HISTORY_DIR = RECIPES_DIR / "history"  # recipes of earlier defaults: loaded by name for the experiment log, never offered
DEFAULT_RECIPE = "default"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every hyper-parameter of a training run; the defaults are the ``default`` recipe."""

    recipe: str = doc(DEFAULT_RECIPE, "the named recipe (configs/<name>.toml) these values started from; the "
                                      "fields are what ran")
    epochs: int = doc(250, "passes over the tracks: 750 steps on 200 tracks, ~7 min on this 2-core machine (with the "
                           "teacher's first pass, under 10); 400 epochs of the old recipe took 14 min here",
                  at_least=1, at_most=MAX_EPOCHS)
    batch_size: int = doc(64, "tracks per batch; 2 views each, so 126 negatives per positive pair", at_least=2,
                     at_most=4096)
    chunk_seconds: float = doc(3.0, "length of a training chunk: long enough for a bar of music; at least "
                                             "0.5 s (the encoder halves time 4 times), at most 30 s", at_least=0.5,
                              at_most=30.0)
    lr: float = doc(2e-3, "AdamW peak learning rate, reached after a short warm-up, then cosine decay",
                   above=0.0, at_most=1.0)
    weight_decay: float = doc(1e-4, "mild regularisation; the data are few", at_least=0.0, at_most=1.0)
    temperature: float = doc(0.1, "NT-Xent softmax temperature (SimCLR's value for small batches)", above=0.0,
                            at_most=10.0)
    widths: tuple[int, ...] = doc((16, 32, 64, 128), "conv block widths, 4 blocks each halving time and frequency; "
                                  "as good as (32..256) on emotify-dev at a quarter of the cost", at_least=1,
                                  at_most=1024)
    embedding_dim: int = doc(128, "size of the track embedding", at_least=2, at_most=4096)
    pooling: str = doc("time", "'time' keeps the frequency axis (spectral envelope matters for genre); 'global' averages it too")
    level_norm: bool = doc(True, "bring each chunk to 0 dB mean power inside the model: embeddings ignore loudness "
                                 "(query by recording at random gain: 0.745 -> 0.89 top-1 on emotify-dev)")
    noise_snr_db: tuple[float, ...] = doc((0.0, 30.0), "additive noise SNR range in dB (white to pink); down to 0 dB: "
                                                       "phone recordings in a room are noisy",
                                        at_least=-30.0, at_most=MAX_SNR_DB)
    gain_db: float = doc(6.0, "random gain of each view, +- dB", at_least=0.0, at_most=40.0)
    eq_db: float = doc(0.0, "random spectral tilt, +- dB at the band edges; off: invariance to the spectral envelope "
                            "cost genre accuracy on emotify-dev (0.63 with 4 dB and pitch shifts vs 0.68 without)",
                  at_least=0.0, at_most=24.0)
    pitch_bands: int = doc(0, "random shift of up to this many mel bands; off for the same reason as eq_db",
                          at_least=0, at_most=N_MELS // 2)
    stretch: float = doc(0.1, "random tempo change of up to +- 10 %", at_least=0.0, at_most=0.5)
    mix_prob: float = doc(0.3, "probability of mixing another track into a view at -20..-8 dB", at_least=0.0,
                          at_most=1.0)
    freq_mask: int = doc(12, "SpecAugment: mask up to this many mel bands", at_least=0, at_most=N_MELS // 2)
    time_mask: int = doc(24, "SpecAugment: mask up to this many frames", at_least=0, at_most=640)
    lowpass_prob: float = doc(0.8, "probability of a random low-pass (phone-like band limit) on a view, before the "
                                   "noise: recordings through a phone or a laptop lose the top octaves",
                              at_least=0.0, at_most=1.0)
    lowpass_hz: tuple[float, ...] = doc((2000.0, 8000.0), "range of the random low-pass cut-off (log-uniform)",
                                    at_least=FMIN, at_most=FMAX)
    distill: float = doc(1.0, "weight of relational distillation from the frozen musicnn reference (its view of "
                              "which tracks are alike, beside the contrastive loss); 0 = none. 0.5: 5-NN 0.735 / "
                              "0.720 (two seeds) instead of 0.750 / 0.745 on emotify-dev", at_least=0.0,
                    at_most=100.0)
    distill_temperature: float = doc(0.1, "softmax temperature of relational distillation, teacher and student",
                                      above=0.0, at_most=10.0)
    match_dim: int = doc(128, "size of a second head (an MLP on the detached features, so the embedding is unchanged) "
                              "trained only contrastively, whose chunk embeddings are the stored passages; 0 = "
                              "passages use the embedding, which finds degraded recordings less often",
                     at_least=0, at_most=4096)
    teacher_layer: str = doc("penultimate+taggram", "musicnn layers the student learns from, '+'-joined, each "
                                                    "standardised (the best 5-NN space of the teacher's on emotify-dev)")
    teacher_patches: int = doc(8, "3 s patches per track the teacher embeds (computed once per dataset, cached)",
                               at_least=1, at_most=256)
    embed_chunks: int = doc(16, "chunks averaged into a track embedding (evenly spread; caps long tracks)", at_least=1,
                       at_most=1024)
    passage_hop_seconds: float = doc(0.5, "step between the stored passages (chunk embeddings) a query by audio is "
                                          "matched on; 0 = track embeddings only. A 1.25 s step found fewer degraded "
                                          "recordings (0.920 against 0.945 with passages from the embedding, "
                                          "emotify-dev); 111 rows a minute of music", at_least=0.0, at_most=60.0)
    rerank_depth: int = doc(50, "best candidates by track embedding whose passages a query by audio is matched on "
                                "(the source of a degraded recording is in the first 5 in 95-99 % of queries)",
                       at_least=1, at_most=100_000)
    seed: int = doc(0, "seeds numpy and torch; same data + same seed = same run on the CPU", at_least=0,
                   at_most=MAX_SEED)
    device: str = doc("auto", "'auto' uses a GPU when present, else the CPU")
    precision: Literal["auto", "float32", "bfloat16"] = doc(
        "auto", "'auto': bfloat16 autocast where the CPU computes it natively (AVX-512 BF16 / AMX: 1.7x faster "
                "steps here), else float32; the weights and the losses stay float32")
    init: str = doc("", "optional model.pt to start from (fine-tuning); empty = random init")
    threads: int = doc(0, "torch CPU threads; 0 = all cores", at_least=0, at_most=MAX_THREADS)

    def __post_init__(self):
        check_bounds(self, flag_of=_train_flag)


def _train_flag(name: str) -> str:
    """How ``python -m core train`` sets field ``name``: its own flag, or ``--set``."""
    product = {f.name for f in dataclasses.fields(TrainOptions)}
    return f"flag --{name.replace('_', '-')}" if name in product else f"--set {name}=..."


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """The ``train`` command's own flags: what a user chooses. None (not given) keeps the recipe's value."""

    epochs: Optional[int] = doc(None, "passes over the tracks (default recipe: 250, ~7 min for 200 tracks on 2 cores)")
    batch_size: Optional[int] = doc(None, "tracks per batch (default recipe: 64)")
    chunk_seconds: Optional[float] = doc(None, "length of a training chunk in seconds (default recipe: 3)")
    seed: Optional[int] = doc(None, "seeds numpy and torch: same data + same seed = same run on the CPU (default: 0)")
    device: Optional[str] = doc(None, "'auto' (a GPU when present, else the CPU), 'cpu', 'cuda', ... (default: auto)")
    threads: Optional[int] = doc(None, "torch CPU threads; 0 = all cores (default: 0)")
    precision: Optional[Literal["auto", "float32", "bfloat16"]] = doc(
        None, "'auto': bfloat16 where the CPU computes it natively, else float32 (default: auto)")
    init: Optional[str] = doc(None, "a model.pt to start from (fine-tuning); default: random init")
    distillation: Optional[bool] = doc(None, "learn from the frozen musicnn reference beside the contrastive loss "
                                             "(--no-distillation: faster, no teacher pass, genre grouping worse); "
                                             "default: the recipe's")


def offered_recipes() -> list[str]:
    """Names of the recipes offered to a user (``configs/*.toml``: ``--help``, the error that lists them), sorted."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.toml"))


def recipe_names() -> list[str]:
    """Names of every recipe ``--recipe NAME`` loads, sorted: the offered ones and the historical ones of
    ``configs/history/`` (earlier defaults, kept so that docs/experiments.md's commands still run)."""
    return sorted(offered_recipes() + [p.stem for p in HISTORY_DIR.glob("*.toml")])


def recipe_path(name: str) -> Path:
    """``configs/<name>.toml`` (or ``configs/history/<name>.toml``), or ``name`` itself when it is a path to a
    .toml file (a recipe of one's own)."""
    if name.endswith(".toml"):
        path = Path(name)
    else:
        path = next((d / f"{name}.toml" for d in (RECIPES_DIR, HISTORY_DIR) if (d / f"{name}.toml").is_file()),
                    RECIPES_DIR / f"{name}.toml")
    if not path.is_file():
        raise TimbreError(f"no training recipe {name!r}: choose one of {', '.join(offered_recipes())} "
                          "(or give the path of a .toml file)")
    return path


def load_recipe(name: str = DEFAULT_RECIPE, overrides: Optional[Mapping[str, Any]] = None) -> TrainConfig:
    """The resolved config of recipe ``name`` with ``overrides`` applied.

    Parameters
    ----------
    name : str
        A recipe in ``configs/`` (see :func:`recipe_names`) or the path of a .toml file.
    overrides : mapping or None
        ``{field: value}``; a text value is parsed by the field's type (``"0.5"``, ``"true"``, ``"2000,8000"``).

    Raises
    ------
    TimbreError
        No such recipe, a key that is not a setting, or a value its setting cannot take (the message names it).
    """
    path = recipe_path(name)
    try:
        values = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise TimbreError(f"training recipe {path}: {error}") from None
    recipe = Path(name).stem if name.endswith(".toml") else name
    if "recipe" in values or "recipe" in (overrides or {}):
        raise TimbreError(f"recipe {recipe!r}: 'recipe' is not a setting (the recipe is chosen by its name)")
    return with_settings(TrainConfig(recipe=recipe), {**values, **(overrides or {})}, source=f"recipe {recipe!r}")


def with_settings(cfg: TrainConfig, settings: Mapping[str, Any], *, source: str = "settings") -> TrainConfig:
    """``cfg`` with ``settings`` (field -> value, text parsed by the field's type) replaced, checked."""
    return config_from_dict(TrainConfig, settings, base=cfg, what="training setting", source=source)


def parse_settings(pairs: list[str]) -> dict[str, str]:
    """``["lr=0.001", "widths=8,16"]`` -> ``{"lr": "0.001", "widths": "8,16"}`` (``--set`` on the command line)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise TimbreError(f"--set {pair!r}: write key=value, e.g. --set distill=0.5")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


def apply_options(cfg: TrainConfig, options: TrainOptions) -> TrainConfig:
    """``cfg`` with every option that was given (not None) in place of its value; ``distillation`` turns the
    teacher off (weight 0) or on (the recipe's weight, 1.0 when the recipe has none)."""
    given = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)
             if getattr(options, f.name) is not None}
    on = given.pop("distillation", None)
    if on is not None:
        given["distill"] = (cfg.distill or 1.0) if on else 0.0
    return with_settings(cfg, given, source="options")


def chunk_frames_for(seconds: float, params) -> int:
    """Frames of a ``seconds``-long chunk at ``params``' hop (rounded)."""
    return int(round(seconds * params.frames_per_second()))
