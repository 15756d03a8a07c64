"""The bot's answers as ready-to-send HTML: the query service of ``core`` on one run, formatted for Telegram.

Every method is synchronous and CPU-bound (decode, embed, search); the handlers call them through
``asyncio.to_thread`` so the event loop keeps polling while a query is worked on.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from core.base import DEFAULT_K, MAX_K, MAX_UPLOAD_MB, InvalidQuery, ListenerError, TagError, TooLarge, check_bounds, doc
from core.data import check_upload, display_name, named_buffer
from core.listeners import Listener
from core.runs import Run
from core.service import GenreResult, QueryService, with_links

from . import format as fmt

TELEGRAM_DOWNLOAD_MB = 20  # the cloud Bot API hands bots files up to this size (getFile)
OTHER_MATCHES = 3  # how many further /similar hits are named


@dataclasses.dataclass(frozen=True)
class BotConfig:
    """Settings of ``python -m bot`` (each one a flag)."""

    run: Optional[str] = doc(None, "run to answer from (default: the newest complete run)")
    k: int = doc(DEFAULT_K, "tracks per answer (at most the run's other tracks: checked at start)", at_least=1,
                 at_most=MAX_K)
    workers: int = doc(4, "messages worked on at once (decoding and embedding run in worker threads, so one "
                          "long file does not hold up everyone else)", at_least=1, at_most=64)
    local_mode: bool = doc(False, "the Bot API server at TELEGRAM_API_URL runs with --local, so files up to the "
                                  f"app's {MAX_UPLOAD_MB} MB limit can be downloaded, not only Telegram's "
                                  f"{TELEGRAM_DOWNLOAD_MB} MB")

    def __post_init__(self):
        check_bounds(self)


@dataclasses.dataclass(frozen=True)
class Reply:
    """A reply's HTML and the tracks it lists in order (their ids: the 👍 / 👎 buttons), as a table."""

    text: str
    tracks: Optional[object] = None  # pd.DataFrame with rank and track_id, or None


