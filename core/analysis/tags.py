"""musicnn's 50 Million-Song-Dataset tag likelihoods per track: what a track or a group of tracks sounds like, in words.

The reference pass (:func:`core.model.reference.library_patch_features`) already computes musicnn's ``taggram`` (the
sigmoid of its 50 tag logits) for every 3 s patch of every track and caches it in
``<dataset>/reference/musicnn-<max_patches>.npz``. A track's tags are the mean over its patches; they are kept per
dataset in ``<dataset>/tags.parquet`` (``track_id`` + one float column per tag of :data:`TAGS`), rebuilt from the
cache whenever the cache is newer. A run maps its tracks to its dataset's by ``track_id``.

A dataset without audio (an imported feature table) or a checkout without the musicnn weights cannot have tags:
:func:`run_tags` returns None and :func:`tags_reason` says why, once, in words.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from core.analysis.config import DEFAULT_MAX_PATCHES
from core.base.constants import MSD_TAGS
from core.base.errors import DatasetError, TagError
from core.base.io import atomic_write_parquet
from core.base.progress import Progress

TAGS = MSD_TAGS  # musicnn's 50 MSD tags in the network's output order (from core.base.constants: no torch)


TAGS_FILE = "tags.parquet"


WEIGHTS = Path(__file__).resolve().parent.parent / "model" / "weights" / "msd_musicnn.pt"  # core.model.musicnn.WEIGHTS, without torch


MIN_MEAN_FOR_LIFT = 0.05  # a tag must reach this mean in a group to count as characteristic (see characteristic_tags)


_cache: dict[tuple[str, int], pd.DataFrame] = {}


# Words people search for that MSD lacks, with the tags that come closest in meaning (only suggested, never
# substituted: a search for "classical" answered with "instrumental" tracks would claim more than the tags say).
NEAREST_IN_MEANING = {"classical": ("instrumental", "beautiful", "ambient"), "piano": ("instrumental", "jazz"),
                      "orchestra": ("instrumental",), "hip hop": ("Hip-Hop",), "rap": ("Hip-Hop",), "r&b": ("rnb",),
                      "techno": ("electro", "House", "dance"), "edm": ("dance", "electro", "House"),
                      "calm": ("chill", "chillout", "Mellow"), "vocal": ("female vocalists", "male vocalists")}


def musicnn_caches(folder: Path) -> list[Path]:
    """The dataset's musicnn patch caches, newest first."""
    return sorted((folder / "reference").glob("musicnn-*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)


def tags_from_cache(cache: str | Path) -> pd.DataFrame:
    """Track-level tags from one musicnn patch cache: the mean of each track's patch taggrams.

    Returns
    -------
    pd.DataFrame [shape=(n_tracks, 1 + 50)]
        ``track_id`` + one float32 column per tag of :data:`TAGS`; NaN for a track whose audio could not be read.
    """
    with np.load(cache, allow_pickle=False) as z:
        ids, ok = z["track_id"].astype(str), z["ok"]
        values = np.full((len(ids), len(TAGS)), np.nan, np.float32)
        for i in np.flatnonzero(ok):
            values[i] = z[f"taggram_{i}"].mean(axis=0)
    return pd.concat([pd.DataFrame({"track_id": ids}), pd.DataFrame(values, columns=list(TAGS))], axis=1)


def dataset_tags(folder: str | Path) -> pd.DataFrame | None:
    """A dataset folder's tag table (``track_id`` + :data:`TAGS`), rebuilt from its newest musicnn cache when that
    is newer than ``tags.parquet``; None when the dataset has neither. Read once per file version."""
    folder = Path(folder)
    path, caches = folder / TAGS_FILE, musicnn_caches(folder)
    if caches and (not path.exists() or path.stat().st_mtime < caches[0].stat().st_mtime):
        atomic_write_parquet(path, tags_from_cache(caches[0]))
    if not path.exists():
        return None
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _cache:
        _cache.clear()  # one table at a time is enough: pages cache their own copies
        _cache[key] = pd.read_parquet(path)
    return _cache[key]


def cached_patches(folder: Path) -> int | None:
    """The most patches per track of a musicnn cache the dataset ``folder`` holds (a training's teacher pass, a
    reference run), or None."""
    counts = [int(p.stem.rpartition("-")[2]) for p in musicnn_caches(folder) if p.stem.rpartition("-")[2].isdigit()]
    return max(counts, default=None)


def tag_patches(folder: Path, asked: int | None) -> tuple[int, str]:
    """How many patches per track the tags are computed from, and why: ``asked``, else the cache the dataset
    already has (no second musicnn pass), else :data:`DEFAULT_MAX_PATCHES`."""
    have = cached_patches(folder)
    if asked is not None:
        made = "computing it" if not (folder / "reference" / f"musicnn-{asked}.npz").exists() else "its cache"
        return asked, f"{asked} patches per track as asked ({made})"
    if have is not None:
        return have, (f"{have} patches per track, from the cache a training or a reference run left "
                      f"(--max-patches {DEFAULT_MAX_PATCHES} computes a finer one)")
    return DEFAULT_MAX_PATCHES, f"{DEFAULT_MAX_PATCHES} patches per track (no musicnn cache yet: computing it)"


def compute_dataset_tags(dataset: str, *, max_patches: int | None = DEFAULT_MAX_PATCHES,
                         progress: Optional[Progress] = None) -> pd.DataFrame:
    """Tags of every track of an ingested dataset, running musicnn over the library where its cache is missing.

    Minutes for a large library (~0.05 s a patch); seconds when a reference run or a distilled training of the
    dataset already wrote the cache.

    Raises
    ------
    TagError
        The dataset has no audio (an imported feature table) or the musicnn weights are missing.
    """
    from core.data.dataset import load_dataset
    from core.model.reference import library_patch_features

    ds = load_dataset(dataset)
    reason = _audio_reason(ds.path, ds.name)
    if reason:
        raise TagError(reason)
    max_patches, _ = tag_patches(ds.path, max_patches)  # None: the cache the dataset has, if any
    library_patch_features(ds, layer="taggram", max_patches=max_patches, progress=progress)
    return dataset_tags(ds.path)


def _audio_reason(folder: Path, name: str) -> str:
    """Why ``folder`` cannot have tags computed ("" when it can)."""
    import json

    info = json.loads((folder / "dataset.json").read_text()) if (folder / "dataset.json").exists() else {}
    if info.get("kind") == "imported":
        return f"dataset {name!r} is an imported feature table: it has no audio for musicnn to tag"
    if not WEIGHTS.exists():
        return f"musicnn's weights ({WEIGHTS.name}) are missing from core/model/weights/, so no tags can be computed"
    return ""


def _dataset_folder(name: str | None) -> Path | None:
    from core.data.dataset import dataset_dir

    try:
        return dataset_dir(name) if name else None
    except DatasetError:
        return None


def aligned_tags(dataset: str | None, track_ids) -> pd.DataFrame | None:
    """A dataset's tags for ``track_ids`` (matched by id; NaN rows for tracks it has no tags for).

    Returns
    -------
    pd.DataFrame [shape=(len(track_ids), 50), dtype=float32] or None
        Columns :data:`TAGS`; None when none of the tracks has tags.
    """
    folder = _dataset_folder(dataset)
    table = dataset_tags(folder) if folder is not None and folder.exists() else None
    if table is None:
        return None
    ids = pd.Series(track_ids).astype(str)
    aligned = table.drop_duplicates("track_id").set_index("track_id").reindex(ids)[list(TAGS)].reset_index(drop=True)
    return None if aligned.isna().all(axis=None) else aligned


def run_tags(run) -> pd.DataFrame | None:
    """The 50 tag likelihoods of every track of a run, from its dataset's tag table.

    Parameters
    ----------
    run : core.runs.folder.Run

    Returns
    -------
    pd.DataFrame [shape=(len(run.tracks), 50), dtype=float32] or None
        Row i is ``run.tracks`` row i, columns :data:`TAGS`; NaN rows for tracks the dataset has no tags for.
        None when no track of the run has tags (:func:`tags_reason` says why).
    """
    return aligned_tags(run.config.get("dataset"), run.tracks["track_id"])


def tags_reason(run) -> str:
    """Why a run has no tags, in one sentence with what to do ("" when it has them)."""
    name = run.config.get("dataset")
    folder = _dataset_folder(name)
    if folder is None or not (folder / "dataset.json").exists():
        return f"run {run.run_id}'s dataset {name!r} is not in this workspace, so its tracks have no musicnn tags"
    if run_tags(run) is not None:
        return ""
    return _audio_reason(folder, name) or (
        f"musicnn tags of dataset {name!r} are not computed yet: run `python -m core tags --run {run.run_id}` "
        "(about 1 s per track; a reference run of the dataset computes them too)")


def tags_computable(run) -> bool:
    """Whether :func:`compute_dataset_tags` can tag the run's dataset (it is here, has audio, and the weights are)."""
    name = run.config.get("dataset")
    folder = _dataset_folder(name)
    return folder is not None and (folder / "dataset.json").exists() and not _audio_reason(folder, name)


def resolve_tag(name: str) -> str:
    """The tag of :data:`TAGS` that ``name`` names (case and surrounding spaces ignored).

    Raises
    ------
    TagError
        No such tag; the message lists the closest names (musicnn has no "classical" or "piano" tag, for example).
    """
    wanted = " ".join(str(name).split()).lower()
    for tag in TAGS:
        if tag.lower() == wanted:
            return tag
    lower = {t.lower(): t for t in TAGS}
    close = [lower[c] for c in difflib.get_close_matches(wanted, list(lower), n=5, cutoff=0.5)]
    close += [t for t in TAGS if wanted and wanted in t.lower() and t not in close]
    hint = f"closest: {', '.join(close[:5])}" if close else f"musicnn's tags are: {', '.join(TAGS)}"
    if wanted in NEAREST_IN_MEANING:
        hint = f"musicnn's MSD tags have none; nearest in meaning: {', '.join(NEAREST_IN_MEANING[wanted])}; {hint}"
    raise TagError(f"no musicnn tag named {name!r} ({hint})")


def _rows(tags: pd.DataFrame, rows) -> np.ndarray:
    """Positions from an int, a sequence of positions or a boolean mask; TagError when empty."""
    rows = np.atleast_1d(np.asarray(rows))
    if rows.dtype == bool:
        rows = np.flatnonzero(rows)
    if len(rows) == 0:
        raise TagError("no tracks selected: tags describe at least one track")
    return rows.astype(np.int64)


def top_tags(tags: pd.DataFrame, row_or_rows, *, n: int = 3) -> list[tuple[str, float]]:
    """The ``n`` most likely tags of one track (an int row) or of a group (rows: their mean likelihood).

    Parameters
    ----------
    tags : pd.DataFrame [shape=(n_tracks, 50)]
        :func:`run_tags`.
    row_or_rows : int, sequence of int or boolean mask [shape=(n_tracks,)]

    Returns
    -------
    list of (tag, likelihood)
        Most likely first; empty when none of the rows has tags.
    """
    mean = tags.iloc[_rows(tags, row_or_rows)].mean(axis=0, skipna=True).dropna()
    return [(str(t), float(v)) for t, v in mean.sort_values(ascending=False, kind="stable").head(n).items()]


def characteristic_tags(tags: pd.DataFrame, rows, *, n: int = 5,
                        min_mean: float = MIN_MEAN_FOR_LIFT) -> list[tuple[str, float]]:
    """Tags most over-represented in ``rows`` against the whole library: lift = mean over rows / mean overall.

    Tags whose mean over ``rows`` is below ``min_mean`` are left out (when any tag reaches it): a tag at 0.01 in
    the library and 0.03 in a cluster has a lift of 3 but says nothing about how the cluster sounds.

    Parameters
    ----------
    tags : pd.DataFrame [shape=(n_tracks, 50)]
    rows : sequence of int or boolean mask [shape=(n_tracks,)]

    Returns
    -------
    list of (tag, lift)
        Highest lift first; only tags more likely in the rows than in the library (lift > 1), so possibly fewer
        than ``n`` (none for rows that are the whole library).
    """
    inside = tags.iloc[_rows(tags, rows)].mean(axis=0, skipna=True)
    overall = tags.mean(axis=0, skipna=True)
    lift = (inside / overall.where(overall > 0)).dropna()
    strong = lift[inside.reindex(lift.index) >= min_mean]
    lift = strong if len(strong) else lift
    lift = lift[lift > 1.0]
    return [(str(t), float(v)) for t, v in lift.sort_values(ascending=False, kind="stable").head(n).items()]


_PERCENT_TEXT = np.array([f"{i / 100:.2f}" for i in range(101)], dtype=object)  # 0.00 .. 1.00


def top_tag_text(tags: pd.DataFrame, *, n: int = 3) -> pd.Series:
    """Each track's top ``n`` tags as one string (``"rock 0.61, guitar 0.40, indie 0.22"``), "" without tags:
    vectorised for map hovers and exports (a million tracks in a few seconds: a partial sort, likelihoods
    written through a table of the 101 two-decimal strings).

    Returns
    -------
    pd.Series [shape=(n_tracks,), dtype=object]
    """
    values = tags.to_numpy(np.float32)
    n = min(n, values.shape[1])
    filled = np.nan_to_num(values, nan=-1.0)
    part = np.argpartition(-filled, n - 1, axis=1)[:, :n]
    order = np.take_along_axis(part, np.argsort(-np.take_along_axis(filled, part, axis=1), axis=1, kind="stable"),
                               axis=1)
    percent = np.clip(np.rint(np.take_along_axis(filled, order, axis=1) * 100), 0, 100).astype(np.int64)
    pieces = np.asarray([f"{t} " for t in tags.columns], dtype=object)[order] + _PERCENT_TEXT[percent]
    text = pieces[:, 0].copy() if n else np.full(len(values), "", dtype=object)
    for j in range(1, n):
        text = text + ", " + pieces[:, j]
    text[np.isnan(values).all(axis=1)] = ""
    return pd.Series(text, index=tags.index, dtype=object)


def top_tag_lists(tags: pd.DataFrame, rows: Sequence[int], *, n: int = 3) -> list[list[dict]]:
    """``[{"tag", "likelihood"}, ...]`` per row of ``rows`` (most likely first; [] for a track without tags)."""
    values = tags.to_numpy(np.float32)[np.asarray(rows, dtype=np.int64)]
    order = np.argsort(-np.nan_to_num(values, nan=-1.0), axis=1, kind="stable")[:, :n]
    names = tags.columns
    return [[] if np.isnan(row).all() else
            [{"tag": str(names[j]), "likelihood": round(float(row[j]), 4)} for j in top]
            for row, top in zip(values, order)]


def tracks_by_tag(tags: pd.DataFrame, tag: str, *, rows: Optional[np.ndarray] = None, limit: int = 20) -> np.ndarray:
    """Rows ordered by one tag's likelihood, most likely first (tracks without tags left out).

    Parameters
    ----------
    rows : np.ndarray [shape=(m,), dtype=int] or None
        The candidates (a search's hits, say), in the order that breaks ties; None: every row, in order.

    Returns
    -------
    np.ndarray [shape=(min(limit, n_tagged),), dtype=int64]
    """
    column = tags[resolve_tag(tag)].to_numpy(np.float64)
    pool = np.arange(len(column)) if rows is None else np.asarray(rows, dtype=np.int64)
    known = pool[~np.isnan(column[pool])]
    return known[np.argsort(-column[known], kind="stable")][:limit].astype(np.int64)


TAG_PREFIX = "tag:"


def search_by_tag(run, query: str, *, limit: int = 50) -> list[int] | None:
    """Rows of a ``tag:NAME`` search, most likely first; None when ``query`` is not a tag search.

    Raises
    ------
    TagError
        No such tag (the message names close ones), or the run has no tags (the message says why).
    """
    text = query.strip()
    if not text.lower().startswith(TAG_PREFIX):
        return None
    tag = resolve_tag(text[len(TAG_PREFIX):])
    tags = run_tags(run)
    if tags is None:
        raise TagError(f"cannot search by tag: {tags_reason(run)}")
    return tracks_by_tag(tags, tag, limit=limit).tolist()


# musicnn's tags that count as naming each genre of emotify-dev (a tag set per label; used by
# label_tag_agreement). MSD has no "classical" tag: "instrumental" stands for it, which also fires on jazz and
# post-rock, so the classical figure is an upper bound of how well tags name that genre.
GENRE_TAGS = {
    "rock": ("rock", "alternative rock", "classic rock", "indie rock", "hard rock", "Progressive rock", "metal",
             "heavy metal", "punk"),
    "pop": ("pop", "indie pop"),
    "electronic": ("electronic", "electronica", "electro", "House"),
    "classical": ("instrumental",),
}


def label_tag_agreement(tags: pd.DataFrame, labels, *, matches: dict = GENRE_TAGS, n: int = 3) -> pd.DataFrame:
    """How often a track of each label has one of its matching tags among its ``n`` most likely.

    Parameters
    ----------
    tags : pd.DataFrame [shape=(n_tracks, 50)]
    labels : sequence [shape=(n_tracks,)]
    matches : dict of label -> tags
        A label without an entry matches the tag of its name (case, spaces and '-' ignored: "hiphop" is
        "Hip-Hop"); a label with neither gets a row with no rate, saying musicnn has no tag for it.

    Returns
    -------
    pd.DataFrame
        ``label, tracks, matched, rate, matching_tags`` (one row per label with tagged tracks).
    """
    labels = pd.Series(labels, dtype=object).reset_index(drop=True)
    values = tags.to_numpy(np.float32)
    known = ~np.isnan(values).all(axis=1)
    top = np.argsort(-np.nan_to_num(values, nan=-1.0), axis=1, kind="stable")[:, :n]
    names = np.asarray(tags.columns, dtype=object)
    rows, plain = [], {"".join(c for c in t.lower() if c.isalnum()): t for t in TAGS}
    for label in sorted(labels[known].dropna().unique(), key=str):
        mine = np.flatnonzero((labels == label).to_numpy() & known)
        wanted = matches.get(label) or ([plain[key]] if (key := "".join(c for c in str(label).lower()
                                                                           if c.isalnum())) in plain else [])
        hit = sum(bool(set(names[top[r]]) & {resolve_tag(t) for t in wanted}) for r in mine) if wanted else None
        rows.append({"label": label, "tracks": len(mine), "matched": hit, "rate": hit / len(mine) if wanted else None,
                     "matching_tags": ", ".join(wanted) or "none: musicnn's MSD tags have no such tag"})
    return pd.DataFrame(rows, columns=["label", "tracks", "matched", "rate", "matching_tags"])
