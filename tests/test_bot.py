"""The Telegram bot: reply formatting (pure functions), the service on a tiny run, and the real ``python -m bot``
process end to end against a fake Bot API server (tests/fake_telegram.py), with no internet."""
from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf

from bot import format as fmt
from bot.replies import BotConfig, Replies
from core.audio.decode import to_mono_resampled
from core.base.errors import AudioDecodeError, TooLarge
from core.base.paths import REPO_ROOT as ROOT
from core.runs.folder import load_run
from core.service.links import track_links, with_links
from tests.audio_files import write_audio
from tests.fake_telegram import FakeTelegram
from tests.run_copies import classified_run

TOKEN = "123456:TEST-TOKEN"
REPLY_TIMEOUT_S = 90


# ------------------------------------------------------------------------------------------- formatting
class _Telegramish(HTMLParser):
    """Parses a reply as Telegram would: the tags used, the visible text, the link targets."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.text, self.hrefs = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.hrefs += [value for name, value in attrs if name == "href"]

    def handle_data(self, data):
        self.text.append(data)


def parse(message: str) -> _Telegramish:
    parser = _Telegramish()
    parser.feed(message)
    parser.close()
    return parser


def table(n: int, *, title: str = "Song", artist: str = "Band") -> pd.DataFrame:
    rows = [{"rank": i + 1, "track_id": f"t{i}", "score": 1 - i / 100, "title": f"{title} {i}", "artist": artist,
             "label": "rock" if i % 2 else None, "path": f"/music/{i}.mp3"} for i in range(n)]
    frame = pd.DataFrame(rows)
    return with_links(frame, resolve=False)


def test_titles_are_escaped_and_links_kept():
    nasty_title, nasty_artist = 'Rock & Roll <live> "2"', "O'Neil & <Sons>"
    neighbours = table(2, title=nasty_title, artist=nasty_artist)
    message = fmt.recommendation_message(neighbours, query='my <clip> & "take"')
    parsed = parse(message)
    assert set(parsed.tags) <= {"b", "a", "i", "code"}  # no tag came from a title
    visible = "".join(parsed.text)
    assert f"{nasty_artist} - {nasty_title} 0" in visible and 'my <clip> & "take"' in visible
    assert "<live>" not in message and "& " not in message  # escaped in the source
    expected = [track_links(r, resolve=False) for r in neighbours.to_dict("records")]
    assert parsed.hrefs == [u for x in expected for u in (x["spotify_url"], x["youtube_url"])]
    assert "similarity 1.000" in visible and "similarity 0.990" in visible
    assert "rock" in visible.split("\n\n")[2]  # the second track's label; the first has none


def test_long_lists_fit_one_message():
    neighbours = table(300, title="A rather long title " * 5)
    message = fmt.recommendation_message(neighbours, query="q", genre=fmt.genre_text("rock", {"rock": 0.9}))
    assert len(message) <= fmt.MAX_MESSAGE
    kept = re.findall(r"^(\d+)\. ", message, flags=re.M)
    assert kept == [str(i) for i in range(1, len(kept) + 1)] and 0 < len(kept) < 300  # best first, cut at the end
    assert f"… {300 - len(kept)} more left out" in message
    assert message.endswith("Predicted genre: <b>rock</b> (90%)")  # the footer survives the cut
    assert len(fmt.short("x" * 5000)) == fmt.MAX_NAME  # an absurd title is cut before it can fill a message
    assert len(fmt.recommendation_message(table(3, title="x" * 5000), query="y" * 5000)) <= fmt.MAX_MESSAGE


def test_genre_text_and_similar_message():
    text = fmt.genre_text("jazz & blues", {"rock": 0.3, "jazz & blues": 0.6, "pop": 0.1})
    assert text == "Predicted genre: <b>jazz &amp; blues</b> (60%; rock 30%, pop 10%)"
    match = {"title": "Piano <b>", "artist": None, "label": "piano"}
    message = fmt.similar_message(match, table(2), other_matches=["Piano 2 & co"], genre=text)
    assert message.startswith("Matched <b>Piano &lt;b&gt;</b> (piano). Most similar tracks:")
    assert "Also matching: Piano 2 &amp; co." in message and text in message
    assert fmt.error_message("x.mp3: <corrupt>") == "Sorry, I cannot use that: x.mp3: &lt;corrupt&gt;"


# ------------------------------------------------------------------------------------------- the service
@pytest.fixture(scope="module")
def service(tiny_run_id) -> Replies:
    return Replies.for_run(load_run(tiny_run_id))


def test_sizes_are_checked_before_download(service, tiny_run_id):
    mb = 2**20
    service.check_size("a.mp3", 19 * mb)  # fine
    service.check_size("a.mp3", None)  # unknown: Telegram decides
    with pytest.raises(TooLarge, match=r"a.mp3: too large: 25.0 MB, but Telegram lets bots download at most 20 MB"):
        service.check_size("a.mp3", 25 * mb)
    with pytest.raises(AudioDecodeError, match="empty"):
        service.check_size("a.mp3", 0)
    local = Replies.for_run(load_run(tiny_run_id), BotConfig(local_mode=True))
    local.check_size("a.mp3", 150 * mb)
    with pytest.raises(TooLarge, match=r"too large: 300.0 MB, the limit is 200 MB"):
        local.check_size("a.mp3", 300 * mb)


def test_similar_names_the_match_and_excludes_it(service):
    message = service.similar("PIANO").text
    assert message.startswith("Matched <b>piano_0</b> (piano). Most similar tracks:")
    lines = re.findall(r"^\d+\. <b>([^<]+)</b>", message, flags=re.M)
    assert len(lines) == 5 and "piano_0" not in lines
    assert "Also matching: piano_1, piano_2, piano_3." in message
    assert service.similar("no such track").text.startswith("No track in this run matches")


def test_similar_takes_the_search_boxs_tag_search(service):
    """/similar goes through QueryService.search: ``tag:NAME`` matches the track most likely to carry the tag,
    an unknown tag is refused with the reason (not a traceback in the worker)."""
    best = service.service.search(service.run, "tag:mellow", limit=1)["name"].iloc[0]
    assert service.similar("tag:mellow").text.startswith(f"Matched <b>{best}</b>")
    refused = service.similar("tag:pianoo").text
    assert refused.startswith("Sorry, I cannot use that:") and "no musicnn tag named &#x27;pianoo&#x27;" in refused


def test_missing_token_is_a_clear_exit(monkeypatch, capsys):
    from bot.__main__ import main

    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    assert main([]) == 2
    assert "TELEGRAM_BOT_TOKEN is not set" in capsys.readouterr().err


def test_media_of_each_kind():
    from telegram import Message

    from bot.handlers import media_of

    base = {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}}

    def media(**content):
        return media_of(Message.de_json({**base, **content}, None))

    f = {"file_id": "f", "file_unique_id": "u", "file_size": 10}
    assert media(voice={**f, "duration": 3}).query == "your voice message"
    assert media(video_note={**f, "length": 240, "duration": 3}).name == "video note.mp4"
    assert media(audio={**f, "duration": 3, "performer": "A", "title": "B", "file_name": "../x.mp3"}).query == "A - B"
    assert media(audio={**f, "duration": 3, "file_name": "../../etc/x.mp3"}).name == "x.mp3"
    assert media(document={**f, "file_name": "song.FLAC", "mime_type": "application/octet-stream"}).name == "song.FLAC"
    assert media(document={**f, "file_name": "notes.pdf", "mime_type": "application/pdf"}) is None
    assert media(text="hello") is None


# ------------------------------------------------------------------------------------------- end to end
def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}  # 127.0.0.1 must not go to a proxy
    env.update(NO_PROXY="127.0.0.1,localhost", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", **extra)
    return env


@pytest.fixture(scope="module")
def conversation(tiny_library, tiny_run_id, tmp_path_factory):
    """Script a chat, run the real bot process against the fake server until every message has a reply.

    The bot answers from a copy of the tiny run with a classifier on features and embeddings, so audio
    queries and library tracks (decoded again for their features) both get a genre."""
    run_id = classified_run(tiny_run_id, "both")
    work = tmp_path_factory.mktemp("bot_e2e")

    def encoded(track: str, ext: str, sr: int | None = None) -> bytes:
        """A library track re-encoded as ``ext`` (at ``sr``, e.g. 48 kHz as Telegram's voice messages)."""
        y, sr_in = sf.read(next(tiny_library.rglob(f"{track}.wav")), dtype="float32")
        y = to_mono_resampled(y, sr_in=sr_in, sr=sr or sr_in)
        return write_audio(work / f"{track}.{ext}", y, sr or sr_in).read_bytes()

    script = {}
    with FakeTelegram(TOKEN) as tg:
        script["text"] = tg.add_message(text="hello there")
        script["start"] = tg.add_message(text="/start")
        refused = tg.add_file(None, error=(400, "Bad Request: file is too big"), file_size=None,
                              file_name="huge.wav", mime_type="audio/wav")
        script["refused"] = tg.add_message(document=refused)
        script["similar"] = tg.add_message(text="/similar PIANO")
        # AAC and Opus keep these synthetic tracks their own nearest neighbour; the tiny run's 3-epoch model
        # does not for MP3 (self-similarity ~0.98, same-style tracks as close), so MP3 is not the query here
        script["audio"] = tg.add_message(audio=tg.add_file(encoded("strings_1", "m4a"), duration=8,
                                                           mime_type="audio/mp4", file_name="strings_1.m4a"))
        script["voice"] = tg.add_message(voice=tg.add_file(encoded("strings_3", "opus", 48_000), duration=8,
                                                           mime_type="audio/ogg"))
        script["video_note"] = tg.add_message(video_note=tg.add_file(encoded("electronic_1", "m4a"), duration=8,
                                                                     length=240))
        script["corrupt"] = tg.add_message(document=tg.add_file(b"this is not audio at all\n" * 400,
                                                                file_name="broken.mp3", mime_type="audio/mpeg"))
        oversized = tg.add_file(b"never downloaded", file_size=25 * 2**20, duration=600, mime_type="audio/mpeg",
                                file_name="long mix.mp3")
        script["oversized"] = tg.add_message(audio=oversized)
        script["genre"] = tg.add_message(text="/genre", reply_to=script["audio"])
        script["no_match"] = tg.add_message(text="/similar zzz-nothing")
        script["genre_alone"] = tg.add_message(text="/genre")
        script["similar_alone"] = tg.add_message(text="/similar")
        script["pdf"] = tg.add_message(document=tg.add_file(b"%PDF-1.4", file_name="notes <1>.pdf",
                                                            mime_type="application/pdf"))

        log_path = work / "bot.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "bot", "--run", run_id], cwd=ROOT, stdout=log,
                                    stderr=subprocess.STDOUT,
                                    env=_clean_env(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=tg.url))
            try:
                missing = tg.wait_for_replies(list(script.values()), timeout=REPLY_TIMEOUT_S)
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    exit_code = proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    exit_code = proc.wait()
        bot_log = log_path.read_text(errors="replace")
        assert not missing, (f"no reply within {REPLY_TIMEOUT_S} s to "
                             f"{[k for k, m in script.items() if m in missing]}\n--- bot log ---\n{bot_log[-4000:]}")
        replies = {key: [p["text"] for p in tg.replies_to(m)] for key, m in script.items()}
        yield {"replies": replies, "tg": tg, "script": script, "oversized": oversized, "refused": refused,
               "exit_code": exit_code, "log": bot_log, "sent": tg.called("sendMessage")}


