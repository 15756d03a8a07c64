"""Listening on the dashboard: the sidebar's listener profile and blend weights, like / dislike buttons on a track,
answers re-ranked for the listener with the reason for each track, and a "for you" list.

Every call goes through the server's query service (``cached_service().listening``,
:class:`core.service.listening.Listening`); a store that cannot be read leaves the answers pure audio with a note.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd
import streamlit as st

from core.base import InvalidQuery, ListenerError, TimbreError
from core.listeners import Listener, TasteConfig
from core.service import Personal
from ui.state import cached_service

LISTENER_KEY = "listener_profile"  # the chosen profile's name (None: nobody, answers are pure audio)
PICK_KEY = "listener_pick"  # the sidebar's select box
WEIGHT_KEYS = {"audio": "taste_w_audio", "taste": "taste_w_taste", "collab": "taste_w_collab"}
MESSAGE_KEY = "taste_message"  # what the last button press could not do
NOBODY = "nobody (pure audio)"
FORGET_KEY = "taste_forget"


def listener_picker() -> Optional[Listener]:
    """The sidebar's "Listener" select box (a profile, or type a new name to make one) and the blend weights;
    returns the chosen listener (None: nobody, or the store cannot be read, which the sidebar then says)."""
    try:
        names = cached_service().listening.store.profiles()
    except ListenerError as error:
        st.sidebar.caption(f"Listener profiles are unavailable: {error}")
        return None
    if st.session_state.get(MESSAGE_KEY):
        st.sidebar.info(st.session_state.pop(MESSAGE_KEY))
    chosen = st.session_state.get(LISTENER_KEY)
    st.session_state[PICK_KEY] = chosen
    st.sidebar.selectbox("Listener", [None, *names, *([chosen] if chosen and chosen not in names else [])],
                         key=PICK_KEY, format_func=lambda n: NOBODY if n is None else n, accept_new_options=True,
                         on_change=lambda: st.session_state.__setitem__(LISTENER_KEY, st.session_state[PICK_KEY]),
                         help="Likes and dislikes are kept for this profile and re-rank the answers for it. "
                              "Type a new name to make a profile.")
    who = current_listener()
    if who is not None:
        with st.sidebar.expander("Blend: audio, taste, other listeners"):
            defaults = TasteConfig()
            for name, key in WEIGHT_KEYS.items():
                st.slider(name.replace("collab", "other listeners"), 0.0, 3.0, float(getattr(defaults, name)), 0.1,
                          key=key)
        with st.sidebar.expander("Your data"):
            your_data(who)
    return who


def your_data(who: Listener) -> None:
    """What the store keeps of the chosen profile (and only of it), and a button that deletes it all."""
    try:
        data = cached_service().listening.my_data(who)
    except ListenerError as error:
        st.caption(str(error))
        return
    counts = data["counts"]
    st.caption(", ".join(f"{n} {kind}" for kind, n in counts.items()) + " (newest first below)")
    if len(data["events"]):
        st.dataframe(data["events"][["kind", "track_id", "query", "source"]].head(50), hide_index=True, height=180)
    st.button("Delete this profile's data", key=FORGET_KEY, on_click=_forget, args=(who,), disabled=not sum(counts.values()),
              help="Deletes the profile and every play, like, dislike and skip it recorded.")


def _forget(who: Listener) -> None:
    try:
        n = cached_service().listening.forget(who)
    except ListenerError as error:
        st.session_state[MESSAGE_KEY] = f"Could not delete: {error}"
        return
    st.session_state[LISTENER_KEY] = None
    st.session_state[MESSAGE_KEY] = f"Deleted profile {who.name!r} and its {n} events."


def current_listener() -> Optional[Listener]:
    """The chosen profile as a listener (made on first use); None when nobody is chosen or the store fails."""
    name = st.session_state.get(LISTENER_KEY)
    if not name:
        return None
    try:
        return cached_service().listening.listener("profile", name)
    except (ListenerError, InvalidQuery) as error:
        st.session_state[MESSAGE_KEY] = str(error)
        return None


def weights() -> TasteConfig:
    """The sidebar's blend weights (the defaults until moved)."""
    defaults = TasteConfig()
    return TasteConfig(**{name: float(st.session_state.get(key, getattr(defaults, name)))
                          for name, key in WEIGHT_KEYS.items()})


def _record(run, who: Listener, track_id: str, kind: str, query: Optional[str]) -> None:
    try:
        cached_service().listening.record(run, who, track_id, kind, query=query, source="dashboard")
    except TimbreError as error:
        st.session_state[MESSAGE_KEY] = f"Could not record that: {error}"


def verdicts(run, who: Listener) -> dict[int, str]:
    """Row -> "liked" / "disliked" of the listener on ``run`` ({} when the store cannot be read)."""
    try:
        feedback = cached_service().listening.feedback(run, who)
    except ListenerError:
        return {}
    return {**{int(r): "disliked" for r in feedback.disliked}, **{int(r): "liked" for r in feedback.liked}}


def taste_buttons(run, row: int, *, key: str, query: Optional[str] = None, verdict: Optional[str] = None) -> None:
    """👍 / 👎 for library track ``row`` of ``run``, recorded for the sidebar's listener (nothing is drawn
    without one). ``key`` makes the buttons' ids unique on the page; ``verdict`` is the listener's current one
    (looked up when None)."""
    who = current_listener()
    if who is None:
        return
    if verdict is None:
        verdict = verdicts(run, who).get(int(row))
    track_id = str(run.tracks["track_id"].iloc[int(row)])
    with st.container(horizontal=True):
        for kind, label in (("liked", ":material/thumb_up: Like"), ("disliked", ":material/thumb_down: Dislike")):
            done = verdict == kind
            st.button(label + ("d" if done and kind == "liked" else ""), key=f"{key}_{kind}_{row}",
                      type="primary" if done else "secondary", disabled=done,
                      on_click=_record, args=(run, who, track_id, kind, query))
    if st.session_state.get(MESSAGE_KEY):
        st.warning(st.session_state.pop(MESSAGE_KEY))


def personal(run, neighbours: pd.DataFrame, *, embedding: Optional[np.ndarray], k: int,
             query_name: Optional[str] = None, exclude=None) -> Personal:
    """``neighbours`` (a pure audio answer) re-ranked for the sidebar's listener with the sidebar's weights."""
    return cached_service().listening.personalise(run, current_listener(), neighbours, embedding=embedding, k=k,
                                                  query_name=query_name, cfg=weights(), exclude=exclude)


def for_you(run, k: int) -> None:
    """The listener's "for you" list: tracks new to them, by their taste and what listeners of their tracks played."""
    from ui.widgets import neighbour_list

    who = current_listener()
    if who is None:
        st.info("Choose or type a listener profile in the sidebar, then like a few tracks: this tab lists tracks "
                "new to you, from your likes and what other listeners of the same tracks played.")
        return
    try:
        answer = cached_service().listening.for_you(run, who, k=k, cfg=weights())
    except InvalidQuery as error:
        st.info(str(error).capitalize())
        return
    st.markdown(f"**For {who.name}**: tracks you have not rated yet")
    neighbour_list(answer.neighbours, buttons=button_maker(run, "for_you", None))


def button_maker(run, key: str, query: Optional[str]):
    """A ``neighbour_list(buttons=...)`` hook drawing :func:`taste_buttons` under each track (None without a
    listener, so nothing is drawn)."""
    who = current_listener()
    if who is None:
        return None
    known = verdicts(run, who)
    return lambda row: taste_buttons(run, int(row), key=key, query=query, verdict=known.get(int(row)))
