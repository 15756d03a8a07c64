"""Collections: named sets of a dataset's tracks (a lasso on the Map, saved), and what a set of tracks gives.

A dataset's collections are one small table, ``artifacts/datasets/<dataset>/collections.parquet``::

    collection_id  str   12 hex digits, made here: files and URLs use it, never the user's text
    name           str   what the user called it (checked by :func:`check_name`; unique per dataset, any case)
    created        str   when it was saved
    track_id       str   one row per member track

It is rewritten atomically (:func:`core.base.io.atomic_write_parquet`) under a file lock, so two sessions saving at once
never lose each other's collection and a crash leaves the old table or the new one. Every run of the dataset sees
the same collections (a run shows the members it holds).

A set of rows of a run (a selection or a collection) gives: a summary (count, label mix, characteristic tags),
**more like these** (:func:`more_like_these`: the tracks nearest the set, not in it), an M3U playlist and a CSV,
and a "collection vs the rest" labelling for the classifiers (:func:`collection_source`).
"""
from __future__ import annotations

import dataclasses
import os
import re
import secrets
import time
import unicodedata
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from core.base.errors import CollectionError, DatasetError
from core.base.io import atomic_write_parquet
from core.base.locks import file_lock
from core.data.dataset import dataset_dir
from core.data.tracks import display_names
from core.runs.folder import Run

COLLECTIONS_FILE = "collections.parquet"
LOCK_FILE = ".collections.lock"
COLUMNS = ("collection_id", "name", "created", "track_id")
MAX_NAME_LENGTH = 60
ID_PATTERN = re.compile(r"^[0-9a-f]{12}$")


IN_COLLECTION, THE_REST = "in the collection", "the rest"  # the two classes of a collection's classifier


UNLABELLED = "unlabelled"  # as core.analysis.maps.UNLABELLED (maps imports projection code this module does not need)


@dataclasses.dataclass(frozen=True)
class Collection:
    """One saved collection: its id, name, dataset, when it was saved and its members' track ids."""

    collection_id: str
    name: str
    dataset: str
    created: str
    track_ids: tuple[str, ...]

    @property
    def n_tracks(self) -> int:
        return len(self.track_ids)


def _folder(dataset: str) -> Path:
    try:
        return dataset_dir(dataset)
    except DatasetError as error:
        raise CollectionError(str(error)) from None


def collections_path(dataset: str) -> Path:
    """Where ``dataset``'s collections are kept (the file may not exist yet)."""
    return _folder(dataset) / COLLECTIONS_FILE


def _read(dataset: str) -> pd.DataFrame:
    path = collections_path(dataset)
    if not path.exists():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    return pd.read_parquet(path).astype({c: object for c in COLUMNS})


def _write(dataset: str, table: pd.DataFrame) -> None:
    atomic_write_parquet(collections_path(dataset), table[list(COLUMNS)].reset_index(drop=True))


def _locked(dataset: str):
    """The dataset's collections lock, waited for (a read-modify-write never races another)."""
    return file_lock(_folder(dataset) / LOCK_FILE, what=f"changing the collections of {dataset}", wait=True)


def check_name(name, *, taken: Sequence[str] = ()) -> str:
    """``name`` with surrounding spaces removed, when it can name a collection.

    Raises
    ------
    CollectionError
        Empty, longer than :data:`MAX_NAME_LENGTH`, path-like (a slash or backslash, only dots), holding control
        characters, or the name of another collection of the dataset (``taken``; case is ignored).
    """
    text = str(name if name is not None else "").strip()
    if not text:
        raise CollectionError("a collection needs a name: type one")
    if len(text) > MAX_NAME_LENGTH:
        raise CollectionError(f"the name is {len(text)} characters long; use at most {MAX_NAME_LENGTH}")
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in text):
        raise CollectionError("the name holds control characters (a tab, a line break, ...); use plain text")
    if "/" in text or "\\" in text or set(text) == {"."}:
        raise CollectionError(f"{text!r} looks like a path; a collection name cannot hold '/' or '\\' or be only dots")
    if text.casefold() in {t.casefold() for t in taken}:
        raise CollectionError(f"there is already a collection named {text!r} in this dataset; choose another name")
    return text


