"""Item-item co-occurrence over every listener's events: "listeners of Z played it".

The listeners x tracks matrix ``X`` holds 1 for a like and 0.5 for a play (the larger when both; a track's last
verdict wins, so a later dislike removes it). Two tracks are similar by the cosine of their columns, and a
listener's collaborative score of track ``j`` is the mean of ``sim(i, j)`` over the listener's own tracks ``i``
(weighted as in ``X``), counting only *other* listeners, so one's own likes never echo back as "listeners of".
Both products are sparse (two matrix-vector products per query: O(events)), so nothing of size tracks x tracks is
ever built.

Why this and not implicit-feedback matrix factorisation (``implicit``): with tens of listeners per track the
co-occurrence needs no training, updates with every event, and explains itself (the track Z that linked them);
``benchmarks.bench_taste`` measures what it adds.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

EVENT_WEIGHT = {"liked": 1.0, "played": 0.5}  # a skip or dislike adds nothing (and a later dislike removes a like)


def verdicts(events: pd.DataFrame) -> pd.DataFrame:
    """One row per (listener, track) from events in time order: ``listener_id, track_id, weight`` where weight is
    :data:`EVENT_WEIGHT` of the strongest positive event, 0 when the last event was a dislike or a skip."""
    if events.empty:
        return pd.DataFrame({"listener_id": [], "track_id": [], "weight": []})
    weight = events["kind"].map(EVENT_WEIGHT).fillna(0.0)
    grouped = events.assign(weight=weight).groupby(["listener_id", "track_id"], sort=False)
    last = grouped["kind"].last()
    strongest = grouped["weight"].max()
    kept = strongest.where(~last.isin(("disliked", "skipped")), 0.0)
    return kept.rename("weight").reset_index()


class Cooccurrence:
    """Co-occurrence of a run's tracks in every listener's events (built once per store version).

    Parameters
    ----------
    events : pd.DataFrame
        ``listener_id, track_id, kind`` in time order (:meth:`core.listeners.store.ListenerStore.all_events`).
    track_ids : np.ndarray [shape=(n,)]
        The run's track ids, in row order; events on other tracks are ignored.
    """

    def __init__(self, events: pd.DataFrame, track_ids: np.ndarray):
        table = verdicts(events)
        col = pd.Series(np.arange(len(track_ids)), index=pd.Index(np.asarray(track_ids, str)))
        table = table[table["weight"] > 0]
        cols = table["track_id"].astype(str).map(col)
        table, cols = table[cols.notna()], cols[cols.notna()].astype(np.int64)
        self.listeners = {lid: i for i, lid in enumerate(pd.unique(table["listener_id"]))}
        rows = table["listener_id"].map(self.listeners).to_numpy(np.int64)
        self.X = sparse.csr_matrix((table["weight"].to_numpy(float), (rows, cols.to_numpy())),
                                   shape=(len(self.listeners), len(track_ids)))
        self.norm2 = np.asarray(self.X.multiply(self.X).sum(axis=0)).ravel()

    @property
    def n_listeners(self) -> int:
        return len(self.listeners)

    def _others(self, listener_id) -> tuple[np.ndarray, int | None]:
        """Column norms without the listener's own row, and that row's index (None when it has none)."""
        own = self.listeners.get(listener_id)
        norm2 = self.norm2.copy()
        if own is not None:
            mine = self.X.getrow(own)
            norm2[mine.indices] -= mine.data ** 2
        return np.sqrt(np.clip(norm2, 0, None)), own

    def scores(self, listener_id, weights: np.ndarray) -> np.ndarray:
        """The listener's collaborative score of every track, np.ndarray [shape=(n,)] in [0, 1].

        Parameters
        ----------
        listener_id
            Whose own row is left out.
        weights : np.ndarray [shape=(n,)]
            The listener's tracks (1 liked, 0.5 played, 0 otherwise).
        """
        total = float(weights.sum())
        if total <= 0 or self.X.nnz == 0:
            return np.zeros(self.X.shape[1])
        norms, own = self._others(listener_id)
        safe = np.where(norms > 0, norms, np.inf)
        v = self.X @ (weights / safe)  # per listener: how much of our listener's taste they share
        if own is not None:
            v[own] = 0.0
        return np.asarray(self.X.T @ v).ravel() / safe / total

    def linking(self, listener_id, weights: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """For each of ``rows``, the listener's own track that links to it most (the largest ``weight_i * sim(i,
        j)``), or -1 when none does; np.ndarray [shape=(len(rows),), dtype=int64]."""
        mine = np.flatnonzero(weights > 0)
        if not len(mine) or not len(rows) or self.X.nnz == 0:
            return np.full(len(rows), -1)
        norms, own = self._others(listener_id)
        X = self.X
        if own is not None:
            keep = np.ones(X.shape[0], bool)
            keep[own] = False
            X = X[keep]
        dots = (X[:, mine].T @ X[:, rows]).toarray()  # [shape=(len(mine), len(rows))]
        sims = dots / np.outer(np.where(norms[mine] > 0, norms[mine], np.inf),
                               np.where(norms[rows] > 0, norms[rows], np.inf))
        sims *= weights[mine][:, None]
        best = sims.argmax(axis=0)
        return np.where(sims.max(axis=0) > 0, mine[best], -1)
