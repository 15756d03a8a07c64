"""Recommend: the library tracks most similar to an uploaded file, a library track found by name, several library
tracks (or a collection's) at once, or the microphone, matched live while it streams (the top 5, a marker moving on
the map with a trail, "identified" once the answer is sure) and as a whole recording after Stop; with the query's
genre when the run has a classifier. Every query goes through the server's
:class:`core.service.service.QueryService`; the live matching is :class:`core.service.listen.StreamMatcher`."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import streamlit as st
from streamlit import config

from core import jobs
from core.analysis import COLOUR_LABEL, Focus, FocusKind, GenrePrediction, collection_rows, query_focus, track_focus
from core.audio import IDLE_LIMIT_SECONDS, MAX_RECORD_SECONDS, MicRecording, meter_fraction, pull_frames
from core.base import DEFAULT_K, MAX_QUERY_SECONDS, TimbreError
from core.data import UPLOAD_TYPES, check_upload, display_name, display_names, named_buffer
from core.service import Answer, GenreResult, ListenConfig, ListenUpdate, Recommendation, StreamMatcher, min_query_seconds
from ui import nav, taste, workspace
from ui.atlas import atlas_map
from ui.atlas_layers import cached_layer
from ui.state import (
    cached_points,
    cached_run,
    cached_search,
    cached_service,
    cached_similar,
    collection_label,
    colour_stamp,
    run_collections,
)
from ui.webrtc import frames_from, mic_streamer
from ui.widgets import neighbour_list, play, projection_picker, require_run, track_heading

MIC_KEY = "mic"
RECORDING_KEY = "mic_recording"  # the MicRecording being filled, None once it has been analysed
RESULT_KEY = "mic_result"  # {"audio": np.ndarray} or {"error": TimbreError}
LIVE_KEY = "mic_live"  # {"run", "matcher": StreamMatcher or None, "fed": frame batches fed, "update": the last}
SEARCH_KEY, PICK_KEY = "recommend_search", "recommend_pick"
SEARCH_LIMIT = 50
MULTI_KEY, MULTI_SEARCH_KEY, ADD_COLLECTION_KEY = "recommend_multi", "recommend_multi_search", "recommend_add_collection"
MAX_PICKS = 100  # tracks of one multi-track query picked by hand
PICK_ALL_LIMIT = 20_000  # above this many tracks the picker offers search matches only (as the Map's)


GENRE_SHOWN = 3  # classes named in the genre line


@st.cache_data(show_spinner="Analysing the file...", max_entries=16)
def file_recommendation(run_id: str, data: bytes, name: str, k: int, max_mb: float) -> Answer:
    """The service's answer to an upload, genre included (:class:`AudioDecodeError` when it is unusable)."""
    check_upload(name, len(data), max_mb=max_mb)
    service, run = cached_service(), cached_run(run_id)
    return service.recommend(run, service.load(run, named_buffer(data, name)), k=k)


@st.cache_data(show_spinner="Finding similar tracks...", max_entries=16)
def audio_recommendation(run_id: str, y: np.ndarray, k: int) -> Answer:
    """The service's answer to a recording (mono float32 at the run's rate), genre included."""
    service, run = cached_service(), cached_run(run_id)
    return service.recommend(run, service.recording(run, y), k=k)


def show_error(error: TimbreError) -> None:
    """The one way this page reports a query core refused (bad or too large audio, a bad set of tracks)."""
    st.error(str(error))


def genre_text(genre: GenrePrediction) -> str:
    """``Predicted genre: **rock** (81%; jazz 12%, pop 5%)`` and which classifier said so."""
    others = ", ".join(f"{label} {p:.0%}" for label, p in genre.top(GENRE_SHOWN) if label != genre.label)
    detail = "; ".join(x for x in (f"{genre.probabilities[genre.label]:.0%}", others) if x)
    return (f"Predicted genre: **{genre.label}** ({detail}) · {genre.model_title} on {genre.input}, "
            f"cross-validated accuracy {genre.cv_accuracy:.2f}")


