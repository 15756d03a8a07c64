"""How the embedding spaces of 2-4 runs differ, on the tracks they share (matched by ``track_id``, so runs of
different datasets holding the same files compare too).

- **Neighbour agreement**: for each pair of runs, the mean Jaccard overlap of every shared track's 10 nearest
  neighbours (cosine, searched among the shared tracks only, so both runs choose from the same tracks).
- **Most-changed tracks**: the tracks whose neighbour sets overlap least between two runs.
- **Per-label k-NN accuracy**: leave-one-out 5-NN genre votes per label and run (:func:`core.evaluation.knn.knn_votes`),
  on the same shared tracks: which run separates which label.
- **Trustworthiness** of each run's 2-D map at k = 10 (:func:`core.analysis.quality.map_trust`: the figure the
  Map page gives, cached in the run folder): how far a map's neighbourhoods can be believed (1 = every map
  neighbour is a true neighbour).
- **Aligned maps**: every map rotated, scaled and shifted onto the first run's by orthogonal Procrustes on the
  shared tracks, so a group of tracks sits in comparable places.

Above :data:`SAMPLE` shared tracks the neighbour figures are computed on a seeded sample of them (neighbours
within the sample); above :data:`TRUST_SAMPLE` tracks trustworthiness too (it builds an n x n distance matrix).
Every result says how many tracks it used.
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Sequence

import numpy as np
import pandas as pd

from core.analysis.config import MAX_RUNS, NEIGHBOURS, SAMPLE
from core.analysis.maps import UNLABELLED
from core.analysis.quality import (  # noqa: F401 (TRUST_K, map_trustworthiness: where readers of compare look)
    METHOD_TITLES,
    TRUST_K,
    TRUST_SAMPLE,
    Trust,
    map_trust,
    map_trustworthiness,
)
from core.base.errors import CompareError
from core.data.tracks import display_names
from core.evaluation.knn import knn_votes
from core.runs.folder import Run, load_run
from core.search.exact import cosine_topk, l2_normalise
from core.search.projection import METHODS

LABEL_K = 5  # the k of the per-label k-NN votes (as the runs' own evaluation)




@dataclasses.dataclass(frozen=True)
class SharedTracks:
    """The tracks every run holds, in the first run's order.

    Attributes
    ----------
    track_ids : np.ndarray [shape=(n,), dtype=object]
    rows : dict of run id -> np.ndarray [shape=(n,), dtype=int64]
        Each run's row of every shared track.
    n_total : int
        Shared tracks before any sampling (``n`` is smaller when they were sampled).
    """

    track_ids: np.ndarray
    rows: dict[str, np.ndarray]
    n_total: int

    @property
    def sampled(self) -> bool:
        return len(self.track_ids) < self.n_total


def _open(runs: Sequence[Run | str]) -> list[Run]:
    opened = [r if isinstance(r, Run) else load_run(r) for r in runs]
    ids = [r.run_id for r in opened]
    if not 2 <= len(ids) <= MAX_RUNS:
        raise CompareError(f"compare 2 to {MAX_RUNS} runs, not {len(ids)}")
    if len(set(ids)) < len(ids):
        raise CompareError(f"a run is named twice: {', '.join(ids)}")
    return opened


def shared_tracks(runs: Sequence[Run], *, sample: int = SAMPLE, seed: int = 0) -> SharedTracks:
    """Tracks present in every run, matched by ``track_id`` (a seeded sample of ``sample`` when there are more).

    Raises
    ------
    CompareError
        Two runs share no track, or all of them together share fewer than 3.
    """
    for a, b in itertools.combinations(runs, 2):
        if not np.isin(a.tracks["track_id"].to_numpy(), b.tracks["track_id"].to_numpy()).any():
            raise CompareError(f"runs {a.run_id} and {b.run_id} share no tracks (tracks are matched by track_id: "
                               "the same file path inside the library folder)")
    first = runs[0].tracks["track_id"].drop_duplicates()
    common = first[np.logical_and.reduce([first.isin(r.tracks["track_id"]).to_numpy() for r in runs[1:]])]
    if len(common) < 3:
        names = ", ".join(r.run_id for r in runs)
        raise CompareError(f"runs {names} share only {len(common)} track(s) all together; neighbours need at least 3")
    ids = common.to_numpy(dtype=object)
    if len(ids) > sample:
        ids = ids[np.sort(np.random.default_rng(seed).choice(len(ids), size=sample, replace=False))]
    rows = {}
    for r in runs:  # track ids are unique in a run (ingest hashes the file's path); a repeat would count once
        first_rows = np.flatnonzero(~r.tracks["track_id"].duplicated().to_numpy())
        rows[r.run_id] = first_rows[pd.Index(r.tracks["track_id"].to_numpy()[first_rows]).get_indexer(ids)]
    return SharedTracks(track_ids=ids, rows=rows, n_total=len(common))


def neighbour_sets(x: np.ndarray, *, k: int = NEIGHBOURS) -> np.ndarray:
    """Each row's ``k`` nearest other rows by cosine, np.ndarray [shape=(n, min(k, n - 1)), dtype=int64]."""
    return cosine_topk(x, x, k=min(k, len(x) - 1), exclude_self=True)[0]


def jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Jaccard overlap of two neighbour sets ``a``, ``b`` [shape=(n, k)] (distinct ids per row),
    np.ndarray [shape=(n,), dtype=float64]."""
    inter = (a[:, :, None] == b[:, None, :]).any(axis=2).sum(axis=1)
    return inter / (a.shape[1] + b.shape[1] - inter)


def per_label_accuracy(x: np.ndarray, labels, *, k: int = LABEL_K) -> pd.DataFrame:
    """Leave-one-out k-NN accuracy per label (:func:`core.evaluation.knn.knn_votes`).

    Parameters
    ----------
    x : np.ndarray [shape=(n, d)]
    labels : sequence of str or None [shape=(n,)]

    Returns
    -------
    pd.DataFrame [shape=(n_labels + 1, 3)]
        Index ``label`` (sorted, then ``"all"``); ``accuracy``, ``tracks``, ``correct``. Empty with fewer than two
        labels.
    """
    votes = knn_votes(x, labels, k=k)
    if votes is None:
        return pd.DataFrame(columns=["accuracy", "tracks", "correct"], index=pd.Index([], name="label"))
    _, true, predicted, _ = votes
    frame = pd.DataFrame({"label": true, "correct": predicted == true})
    table = frame.groupby("label").agg(tracks=("correct", "size"), correct=("correct", "sum"))
    table.loc["all"] = [len(frame), int(frame["correct"].sum())]
    table["accuracy"] = table["correct"] / table["tracks"]
    return table[["accuracy", "tracks", "correct"]].astype({"tracks": int, "correct": int})


def procrustes_onto(reference: np.ndarray, moving: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The similarity transform (rotation or reflection, scale, shift) that best maps ``moving`` onto
    ``reference`` (both [shape=(n, 2)], the same tracks in the same order).

    Returns
    -------
    rotation : np.ndarray [shape=(2, 2)]
    shift : np.ndarray [shape=(2,)]
        ``aligned = moving @ rotation * scale + shift``.
    scale : float
    disparity : float
        Sum of squared differences after alignment, both sets centred and scaled to unit norm (0 = same shape).
    """
    from scipy.linalg import orthogonal_procrustes

    mu_r, mu_m = reference.mean(axis=0), moving.mean(axis=0)
    ref, mov = reference - mu_r, moving - mu_m
    norm_r, norm_m = np.linalg.norm(ref) or 1.0, np.linalg.norm(mov) or 1.0
    rotation, singular_sum = orthogonal_procrustes(mov / norm_m, ref / norm_r)
    scale = singular_sum * norm_r / norm_m  # least-squares scale of the rotated set onto the reference
    shift = mu_r - (mu_m @ rotation) * scale
    disparity = float(max(0.0, 1.0 - singular_sum ** 2))
    return rotation, shift, float(scale), disparity