def first_track(message: str) -> str:
    return re.search(r"^1\. <b>([^<]+)</b>", message, flags=re.M).group(1)


def test_e2e_every_message_gets_one_html_reply(conversation):
    assert all(len(texts) == 1 for texts in conversation["replies"].values()), conversation["replies"]
    assert {p.get("parse_mode") for p in conversation["sent"]} == {"HTML"}
    assert all(len(p["text"]) <= fmt.MAX_MESSAGE for p in conversation["sent"])
    assert conversation["exit_code"] == 0, conversation["log"][-3000:]  # SIGTERM: a clean shutdown


def test_e2e_help_hints_and_usage(conversation):
    replies = {k: v[0] for k, v in conversation["replies"].items()}
    assert replies["text"] == fmt.HINT
    assert replies["genre_alone"] == fmt.GENRE_USAGE and replies["similar_alone"] == fmt.SIMILAR_USAGE
    assert replies["pdf"] == "notes &lt;1&gt;.pdf does not look like audio. " + fmt.HINT
    assert "Timbre Atlas" in replies["start"] and "/similar" in replies["start"] and "12 tracks" in replies["start"]
    assert "and the predicted genre" in replies["start"]


def test_e2e_library_audio_finds_itself(conversation):
    replies = {k: v[0] for k, v in conversation["replies"].items()}
    assert first_track(replies["audio"]) == "strings_1"
    assert replies["audio"].startswith("Most similar to strings_1.m4a:")
    assert first_track(replies["voice"]) == "strings_3"  # OGG/Opus at 48 kHz, decoded and resampled
    assert first_track(replies["video_note"]) == "electronic_1"  # MP4 (AAC)
    for key in ("audio", "voice", "video_note", "similar"):
        parsed = parse(replies[key])
        assert len(re.findall(r"^\d+\. ", replies[key], flags=re.M)) == 5
        assert sum(h.startswith("https://open.spotify.com/search/") for h in parsed.hrefs) == 5
        assert sum(h.startswith("https://www.youtube.com/results?search_query=") for h in parsed.hrefs) == 5


