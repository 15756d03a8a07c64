"""Queries against a run: embed arbitrary audio, find the most similar library tracks, place them on the maps.

These are the engine's functions on one :class:`~core.runs.folder.Run`; :mod:`core.service.service` puts the run
cache, warm-up, genre and track records on top for the front ends."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from core.analysis.collections import check_rows
from core.audio.decode import load_audio
from core.base.constants import DEFAULT_K, DEFAULT_SET_K, MAX_QUERY_SECONDS
from core.base.errors import CollectionError, InvalidQuery, RunError
from core.runs.folder import Run
from core.search.ann import search
from core.search.exact import l2_normalise
from core.search.projection import place


def neighbours_table(run: Run, rows: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    """Library tracks as a ranked answer, the one table every query returns.

    Parameters
    ----------
    run : Run
    rows : np.ndarray [shape=(k,), dtype=int]
        Library rows, best first.
    scores : np.ndarray [shape=(k,)]
        Their scores (a cosine, or what a ranking blends).

    Returns
    -------
    pd.DataFrame [shape=(k, ...)]
        ``rank`` (from 1), ``track_id``, ``score`` (4 decimals), the run's other track columns and ``row``.
    """
    table = run.tracks.iloc[rows].reset_index(drop=True).copy()
    table.insert(0, "rank", np.arange(1, len(rows) + 1))
    table.insert(2, "score", np.round(scores.astype(float), 4))
    table["row"] = rows
    return table


def more_like_these(run: Run, rows, *, k: int = DEFAULT_SET_K) -> pd.DataFrame:
    """The ``k`` library tracks nearest a set of tracks, none of the set among them (a multi-track query).

    The query is the mean of the set's unit-length embeddings, made unit length again. Ranking by cosine to it
    is ranking by the mean cosine to the set's members (``x · Σ e_i / |Σ e_i|`` is ``Σ cos(x, e_i)`` up to a
    constant), so ``score`` is reported as that mean cosine. The search is the one every query uses
    (:func:`core.service.query.nearest`: the run's ANN index when it has one).

    Parameters
    ----------
    run : Run
    rows : sequence of int [shape=(r,)]
        The set, as library rows.
    k : int
        At least 1; fewer come back when the run holds fewer other tracks.

    Returns
    -------
    pd.DataFrame [shape=(min(k, n - r), ...)]
        ``rank, track_id, score`` (mean cosine to the set), the track columns and ``row``, best first.

    Raises
    ------
    CollectionError
        An empty set, a row outside the run, a bad ``k``, or a set that is the whole library.
    """
    rows = check_rows(run, rows)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise CollectionError(f"k={k!r}: ask for at least 1 track")
    others = len(run.tracks) - len(rows)
    if others == 0:
        raise CollectionError("the selection holds every track of the run: there is nothing else to find")
    unit = l2_normalise(run.embeddings[rows])
    mean = unit.mean(axis=0)
    length = float(np.linalg.norm(mean))
    if length < 1e-6:
        raise CollectionError("the selected tracks point in opposite directions (their mean embedding is zero)")
    idx, sims = nearest(run, (mean / length)[None], k=min(int(k) + len(rows), len(run.tracks)))
    keep = ~np.isin(idx[0], rows)
    found, scores = idx[0][keep][:k], sims[0][keep][:k] * length
    return neighbours_table(run, found, scores)


def check_k(k: int, *, available: int, what: str = "tracks") -> int:
    """``k`` as an int when it is a whole number from 1 to ``available``: the one check of every query's ``k``.

    Raises
    ------
    InvalidQuery
        Saying what can be asked (``what``: what ``available`` counts, "tracks" or "other tracks").
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidQuery(f"k={k!r}: ask for 1 to {available} {what}")
    if k > available:
        raise InvalidQuery(f"k={k} is more than the {available} {what} of the run: ask for 1 to {available}")
    return int(k)


def min_query_seconds(run: Run) -> float:
    """Queries must hold at least one training chunk."""
    return float(run.config["chunk_seconds"])


def _matcher(run: Run):
    """:func:`core.search.passages.matcher_for` (torch is imported with the first query by audio, not with the
    service: a page that only lists runs never loads it)."""
    from core.search.passages import matcher_for

    return matcher_for(run)


def embed_queries(run: Run, signals) -> np.ndarray:
    """Track embeddings of mono signals at the run's rate, chunked exactly as the run's library was,
    np.ndarray [shape=(len(signals), embedding_dim)]."""
    return _matcher(run).embed(signals, chunks=False)[0]


def embed_audio(run: Run, y: np.ndarray) -> np.ndarray:
    """Embedding of mono audio at the run's sample rate, np.ndarray [shape=(embedding_dim,)]."""
    return embed_queries(run, [y])[0]


def load_query(run: Run, source, *, max_seconds: float = MAX_QUERY_SECONDS) -> np.ndarray:
    """Query audio from a path or a named file-like object: mono at the run's rate, at least one training chunk.

    Returns
    -------
    np.ndarray [shape=(n_samples,), dtype=float32]

    Raises
    ------
    AudioDecodeError
        Empty, corrupt, not audio, too short or silent, naming the file.
    """
    return load_audio(source, sr=run.mel_params.sr, max_seconds=max_seconds, min_seconds=min_query_seconds(run))


def embed_files(run: Run, paths, *, max_seconds: float = MAX_QUERY_SECONDS) -> np.ndarray:
    """Embeddings of audio files (or file-like uploads), rows in the given order.

    Returns
    -------
    np.ndarray [shape=(len(paths), embedding_dim), dtype=float32]

    Raises
    ------
    AudioDecodeError
        For the first file that cannot be used, naming it.
    """
    return embed_queries(run, [load_query(run, p, max_seconds=max_seconds) for p in paths])


@dataclasses.dataclass
class Recommendation:
    """The result of one query: neighbours (best first) and the query's place on each map."""

    embedding: np.ndarray
    neighbours: pd.DataFrame  # rank, track_id, score, title, artist, label, path, row
    positions: dict  # method -> np.ndarray [shape=(2,)]


Labels = str | list[str] | tuple[str, ...] | None


def label_rows(run: Run, labels: Labels) -> np.ndarray | None:
    """Library rows whose label is ``labels`` (one label or several), None for no filter.

    Returns
    -------
    np.ndarray [shape=(r,), dtype=int64] or None

    Raises
    ------
    RunError
        No track of the run carries any of the labels (the message lists the labels it has).
    """
    if labels is None:
        return None
    wanted = [labels] if isinstance(labels, str) else [str(v) for v in labels]
    found = [run.label_rows[w] for w in dict.fromkeys(wanted) if w in run.label_rows]
    if not found:
        raise RunError(f"no track labelled {', '.join(map(repr, wanted))} in run {run.run_id!r} "
                       f"(its labels: {', '.join(run.label_rows) or 'none'})")
    return np.sort(np.concatenate(found))


def nearest(run: Run, queries: np.ndarray, *, k: int, labels: Labels = None) -> tuple[np.ndarray, np.ndarray]:
    """The one search every query path goes through: the run's ANN index when it has one (a library above
    :data:`core.search.ann.EXACT_MAX_TRACKS`), exact cosine otherwise; ``labels`` keeps only tracks with those labels.

    Parameters
    ----------
    queries : np.ndarray [shape=(m, d)]
    k : int
    labels : str or list of str or None

    Returns
    -------
    indices : np.ndarray [shape=(m, min(k, r)), dtype=int64]
        Library rows, best first (``r``: the tracks the filter keeps, or all).
    scores : np.ndarray [shape=(m, min(k, r)), dtype=float32]
        Cosine similarities.
    """
    return search(run.embeddings, queries, k=k, index=run.index, rows=label_rows(run, labels))


def recommend_embedding(run: Run, embedding: np.ndarray, *, k: int = DEFAULT_K, labels: Labels = None
                        ) -> Recommendation:
    """Top-``k`` library tracks by cosine similarity to ``embedding`` [shape=(d,)], plus map positions.

    With ``labels`` only tracks carrying one of them are recommended (fewer than ``k`` when fewer exist)."""
    k = check_k(k, available=len(run.tracks))
    idx, sims = nearest(run, embedding[None], k=k, labels=labels)
    return Recommendation(embedding=embedding, neighbours=neighbours_table(run, idx[0], sims[0]),
                          positions=map_positions(run, embedding))


def map_positions(run: Run, embedding: np.ndarray) -> dict:
    """Where ``embedding`` [shape=(d,)] goes on each of the run's maps: method -> np.ndarray [shape=(2,)]."""
    where = place(embedding[None], library=run.embeddings, coords=run.projections, fit=run.map_fit,
                  index=run.index)
    return {m: xy[0] for m, xy in where.items()}


def recommend_audio(run: Run, y: np.ndarray, *, k: int = DEFAULT_K, labels: Labels = None) -> Recommendation:
    """Recommendations for mono audio at the run's rate (a microphone recording, say).

    When the run has passages (:mod:`core.search.passages`), the ``rerank_depth`` best tracks by embedding are ranked
    by ``score``, the mean of their track ``cosine`` and their ``passage`` score, so a recording of a library
    track finds it; without passages ``score`` is the cosine (``passage`` NaN)."""
    k = check_k(k, available=len(run.tracks))
    matcher = _matcher(run)
    tracks, chunks = matcher.embed([y])
    if chunks is None:
        found = recommend_embedding(run, tracks[0], k=k, labels=labels)
        found.neighbours = found.neighbours.assign(cosine=found.neighbours["score"], passage=np.nan)
        return found
    idx, sims = nearest(run, tracks, k=min(max(k, matcher.depth), len(run.tracks)), labels=labels)
    scores, passage = matcher.rerank(chunks[0], idx[0], sims[0])
    order = np.argsort(-scores, kind="stable")[:k]
    table = neighbours_table(run, idx[0][order], scores[order])
    table["cosine"] = np.round(sims[0][order].astype(float), 4)
    table["passage"] = np.round(passage[order].astype(float), 4)
    return Recommendation(embedding=tracks[0], neighbours=table, positions=map_positions(run, tracks[0]))


def recommend_file(run: Run, path, *, k: int = DEFAULT_K, labels: Labels = None) -> Recommendation:
    """Recommendations for an audio file or upload (:class:`AudioDecodeError` when it is unusable)."""
    return recommend_audio(run, load_query(run, path), k=k, labels=labels)


def similar_tracks(run: Run, row: int, *, k: int = DEFAULT_K, labels: Labels = None) -> pd.DataFrame:
    """The ``k`` nearest library tracks of library track ``row`` (itself first, score 1.0, unless ``labels``
    leaves it out)."""
    k = check_k(k, available=len(run.tracks))
    idx, sims = nearest(run, run.embeddings[row:row + 1], k=k, labels=labels)
    return neighbours_table(run, idx[0], sims[0])


def neighbours_of(run: Run, row: int, *, k: int = DEFAULT_K, labels: Labels = None) -> pd.DataFrame:
    """The ``k`` nearest other tracks of library track ``row`` (itself left out), ranked from 1."""
    k = check_k(k, available=len(run.tracks) - 1, what="other tracks")
    near = similar_tracks(run, row, k=k + 1, labels=labels)
    near = near[near["row"] != row].head(k)  # normally the first row; a duplicate track may outrank it
    return near.assign(rank=np.arange(1, len(near) + 1)).reset_index(drop=True)
