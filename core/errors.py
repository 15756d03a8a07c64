"""One small error hierarchy: every failure a user can cause is a ``TimbreError``."""
from __future__ import annotations


class TimbreError(Exception):
    """Base class of every error Timbre Atlas raises on purpose."""


class AudioDecodeError(TimbreError):
    """A file could not be turned into usable audio.

    The message always names the file and the reason (corrupt, empty, silent, too short, ...).
    """

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class DatasetError(TimbreError):
    """A dataset cache is missing, empty or inconsistent."""


class RunError(TimbreError):
    """A run folder is missing, incomplete or does not match the contract."""


class FeatureTableError(TimbreError):
    """An imported feature table cannot be used (no numeric columns, missing label column, ...)."""


class ClassifyError(TimbreError):
    """Classifiers cannot run on this input (no labels, a single class, bad values, ...)."""


class ClusterError(TimbreError):
    """Clusters cannot be computed on this input (too few tracks, an input the source lacks, ...)."""
