"""Hybrid ranking: audio neighbours re-ranked by a listener's taste and by what other listeners played.

For a query (an embedding) and a listener with events, the candidates are the query's audio neighbours, the
neighbours of the listener's liked tracks and the best collaborative tracks (a few hundred rows, however large the
library). Each candidate gets three scores:

* ``audio``: cosine similarity to the query;
* ``taste``: cosine to the mean of the listener's liked embeddings minus that of the disliked (a skip counts half a
  dislike), averaged with the same on the run's musicnn tags (z-scored per tag) when it has them;
* ``collab``: :meth:`core.listeners.collab.Cooccurrence.scores`.

Each is z-scored over the candidates and blended with the weights of :class:`TasteConfig`, so a weight means the
same whatever a score's spread. A listener with no events gets ``None`` from :func:`hybrid_rank`: the caller answers
with pure audio similarity, unchanged (cold start). Tracks the listener disliked are never recommended again.
Every result says why (:func:`reasons`).
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
import pandas as pd

from core.base.config import check_bounds, doc
from core.data.tracks import display_name
from core.runs.folder import Run
from core.search.ann import search
from core.search.exact import l2_normalise

PARTS = ("audio", "taste", "collab")


@dataclasses.dataclass(frozen=True)
class TasteConfig:
    """How listening events re-rank audio neighbours (each weight multiplies a score z-scored over the candidates)."""

    audio: float = doc(1.0, "weight of audio similarity to the query: the anchor of every answer", at_least=0.0)
    taste: float = doc(1.5, "weight of the listener's taste (liked minus disliked embeddings and tags): above audio, "
                            "so five rounds of likes lift a 0.6 list to 0.9 (benchmarks.bench_taste)", at_least=0.0)
    collab: float = doc(0.5, "weight of what other listeners of the same tracks played: a nudge, as it is noisy "
                             "until many listeners share tracks", at_least=0.0)
    collab_full_at: int = doc(50, "listeners with events at which the collaborative weight is whole; below, it "
                                  "shrinks in proportion (with 5 listeners it cost 0.02-0.13 of precision, "
                                  "benchmarks.bench_taste)", at_least=1)
    candidates: int = doc(200, "audio neighbours of the query and of the likes that are re-ranked: wide enough to "
                               "reach a liked style far from the query, small enough to stay milliseconds", at_least=1)
    skip_weight: float = doc(0.5, "a skip counts as this much of a dislike (a skip is a milder no)", at_least=0.0)

    def __post_init__(self):
        check_bounds(self)


@dataclasses.dataclass(frozen=True)
class Feedback:
    """A listener's events on one run's tracks, as row arrays [shape=(r,), dtype=int64] (a track's last like or
    dislike wins)."""

    liked: np.ndarray
    disliked: np.ndarray
    skipped: np.ndarray
    played: np.ndarray

    @property
    def empty(self) -> bool:
        return not any(len(x) for x in (self.liked, self.disliked, self.skipped, self.played))

    @property
    def rated(self) -> np.ndarray:
        return np.unique(np.concatenate([self.liked, self.disliked, self.skipped]))

    def weights(self, n: int) -> np.ndarray:
        """The listener's positive weight per track (1 liked, 0.5 played), np.ndarray [shape=(n,)]."""
        w = np.zeros(n)
        w[self.played] = 0.5
        w[self.skipped] = 0.0
        w[self.disliked] = 0.0
        w[self.liked] = 1.0
        return w


def feedback_of(events, row_of: dict) -> Feedback:
    """:class:`Feedback` from a listener's ``(track_id, kind)`` events, oldest first, on a run whose track id ->
    row map is ``row_of``; events on other tracks are left out."""
    verdict: dict[int, str] = {}
    skipped, played = set(), set()
    for track_id, kind in events:
        row = row_of.get(track_id)
        if row is None:
            continue
        if kind in ("liked", "disliked"):
            verdict[row] = kind
        elif kind == "skipped":
            skipped.add(row)
        else:
            played.add(row)

    def rows(values) -> np.ndarray:
        return np.array(sorted(values), dtype=np.int64)

    liked = rows(r for r, v in verdict.items() if v == "liked")
    return Feedback(liked=liked, disliked=rows(r for r, v in verdict.items() if v == "disliked"),
                    skipped=np.setdiff1d(rows(skipped), liked), played=rows(played))