def show_genre(genre: GenreResult) -> None:
    """The query's genre from the run's best classifier; nothing when the run has none."""
    if genre.prediction is not None:
        st.markdown(genre_text(genre.prediction))
    elif genre.note is not None:
        st.caption(f"No genre prediction: {genre.note}")


@st.cache_data(show_spinner="Predicting the genre...", max_entries=64)
def track_genre(run_id: str, row: int) -> GenreResult:
    """The service's genre of library track ``row``."""
    return cached_service().track_genre(cached_run(run_id), row)


def show_result(run, neighbours: pd.DataFrame, *, focus_of, method: str, key: str, skip_row: int | None = None,
                how: str | None = None, embedding: np.ndarray | None = None, query_name: str | None = None,
                exclude: tuple[int, ...] = ()) -> None:
    """Ranked neighbours with scores, links and players beside the map with the query on it.

    With a listener chosen in the sidebar the list is re-ranked for them (:func:`ui.taste.personal`, from the query's
    ``embedding``; ``exclude``: rows never listed, the query's own), each track with its reasons and like / dislike
    buttons.
    ``focus_of(points, shown)`` gives the :class:`core.analysis.maps.Focus` on the chosen projection's points linked
    to the tracks shown; ``how`` says what
    the score is (None: cosine similarity, or its mean with the passages' match for an outside query).
    """
    others = neighbours if skip_row is None else neighbours[neighbours["row"] != skip_row]
    answer = taste.personal(run, others, embedding=embedding, k=len(others), query_name=query_name,
                            exclude=[*exclude, *([] if skip_row is None else [skip_row])])
    shown = answer.neighbours if answer.personal else neighbours
    left, right = st.columns([2, 3])
    with left:
        how = how or ("cosine similarity" if skip_row is not None or run.passages is None else
                      "mean of the track's cosine similarity and its passages' match")
        if answer.personal:
            how = "re-ranked for the listener: audio similarity, their taste and other listeners, as the sidebar blends them"
        st.markdown(f"**Top {len(others)} {'tracks' if answer.personal else 'most similar tracks'}** ({how})")
        if answer.note and taste.current_listener() is not None:
            st.caption(answer.note)
        neighbour_list(shown, skip_row=skip_row, buttons=taste.button_maker(run, key, query_name))
        workspace.list_actions(run, [r for r in shown["row"] if r != skip_row], key=f"{key}_actions")
    with right:
        focus: Focus = focus_of(cached_points(run.run_id, method), shown)
        result_map(run, method, focus, key=key)
        marker = "star" if skip_row is not None else "red dot"
        st.caption(f"The query ({marker}) on the run's map, with lines to its neighbours; the selection (Map page) "
                   "is highlighted.")


def result_map(run, method: str, focus: Focus, *, key: str, trail=()) -> None:
    """The run's atlas map with a query on it: a library track (a star) or an outside query (a red dot, with the
    ``trail`` of its last places), lines to the tracks it links to, and the working set's selection."""
    points, _ = cached_layer(run.run_id, method, COLOUR_LABEL, colour_stamp(run.run_id))
    track = focus.kind is FocusKind.TRACK
    atlas_map(points, key=key, selected=workspace.selection_rows(run), linked=focus.linked_rows,
              focus=focus.own_row if track else None, query=None if track else focus.origin, trail=trail,
              contours=False, height=520)


def show_recommendation(run, result: Recommendation, *, method: str, name: str, key: str) -> None:
    show_result(run, result.neighbours, method=method, key=key, embedding=result.embedding, query_name=name,
                focus_of=lambda points, shown: query_focus(result.positions, method, shown, name=name))


