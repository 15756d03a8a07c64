"""The query service under the Recommend page, the REST API and the Telegram bot.

One :class:`QueryService` per process holds the runs it has opened (each loaded and warmed once, shared by every
request: inference is read-only, so concurrent queries need no lock once a run is warm) and answers every query a
front end asks: recommendations for an upload, a recording or several library tracks, neighbours of a track,
the genre of a query or of a library track, and track records with display names, links and top tags.

Failures a user can cause are typed (:mod:`core.base.errors`): :class:`InvalidQuery` (bad ``k``, an empty set,
an unknown tag), :class:`NotFound` (run, track, collection), :class:`NoClassifier`, :class:`TooLarge`, and
:class:`AudioDecodeError` for unusable audio. Each front end maps them in one place.
"""
from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from core.analysis import collections
from core.analysis.genre import GenrePrediction, best_classifier, predict_genre
from core.analysis.tags import resolve_tag, run_tags, search_by_tag, tags_reason, top_tag_lists, tracks_by_tag
from core.base.constants import DEFAULT_K, DEFAULT_SET_K, MAX_QUERY_SECONDS
from core.base.errors import AudioDecodeError, ClassifyError, CollectionError, InvalidQuery, NeedsAudio, NoClassifier, NotFound, TagError
from core.data.tracks import clean_text, display_names, search_tracks
from core.data.uploads import safe_name
from core.runs.aliases import run_id_of
from core.runs.folder import Run, list_runs, load_run, resolve_run, run_summary
from core.service.links import with_links
from core.service.listening import Listening
from core.service.query import (
    Recommendation,
    load_query,
    min_query_seconds,
    more_like_these,
    neighbours_of,
    recommend_audio,
    similar_tracks,
)

NO_RUN_YET = "there is no run yet: build one with `python -m core demo` or `python -m core train`"
TOP_TAGS = 3  # musicnn tags on every track record


def default_run(name: str | Path | None = None) -> Optional[Run]:
    """The run a server answers from: ``name`` (an id or a folder path, :func:`core.runs.folder.resolve_run`) or
    the newest run that opens; None when none is named and there is no run yet (a server then starts and says
    so per request). :class:`RunError` for a named run that is missing or broken."""
    if name is None and not list_runs():
        return None
    return resolve_run(name)


def warm_up(run: Run) -> Run:
    """Load everything a query reads and answer one query of noise (and its genre) now, so the first user does
    not wait and concurrent requests never race to fill the run's lazy attributes."""
    run.config, run.tracks, run.embeddings, run.index, run.projections, run.map_fit, run.model  # noqa: B018
    noise = np.random.default_rng(0).normal(0, 0.1, int(min_query_seconds(run) * run.mel_params.sr) + 1)
    noise = noise.astype(np.float32)
    found = recommend_audio(run, noise, k=1)
    # one-off costs (torch set-up, numba compiling librosa's feature code) are paid here
    try:
        predict_genre(run, y=noise, embedding=found.embedding)
    except ClassifyError:  # a classifier that cannot take queries is reported per query
        pass
    return run


@dataclasses.dataclass(frozen=True)
class QueryAudio:
    """A decoded query: the name to show (never a path) and mono audio at the run's rate.

    Attributes
    ----------
    name : str
    y : np.ndarray [shape=(n,), dtype=float32]
    sr : int
    """

    name: str
    y: np.ndarray
    sr: int

    @property
    def seconds(self) -> float:
        return round(self.y.size / self.sr, 2)


@dataclasses.dataclass(frozen=True)
class GenreResult:
    """A query's genre as a front end shows it: the prediction, or ``note`` saying why there is none although the
    run has a classifier (it cannot take this query); both None when the run has no classifier."""

    prediction: Optional[GenrePrediction] = None
    note: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Answer:
    """What an audio query gets: its recommendation and its genre."""

    recommendation: Recommendation
    genre: GenreResult = GenreResult()