def zscore(x: np.ndarray) -> np.ndarray:
    """``x`` centred and scaled to unit deviation; zeros when it does not vary."""
    spread = float(x.std()) if len(x) else 0.0
    return np.zeros_like(x, dtype=float) if spread < 1e-9 else (x - x.mean()) / spread


def tag_matrix(tags: Optional[pd.DataFrame]) -> Optional[np.ndarray]:
    """A run's tag likelihoods z-scored per tag (NaN rows as 0: no opinion), np.ndarray [shape=(n, 50)] or None."""
    if tags is None:
        return None
    values = tags.to_numpy(float)
    mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
    return np.nan_to_num((values - mean) / np.where(std > 0, std, 1.0))


def taste_scores(unit: np.ndarray, rows: np.ndarray, feedback: Feedback, *, tags: Optional[np.ndarray] = None,
                 skip_weight: float = 0.5) -> np.ndarray:
    """The listener's taste for library ``rows``, np.ndarray [shape=(len(rows),)] (0 without likes or dislikes).

    Parameters
    ----------
    unit : np.ndarray [shape=(n, d)]
        The run's embeddings at unit length.
    tags : np.ndarray [shape=(n, t)] or None
        :func:`tag_matrix` of the run.
    """
    def profile(matrix: np.ndarray) -> np.ndarray:
        liked = matrix[feedback.liked].mean(axis=0) if len(feedback.liked) else 0.0
        weight = len(feedback.disliked) + skip_weight * len(feedback.skipped)
        against = ((matrix[feedback.disliked].sum(axis=0) + skip_weight * matrix[feedback.skipped].sum(axis=0))
                   / weight) if weight > 0 else 0.0
        return np.zeros(matrix.shape[1]) + liked - against

    score = unit[rows] @ profile(unit)
    if tags is not None:
        direction = profile(tags)
        length = float(np.linalg.norm(direction))
        if length > 0:
            tag_cos = (tags[rows] @ direction) / (np.linalg.norm(tags[rows], axis=1) + 1e-9) / length
            score = 0.5 * score + 0.5 * tag_cos
    return score


def candidate_rows(run: Run, unit: np.ndarray, *, query: Optional[np.ndarray], feedback: Feedback,
                   collab: Optional[np.ndarray], size: int) -> np.ndarray:
    """Rows worth ranking: the ``size`` audio neighbours of the query and of the liked tracks' mean, and the
    ``size`` best collaborative tracks; disliked tracks left out. np.ndarray [shape=(c,), dtype=int64]."""
    size = min(size, len(unit))
    seeds = [query] if query is not None else []
    if len(feedback.liked):
        seeds.append(unit[feedback.liked].mean(axis=0))
    found = [search(run.embeddings, np.stack(seeds), k=size, index=run.index)[0].ravel()] if seeds else []
    if collab is not None and collab.any():
        top = np.argpartition(-collab, min(size, len(collab) - 1))[:size]
        found.append(top[collab[top] > 0])
    rows = np.unique(np.concatenate(found)) if found else np.zeros(0, np.int64)
    return np.setdiff1d(rows[rows >= 0], feedback.disliked)


