"""What the bot does, without Telegram: one loaded run, queries answered as ready-to-send HTML.

Every method is synchronous and CPU-bound (decode, embed, search); the handlers call them through
``asyncio.to_thread`` so the event loop keeps polling while a query is worked on.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import numpy as np

from core.analysis.genre import best_classifier, predict_genre
from core.base.config import doc
from core.base.errors import AudioDecodeError, ClassifyError
from core.data.tracks import search_tracks
from core.data.uploads import MAX_UPLOAD_MB, check_upload, named_buffer
from core.runs.folder import Run
from core.service.links import with_links
from core.service.query import load_query, neighbours_of, recommend_audio, warm_up

from . import format as fmt

TELEGRAM_DOWNLOAD_MB = 20  # the cloud Bot API hands bots files up to this size (getFile)
OTHER_MATCHES = 3  # how many further /similar hits are named


@dataclasses.dataclass(frozen=True)
class BotConfig:
    """Settings of ``python -m bot`` (each one a flag)."""

    run: Optional[str] = doc(None, "run to answer from (default: the newest complete run)")
    k: int = doc(5, "tracks per answer")
    workers: int = doc(4, "messages worked on at once (decoding and embedding run in worker threads, so one "
                          "long file does not hold up everyone else)")
    local_mode: bool = doc(False, "the Bot API server at TELEGRAM_API_URL runs with --local, so files up to the "
                                  f"app's {MAX_UPLOAD_MB} MB limit can be downloaded, not only Telegram's "
                                  f"{TELEGRAM_DOWNLOAD_MB} MB")


@dataclasses.dataclass
class Service:
    """A run loaded once, answering the bot's queries."""

    run: Run
    config: BotConfig = dataclasses.field(default_factory=BotConfig)

    @property
    def max_download_mb(self) -> float:
        return MAX_UPLOAD_MB if self.config.local_mode else min(TELEGRAM_DOWNLOAD_MB, MAX_UPLOAD_MB)

    def warm(self) -> "Service":
        """Load the run and answer one query now (:func:`core.service.query.warm_up`): the first user does not wait."""
        warm_up(self.run)
        return self

    def help(self) -> str:
        return fmt.help_message(run_id=self.run.run_id, n_tracks=len(self.run.tracks),
                                has_genre=self.has_genre(), max_download_mb=self.max_download_mb)

    def check_size(self, name: str, file_size: Optional[int]) -> None:
        """Refuse, before downloading, a file Telegram says is empty or larger than the bot may take.

        Raises
        ------
        AudioDecodeError
            Naming the file, its size and the limit: the app's (``MAX_UPLOAD_MB``) or, with the cloud Bot API,
            Telegram's download limit for bots.
        """
        if file_size is None:  # not every update says; Telegram itself refuses a too-large getFile then
            return
        check_upload(name, file_size, max_mb=MAX_UPLOAD_MB)
        if file_size > self.max_download_mb * 2**20:
            raise AudioDecodeError(name, f"too large: {file_size / 2**20:.1f} MB, but Telegram lets bots download "
                                         f"at most {TELEGRAM_DOWNLOAD_MB} MB. Send a shorter clip.")

    def has_genre(self) -> bool:
        return best_classifier(self.run) is not None

    def genre_line(self, *, y: Optional[np.ndarray] = None, embedding: Optional[np.ndarray] = None
                   ) -> Optional[str]:
        """:func:`bot.format.genre_text` of the run's best classifier for audio ``y`` [shape=(n,)] and its
        ``embedding`` [shape=(d,)]; None when the run has no classifier. A classifier that cannot take this
        query gives a line saying why: the tracks are still worth sending."""
        try:
            prediction = predict_genre(self.run, y=y, embedding=embedding)
        except ClassifyError as error:
            return fmt.no_genre_message(str(error))
        return None if prediction is None else fmt.genre_text(prediction.label, prediction.probabilities)

    def library_genre_line(self, row: int) -> Optional[str]:
        """:meth:`genre_line` of library track ``row``: its stored embedding, and its audio file only when the
        classifier needs audio features (no genre line when that file is gone)."""
        try:
            return self.genre_line(embedding=self.run.embeddings[row])
        except ValueError:  # the classifier takes audio features: decode the track as a query would be
            path = self.run.tracks["path"].iloc[row]
            try:
                y = self.load(path)
            except AudioDecodeError as error:  # named without the server's folders
                return fmt.no_genre_message(f"{Path(path).name}: {error.reason}")
            return self.genre_line(y=y, embedding=self.run.embeddings[row])

    def load(self, source) -> np.ndarray:
        """Query audio from a path or named buffer: mono at the run's rate, at least one training chunk long."""
        return load_query(self.run, source)

    def audio(self, data: bytes, name: str, *, query: str, genre_first: bool = False) -> str:
        """The reply to audio the user sent: the ``k`` most similar tracks and the predicted genre.

        Raises
        ------
        AudioDecodeError
            Empty, corrupt, not audio, too short or silent, naming ``name``.
        """
        check_upload(name, len(data), max_mb=MAX_UPLOAD_MB)
        y = self.load(named_buffer(data, name))
        found = recommend_audio(self.run, y, k=self.config.k)
        genre = self.genre_line(y=y, embedding=found.embedding)
        return fmt.recommendation_message(with_links(found.neighbours), query=query, genre=genre,
                                          genre_first=genre_first)

    def similar(self, text: str) -> str:
        """The reply to ``/similar TEXT``: the best search hit, its ``k`` nearest tracks, the next hits."""
        hits = search_tracks(self.run.tracks, text, limit=1 + OTHER_MATCHES)
        if hits.empty:
            return fmt.no_match_message(text)
        best = hits.iloc[0]
        row = int(best["row"])
        near = neighbours_of(self.run, row, k=min(self.config.k, len(self.run.tracks) - 1))
        genre = self.library_genre_line(row)
        return fmt.similar_message(best, with_links(near), other_matches=list(hits["name"].iloc[1:]),
                                   genre=genre)