def test_e2e_similar_names_the_match(conversation):
    reply = conversation["replies"]["similar"][0]
    assert reply.startswith("Matched <b>piano_0</b> (piano)") and "Also matching: piano_1" in reply
    assert conversation["replies"]["no_match"][0].startswith("No track in this run matches “zzz-nothing”")


def test_e2e_bad_files_get_plain_replies(conversation):
    replies, tg = {k: v[0] for k, v in conversation["replies"].items()}, conversation["tg"]
    assert replies["corrupt"].startswith("Sorry, I cannot use that: broken.mp3: not a readable audio file")
    assert "<a " not in replies["corrupt"]
    assert "long mix.mp3: too large: 25.0 MB, but Telegram lets bots download at most 20 MB" in replies["oversized"]
    oversized_id = conversation["oversized"]["file_id"]
    assert all(p.get("file_id") != oversized_id for p in tg.called("getFile"))  # refused before downloading
    assert oversized_id not in tg.downloads
    # Telegram refused the download: the error handler answered, and the messages after it were answered too
    assert replies["refused"] == "Sorry, Telegram refused a request for that message: File is too big"
    assert "update" in conversation["log"] and "failed" in conversation["log"]


def test_e2e_genre_of_audio_and_of_library_tracks(conversation):
    replies = {k: v[0] for k, v in conversation["replies"].items()}
    genre = r"Predicted genre: <b>(\w+)</b> \((\d+)%"
    assert re.search(genre, replies["genre"]).start() == 0  # /genre: the genre first, then the tracks
    assert first_track(replies["genre"]) == "strings_1"
    for key, style in (("genre", "strings"), ("audio", "strings"), ("voice", "strings"),
                       ("video_note", "electronic"), ("similar", "piano")):
        label, percent = re.search(genre, replies[key]).groups()
        assert label == style and 100 / 3 < int(percent) <= 100, (key, replies[key])