def hybrid_rank(run: Run, unit: np.ndarray, *, feedback: Feedback, k: int, query: Optional[np.ndarray] = None,
                tags: Optional[np.ndarray] = None, collab: Optional[np.ndarray] = None,
                cfg: TasteConfig = TasteConfig(), exclude: Optional[np.ndarray] = None) -> Optional[pd.DataFrame]:
    """The ``k`` best tracks for a listener, or None when the listener has no events (cold start: the caller
    answers with pure audio similarity).

    Parameters
    ----------
    unit : np.ndarray [shape=(n, d)]
        ``run.embeddings`` at unit length.
    query : np.ndarray [shape=(d,)] or None
        The query's embedding; None for a "for you" list (taste and collaborative scores only).
    collab : np.ndarray [shape=(n,)] or None
        :meth:`core.listeners.collab.Cooccurrence.scores` for this listener.
    exclude : np.ndarray [shape=(e,)] or None
        Further rows never returned (the query track itself, tracks already rated).

    Returns
    -------
    pd.DataFrame [shape=(<= k, 8)] or None
        Best first: ``row`` (library rows), ``score`` (the blend), ``audio, taste, collab`` (raw scores) and
        ``contrib_audio, contrib_taste, contrib_collab`` (weight x z-score, what :func:`reasons` reads); the
        service makes it an answer (:func:`core.service.query.neighbours_table`).
    """
    if feedback.empty:
        return None
    q = None if query is None else l2_normalise(np.asarray(query, np.float32)[None])[0]
    rows = candidate_rows(run, unit, query=q, feedback=feedback, collab=collab, size=cfg.candidates)
    if exclude is not None:
        rows = np.setdiff1d(rows, exclude)
    parts = {"audio": unit[rows] @ q if q is not None else np.zeros(len(rows)),
             "taste": taste_scores(unit, rows, feedback, tags=tags, skip_weight=cfg.skip_weight),
             "collab": collab[rows] if collab is not None else np.zeros(len(rows))}
    contrib = {name: getattr(cfg, name) * zscore(values) for name, values in parts.items()}
    blend = sum(contrib.values())
    order = np.argsort(-blend, kind="stable")[:k]
    table = pd.DataFrame({"row": rows[order], "score": blend[order]})
    for name in PARTS:
        table[name] = np.round(parts[name][order].astype(float), 4)
        table[f"contrib_{name}"] = contrib[name][order]
    return table


def reasons(run: Run, table: pd.DataFrame, *, unit: np.ndarray, feedback: Feedback, linked: np.ndarray,
            query_name: Optional[str]) -> list[list[str]]:
    """Why each row of a :func:`hybrid_rank` table is there, strongest first: "sounds like X" (the query),
    "you liked Y" (the liked track nearest it), "listeners of Z played it" (``linked``: the listener's track that
    links to it most, -1 for none). A part counts when it lifted the track (a positive contribution)."""
    rows = table["row"].to_numpy(np.int64)
    nearest_liked = np.full(len(rows), -1)
    if len(feedback.liked):
        sims = unit[rows] @ unit[feedback.liked].T
        sims[rows[:, None] == feedback.liked[None, :]] = -np.inf  # a liked track is "you liked it", not like itself
        best = sims.argmax(axis=1)
        nearest_liked = np.where(np.isfinite(sims.max(axis=1)), feedback.liked[best], -1)
    named = np.unique(np.concatenate([nearest_liked, linked]))
    records = run.tracks.iloc[named[named >= 0]].to_dict("records")
    names = {int(r): display_name(rec) for r, rec in zip(named[named >= 0], records)}
    contrib = {p: table[f"contrib_{p}"].to_numpy(float) for p in PARTS}
    liked = set(feedback.liked.tolist())
    out = []
    for i, row in enumerate(rows):
        said = {"audio": f"sounds like {query_name}" if query_name else None,
                "taste": f"you liked {names[nearest_liked[i]]}" if nearest_liked[i] >= 0 else None,
                "collab": f"listeners of {names[linked[i]]} played it" if linked[i] >= 0 else None}
        ranked = sorted(PARTS, key=lambda p: -contrib[p][i])
        why = [said[p] for p in ranked if said[p] and contrib[p][i] > 0]
        if int(row) in liked:
            why.insert(0, "you liked it")
        out.append(why or [said["audio"] or "close to your taste"])
    return out