def upload_section(run, k: int, method: str) -> None:
    max_mb = float(config.get_option("server.maxUploadSize"))  # what the upload widget itself enforces
    upload = st.file_uploader(f"An audio file ({', '.join(UPLOAD_TYPES)}; at least {min_query_seconds(run):g} s, "
                              f"up to {max_mb:g} MB; the first {MAX_QUERY_SECONDS / 60:g} minutes are used)",
                              type=list(UPLOAD_TYPES), key="upload_file")
    if upload is None:
        return
    data = upload.getvalue()
    try:
        answer = file_recommendation(run.run_id, data, upload.name, k, max_mb)
    except TimbreError as error:
        show_error(error)
        return
    st.markdown(f"**Query:** {upload.name}")
    st.audio(data, format=upload.type or "audio/wav")
    show_genre(answer.genre)
    show_recommendation(run, answer.recommendation, method=method, name=upload.name, key="upload_map")


def search_section(run, k: int, method: str) -> None:
    """Type part of a title, artist or file name, pick a match: its neighbours, as for an upload."""
    query = st.text_input("Title, artist or file name", key=SEARCH_KEY,
                          placeholder="Type part of a name, e.g. piano", help="Case does not matter.")
    if not query.strip():
        return
    try:
        matches = cached_service().search(run, query, limit=SEARCH_LIMIT)
    except TimbreError as error:  # tag:NAME with an unknown tag, or a run without tags
        st.warning(str(error))
        return
    if matches.empty:
        st.info(f"No track of this run matches {query.strip()!r}.")
        return
    labels = dict(zip(matches["row"].astype(int), matches["name"] + " · " + matches["label"].astype("string").fillna("unlabelled")))
    row = st.selectbox(f"{len(matches)} match(es)" + (" (the first shown)" if len(matches) == SEARCH_LIMIT else ""),
                       list(labels), format_func=labels.get, key=PICK_KEY)
    if row is None:
        return
    track = run.tracks.iloc[row]
    track_heading(track)
    play(track["path"])
    show_genre(track_genre(run.run_id, int(row)))
    neighbours = cached_similar(run.run_id, int(row), k + 1)  # the track itself first
    show_result(run, neighbours, method=method, key="search_map", skip_row=int(row), embedding=run.embeddings[int(row)],
                query_name=str(matches.loc[matches["row"] == row, "name"].iloc[0]),
                focus_of=lambda points, shown: track_focus(points, int(row), shown))


@st.cache_data(show_spinner="Finding tracks near all of them...", max_entries=16)
def set_recommendation(run_id: str, rows: tuple[int, ...], k: int) -> pd.DataFrame:
    """The service's tracks nearest a set of library rows (:func:`core.service.query.more_like_these`)."""
    return cached_service().similar(cached_run(run_id), list(rows), k=k)


def add_collection(run) -> None:
    """The "add a collection's tracks" select box's on_change: its members join the picked tracks."""
    chosen = run_collections(run).get(st.session_state.get(ADD_COLLECTION_KEY))
    if chosen is not None:
        members = collection_rows(run, chosen).tolist()
        st.session_state[MULTI_KEY] = list(dict.fromkeys(st.session_state.get(MULTI_KEY, []) + members))[:MAX_PICKS]
    st.session_state[ADD_COLLECTION_KEY] = None


