"""The data wing's settings, light to import (the command line builds its flags from them without pandas or
audio): :class:`IngestConfig` (how a folder becomes a dataset) and :class:`ImportConfig` (how an external feature
table is cleaned)."""
from __future__ import annotations

import dataclasses
from typing import Literal, get_args

from core.base.config import MAX_THREADS, check_bounds, doc
from core.base.errors import TimbreError

Engine = Literal["pool", "ray"]  # where per-file work runs (core.data.engines)


ENGINES: tuple[Engine, ...] = get_args(Engine)


@dataclasses.dataclass(frozen=True)
class IngestConfig:
    """How a folder is turned into a dataset."""

    max_seconds: float = doc(600.0, "read at most 10 minutes per file: an hour-long mix never lands in memory "
                                    "whole; at most an hour (300 MB as float32)", at_least=1.0, at_most=3600.0)
    min_seconds: float = doc(3.0, "shorter files cannot give one ~3 s training chunk", at_least=0.0, at_most=60.0)
    workers: int = doc(0, "processes decoding in parallel; 0 = one per CPU core", at_least=0, at_most=MAX_THREADS)
    features: bool = doc(True, "also compute the classic audio features (tempo, MFCC, chroma, ...)")
    engine: Engine = doc("pool", "'pool': processes on this machine (no start-up cost); 'ray': Ray tasks (a cluster)")
    ray_address: str = doc("", "with --engine ray: a cluster to join (e.g. ray://head:10001); empty = local Ray")
    shard_tracks: int = doc(1000, "tracks per log-mel shard file (one memory-mapped file, not one per track)",
                            at_least=1, at_most=1_000_000)
    shard_mb: float = doc(256.0, "a shard is also closed at this size: the writer holds at most this in memory",
                           above=0.0, at_most=16_384.0)
    shard_seconds: float = doc(60.0, "a shard is also closed this long after its first track: what a kill can cost",
                                above=0.0, at_most=86_400.0)

    def __post_init__(self):
        check_bounds(self)
        if self.min_seconds > self.max_seconds:
            raise TimbreError(f"min_seconds ({self.min_seconds}) must not be more than max_seconds "
                              f"({self.max_seconds}): no file could be read")


@dataclasses.dataclass(frozen=True)
class ImportConfig:
    """How an external feature table is cleaned on import."""

    missing: Literal["impute", "drop"] = doc("impute", "'impute': fill a missing value with its column's median; 'drop': drop the row")
    min_class_size: int = doc(5, "labels with fewer rows are reported (classify drops classes below its folds)",
                              at_least=1, at_most=1_000_000)

    def __post_init__(self):
        check_bounds(self)
