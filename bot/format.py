"""The bot's replies as Telegram HTML (parse mode ``HTML``): pure functions of tables and strings, no I/O.

Every piece of user or library text goes through :func:`esc`, so a title such as ``Rock & Roll <live> "2"``
cannot break the markup; every reply fits in one Telegram message (:data:`MAX_MESSAGE` characters).
"""
from __future__ import annotations

import html
from typing import Mapping, Sequence

import pandas as pd

from core.base import TimbreError, without_paths
from core.data import clean_text, display_name

MAX_MESSAGE = 4096  # Telegram's limit on one message's text
MAX_NAME = 120  # a track or query name longer than this is cut (with an ellipsis) before escaping

HINT = ("Send me a piece of music (an audio file, a voice message or a video note) and I will find the most "
        "similar tracks, or type <code>/similar</code> and part of a title. /help says more.")

SIMILAR_USAGE = "Type <code>/similar</code> and part of a title, an artist or a file name, e.g. <code>/similar piano</code>."
GENRE_USAGE = ("Send <code>/genre</code> as the caption of an audio file, or as a reply to a message with audio "
               "(a file, a voice message or a video note).")


def esc(value) -> str:
    """``value`` as text safe inside HTML elements and attribute values (``<``, ``>``, ``&``, both quotes)."""
    return html.escape(str(value), quote=True)


def short(text: str, limit: int = MAX_NAME) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def link(url: str, text: str) -> str:
    return f'<a href="{esc(url)}">{esc(text)}</a>'


def track_line(track: Mapping) -> str:
    """One result: ``rank. name · label · score`` and a second line with the Spotify and YouTube links.

    Parameters
    ----------
    track : mapping
        A neighbours row (:func:`core.service.neighbours_table` plus :func:`core.service.links.with_links`): ``rank``,
        ``score``, ``spotify_url``, ``youtube_url`` and what :func:`core.data.tracks.display_name` reads.
    """
    parts = [f"<b>{esc(short(display_name(track)))}</b>"]
    label = clean_text(track.get("label"))
    if label:
        parts.append(esc(short(label, 40)))
    parts.append(("blend " if "taste" in track else "similarity ") + f"{float(track['score']):.3f}")
    links = [link(track[key], name) for key, name in (("spotify_url", "Spotify"), ("youtube_url", "YouTube"))
             if clean_text(track.get(key))]
    line = f"{int(track['rank'])}. " + " · ".join(parts)
    line += "\n    " + " · ".join(links) if links else ""
    why = track.get("why")
    if isinstance(why, (list, tuple)) and why:  # an answer for this chat: why each track is there
        line += f"\n    <i>{esc(short('; '.join(why), 300))}</i>"
    return line


def fit(header: str, items: Sequence[str], footer: str = "", *, limit: int = MAX_MESSAGE) -> str:
    """``header``, as many ``items`` as fit (one blank line apart) and ``footer`` within ``limit`` characters;
    the number of items left out is said. Counted on the HTML source, which is never shorter than what
    Telegram counts (the text after parsing), so the message is never refused as too long."""
    def build(kept: Sequence[str], dropped: int) -> str:
        note = [f"<i>… {dropped} more left out (too long for one message)</i>"] if dropped else []
        return "\n\n".join([header, *kept, *note, *([footer] if footer else [])])

    for n in range(len(items), -1, -1):
        text = build(items[:n], len(items) - n)
        if len(text) <= limit:
            return text
    return short(build([], len(items)), limit)  # only an absurd header/footer gets here


def genre_text(label: str, probabilities: Mapping[str, float], *, top: int = 3) -> str:
    """``Predicted genre: <b>rock</b> (81%; jazz 12%, ...)`` with the ``top`` most probable classes."""
    ranked = sorted(probabilities.items(), key=lambda kv: -kv[1])
    others = ", ".join(f"{esc(name)} {p:.0%}" for name, p in ranked[:top] if name != label)
    own = f"{probabilities[label]:.0%}" if label in probabilities else ""
    detail = "; ".join(x for x in (own, others) if x)
    return f"Predicted genre: <b>{esc(label)}</b>" + (f" ({detail})" if detail else "")


def no_genre_message(reason: str) -> str:
    return f"<i>No genre prediction: {esc(short(reason, 300))}</i>"


NO_GENRE = no_genre_message("this run has no saved genre classifier.")


def recommendation_message(neighbours: pd.DataFrame, *, query: str, genre: str | None = None,
                           genre_first: bool = False) -> str:
    """The reply to audio: the top tracks most similar to ``query`` (a name for the user's file).

    Parameters
    ----------
    neighbours : pd.DataFrame [shape=(k, ...)]
        Best first, with the columns :func:`track_line` reads.
    query : str
        What the user sent ("your voice message", a file name, ...).
    genre : str or None
        A line from :func:`genre_text`; None: the run has no classifier.
    genre_first : bool
        Put the genre at the top (the ``/genre`` command) and say so when there is none.
    """
    header = f"Most similar to {esc(short(query))}:"
    if genre_first:
        header = f"{genre or NO_GENRE}\n\n{header}"
    footer = "" if genre_first else genre or ""
    return fit(header, [track_line(row) for row in neighbours.to_dict("records")], footer)