def several_section(run, k: int, method: str) -> None:
    """Pick several library tracks by name (or a collection's): the tracks nearest all of them, none of them."""
    names = cached_points(run.run_id, method)["name"].to_numpy()
    labels = run.tracks["label"].astype("string").fillna("unlabelled").to_numpy()
    query = st.text_input("Find tracks to add: title, artist or file name", key=MULTI_SEARCH_KEY,
                          placeholder="Type part of a name, then pick matches below")
    picked = [int(r) for r in st.session_state.get(MULTI_KEY, [])]
    if query.strip():
        try:
            matches = cached_search(run.run_id, query, limit=SEARCH_LIMIT)
        except TimbreError as error:  # tag:NAME with an unknown tag, or a run without tags
            st.warning(str(error))
            matches = []
    else:
        matches = list(range(len(names))) if len(names) <= PICK_ALL_LIMIT else []
    st.multiselect(f"Tracks (up to {MAX_PICKS})", list(dict.fromkeys(picked + matches)), key=MULTI_KEY,
                   format_func=lambda r: f"{names[r]} · {labels[r]}", max_selections=MAX_PICKS,
                   placeholder="Pick one or more tracks")
    collections = run_collections(run)
    if collections:
        st.selectbox("Or add the tracks of a collection", [None, *collections], key=ADD_COLLECTION_KEY,
                     format_func=collection_label(collections), on_change=add_collection, args=(run,))
    rows = tuple(int(r) for r in st.session_state.get(MULTI_KEY, []))
    if not rows:
        st.info("Pick one or more library tracks: the tracks nearest to all of them (by their mean cosine "
                "similarity) are listed, the picked ones left out.")
        return
    try:
        found = set_recommendation(run.run_id, rows, k)
    except TimbreError as error:
        show_error(error)
        return

    def focus_of(points: pd.DataFrame, shown: pd.DataFrame) -> Focus:
        centre = points[["x", "y"]].to_numpy()[list(rows)].mean(axis=0)
        return Focus(origin=(float(centre[0]), float(centre[1])), rows=tuple(shown["row"].astype(int)),
                     kind=FocusKind.QUERY, name=f"the {len(rows)} picked tracks (their centre on this map)")

    show_result(run, found, method=method, key="multi_map", focus_of=focus_of, exclude=rows,
                how=f"mean cosine similarity to the {len(rows)} picked tracks",
                embedding=run.embeddings[list(rows)].mean(axis=0), query_name=f"the {len(rows)} picked tracks")


def start_recording() -> None:
    """``webrtc_streamer`` on_change: a fresh recording each time the stream starts playing."""
    context = st.session_state.get(MIC_KEY)
    if context is not None and context.state.playing:
        st.session_state[RECORDING_KEY] = MicRecording(max_seconds=MAX_RECORD_SECONDS)
        st.session_state.pop(RESULT_KEY, None)
        st.session_state.pop(LIVE_KEY, None)


def analyse_recording(run, recording: MicRecording) -> None:
    """Turn the finished recording into the query (or a plain error) and forget the frames."""
    try:
        audio = recording.finish(min_seconds=min_query_seconds(run), sr=run.mel_params.sr)
        st.session_state[RESULT_KEY] = {"audio": audio}
    except TimbreError as error:
        st.session_state[RESULT_KEY] = {"error": error}
    st.session_state[RECORDING_KEY] = None


def listen(run, recording: MicRecording, live: dict, k: int) -> ListenUpdate | None:
    """Hand the live matcher what arrived since the last call: an update when a second of audio has come, of the
    newest window only (audio that piled up while the page drew is matched at once, never window by window)."""
    audio, rate, live["fed"] = recording.since(live["fed"])
    if audio.size == 0:
        return None
    if live["matcher"] is None:
        live["matcher"] = StreamMatcher(run, sr=rate, config=ListenConfig(k=k))
        if live["matcher"].fingerprints is None:  # a run trained before them: built in the background, once
            live["fingerprint_job"] = fingerprint_job(run)
    update = live["matcher"].feed(audio)
    if update is not None:
        live["update"] = update
    return update


def live_map(run, method: str, update: ListenUpdate, trail: list[dict], *, key: str) -> None:
    """The window on the atlas map (a red dot, lines to its top-k) and a fading trail of the last windows' places.
    The one place the live map is drawn (the trail is ``[{method: [x, y]}, ...]``, oldest first)."""
    places = [(float(place[method][0]), float(place[method][1])) for place in trail if method in place]
    result_map(run, method, query_focus(update.positions, method, update.neighbours, name="the last seconds"),
               key=key, trail=places)