def check_id(collection_id) -> str:
    """``collection_id`` when it has the form ids have (12 hex digits), else :class:`CollectionError`."""
    if not isinstance(collection_id, str) or not ID_PATTERN.match(collection_id):
        raise CollectionError(f"{collection_id!r} is not a collection id (12 hex digits)")
    return collection_id


def list_collections(dataset: str) -> pd.DataFrame:
    """The dataset's collections, by name (case ignored).

    Returns
    -------
    pd.DataFrame [shape=(n_collections, 4)]
        ``collection_id, name, n_tracks, created``.
    """
    table = _read(dataset)
    summary = (table.groupby(["collection_id", "name", "created"], sort=False).size().rename("n_tracks")
               .reset_index())
    order = summary["name"].str.casefold().sort_values(kind="stable").index
    return summary.loc[order, ["collection_id", "name", "n_tracks", "created"]].reset_index(drop=True)


def _collection(dataset: str, table: pd.DataFrame, collection_id: str) -> Collection:
    members = table[table["collection_id"] == check_id(collection_id)]
    if members.empty:
        names = ", ".join(repr(n) for n in dict.fromkeys(table["name"])) or "none yet"
        raise CollectionError(f"dataset {dataset!r} has no collection {collection_id!r} (its collections: {names}); "
                              "it may have been deleted")
    first = members.iloc[0]
    return Collection(collection_id=collection_id, name=str(first["name"]), dataset=dataset,
                      created=str(first["created"]), track_ids=tuple(members["track_id"].astype(str)))


def load_collection(dataset: str, collection_id: str) -> Collection:
    """One collection of ``dataset`` (:class:`CollectionError` when there is no such collection)."""
    return _collection(dataset, _read(dataset), collection_id)


def all_collections(dataset: str) -> list[Collection]:
    """Every collection of ``dataset``, in :func:`list_collections` order (the table is read once)."""
    table = _read(dataset)
    return [_collection(dataset, table, c) for c in list_collections(dataset)["collection_id"]]


def find_collection(dataset: str, name_or_id: str) -> Collection:
    """A collection of ``dataset`` by its name (any case) or its id; :class:`CollectionError` naming the known ones."""
    text = str(name_or_id).strip()
    known = all_collections(dataset)
    for found in known:
        if found.collection_id == text or found.name.casefold() == text.casefold():
            return found
    names = ", ".join(repr(c.name) for c in known) or "none yet"
    raise CollectionError(f"dataset {dataset!r} has no collection {text!r} (its collections: {names})")


def create_collection(dataset: str, name: str, track_ids: Sequence[str]) -> Collection:
    """Save ``track_ids`` (repeats dropped, order kept) as a new collection of ``dataset`` named ``name``.

    Raises
    ------
    CollectionError
        No tracks, or a name :func:`check_name` refuses. Nothing is written then.
    """
    ids = list(dict.fromkeys(str(t) for t in track_ids))
    if not ids:
        raise CollectionError("the selection is empty: select tracks on the map (lasso or box) first")
    with _locked(dataset):
        table = _read(dataset)
        name = check_name(name, taken=table["name"].unique().tolist())
        collection_id = secrets.token_hex(6)
        rows = pd.DataFrame({"collection_id": collection_id, "name": name,
                             "created": time.strftime("%Y-%m-%d %H:%M:%S"), "track_id": ids})
        table = pd.concat([table, rows], ignore_index=True) if len(table) else rows
        _write(dataset, table)
    return _collection(dataset, table, collection_id)


def add_to_collection(dataset: str, collection_id: str, track_ids: Sequence[str]) -> Collection:
    """Add ``track_ids`` to a collection (members it already holds are not repeated; the new ones come last).

    Raises
    ------
    CollectionError
        No tracks, or no such collection. Nothing is written then.
    """
    ids = list(dict.fromkeys(str(t) for t in track_ids))
    if not ids:
        raise CollectionError("no tracks to add")
    with _locked(dataset):
        table = _read(dataset)
        found = _collection(dataset, table, collection_id)
        new = [t for t in ids if t not in set(found.track_ids)]
        rows = pd.DataFrame({"collection_id": collection_id, "name": found.name, "created": found.created,
                             "track_id": new})
        table = pd.concat([table, rows], ignore_index=True) if new else table
        _write(dataset, table)
    return _collection(dataset, table, collection_id)