def test_service_without_classifier_says_so(service, tiny_library):
    assert "no genre classifier" in service.help()
    data = next(tiny_library.rglob("piano_1.wav")).read_bytes()
    reply = service.audio(data, "piano_1.wav", query="piano_1.wav", genre_first=True).text
    assert reply.startswith(fmt.NO_GENRE) and first_track(reply) == "piano_1"
    assert "Predicted genre" not in service.audio(data, "piano_1.wav", query="q").text + service.similar("piano").text
    clip = io.BytesIO()
    sf.write(clip, sf.read(io.BytesIO(data))[0][:22_050], 22_050, format="WAV")
    with pytest.raises(AudioDecodeError, match=r"clip.wav: too short: 1.00 s, at least 3.00 s needed"):
        service.audio(clip.getvalue(), "clip.wav", query="q")


def test_unexpected_errors_are_logged_and_answered(caplog):
    """The error handler on its own, with a real Bot against the fake server: the user is told, the log has it."""
    import asyncio
    from types import SimpleNamespace

    from telegram import Bot, Update

    from bot.handlers import on_error

    async def fail_one(tg: FakeTelegram) -> None:
        async with Bot(TOKEN, base_url=f"{tg.url}/bot", base_file_url=f"{tg.url}/file/bot") as bot:
            update = Update.de_json({"update_id": 1, "message": tg.add_message(text="/similar x")}, bot)
            await on_error(update, SimpleNamespace(error=RuntimeError("boom <b>")))
            await on_error(None, SimpleNamespace(error=RuntimeError("no message to answer")))  # only logged

    with FakeTelegram(TOKEN) as tg:
        asyncio.run(fail_one(tg))
        sent = tg.called("sendMessage")
    assert [p["text"] for p in sent] == [fmt.failure_message("RuntimeError", from_telegram=False)]
    assert sent[0]["reply_parameters"]["message_id"] == tg.updates[0]["message"]["message_id"]
    assert [r.exc_info[1].args[0] for r in caplog.records if r.name == "bot"] == ["boom <b>", "no message to answer"]