def similar_message(match: Mapping, neighbours: pd.DataFrame, *, other_matches: Sequence[str] = (),
                    genre: str | None = None) -> str:
    """The reply to ``/similar TEXT``: which library track matched, its nearest tracks, other matches briefly.

    ``neighbours`` must not contain ``match`` itself; ``other_matches`` are display names of the next best
    search hits.
    """
    header = f"Matched <b>{esc(short(display_name(match)))}</b>"
    label = clean_text(match.get("label"))
    header += (f" ({esc(short(label, 40))})" if label else "") + ". Most similar tracks:"
    footer = [genre] if genre else []
    if other_matches:
        names = ", ".join(esc(short(name, 60)) for name in other_matches)
        footer.append(f"Also matching: {names}. Type more of the name to pick another.")
    return fit(header, [track_line(row) for row in neighbours.to_dict("records")], "\n\n".join(footer))


def no_match_message(query: str) -> str:
    return f"No track in this run matches “{esc(short(query))}”. Try part of a title, an artist or a file name."


def error_message(reason: str) -> str:
    """A plain reply for audio that cannot be used; ``reason`` names the file and what is wrong."""
    return f"Sorry, I cannot use that: {esc(short(reason, 600))}"


def refusal(error: TimbreError) -> str:
    """The one place the bot turns core's typed errors (bad or too large audio, a bad query, a missing run or
    track) into a reply: the reason, plainly, without the server's folders."""
    return error_message(without_paths(str(error)))


def not_audio_message(name: str) -> str:
    return f"{esc(short(name))} does not look like audio. " + HINT


def failure_message(detail: str, *, from_telegram: bool) -> str:
    """The reply when handling a message failed unexpectedly (the bot itself keeps running)."""
    if from_telegram:
        return f"Sorry, Telegram refused a request for that message: {esc(short(detail, 300))}"
    return (f"Sorry, something went wrong with that message ({esc(short(detail, 100))}). I am still running: "
            "try again, or send something else.")


def help_message(*, run_id: str, n_tracks: int, has_genre: bool, max_download_mb: float) -> str:
    """What ``/start`` and ``/help`` answer."""
    genre = ("and the predicted genre" if has_genre
             else "(this run has no genre classifier, so no genre prediction)")
    return "\n".join([
        "<b>Timbre Atlas</b> finds music that sounds alike.",
        "",
        f"• Send an <b>audio file</b>, a <b>voice message</b> or a <b>video note</b> (up to {max_download_mb:g} MB, "
        f"at least a few seconds): I answer with the 5 most similar of the {n_tracks} tracks in run "
        f"<code>{esc(run_id)}</code>, each with its similarity score and Spotify and YouTube links, {genre}.",
        "• <code>/similar TEXT</code>: find a library track by title, artist or file name and list its "
        "nearest tracks.",
        "• <code>/genre</code> as the caption of audio, or as a reply to it: the genre probabilities first.",
        "• 👍 / 👎 under an answer: your likes re-rank the next answers for you (each track says why); "
        "/foryou lists tracks new to you, /mydata shows what I keep about this chat, /forget deletes it.",
        "• /help: this message.",
    ])


LIKE, DISLIKE = "liked", "disliked"  # callback data: "<kind>:<track_id>" (Telegram allows 64 bytes)


def feedback_keyboard(neighbours: pd.DataFrame) -> list[list[tuple[str, str]]]:
    """One row of buttons per listed track: ``(text, callback_data)`` for 👍 and 👎 with its rank."""
    return [[(f"👍 {int(t['rank'])}", f"{LIKE}:{t['track_id']}"), (f"👎 {int(t['rank'])}", f"{DISLIKE}:{t['track_id']}")]
            for t in neighbours.to_dict("records")]


def parse_feedback(data: str) -> tuple[str, str] | None:
    """``(kind, track_id)`` of a button's callback data; None for anything else."""
    kind, _, track_id = (data or "").partition(":")
    return (kind, track_id) if kind in (LIKE, DISLIKE) and track_id else None


def feedback_answer(kind: str, name: str) -> str:
    """The little notice a button press gets (plain text, at most 200 characters)."""
    verb = "Liked" if kind == LIKE else "Disliked"
    return short(f"{verb} {name}. Your next answers take it into account.", 200)


def for_you_message(neighbours: pd.DataFrame) -> str:
    return fit("<b>For you</b>: tracks you have not rated yet, from your likes and what listeners of the same "
               "tracks played.", [track_line(row) for row in neighbours.to_dict("records")])


def my_data_message(counts: Mapping[str, int], events: pd.DataFrame) -> str:
    """What the bot keeps of this chat: counts per kind and the newest events."""
    if not sum(counts.values()):
        return "I keep nothing about this chat: no plays, likes, dislikes or skips."
    header = ("What I keep about this chat: " + ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
              + ". /forget deletes it all.")
    items = [f"{esc(kind)} <b>{esc(short(str(name if isinstance(name, str) else track), 80))}</b>"
             for kind, name, track in zip(events["kind"], events.get("name", events["track_id"]), events["track_id"])]
    return fit(header, items[:20])


def forgotten_message(n: int) -> str:
    return f"Deleted everything I kept about this chat ({n} events). Answers are pure audio similarity again."