def rename_collection(dataset: str, collection_id: str, name: str) -> Collection:
    """Give a collection a new name (checked as :func:`create_collection` checks it; its own name is free)."""
    with _locked(dataset):
        table = _read(dataset)
        _collection(dataset, table, collection_id)
        others = table.loc[table["collection_id"] != collection_id, "name"].unique().tolist()
        table.loc[table["collection_id"] == collection_id, "name"] = check_name(name, taken=others)
        _write(dataset, table)
    return _collection(dataset, table, collection_id)


def delete_collection(dataset: str, collection_id: str) -> Collection:
    """Remove a collection; returns it as it was (:class:`CollectionError` when there is no such collection)."""
    with _locked(dataset):
        table = _read(dataset)
        gone = _collection(dataset, table, collection_id)
        _write(dataset, table[table["collection_id"] != collection_id])
    return gone


def run_dataset(run: Run) -> str:
    """The dataset whose collections a run shows (:class:`CollectionError` when its config names none)."""
    dataset = run.config.get("dataset")
    if not dataset:
        raise CollectionError(f"run {run.run_id!r} names no dataset, so it has no collections")
    return str(dataset)


def check_rows(run: Run, rows) -> np.ndarray:
    """A selection of library rows of ``run``: unique, ascending, np.ndarray [shape=(r,), dtype=int64].

    Raises
    ------
    CollectionError
        Empty, or a row outside the run.
    """
    rows = np.unique(np.asarray(list(rows) if not isinstance(rows, np.ndarray) else rows, dtype=np.int64))
    if rows.size == 0:
        raise CollectionError("the selection is empty: select tracks on the map (lasso or box) first")
    if rows[0] < 0 or rows[-1] >= len(run.tracks):
        raise CollectionError(f"rows must lie in 0..{len(run.tracks) - 1} (run {run.run_id!r} holds "
                              f"{len(run.tracks)} tracks)")
    return rows


def rows_of_ids(run: Run, track_ids: Sequence[str]) -> np.ndarray:
    """Library rows of ``track_ids`` that ``run`` holds, ascending, np.ndarray [shape=(r,), dtype=int64]."""
    wanted = pd.Index(pd.unique(np.asarray([str(t) for t in track_ids], dtype=object)))
    return np.flatnonzero(run.tracks["track_id"].astype(str).isin(wanted).to_numpy()).astype(np.int64)


def collection_rows(run: Run, collection: Collection) -> np.ndarray:
    """The members of ``collection`` that ``run`` holds, as its rows (ascending; possibly none)."""
    return rows_of_ids(run, collection.track_ids)


def collection_names(run: Run) -> list[str]:
    """Names of the collections of ``run``'s dataset, by name ([] when its config names no dataset)."""
    dataset = run.config.get("dataset")
    return list_collections(str(dataset))["name"].tolist() if dataset else []


def collection_groups(run: Run, name: str) -> np.ndarray | None:
    """Each track of ``run`` as its collection's name or :data:`THE_REST` (a colouring of the map),
    np.ndarray [shape=(n_tracks,), dtype=object]; None when the dataset has no collection named ``name``."""
    wanted = str(name).casefold()
    found = [c for c in all_collections(run_dataset(run)) if c.name.casefold() == wanted]
    if not found:
        return None
    groups = np.full(len(run.tracks), THE_REST, dtype=object)
    groups[collection_rows(run, found[0])] = found[0].name
    return groups


def save_selection(run: Run, name: str, rows) -> Collection:
    """Save library rows of ``run`` as a collection of its dataset (see :func:`create_collection`)."""
    rows = check_rows(run, rows)
    return create_collection(run_dataset(run), name, run.tracks["track_id"].astype(str).to_numpy()[rows])


def add_rows(run: Run, collection_id: str, rows) -> Collection:
    """Add library rows of ``run`` to a collection of its dataset (see :func:`add_to_collection`)."""
    rows = check_rows(run, rows)
    return add_to_collection(run_dataset(run), collection_id, run.tracks["track_id"].astype(str).to_numpy()[rows])


@dataclasses.dataclass(frozen=True)
class SelectionSummary:
    """What a set of tracks is: its size, its labels and (when the run has tags) its characteristic tags.

    Attributes
    ----------
    n_tracks : int
    label_mix : pd.DataFrame [shape=(n_labels, 3)]
        ``label, count, share``, most common first (:data:`UNLABELLED` for tracks without one).
    tags : list of (tag, lift) or None
        :func:`core.analysis.tags.characteristic_tags`; None when the run has no tags.
    """

    n_tracks: int
    label_mix: pd.DataFrame
    tags: list[tuple[str, float]] | None