def fingerprint_job(run) -> str:
    """Start building the run's fingerprints in a background job (or find the one doing it): what to say."""
    try:
        return f"being built in the background (job {jobs.start_fingerprint_job(run.run_id)}), used from the next " \
               "recording on"
    except TimbreError as error:
        return f"not being built ({error}; python -m core fingerprint --run {run.run_id} builds them)"


def evidence(run, update: ListenUpdate, job: str | None = None) -> str:
    """What the first track's place rests on: its landmark votes, or why there are none."""
    votes = update.neighbours["votes"].iloc[0] if "votes" in update.neighbours else float("nan")
    if votes >= 0:
        return f" · {votes:.0f} landmarks of the first track at one time offset"
    return f" · no fingerprints yet ({job or 'python -m core fingerprint --run ' + run.run_id}): matched by embedding only"


def show_live(run, update: ListenUpdate, trail: list[dict], *, method: str, key: str, job: str | None = None) -> None:
    """One live update: identified or not, the top tracks with scores, the map with the marker and its trail. The
    same elements in the same places at every update (a slot stays empty when it has nothing to say): an element
    that comes or goes shifts the ones after it, and the browser then mounts the map's frame anew."""
    named, line = st.empty(), st.empty()
    found = update.identified
    if found is not None:
        named.success(f"identified: {display_name(run.tracks.iloc[found])} after {update.identified_seconds:.0f} s")
    if update.silent:
        line.info(f"{update.seconds:.0f} s into the stream: silence, nothing to match")
    else:
        line.caption(f"{update.seconds:.0f} s into the stream: the last {update.window_seconds:.0f} s matched"
                     + ("" if found is not None else ", not identified yet") + evidence(run, update, job))
    left, right = st.columns([2, 3])
    if update.neighbours.empty:
        return
    with left:
        table = update.neighbours
        st.markdown("\n".join(f"{rank}. {name} · {score:.3f}" for rank, name, score in
                               zip(table["rank"], display_names(table), table["score"])))
    with right:
        live_map(run, method, update, trail, key=key)


LIVE_EVERY_S = 1.0  # the live part runs again this often: one update a second, as the matcher gives them
PULL_S = 0.4  # at most this long per run pulling the audio that came (the receiver queues ~20 s meanwhile)


def pull(context, recording: MicRecording, live: dict):
    """Move the audio that arrived since the last run into ``recording`` (for at most :data:`PULL_S`); returns the
    last :class:`core.audio.RecordingProgress` and the seconds since audio last came."""
    deadline, progress = time.monotonic() + PULL_S, None
    for progress in pull_frames(recording, frames_from(context), poll_seconds=0.05, update_seconds=0.05):
        if progress.is_full or time.monotonic() >= deadline:
            break
    if live.get("seconds") != recording.seconds:
        live["seconds"], live["heard"] = recording.seconds, time.monotonic()
    return progress, time.monotonic() - live.setdefault("heard", time.monotonic())


@st.fragment(run_every=LIVE_EVERY_S)
def live_listening(context, run_id: str, k: int, method: str) -> None:
    """The stream's live part, run again by itself every :data:`LIVE_EVERY_S` (only this fragment, not the page):
    the audio that came is matched and the last update drawn, its map under one key, so the map is updated in
    place, never drawn anew (at a million tracks a new map would load 5 MB each second). A full recording runs the
    whole page, which analyses it."""
    recording = st.session_state.get(RECORDING_KEY)
    if recording is None or not context.state.playing:
        return
    run = cached_run(run_id)
    live = st.session_state.setdefault(LIVE_KEY, {"run": run.run_id, "matcher": None, "fed": 0, "update": None})
    progress, idle = pull(context, recording, live)
    line, level, warning, error_box = st.empty(), st.empty(), st.empty(), st.empty()  # fixed places: see show_live
    line.markdown(f":red[●] **Recording** {recording.seconds:4.1f} s of at most {recording.max_seconds:g} s")
    if progress is not None:
        live["level"] = progress.level_dbfs  # kept: a second without new audio keeps showing the last level
    if "level" in live:
        level.progress(meter_fraction(live["level"]), text=f"input level {live['level']:.0f} dBFS")
    if idle >= IDLE_LIMIT_SECONDS:
        warning.warning(f"No audio has arrived for {IDLE_LIMIT_SECONDS:g} s. Check that the browser may use the "
                        "microphone, then press Stop and Start recording again.")
    try:
        listen(run, recording, live, k)
    except TimbreError as error:
        error_box.error(str(error))
    if live["update"] is not None:
        show_live(run, live["update"], live["matcher"].trail, method=method, key="live_map",
                  job=live.get("fingerprint_job"))
    if recording.is_full:
        st.rerun()