class QueryService:
    """Runs opened once per process and the queries every front end asks of them.

    Parameters
    ----------
    default : Run or None
        The run answered when none is named (:func:`default_run` finds one); it is prepared now.
    warm : bool
        Prepare each run with :func:`warm_up` (a query of noise: servers, so the first user does not wait), or
        only load its arrays and model (the dashboard, which opens runs as pages ask for them).
    """

    def __init__(self, default: Optional[Run] = None, *, warm: bool = True):
        self.warm = warm
        self.default_id = None if default is None else default.run_id
        self._runs: dict[str, Run] = {} if default is None else {default.run_id: self._prepare(default)}
        self._tags: dict[str, Optional[pd.DataFrame]] = {}
        self._lock = threading.Lock()
        self.listening = Listening(tags_of=self.tags)  # listeners' events and personalised answers

    # ------------------------------------------------------------------------------------------ runs

    def _prepare(self, run: Run) -> Run:
        if self.warm:
            return warm_up(run)
        run.embeddings, run.projections, run.tracks, run.model  # noqa: B018 (fill the lazy attributes once)
        return run

    def loaded(self) -> list[str]:
        """Ids of the runs opened so far."""
        return list(self._runs)

    def run(self, run_id: Optional[str] = None) -> Run:
        """Run ``run_id`` (None: the default run), opened and prepared on first use.

        Raises
        ------
        NotFound
            No such run among :func:`core.runs.folder.list_runs` by id or alias (a name never reaches another
            folder), or no run at all.
        RunError
            The run is broken (its message says which file).
        """
        run_id = run_id or self.default_id
        if run_id is None:
            raise NotFound(NO_RUN_YET, what="runs")
        run_id = run_id_of(run_id) or run_id  # an alias names its run (core.runs.aliases)
        if run_id in self._runs:
            return self._runs[run_id]
        if run_id not in list_runs():
            raise NotFound(f"no run named {run_id!r}", what="run")
        with self._lock:
            if run_id not in self._runs:
                self._runs[run_id] = self._prepare(load_run(run_id))
        return self._runs[run_id]

    def summary(self, run_id: str) -> dict:
        """:func:`core.runs.folder.run_summary` with ``default`` and the run's ``genre_classifier`` (model, input,
        cv_accuracy, classes; None without one); a broken run is listed with its reason, never raised."""
        summary = run_summary(run_id)
        best = None if summary["broken"] else best_classifier(load_run(run_id))
        genre = None if best is None else {"model": best.model, "input": best.input, "cv_accuracy": best.cv_mean,
                                           "classes": list(best.classes)}
        return {**summary, "default": run_id == self.default_id, "genre_classifier": genre}

    # ------------------------------------------------------------------------------------------ tracks

    def tags(self, run: Run) -> Optional[pd.DataFrame]:
        """The run's musicnn tags indexed by track_id (:func:`core.analysis.tags.run_tags`), read once; None
        without."""
        if run.run_id not in self._tags:
            tags = run_tags(run)
            self._tags[run.run_id] = None if tags is None else tags.set_axis(run.tracks["track_id"].astype(str))
        return self._tags[run.run_id]

    def records(self, run: Run, table: pd.DataFrame) -> list[dict]:
        """Rows of a track table as plain records: ``track_id, name`` (the display name), ``title, artist,
        label, file`` (the file name only, never the server's folders), ``spotify_url, youtube_url`` and ``tags``
        (the top 3 musicnn tags as ``{"tag", "likelihood"}``; [] without); a neighbours table adds ``rank,
        score`` and, for an upload, ``cosine, passage``."""
        tags = self.tags(run)
        top = ([[]] * len(table) if tags is None else
               top_tag_lists(tags.reindex(table["track_id"].astype(str)), np.arange(len(table)), n=TOP_TAGS))
        table = with_links(table).assign(name=display_names(table))
        out = []
        for row, tag_list in zip(table.to_dict("records"), top):
            record = {key: clean_text(row.get(key)) for key in ("track_id", "name", "title", "artist", "label",
                                                               "spotify_url", "youtube_url")}
            record["file"] = Path(row["path"]).name if clean_text(row.get("path")) else None
            if "rank" in row:
                record.update(rank=int(row["rank"]), score=float(row["score"]))
                for key in ("cosine", "passage"):
                    if key in row and pd.notna(row[key]):  # NaN: the run has no passages
                        record[key] = float(row[key])
            record["tags"] = tag_list
            out.append(record)
        return out

    def find_tracks(self, run: Run, q: str = "", *, tag: str = "") -> pd.DataFrame:
        """Every track matching ``q`` (:func:`core.data.tracks.search_tracks`; all tracks when blank), most likely
        to carry ``tag`` first when one is given (:func:`core.analysis.tags.tracks_by_tag`).

        Raises
        ------
        InvalidQuery
            An unknown tag (naming close ones).
        TagError
            The run has no tags to order by (saying why).
        """
        if not tag.strip():
            return search_tracks(run.tracks, q, limit=len(run.tracks)) if q.strip() else run.tracks
        try:
            name = resolve_tag(tag)
        except TagError as error:
            raise InvalidQuery(str(error)) from None
        tags = self.tags(run)
        if tags is None:
            raise TagError(f"no musicnn tags to order by: {tags_reason(run)}")
        pool = None if not q.strip() else search_tracks(run.tracks, q, limit=len(run.tracks))["row"].to_numpy(np.int64)
        return run.tracks.iloc[tracks_by_tag(tags, name, rows=pool, limit=len(run.tracks))]

    def search(self, run: Run, text: str, *, limit: int = 20) -> pd.DataFrame:
        """The search box of the dashboard and the bot: up to ``limit`` tracks matching ``text``
        (:func:`core.data.tracks.search_tracks`; none when blank), or for ``tag:NAME`` those most likely to carry
        that musicnn tag; the track columns with ``row`` and ``name``, best first.

        Raises
        ------
        TagError
            An unknown tag (naming close ones), or a run without tags (saying why).
        """
        rows = search_by_tag(run, text, limit=limit)
        if rows is None:
            return search_tracks(run.tracks, text, limit=limit)
        found = run.tracks.iloc[rows]
        return found.assign(row=rows, name=display_names(found)).reset_index(drop=True)

    def track_row(self, run: Run, track_id: str) -> int:
        """The library row of ``track_id`` (:class:`NotFound` when the run has no such track)."""
        rows = np.flatnonzero(run.tracks["track_id"].astype(str).to_numpy() == str(track_id))
        if not len(rows):
            raise NotFound(f"no track {track_id!r} in run {run.run_id!r}", what="track")
        return int(rows[0])

    def track_rows(self, run: Run, track_ids) -> np.ndarray:
        """Rows of ``track_ids`` (repeats dropped), ascending, np.ndarray [shape=(r,), dtype=int64].

        Raises
        ------
        InvalidQuery
            No ids at all.
        NotFound
            Naming (up to three of) the ids the run lacks.
        """
        ids = list(dict.fromkeys(str(t) for t in track_ids))
        if not ids:
            raise InvalidQuery("track_ids is empty: name at least one track")
        rows = collections.rows_of_ids(run, ids)
        if len(rows) < len(ids):
            known = set(run.tracks["track_id"].astype(str).to_numpy()[rows])
            missing = [t for t in ids if t not in known]
            raise NotFound(f"{len(missing)} track id(s) not in run {run.run_id!r}: "
                           f"{', '.join(map(repr, missing[:3]))}{' ...' if len(missing) > 3 else ''}", what="track")
        return rows

    def collection(self, run: Run, collection_id: str) -> collections.Collection:
        """A collection of the run's dataset (:class:`NotFound` when there is none of that id)."""
        try:
            return collections.load_collection(collections.run_dataset(run), collection_id)
        except CollectionError as error:
            raise NotFound(str(error), what="collection") from None

    # ------------------------------------------------------------------------------------------ queries

    def load(self, run: Run, source, *, name: Optional[str] = None,
             max_seconds: float = MAX_QUERY_SECONDS) -> QueryAudio:
        """Decode a path or file-like upload as a query of ``run`` (:func:`core.service.query.load_query`);
        ``name`` (default: the source's own) is shown, only its base name (:func:`core.data.uploads.safe_name`).

        Raises
        ------
        AudioDecodeError
            Empty, corrupt, not audio, too short or silent, naming the file.
        """
        shown = safe_name(name if name is not None else str(getattr(source, "name", source)))
        return QueryAudio(name=shown, y=load_query(run, source, max_seconds=max_seconds), sr=run.mel_params.sr)

    def recording(self, run: Run, y: np.ndarray, *, name: str = "your recording") -> QueryAudio:
        """A signal already at the run's rate (a microphone recording) as a query."""
        return QueryAudio(name=name, y=np.asarray(y, dtype=np.float32), sr=run.mel_params.sr)

    def recommend(self, run: Run, query: QueryAudio, *, k: int = DEFAULT_K, genre: bool = True) -> Answer:
        """The ``k`` library tracks nearest ``query`` (:func:`core.service.query.recommend_audio`) and, with
        ``genre``, its genre (:meth:`query_genre`).

        Raises
        ------
        InvalidQuery
            ``k`` is not 1 to the run's size.
        """
        found = recommend_audio(run, query.y, k=k)
        if not genre:
            return Answer(recommendation=found)
        return Answer(recommendation=found, genre=self.query_genre(run, y=query.y, embedding=found.embedding))

    def neighbours(self, run: Run, row: int, *, k: int = DEFAULT_K) -> pd.DataFrame:
        """The ``k`` nearest other tracks of library track ``row`` (:func:`core.service.query.neighbours_of`)."""
        return neighbours_of(run, row, k=k)

    def nearest_tracks(self, run: Run, row: int, *, k: int = DEFAULT_K) -> pd.DataFrame:
        """The ``k`` nearest tracks of library track ``row``, itself first (:func:`core.service.query.similar_tracks`)."""
        return similar_tracks(run, row, k=k)

    def similar(self, run: Run, rows, *, k: int = DEFAULT_SET_K) -> pd.DataFrame:
        """The ``k`` tracks nearest a set of library rows, none of the set
        (:func:`core.service.query.more_like_these`; :class:`CollectionError` for an unusable set)."""
        return more_like_these(run, rows, k=k)

    # ------------------------------------------------------------------------------------------ genre

    def has_genre(self, run: Run) -> bool:
        return best_classifier(run) is not None

    def genre(self, run: Run, *, y: Optional[np.ndarray] = None,
              embedding: Optional[np.ndarray] = None) -> GenrePrediction:
        """:func:`core.analysis.genre.predict_genre` of audio ``y`` [shape=(n,)] and/or its ``embedding``
        [shape=(d,)].

        Raises
        ------
        NoClassifier
            The run has no saved classifier.
        NeedsAudio
            Its classifier takes audio features and ``y`` is None.
        ClassifyError
            Its classifier needs inputs the query lacks.
        """
        self.check_genre(run)
        return predict_genre(run, y=y, embedding=embedding)

    def check_genre(self, run: Run) -> None:
        """:class:`NoClassifier` (saying how to train one) when the run has no saved classifier."""
        if not self.has_genre(run):
            raise NoClassifier(f"run {run.run_id!r} has no saved classifier: train one with "
                               f"`python -m core classify --run {run.run_id}` or on the Classifiers page")

    def query_genre(self, run: Run, *, y: Optional[np.ndarray] = None,
                    embedding: Optional[np.ndarray] = None) -> GenreResult:
        """:meth:`genre` for showing beside an answer: empty without a classifier, a note when it cannot take the
        query."""
        if not self.has_genre(run):
            return GenreResult()
        try:
            return GenreResult(self.genre(run, y=y, embedding=embedding))
        except ClassifyError as error:
            return GenreResult(note=str(error))

    def track_genre(self, run: Run, row: int) -> GenreResult:
        """:meth:`library_genre` for showing beside a library track's neighbours: empty without a classifier, a
        note when the track's file is gone or cannot be classified."""
        if not self.has_genre(run):
            return GenreResult()
        try:
            return GenreResult(self.library_genre(run, row))
        except (AudioDecodeError, ClassifyError) as error:
            return GenreResult(note=str(error))

    def library_genre(self, run: Run, row: int) -> GenrePrediction:
        """:meth:`genre` of library track ``row``: its stored embedding, and its audio file only when the
        classifier takes audio features (:class:`AudioDecodeError` naming the file, not its folders, when that
        file is gone or unusable)."""
        embedding = run.embeddings[row]
        try:
            return self.genre(run, embedding=embedding)
        except NeedsAudio:
            path = run.tracks["path"].iloc[row]
            try:
                y = load_query(run, path)
            except AudioDecodeError as error:
                raise AudioDecodeError(Path(path).name, error.reason) from None
            return self.genre(run, y=y, embedding=embedding)