def label_mix(labels: pd.Series) -> pd.DataFrame:
    """``label, count, share`` of a label column (missing: :data:`UNLABELLED`), most common first."""
    counts = labels.astype("string").fillna(UNLABELLED).astype(str).value_counts(sort=True)
    return pd.DataFrame({"label": counts.index.astype(str), "count": counts.to_numpy(),
                         "share": counts.to_numpy() / max(int(counts.sum()), 1)})


def selection_summary(run: Run, rows, *, tags: pd.DataFrame | None = None, n_tags: int = 5) -> SelectionSummary:
    """Size, label mix and characteristic tags (``tags``: :func:`core.analysis.tags.run_tags`, None: no tags) of rows."""
    from core.analysis.tags import characteristic_tags

    rows = check_rows(run, rows)
    found = None
    if tags is not None and tags.iloc[rows].notna().any(axis=None):
        found = characteristic_tags(tags, rows, n=n_tags)
    return SelectionSummary(n_tracks=len(rows), label_mix=label_mix(run.tracks["label"].iloc[rows]), tags=found)


def track_table(run: Run, rows) -> pd.DataFrame:
    """The selected tracks with their display ``name`` and ``row``, in the order of ``rows``."""
    rows = np.asarray(list(rows), dtype=np.int64)
    table = run.tracks.iloc[rows].reset_index(drop=True)
    return table.assign(name=display_names(table).to_numpy(), row=rows)


def _one_line(text: pd.Series) -> pd.Series:
    return text.astype(str).str.split().str.join(" ")


def m3u_playlist(tracks: pd.DataFrame) -> str:
    """An extended M3U playlist of ``tracks`` (``path``, ``duration_s`` and the name columns), in their order.

    ``#EXTM3U``, then per track ``#EXTINF:<whole seconds, -1 when unknown>,<display name>`` and the audio file's
    absolute path; names are kept to one line (a line break would start a new entry). Column-wise: 100,000
    tracks take well under a second.
    """
    seconds = pd.to_numeric(tracks["duration_s"], errors="coerce") if "duration_s" in tracks else \
        pd.Series(np.nan, index=tracks.index)
    length = seconds.round().fillna(-1).astype(np.int64).astype(str)
    paths = _one_line(pd.Series([os.path.abspath(str(p)) for p in tracks["path"]], index=tracks.index, dtype=object))
    entries = "#EXTINF:" + length + "," + _one_line(display_names(tracks)) + "\n" + paths
    return "#EXTM3U\n" + "".join(entries + "\n")


CSV_COLUMNS = ("rank", "score", "track_id", "name", "artist", "title", "label", "duration_s", "path")


def tracks_csv(tracks: pd.DataFrame) -> str:
    """``tracks`` as CSV: the columns of :data:`CSV_COLUMNS` it has (``name`` always), one row per track."""
    table = tracks.assign(name=display_names(tracks).to_numpy())
    return table[[c for c in CSV_COLUMNS if c in table.columns]].to_csv(index=False)


def collection_source(source, collection: Collection):
    """``source`` (:class:`core.analysis.sources.Source`) relabelled for a "collection vs the rest" classifier.

    Every track gets :data:`IN_COLLECTION` or :data:`THE_REST`; results go under
    ``<source folder>/collections/<collection id>/classifiers`` (the genre classifiers stay as they are).

    Raises
    ------
    CollectionError
        No member of the collection, or nothing but members, among the source's tracks.
    """
    member = source.tracks["track_id"].astype(str).isin(set(collection.track_ids)).to_numpy()
    if not member.any() or member.all():
        what = "none" if not member.any() else "all"
        raise CollectionError(f"{what} of {source.title}'s tracks are in collection {collection.name!r}: "
                              "a classifier needs tracks on both sides")
    tracks = source.tracks.assign(label=pd.array(np.where(member, IN_COLLECTION, THE_REST), dtype="string"))
    note = (f"labels: {int(member.sum())} track(s) in collection {collection.name!r} vs "
            f"{int((~member).sum())} others")
    return dataclasses.replace(source, tracks=tracks, path=source.path / "collections" / collection.collection_id,
                               notes=[*source.notes, note])