def test_library_genre_needs_the_track_file_for_features(tiny_run_id):
    """A classifier on features and embeddings needs a library track's audio: decoded when there, else said."""
    service = Replies.for_run(load_run(classified_run(tiny_run_id, "both")))
    assert "Predicted genre: <b>piano</b>" in service.similar("piano_1").text
    tracks = service.run.tracks
    service.run.tracks = tracks.assign(path=["/gone/away/" + Path(p).name for p in tracks["path"]])  # in memory
    reply = service.similar("piano_1").text
    assert "<i>No genre prediction: piano_1.wav: file not found</i>" in reply and "/gone" not in reply
    assert first_track(reply) != "piano_1" and len(re.findall(r"^\d+\. ", reply, flags=re.M)) == 5


@pytest.mark.parametrize(("argv", "message"), [
    (["--workers", "0"], "error: workers must be at least 1 (got 0; flag --workers)"),
    (["--k", "0"], "error: k must be at least 1 (got 0; flag --k)"),
    (["--k", "1000"], "error: k must be at most 100 (got 1000; flag --k)"),
])
def test_settings_out_of_bounds_are_one_line_at_start(argv, message, monkeypatch, capsys):
    from bot.__main__ import main

    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == message


def test_a_k_the_run_cannot_answer_is_refused_at_start_not_on_every_query(tiny_run_id, monkeypatch, capsys):
    from bot.__main__ import main

    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_API_URL", "http://127.0.0.1:9")  # never reached: refused before polling
    n = len(load_run(tiny_run_id).tracks)
    assert main(["--run", tiny_run_id, "--k", str(n)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --k {n}: k={n} is more than the {n - 1} other tracks") and "Traceback" not in err


def test_the_real_bot_process_refuses_zero_workers_in_one_line():
    done = subprocess.run([sys.executable, "-m", "bot", "--workers", "0"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN})
    assert done.returncode == 2 and done.stderr.strip() == "error: workers must be at least 1 (got 0; flag --workers)"
