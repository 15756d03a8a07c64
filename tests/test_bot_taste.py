"""The bot learns from a chat: 👍 / 👎 buttons under every answer, the next answers re-ranked with reasons, /foryou,
/mydata and /forget; the real ``python -m bot`` against the fake Bot API server, the store a real SQLite file."""
from __future__ import annotations

import re
import signal
import subprocess
import sys

import pytest

from bot import format as fmt
from core.base.paths import REPO_ROOT as ROOT
from core.listeners.store import ListenerStore
from core.runs.folder import load_run
from tests.fake_telegram import CHAT, FakeTelegram
from tests.test_bot import REPLY_TIMEOUT_S, TOKEN, _clean_env

OTHER_CHAT = {"id": 5151, "type": "private", "first_name": "Other"}


def test_keyboard_and_feedback_data_round_trip():
    import pandas as pd

    rows = fmt.feedback_keyboard(pd.DataFrame({"rank": [1, 2], "track_id": ["abc", "def"]}))
    assert rows == [[("👍 1", "liked:abc"), ("👎 1", "disliked:abc")], [("👍 2", "liked:def"), ("👎 2", "disliked:def")]]
    assert fmt.parse_feedback("liked:abc") == ("liked", "abc") and fmt.parse_feedback("played:abc") is None
    assert fmt.parse_feedback("") is None and fmt.parse_feedback("liked:") is None
    line = fmt.track_line({"rank": 1, "score": 0.5, "title": "T", "why": ["you liked <A>", "sounds like B"],
                           "taste": 0.1})
    assert "blend 0.500" in line and "<i>you liked &lt;A&gt;; sounds like B</i>" in line


@pytest.fixture(scope="module")
def chat(tiny_run_id):
    """A chat in three phases, each waited for: answers with buttons; presses; answers for the chat's taste."""
    run = load_run(tiny_run_id)
    ids = {label: list(run.tracks.loc[run.tracks["label"] == label, "track_id"]) for label in ("piano", "electronic")}
    out = {"run": run, "ids": ids}
    with FakeTelegram(TOKEN) as tg:
        proc = subprocess.Popen([sys.executable, "-m", "bot", "--run", tiny_run_id], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=_clean_env(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=tg.url))
        try:
            def say(text: str) -> dict:
                message = tg.add_message(text=text)
                assert not tg.wait_for_replies([message], timeout=REPLY_TIMEOUT_S), f"no reply to {text}"
                return tg.replies_to(message)[0]

            out["before"] = say("/similar electronic_0")
            out["for_you_empty"] = say("/foryou")
            presses = [tg.add_callback(f"liked:{t}") for t in ids["piano"][:3]]
            presses.append(tg.add_callback(f"disliked:{ids['electronic'][1]}"))
            presses.append(tg.add_callback(f"liked:{ids['piano'][3]}", chat=OTHER_CHAT))
            presses.append(tg.add_callback("liked:no-such-track"))
            answered = tg.wait_for_calls("answerCallbackQuery", len(presses), timeout=REPLY_TIMEOUT_S)
            out["notices"] = {a["callback_query_id"]: a.get("text", "") for a in answered}
            out["presses"] = presses
            out["after"] = say("/similar electronic_0")
            out["for_you"] = say("/foryou")
            out["my_data"] = say("/mydata")
            out["forget"] = say("/forget")
            out["my_data_after"] = say("/mydata")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return out


def names(text: str) -> list[str]:
    return re.findall(r"^\d+\. <b>([^<]+)</b>", text, flags=re.M)


def test_answers_carry_like_and_dislike_buttons(chat):
    keyboard = chat["before"]["reply_markup"]["inline_keyboard"]
    listed = names(chat["before"]["text"])
    assert len(keyboard) == len(listed) == 5
    assert [b["text"] for b in keyboard[0]] == ["👍 1", "👎 1"]
    run = chat["run"]
    first_id = run.tracks.loc[run.tracks["path"].str.endswith(f"/{listed[0]}.wav"), "track_id"].iloc[0]
    assert keyboard[0][0]["callback_data"] == f"liked:{first_id}"
    assert "<i>" not in chat["before"]["text"]  # a chat without likes gets pure audio, no reasons claimed
    assert "like or play a few tracks first" in chat["for_you_empty"]["text"]


def test_presses_are_recorded_for_their_own_chat_and_acknowledged(chat):
    notices = [chat["notices"][p["id"]] for p in chat["presses"]]
    assert notices[0].startswith("Liked piano_") and notices[3].startswith("Disliked electronic_")
    assert notices[5].startswith("Not recorded: no track 'no-such-track'")
    store = ListenerStore()
    other = store.listener("telegram", str(OTHER_CHAT["id"]))
    assert store.counts(other)["liked"] == 1  # the other chat's press is its own
    assert str(CHAT["id"]) != str(OTHER_CHAT["id"])


def test_the_next_answer_is_reranked_with_reasons(chat):
    after = chat["after"]["text"]
    listed = names(after)
    assert sum(n.startswith("piano") for n in listed) >= 3 and "electronic_1" not in listed
    assert "blend " in after and "you liked piano_" in after
    for_you = chat["for_you"]["text"]
    assert for_you.startswith("<b>For you</b>") and not {f"piano_{i}" for i in range(3)} & set(names(for_you))
    assert chat["for_you"]["reply_markup"]["inline_keyboard"]


def test_a_chat_sees_and_forgets_only_its_own_data(chat):
    assert chat["my_data"]["text"].startswith("What I keep about this chat: 3 liked, 1 disliked.")
    assert "piano_" in chat["my_data"]["text"]
    assert chat["forget"]["text"] == fmt.forgotten_message(4)
    assert chat["my_data_after"]["text"].startswith("I keep nothing about this chat")
    store = ListenerStore()
    assert store.counts(store.listener("telegram", str(OTHER_CHAT["id"])))["liked"] == 1  # not deleted
