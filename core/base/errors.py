"""One small error hierarchy: every failure a user can cause is a ``TimbreError``."""
from __future__ import annotations

import re


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


class TagError(TimbreError):
    """musicnn tags cannot be shown or computed (no such tag, no audio, no weights, an empty selection, ...)."""


class CollectionError(TimbreError):
    """A collection cannot be saved, found or used (an empty selection, a bad or duplicate name, ...)."""


class CompareError(TimbreError):
    """Runs cannot be compared (fewer than two or more than four, no shared tracks, too few to find neighbours)."""


class ExportError(TimbreError):
    """A run cannot be exported (an unknown target, a missing optional package, an output folder in the way, ...)."""


class ListenerError(TimbreError):
    """Listener data cannot be read or written: the listener database is corrupt, locked or from a newer version
    (the message names the file and the reason). Recommendations then fall back to pure audio similarity."""


class HistoryError(TimbreError):
    """An imported listening history cannot be read (not CSV, no title column, too many rows), naming the file."""


class QueryError(TimbreError):
    """A query the service (:mod:`core.service.service`) cannot answer as asked. Each front end maps the
    subclasses in one place: the API to an HTTP status, the bot to a reply, the dashboard to ``st.error``."""


class InvalidQuery(QueryError):
    """A query asked wrongly: a ``k`` out of range, an empty set of tracks, an unknown tag."""


class NeedsAudio(InvalidQuery):
    """The run's genre classifier takes audio features and the query gave only an embedding."""


class NotFound(QueryError):
    """No such run, track or collection.

    ``what`` (``"run"``, ``"track"``, ``"collection"``) lets a front end add how to list them in its own terms.
    """

    def __init__(self, message: str, *, what: str):
        self.what = what
        super().__init__(message)


class NoClassifier(QueryError):
    """The run has no saved genre classifier (the message says how to train one)."""


class TooLarge(AudioDecodeError, QueryError):
    """An upload over the size limit (:data:`core.base.constants.MAX_UPLOAD_MB` or a front end's own)."""


def without_paths(text: str) -> str:
    """``text`` with every absolute path cut to its last part: what a library's error names of the server's
    folders ("/srv/atlas/artifacts/runs/x/model.pt" -> "model.pt") must not reach a client. URLs are kept."""
    return re.sub(r"(?<![\w.:/~])/(?:[^\s'\"/]+/)+", "", text)