def aligned_maps(runs: Sequence[Run], shared: SharedTracks, method: str) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Every run's ``method`` map moved onto the first run's by :func:`procrustes_onto` on the shared tracks.

    Returns
    -------
    coords : dict of run id -> np.ndarray [shape=(n_tracks_of_run, 2)]
        Every track of the run (not only the shared ones); the first run's unchanged.
    disparity : dict of run id -> float
        0 for the first run.
    """
    def xy(run: Run) -> np.ndarray:
        return run.projections[[f"{method}_x", f"{method}_y"]].to_numpy(np.float64)

    if method not in METHODS:
        raise CompareError(f"unknown projection {method!r}; choose one of {', '.join(METHODS)}")
    first = xy(runs[0])
    coords, disparity = {runs[0].run_id: first}, {runs[0].run_id: 0.0}
    for run in runs[1:]:
        mine = xy(run)
        rotation, shift, scale, disparity[run.run_id] = procrustes_onto(first[shared.rows[runs[0].run_id]],
                                                                        mine[shared.rows[run.run_id]])
        coords[run.run_id] = mine @ rotation * scale + shift
    return coords, disparity


@dataclasses.dataclass
class Comparison:
    """What :func:`compare_runs` measured (see the module docstring).

    Attributes
    ----------
    runs : list of Run
    shared : SharedTracks
    k : int
        Neighbours per Jaccard set (10, fewer when there are few shared tracks).
    neighbours : dict of run id -> np.ndarray [shape=(n, k)]
        Positions in ``shared`` of each shared track's neighbours.
    agreement : pd.DataFrame [shape=(r, r)]
        Mean Jaccard per pair of runs (1 on the diagonal).
    per_label : pd.DataFrame
        Rows: label, then "all"; columns: run ids; values: leave-one-out 5-NN accuracy on the shared tracks.
    label_counts : pd.Series
        Labelled shared tracks per label (the first run's labels).
    trust : dict of run id -> Trust
    method : str
    """

    runs: list[Run]
    shared: SharedTracks
    k: int
    neighbours: dict[str, np.ndarray]
    agreement: pd.DataFrame
    per_label: pd.DataFrame
    label_counts: pd.Series
    trust: dict[str, Trust]
    method: str
    label_k: int = LABEL_K
    trust_sample: int = TRUST_SAMPLE

    @property
    def run_ids(self) -> list[str]:
        return [r.run_id for r in self.runs]

    def pair_jaccard(self, a: str, b: str) -> np.ndarray:
        """Each shared track's Jaccard overlap between runs ``a`` and ``b``, np.ndarray [shape=(n,)]."""
        return jaccard(self.neighbours[a], self.neighbours[b])

    def most_changed(self, a: str, b: str, *, n: int = 10) -> pd.DataFrame:
        """The ``n`` shared tracks whose neighbours overlap least between runs ``a`` and ``b``.

        Returns
        -------
        pd.DataFrame [shape=(n, 6)]
            ``position`` (in ``shared``), ``track_id``, ``name``, ``label`` (run ``a``'s), ``jaccard``, ``common``
            (neighbours in both sets); lowest Jaccard first (ties in the shared order).
        """
        run_a = self.run(a)
        score = self.pair_jaccard(a, b)
        order = np.argsort(score, kind="stable")[:n]
        tracks = run_a.tracks.iloc[self.shared.rows[a][order]]
        common = np.rint(score[order] * 2 * self.k / (1 + score[order])).astype(int)  # J = c / (2k - c)
        return pd.DataFrame({"position": order, "track_id": self.shared.track_ids[order],
                             "name": display_names(tracks).to_numpy(),
                             "label": tracks["label"].astype("string").fillna(UNLABELLED).to_numpy(),
                             "jaccard": np.round(score[order], 4), "common": common})

    def run(self, run_id: str) -> Run:
        return self.runs[self.run_ids.index(run_id)]

    def shared_neighbours(self, run_id: str, position: int) -> tuple[np.ndarray, np.ndarray]:
        """Shared track ``position``'s neighbours in run ``run_id``, itself first: its library ``rows``
        np.ndarray [shape=(k + 1,), dtype=int64] and their cosine to it, ``scores`` [shape=(k + 1,)] (1 first);
        :func:`core.service.query.neighbours_table` makes them an answer."""
        run = self.run(run_id)
        rows = self.shared.rows[run_id]
        chosen = np.concatenate([[position], self.neighbours[run_id][position]])
        x = l2_normalise(run.embeddings[rows[chosen]])
        return rows[chosen].astype(np.int64), x @ x[0]

    def describe_sample(self) -> str:
        n, total = len(self.shared.track_ids), self.shared.n_total
        return f"a seeded sample of {n} of the {total} shared tracks" if self.shared.sampled else f"{n} shared tracks"

    def trust_by_projection(self, methods: Sequence[str] = ()) -> dict[str, dict[str, Trust]]:
        """Projection -> run id -> :class:`Trust` of each of ``methods`` (none: the comparison's ``method``),
        through :func:`core.analysis.quality.map_trust` as the pages read it."""
        return {m: self.trust if m == self.method else {r.run_id: map_trust(r, m, sample=self.trust_sample)
                                                         for r in self.runs} for m in (methods or [self.method])}

    def to_dict(self, *, n_changed: int = 10, methods: Sequence[str] = ()) -> dict:
        """Plain figures for ``--json``: runs, shared tracks, agreement, most-changed per pair, per-label
        accuracy, trustworthiness of the comparison's map and, by projection, of each of ``methods``."""
        pairs = itertools.combinations(self.run_ids, 2)
        return {
            "runs": self.run_ids, "shared_tracks": self.shared.n_total, "tracks_used": len(self.shared.track_ids),
            "sampled": self.shared.sampled, "k": self.k, "label_k": self.label_k,
            "agreement": {a: {b: round(float(v), 4) for b, v in row.items()} for a, row in self.agreement.iterrows()},
            "most_changed": [{"runs": [a, b], "tracks": self.most_changed(a, b, n=n_changed).drop(columns="position")
                              .to_dict(orient="records")} for a, b in pairs],
            "per_label_knn_accuracy": {label: {r: (None if pd.isna(v) else round(float(v), 4)) for r, v in row.items()}
                                       for label, row in self.per_label.iterrows()},
            "label_counts": {str(k): int(v) for k, v in self.label_counts.items()},
            "trustworthiness": {r: dataclasses.asdict(t) for r, t in self.trust.items()},
            "trustworthiness_by_projection": {m: {r: dataclasses.asdict(t) for r, t in trust.items()}
                                              for m, trust in self.trust_by_projection(methods).items()},
        }


def compare_runs(runs: Sequence[Run | str], *, k: int = NEIGHBOURS, label_k: int = LABEL_K, method: str = "umap",
                 sample: int = SAMPLE, trust_sample: int = TRUST_SAMPLE, seed: int = 0) -> Comparison:
    """Compare 2-4 runs on their shared tracks (see the module docstring).

    Parameters
    ----------
    runs : sequence of Run or run id [shape=(2..4,)]
    k : int
        Neighbours per Jaccard set.
    label_k : int
        Voters of the per-label k-NN accuracy.
    method : {"pca", "tsne", "umap"}
        The map whose trustworthiness is measured.
    sample, trust_sample : int
        Tracks above which the neighbour figures / trustworthiness use a seeded sample.
    seed : int

    Raises
    ------
    CompareError
        Fewer than 2 or more than 4 runs, a run twice, runs sharing no tracks, an unknown projection.
    """
    runs = _open(runs)
    if method not in METHODS:
        raise CompareError(f"unknown projection {method!r}; choose one of {', '.join(METHODS)}")
    shared = shared_tracks(runs, sample=sample, seed=seed)
    n = len(shared.track_ids)
    k = min(k, n - 1)
    vectors = {r.run_id: l2_normalise(r.embeddings[shared.rows[r.run_id]]) for r in runs}
    neighbours = {run_id: neighbour_sets(x, k=k) for run_id, x in vectors.items()}
    ids = [r.run_id for r in runs]
    agreement = pd.DataFrame(np.eye(len(ids)), index=ids, columns=ids)
    for a, b in itertools.combinations(ids, 2):
        agreement.loc[a, b] = agreement.loc[b, a] = float(jaccard(neighbours[a], neighbours[b]).mean())
    labels = {r.run_id: r.tracks["label"].to_numpy(dtype=object)[shared.rows[r.run_id]] for r in runs}
    per_label = pd.DataFrame({run_id: per_label_accuracy(vectors[run_id], labels[run_id], k=label_k)["accuracy"]
                              for run_id in ids}).rename_axis("label")
    order = sorted(i for i in per_label.index if i != "all") + (["all"] if "all" in per_label.index else [])
    counts = pd.Series(labels[ids[0]]).dropna().astype(str).value_counts().sort_index()
    trust = {r.run_id: map_trust(r, method, sample=trust_sample, seed=seed) for r in runs}
    return Comparison(runs=runs, shared=shared, k=k, neighbours=neighbours, agreement=agreement,
                      per_label=per_label.loc[order], label_counts=counts, trust=trust, method=method, label_k=label_k,
                      trust_sample=trust_sample)


def comparison_lines(comparison: Comparison, *, n_changed: int = 10, methods: Sequence[str] = ()) -> list[str]:
    """The figures of :func:`compare_runs` as text lines (the CLI's output); trustworthiness of the comparison's
    map, or of each of ``methods``, each projection named."""
    c = comparison
    short = {r: f"[{i + 1}]" for i, r in enumerate(c.run_ids)}
    lines = [f"{short[r]} {r}" for r in c.run_ids]
    lines += ["", f"neighbour agreement (mean Jaccard of {c.k}-NN sets, cosine, on {c.describe_sample()}):",
              c.agreement.rename(index=short, columns=short).round(3).to_string()]
    for a, b in itertools.combinations(c.run_ids, 2):
        lines += ["", f"tracks whose neighbours changed most, {short[a]} vs {short[b]}:"]
        changed = c.most_changed(a, b, n=n_changed)
        lines += [f"  {row.jaccard:.3f}  {row.common:>2}/{c.k} in common  {row.label:<12}  {row.name}"
                  for row in changed.itertuples()]
    if c.per_label.empty:
        lines += ["", "per-label k-NN accuracy: fewer than two labels among the shared tracks"]
    else:
        table = c.per_label.rename(columns=short).round(3)
        table.insert(0, "tracks", c.label_counts.reindex(table.index).fillna(c.label_counts.sum()).astype(int))
        lines += ["", f"per-label leave-one-out {c.label_k}-NN accuracy on the shared tracks:", table.to_string()]
    for method, trust in c.trust_by_projection(methods).items():
        lines += ["", f"map trustworthiness, {METHOD_TITLES[method]} (as the Map and Compare pages give it):"]
        lines += [f"  {short[r]} {t.describe()}" for r, t in trust.items()]
    return lines
