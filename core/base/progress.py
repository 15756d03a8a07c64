"""One progress protocol for every long job (ingest, training, classifiers, clusters, demo, embedding).

A job calls ``progress(done, total, message, **values)``: ``done`` of ``total`` steps are finished, ``message``
says what was just done (a file name, "epoch 12", "svm: grid search"), and ``values`` carry numbers worth
showing live (``loss=0.41``). The CLI's progress bar, the pages' progress bars and the background-job status file
all take this one shape.
"""
from __future__ import annotations

from typing import Optional, Protocol


class Progress(Protocol):
    def __call__(self, done: int, total: int, message: str = "", **values: float) -> None: ...


def silent(done: int, total: int, message: str = "", **values: float) -> None:
    """A :class:`Progress` that ignores everything (the default of every job)."""


def or_silent(progress: Optional[Progress]) -> Progress:
    """``progress`` itself, or :func:`silent` when None."""
    return progress if progress is not None else silent