def record_section(run, k: int, method: str) -> None:
    st.markdown(f"Press **Start recording**, allow the microphone and play music: every second the last "
                f"{ListenConfig().window_seconds:g} s are matched, and the track is named once the answer is sure. "
                f"Recording stops taking audio at {MAX_RECORD_SECONDS:g} s; **Stop** keeps the last answer and "
                f"analyses the whole recording (at least {min_query_seconds(run):g} s).")
    context = mic_streamer(key=MIC_KEY, on_change=start_recording)
    status, output, live_box = st.empty(), st.container(), st.empty()
    if context.state.signalling and not context.state.playing:
        status.info("Connecting to the microphone... If recording does not start within a few seconds, the browser "
                    "and this server could not open a WebRTC connection: press Stop and try again.")
    recording = st.session_state.get(RECORDING_KEY)
    if recording is not None and context.state.playing and not recording.is_full:
        live_listening(context, run.run_id, k, method)
    if recording is not None and (recording.is_full or not context.state.playing):
        analyse_recording(run, recording)
    result = st.session_state.get(RESULT_KEY)
    if context.state.playing and result is not None:  # still streaming, but the recording is done: the cap
        status.info(f"Reached the {MAX_RECORD_SECONDS:g} s cap: the recording is below. Press Stop to end the stream.")
    last = st.session_state.get(LIVE_KEY, {}).get("update")
    if last is not None and not context.state.playing:  # Stop keeps the last live answer
        with live_box.container():
            st.markdown("**Last live answer**")
            show_live(run, last, st.session_state[LIVE_KEY]["matcher"].trail, method=method, key="live_map_last",
                      job=st.session_state[LIVE_KEY].get("fingerprint_job"))
    with output:
        if result is None:
            return
        if "error" in result:
            show_error(result["error"])
            return
        audio = result["audio"]
        st.markdown(f"**Query:** your recording ({audio.size / run.mel_params.sr:.1f} s)")
        st.audio(audio, sample_rate=run.mel_params.sr)
        answer = audio_recommendation(run.run_id, audio, k)
        show_genre(answer.genre)
        show_recommendation(run, answer.recommendation, method=method, name="your recording", key="mic_map")


nav.require_router(__file__)
st.title("Recommend")  # before the run: its error, if any, shows under the title
run = require_run()
controls = st.columns([2, 3])
with controls[0]:
    method = projection_picker("recommend_projection")
with controls[1]:
    k = st.slider("How many similar tracks (k)", 1, 20, DEFAULT_K, key="recommend_k")
taste.listener_picker()
upload_tab, search_tab, several_tab, for_you_tab, record_tab = st.tabs(
    ["Upload a file", "Start from a library track", "Start from several tracks", "For you", "Record from the microphone"])
with upload_tab:
    upload_section(run, k, method)
with search_tab:
    search_section(run, k, method)
with several_tab:
    several_section(run, k, method)
with for_you_tab:
    taste.for_you(run, k)
with record_tab:  # last on the page (its live part runs again by itself every second while recording)
    record_section(run, k, method)
