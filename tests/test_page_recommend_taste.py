"""Recommend for a listener through AppTest: the sidebar's profile, like / dislike buttons under each track, the list
re-ranked with its reasons, and the "For you" tab; the store is the module's real SQLite file."""
from __future__ import annotations

import pytest

from core.listeners.store import ListenerStore
from core.runs.folder import load_run
from tests.pagetest import open_page, ranked_items


@pytest.fixture(autouse=True)
def webrtc_without_server(monkeypatch):
    """streamlit-webrtc asks the live server for session info, which AppTest lacks (as in tests/test_pages.py)."""
    import streamlit_webrtc.component

    monkeypatch.setattr(streamlit_webrtc.component, "get_this_session_info", lambda: None)


def pick_track(at, name: str):
    at.text_input(key="recommend_search").input(name).run()
    assert not at.exception, [e.message for e in at.exception]


def test_without_a_listener_nothing_changes(tiny_run_id):
    at = open_page("pages/recommend.py", active_run_id=tiny_run_id)
    assert at.sidebar.selectbox(key="listener_pick").value is None
    pick_track(at, "electronic_0")
    assert len(ranked_items(at)) == 6 and not [b for b in at.button if b.key and "_liked_" in b.key]
    assert "most similar tracks" in " ".join(m.value for m in at.markdown)


def test_likes_from_the_page_reshape_the_list_and_fill_for_you(tiny_run_id):
    run = load_run(tiny_run_id)
    at = open_page("pages/recommend.py", active_run_id=tiny_run_id, listener_profile="page listener")
    pick_track(at, "electronic_0")
    assert "no plays or likes yet" in " ".join(c.value for c in at.caption)
    piano = [int(r) for r in run.tracks.index[run.tracks["label"] == "piano"]]
    electronic = [int(r) for r in run.tracks.index[run.tracks["label"] == "electronic"]]
    shown = {b.key for b in at.button if b.key}
    liked = [r for r in piano if f"search_map_liked_{r}" in shown]
    if not liked:  # piano is not among the audio neighbours: like it from the For you tab later; dislike instead
        at.button(key=f"search_map_disliked_{electronic[1]}").click().run()
    else:
        at.button(key=f"search_map_liked_{liked[0]}").click().run()
    store = ListenerStore()
    me = store.listener("profile", "page listener")
    assert sum(store.counts(me).values()) == 1
    for row in piano[:3]:  # two more likes straight into the store, as another front end would record them
        store.add_event(me, run.tracks["track_id"].iloc[row], "liked")
    at.run()
    assert not at.exception
    items = ranked_items(at)  # the search tab's five, then the For you tab's
    assert len(items) == 10 and "re-ranked for the listener" in " ".join(m.value for m in at.markdown)
    names = [i.split("**")[1].split(". ", 1)[1] for i in items]
    assert sum(n.startswith("piano") for n in names[:5]) >= 3
    rated = {run.tracks["path"].iloc[r].rsplit("/", 1)[-1][:-4] for r in piano[:3]}
    assert not rated & set(names[5:])  # For you lists what the listener has not rated
    reasons = " ".join(c.value for c in at.caption)
    assert "You liked piano_" in reasons or "you liked piano_" in reasons
    assert at.button(key=f"search_map_liked_{piano[0]}").disabled  # already liked: shown as such
    # For you: tracks the listener has not rated
    texts = " ".join(m.value for m in at.markdown)
    assert "**For page listener**" in texts
    assert at.sidebar.selectbox(key="listener_pick").value == "page listener"
    # the profile's own data, and deleting it
    assert "4 liked" in " ".join(c.value for c in at.sidebar.caption) or "3 liked" in " ".join(
        c.value for c in at.sidebar.caption)
    at.sidebar.button(key="taste_forget").click().run()
    assert not at.exception
    assert at.sidebar.selectbox(key="listener_pick").value is None
    assert "Deleted profile 'page listener'" in " ".join(i.value for i in at.sidebar.info)
    assert "page listener" not in ListenerStore().profiles()