@dataclasses.dataclass
class Replies:
    """The bot's replies for the default run of ``service`` (:class:`core.service.service.QueryService`)."""

    service: QueryService
    config: BotConfig = dataclasses.field(default_factory=BotConfig)

    @classmethod
    def for_run(cls, run: Run, config: BotConfig = BotConfig()) -> "Replies":
        """Replies from ``run``, loaded and warmed now (the first user does not wait)."""
        return cls(QueryService(run), config)

    @property
    def run(self) -> Run:
        return self.service.run()

    @property
    def max_download_mb(self) -> float:
        return MAX_UPLOAD_MB if self.config.local_mode else min(TELEGRAM_DOWNLOAD_MB, MAX_UPLOAD_MB)

    def help(self) -> str:
        return fmt.help_message(run_id=self.run.run_id, n_tracks=len(self.run.tracks),
                                has_genre=self.service.has_genre(self.run), max_download_mb=self.max_download_mb)

    def check_size(self, name: str, file_size: Optional[int]) -> None:
        """Refuse, before downloading, a file Telegram says is empty or larger than the bot may take.

        Raises
        ------
        AudioDecodeError
            Empty.
        TooLarge
            Naming the file, its size and the limit: the app's (``MAX_UPLOAD_MB``) or, with the cloud Bot API,
            Telegram's download limit for bots.
        """
        if file_size is None:  # not every update says; Telegram itself refuses a too-large getFile then
            return
        check_upload(name, file_size, max_mb=MAX_UPLOAD_MB)
        if file_size > self.max_download_mb * 2**20:
            raise TooLarge(name, f"too large: {file_size / 2**20:.1f} MB, but Telegram lets bots download "
                                 f"at most {TELEGRAM_DOWNLOAD_MB} MB. Send a shorter clip.")

    @staticmethod
    def genre_line(genre: GenreResult) -> Optional[str]:
        """:func:`bot.format.genre_text` of a query's genre; a line saying why when the run's classifier could not
        take the query (the tracks are still worth sending); None when the run has no classifier."""
        if genre.prediction is not None:
            return fmt.genre_text(genre.prediction.label, genre.prediction.probabilities)
        return None if genre.note is None else fmt.no_genre_message(genre.note)

    def audio(self, data: bytes, name: str, *, query: str, genre_first: bool = False,
              chat: Optional[str] = None) -> Reply:
        """The reply to audio the user sent: the ``k`` most similar tracks (re-ranked for ``chat``'s likes) and
        the predicted genre.

        Raises
        ------
        AudioDecodeError
            Empty, too large, corrupt, not audio, too short or silent, naming ``name``.
        """
        check_upload(name, len(data), max_mb=MAX_UPLOAD_MB)
        answer = self.service.recommend(self.run, self.service.load(self.run, named_buffer(data, name)),
                                        k=self.config.k)
        found = answer.recommendation
        near = self.personal(chat, found.neighbours, embedding=found.embedding, query_name=query)
        return Reply(fmt.recommendation_message(with_links(near), query=query, genre=self.genre_line(answer.genre),
                                                genre_first=genre_first), near)

    def similar(self, text: str, *, chat: Optional[str] = None) -> Reply:
        """The reply to ``/similar TEXT``: the best search hit, its ``k`` nearest tracks (re-ranked for
        ``chat``'s likes), the next hits."""
        try:
            hits = self.service.search(self.run, text, limit=1 + OTHER_MATCHES)
        except TagError as error:  # "tag:NAME" with an unknown tag, or a run without tags
            return Reply(fmt.refusal(error))
        if hits.empty:
            return Reply(fmt.no_match_message(text))
        best = hits.iloc[0]
        row = int(best["row"])
        near = self.service.neighbours(self.run, row, k=min(self.config.k, len(self.run.tracks) - 1))
        near = self.personal(chat, near, embedding=self.run.embeddings[row], query_name=str(best["name"]),
                             exclude=[row])
        return Reply(fmt.similar_message(best, with_links(near), other_matches=list(hits["name"].iloc[1:]),
                                         genre=self.genre_line(self.service.track_genre(self.run, row))), near)

    # ------------------------------------------------------------------------------------------ listening

    def listener(self, chat: Optional[str]) -> Optional[Listener]:
        """The chat as a listener (None without a chat, or when the store cannot be read: answers are then pure
        audio)."""
        if chat is None:
            return None
        try:
            return self.service.listening.listener("telegram", str(chat))
        except ListenerError:
            return None

    def personal(self, chat: Optional[str], near, *, embedding, query_name: str, exclude=None):
        """``near`` re-ranked for the chat's likes (unchanged for a chat without any), with ``why``."""
        answer = self.service.listening.personalise(self.run, self.listener(chat), near, embedding=embedding,
                                                    k=len(near), query_name=query_name, exclude=exclude)
        return answer.neighbours if answer.personal else near

    def feedback(self, chat: str, track_id: str, kind: str) -> str:
        """Record a 👍 / 👎 of ``chat`` on a track; the notice to show (the reason when it could not be kept)."""
        try:
            who = self.service.listening.listener("telegram", str(chat))
            self.service.listening.record(self.run, who, track_id, kind, source="bot")
        except (ListenerError, InvalidQuery) as error:
            return fmt.short(f"Not recorded: {error}", 200)
        row = self.service.track_row(self.run, track_id)
        return fmt.feedback_answer(kind, display_name(self.run.tracks.iloc[row]))

    def for_you(self, chat: str) -> Reply:
        """``/foryou``: tracks new to the chat, or what to do first."""
        who = self.listener(chat)
        if who is None:
            return Reply(fmt.error_message("listener data is unavailable right now"))
        try:
            found = self.service.listening.for_you(self.run, who, k=self.config.k).neighbours
        except InvalidQuery as error:
            return Reply(fmt.error_message(str(error)))
        return Reply(fmt.for_you_message(with_links(found)), found)

    def my_data(self, chat: str) -> str:
        """``/mydata``: what the bot keeps about this chat, and only this chat."""
        try:
            data = self.service.listening.my_data(self.service.listening.listener("telegram", str(chat)), run=self.run)
        except ListenerError as error:
            return fmt.refusal(error)
        return fmt.my_data_message(data["counts"], data["events"])

    def forget(self, chat: str) -> str:
        """``/forget``: delete everything kept about this chat."""
        try:
            n = self.service.listening.forget(self.service.listening.listener("telegram", str(chat)))
        except ListenerError as error:
            return fmt.refusal(error)
        return fmt.forgotten_message(n)
