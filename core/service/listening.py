"""Listeners in the query service: record events, import histories, and personalise answers (the hybrid ranking
of :mod:`core.listeners.taste`), falling back to pure audio similarity whenever listener data cannot help.

One :class:`Listening` per :class:`~core.service.service.QueryService` (``service.listening``). The store is opened
lazily; a corrupt or locked store makes every personalised answer pure audio with a ``note`` saying why, while
calls that only concern listener data (events, imports, a listener's own data) raise its
:class:`~core.base.errors.ListenerError`.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from typing import Callable, Optional

import numpy as np
import pandas as pd

from core.base.errors import InvalidQuery, ListenerError
from core.base.progress import Progress
from core.listeners.collab import Cooccurrence
from core.listeners.history import ImportReport, import_history
from core.listeners.store import EVENT_KINDS, Listener, ListenerStore
from core.listeners.taste import PARTS, Feedback, TasteConfig, feedback_of, hybrid_rank, reasons, tag_matrix
from core.runs.folder import Run
from core.search.exact import l2_normalise
from core.service.query import neighbours_table

MAX_EVENTS_SHOWN = 500  # a listener's events listed by my_data (the counts cover all)
COLLAB_MAX_AGE_S = 5.0  # other listeners' co-occurrence is rebuilt at most this often (a busy server writes events
# between any two queries; a listener's own events are always read fresh)


@dataclasses.dataclass(frozen=True)
class Personal:
    """An answer for a listener: ``neighbours`` (a neighbours table with ``why``, a list of reasons per row),
    ``personal`` (True when taste or other listeners shaped it) and ``note`` (why it is pure audio although a
    listener was named: no events yet, or the store failed)."""

    neighbours: pd.DataFrame
    personal: bool = False
    note: Optional[str] = None


class Listening:
    """Listener data and personalised ranking for the runs of a query service.

    Parameters
    ----------
    store : ListenerStore or None
        Default: the artifacts folder's ``listeners.sqlite``, opened on first use.
    tags_of : callable or None
        ``tags_of(run)``: the run's musicnn tags indexed by track id, or None (:meth:`QueryService.tags`).
    """

    def __init__(self, store: Optional[ListenerStore] = None, *,
                 tags_of: Optional[Callable[[Run], Optional[pd.DataFrame]]] = None, cfg: TasteConfig = TasteConfig()):
        self._store, self.tags_of, self.cfg = store, tags_of, cfg
        self._unit: dict[str, tuple[np.ndarray, Optional[np.ndarray]]] = {}
        self._collab: dict[str, tuple[tuple, float, Cooccurrence]] = {}
        self._rows: dict[str, dict[str, int]] = {}  # run id -> track id -> row
        self._lock = threading.Lock()

    @property
    def store(self) -> ListenerStore:
        if self._store is None:
            self._store = ListenerStore()
        return self._store

    # ------------------------------------------------------------------------------------------ data

    def listener(self, kind: str, name: str) -> Listener:
        return self.store.listener(kind, name)

    def record(self, run: Run, listener: Listener, track_id: str, kind: str, *, query: Optional[str] = None,
               source: Optional[str] = None) -> int:
        """Record an event on a track of ``run`` (:class:`InvalidQuery` for an unknown kind or track)."""
        if kind not in EVENT_KINDS:
            raise InvalidQuery(f"event {kind!r}: one of {', '.join(EVENT_KINDS)}")
        if not (run.tracks["track_id"].astype(str) == str(track_id)).any():
            raise InvalidQuery(f"no track {track_id!r} in run {run.run_id!r}")
        return self.store.add_event(listener, str(track_id), kind, query=query, source=source)

    def import_history(self, run: Run, listener: Listener, source, *, name: str = "history.csv",
                       progress: Optional[Progress] = None) -> ImportReport:
        """A Last.fm or Spotify CSV export matched to ``run``'s tracks and recorded as plays
        (:func:`core.listeners.history.import_history`)."""
        return import_history(self.store, listener, source, run.tracks, name=name, progress=progress)

    def my_data(self, listener: Listener, *, run: Optional[Run] = None) -> dict:
        """What the store holds of ``listener`` (and only of it): counts per kind and the newest events (with
        track names when ``run`` holds the tracks)."""
        events = self.store.events(listener, limit=MAX_EVENTS_SHOWN)
        if run is not None and len(events):
            from core.data.tracks import display_names

            names = pd.Series(display_names(run.tracks).to_numpy(), index=run.tracks["track_id"].astype(str))
            events["name"] = events["track_id"].map(names)
        return {"listener": dataclasses.asdict(listener), "counts": self.store.counts(listener), "events": events}

    def forget(self, listener: Listener) -> int:
        """Delete the listener's data; the number of events deleted."""
        return self.store.forget(listener)

    # ------------------------------------------------------------------------------------------ ranking

    def _run_arrays(self, run: Run) -> tuple[np.ndarray, Optional[np.ndarray]]:
        if run.run_id not in self._unit:
            tags = self.tags_of(run) if self.tags_of is not None else None
            self._unit[run.run_id] = (l2_normalise(run.embeddings.astype(np.float32)),
                                      tag_matrix(None if tags is None else tags.reset_index(drop=True)))
        return self._unit[run.run_id]

    def cooccurrence(self, run: Run) -> Cooccurrence:
        """Every listener's co-occurrence on ``run``'s tracks, rebuilt when the store changed (at most every
        :data:`COLLAB_MAX_AGE_S` seconds)."""
        version = self.store.version()
        with self._lock:
            cached = self._collab.get(run.run_id)
            fresh = cached is not None and (cached[0] == version or time.monotonic() - cached[1] < COLLAB_MAX_AGE_S)
            if not fresh:
                cached = (version, time.monotonic(),
                          Cooccurrence(self.store.all_events(), run.tracks["track_id"].to_numpy()))
                self._collab[run.run_id] = cached
        return cached[2]

    def feedback(self, run: Run, listener: Listener) -> Feedback:
        """The listener's likes, dislikes, skips and plays as rows of ``run``."""
        if run.run_id not in self._rows:
            self._rows[run.run_id] = {t: i for i, t in enumerate(run.tracks["track_id"].astype(str))}
        return feedback_of(self.store.verdicts(listener), self._rows[run.run_id])

    def personalise(self, run: Run, listener: Optional[Listener], audio: pd.DataFrame, *,
                    embedding: Optional[np.ndarray], k: int, query_name: Optional[str] = None,
                    cfg: Optional[TasteConfig] = None, exclude=None) -> Personal:
        """``audio`` (the pure audio answer, best first) re-ranked for ``listener``; unchanged, with reasons
        "sounds like ...", for no listener, a listener without events, or when the store fails (``note`` says).

        Parameters
        ----------
        embedding : np.ndarray [shape=(d,)] or None
            The query's embedding; None: a "for you" list (then ``audio`` is what a cold start gets).
        exclude : sequence of int or None
            Library rows never returned (the query track itself).
        """
        plain = audio.assign(why=[[f"sounds like {query_name}"] if query_name else [] for _ in range(len(audio))])
        if listener is None:
            return Personal(plain)
        try:
            found = self._rank(run, listener, embedding=embedding, k=k, query_name=query_name,
                               cfg=cfg or self.cfg, exclude=exclude)
        except ListenerError as error:
            return Personal(plain, note=f"recommendations are pure audio similarity: {error}")
        if found is None:
            return Personal(plain, note="no plays or likes yet: recommendations are pure audio similarity")
        return Personal(found, personal=True)

    def _rank(self, run: Run, listener: Listener, *, embedding, k: int, query_name, cfg: TasteConfig,
              exclude) -> Optional[pd.DataFrame]:
        feedback = self.feedback(run, listener)
        if feedback.empty:
            return None
        unit, tags = self._run_arrays(run)
        weights = feedback.weights(len(unit))
        co = self.cooccurrence(run) if cfg.collab > 0 else None
        collab = co.scores(listener.listener_id, weights) if co is not None else None
        if co is not None:  # few listeners make a noisy signal: its weight grows with them
            cfg = dataclasses.replace(cfg, collab=cfg.collab * min(1.0, co.n_listeners / cfg.collab_full_at))
        skip = np.asarray(list(exclude or []), np.int64)
        if embedding is None:  # "for you": something new, never what was rated already
            skip = np.concatenate([skip, feedback.rated, np.flatnonzero(weights > 0)])
        ranked = hybrid_rank(run, unit, feedback=feedback, k=k, query=embedding, tags=tags, collab=collab, cfg=cfg,
                             exclude=skip)
        rows = ranked["row"].to_numpy(np.int64)
        linked = co.linking(listener.listener_id, weights, rows) if co is not None else np.full(len(rows), -1)
        table = neighbours_table(run, rows, ranked["score"].to_numpy()).assign(**ranked[list(PARTS)])
        table["why"] = reasons(run, ranked, unit=unit, feedback=feedback, linked=linked, query_name=query_name)
        return table

    def for_you(self, run: Run, listener: Listener, *, k: int, cfg: Optional[TasteConfig] = None) -> Personal:
        """Tracks new to ``listener`` by taste and other listeners alone (no query).

        Raises
        ------
        InvalidQuery
            The listener has no events yet (say what to do), or the store cannot be read (its reason).
        """
        try:
            found = self._rank(run, listener, embedding=None, k=k, query_name=None, cfg=cfg or self.cfg, exclude=None)
        except ListenerError as error:
            raise InvalidQuery(f"no 'for you' list: {error}") from None
        if found is None:
            raise InvalidQuery("no 'for you' list yet: like or play a few tracks first")
        return Personal(found, personal=True)
