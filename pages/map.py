"""Map: every track of the run as a point on its PCA / t-SNE / UMAP map (the atlas: WebGL in the browser, up to a
million tracks). Pan, zoom, hover, the lasso and the histogram brushes run in the browser; a finished gesture comes
back as rows. The selection and the clicked track are the researcher's working set (:mod:`ui.workspace`): shown on
every projection, page and run of the dataset; the panels below the map play, extend, export and save them.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from core.analysis import CLUSTER_METHODS, COLOUR_LABEL, rows_of_ids, tags_computable, tags_reason
from core.base import TagError, TimbreError
from core.data import display_names
from ui import nav, selection, taste, workspace
from ui.atlas import atlas_map, decode_event
from ui.atlas_layers import (
    AGREEMENT,
    agreement_options,
    agreement_ready,
    cached_histograms,
    cached_labels,
    cached_layer,
    cached_quality,
    colour_name,
    group_mask,
    groups_of,
)
from ui.forms import agreement_job, background_job_form
from ui.state import cached_colour_options, cached_run, cached_search, colour_stamp, nearest_others
from ui.widgets import neighbour_list, play, projection_picker, require_run, track_heading

ATLAS_KEY = "map_atlas"  # the component's widget key: one map on the page, kept across runs and projections
SEEN_KEY = "map_event_seen"  # the seq of the last event taken
DRAWN_KEY = "map_drawn_run"  # the run the map was last drawn for: an event's rows are its rows
DRAG_KEY = "map_drag_mode"  # the drag mode chosen in the map's toolbar (kept across pages)
RANGES_KEY = "map_ranges"  # {run id: the histogram brushes}
PLAYED_KEY = "map_autoplay"  # the focus that was just clicked (its player starts by itself once)
SEARCH_SHOWN = 50  # search results highlighted on the map and listed


def has_tags(run) -> bool:
    return any(o.startswith("tag:") for o in cached_colour_options(run.run_id, colour_stamp(run.run_id)))


def colour_picker(run) -> str:
    """The "Colour by" select: label, clusterings, collections, musicnn tags and agreement with other runs."""
    options = cached_colour_options(run.run_id, colour_stamp(run.run_id)) + agreement_options(run.run_id)
    option = st.selectbox("Colour by", options, format_func=colour_name, key=f"map_colour_{run.run_id}",
                          help="Label, a clustering (Clusters page), a collection, a musicnn tag's likelihood, or "
                               "how much each track's 10 nearest neighbours agree with another run of the same "
                               "tracks (Jaccard)") or options[0]
    if not any(o.startswith("tag:") for o in options):
        st.caption(tags_reason(run))
    other = option.removeprefix(AGREEMENT)
    if option.startswith(AGREEMENT) and not agreement_ready(run.run_id, other):
        st.caption("Not computed yet for runs this large (minutes at 100,000 tracks): coloured by label until its "
                   "background job is done.")
        agreement_job(run.run_id, other, key="map_agreement_job")
        return COLOUR_LABEL
    return option


def tags_settings() -> dict:
    """The tags form's text; the job's :class:`core.analysis.tasks.TagsConfig` keeps its defaults."""
    st.caption("Runs musicnn over every track of the dataset (about 1 s a track) in the background: leave the page "
               "or reload it, the work goes on.")
    return {}


def tags_form(run) -> None:
    """The musicnn tags job's form, while the run's dataset could have tags but has none."""
    if not has_tags(run) and tags_computable(run):
        background_job_form(kind="tags", target={"run": run.run_id}, title="Compute musicnn tags",
                            key="map_tags_form", submit="Compute tags", expanded=False,
                            settings=tags_settings,
                            report=lambda result: st.warning(" ".join(result["warnings"]) or "No track was tagged."))


def take_event(run) -> bool:
    """Apply the map's last gesture to the working set (before anything is drawn); True for the click of a new
    focus (its player starts by itself)."""
    event = decode_event(st.session_state.get(ATLAS_KEY))
    if event is None or event.seq <= st.session_state.get(SEEN_KEY, -1):
        return False
    st.session_state[SEEN_KEY] = event.seq
    st.session_state[DRAG_KEY] = event.drag
    st.session_state.setdefault(RANGES_KEY, {})[run.run_id] = event.ranges
    drawn = st.session_state.get(DRAWN_KEY, run.run_id)
    if drawn != run.run_id:  # the gesture was made on another run's map (the run changed meanwhile): its rows
        try:
            run = cached_run(drawn)
        except TimbreError:
            return False
    return workspace.apply_gesture(run, event)


def search_rows(run_id: str, query: str) -> list[int]:
    try:
        return cached_search(run_id, query, limit=SEARCH_SHOWN)
    except TagError as error:
        st.warning(str(error))
        return []


def search_section(run, rows: list[int], query: str) -> None:
    """The search's matches (highlighted on the map): pick one to focus it, or add them all to a set."""
    if not query.strip():
        return
    if not rows:
        st.caption(f"No track matches {query!r}.")
        return
    names = display_names(run.tracks.iloc[rows]).tolist()
    left, right = st.columns([3, 2])
    key = f"map_search_pick_{run.run_id}"
    left.selectbox(f"{len(rows)} matches, ringed on the map", range(len(rows)), index=None,
                   format_func=names.__getitem__, key=key, placeholder="Pick one to open it",
                   on_change=lambda: workspace.set_focus(run, None if st.session_state[key] is None
                                                         else rows[st.session_state[key]]))
    with right:
        workspace.list_actions(run, rows, key="map_search_actions", what="the matches")


def other_run_neighbours(run, row: int, k: int, other_id: str) -> None:
    """The focused track's k nearest neighbours in ``other_id`` (the run the map's agreement colour compares with)."""
    other = cached_run(other_id)
    found = rows_of_ids(other, [str(run.tracks["track_id"].iloc[row])])
    st.markdown(f"**In `{other_id}`**")
    if not found.size:
        st.caption("That run does not hold this track.")
        return
    neighbour_list(nearest_others(other_id, int(found[0]), k))


def track_panel(run, row: int, k: int, *, autoplay: bool, compared: str | None = None) -> list[int]:
    """The focused track: heading, player (playing at once after a click), its k nearest neighbours with players
    and actions (beside its neighbours in the ``compared`` run when the map is coloured by agreement with it);
    returns the neighbours' rows."""
    track_heading(run.tracks.iloc[row])
    path = str(run.tracks["path"].iloc[row])
    if autoplay:
        st.audio(path, autoplay=True)
    else:
        play(path)
    taste.taste_buttons(run, row, key="map_focus")
    st.button("Add this track to the selection", key="map_focus_select", icon=":material/add_circle:",
              on_click=workspace.add_to_selection, args=(run, [row]))
    neighbours = nearest_others(run.run_id, row, k)  # the track itself is not its own neighbour
    st.markdown(f"**{len(neighbours)} nearest neighbours** by cosine similarity of the embeddings")
    here, there = st.columns(2) if compared else (st.container(), None)
    with here:
        if compared:
            st.markdown(f"**In `{run.run_id}`**")
        neighbour_list(neighbours, buttons=taste.button_maker(run, "map_near", None))
    if there is not None:
        with there:
            other_run_neighbours(run, row, k, compared)
    workspace.list_actions(run, neighbours["row"], key="map_neighbour_actions", what="the neighbours")
    return neighbours["row"].astype(int).tolist()


def sets_panel(run, collection, k: int) -> None:
    """The selection and the chosen collection, each with its summary, play list, exports, more like these, save."""
    rows = workspace.selection_rows(run)
    if rows is not None and rows.size:
        selection.selection_panel(run, rows, k=k)
    if collection is not None:
        selection.collection_panel(run, collection, k=k)
    if (rows is None or not rows.size) and collection is None:
        st.caption("Draw a lasso or a box around tracks on the map (the tools are at its top left), or add tracks "
                   "from any list: the selection can be played, exported as M3U or CSV, extended with more like "
                   "these and saved as a collection. It stays while you change projection, page or run.")


def clustering_of(option: str, options: list[str]) -> str | None:
    """The clustering whose names label the map: the one coloured by, else the first one computed."""
    if option.startswith("cluster:"):
        return option.removeprefix("cluster:")
    return next((m for m in CLUSTER_METHODS if f"cluster:{m}" in options), None)


nav.require_router(__file__)
st.title("Map")
run = require_run()
taste.listener_picker()  # whose likes the track panel records
tags_form(run)
autoplay = take_event(run)

controls = st.columns([3, 3, 4, 2])
with controls[0]:
    method = projection_picker("map_projection")
with controls[1]:
    colour = colour_picker(run)
stamp = colour_stamp(run.run_id)
points, unknown = cached_layer(run.run_id, method, colour, stamp)
groups = groups_of(points)
with controls[2]:
    shown = st.multiselect("Show", groups, default=groups, key=f"map_groups_{run.run_id}_{colour}",
                           placeholder="None chosen: every track greyed", disabled=not groups,
                           help="Tracks of the groups left out are greyed, not hidden")
with controls[3]:
    k = st.slider("Neighbours (k)", 1, 20, 5, key="map_k")

tools = st.columns([3, 3, 2])
with tools[0]:
    query = st.text_input("Find tracks", key=f"map_search_{run.run_id}",
                          placeholder="Title, artist, file or label; tag:rock for the most rock-like tracks")
with tools[1]:
    collection, only_collection = selection.collection_picker(run)
with tools[2]:
    contours = st.toggle("Density contours", value=True, key="map_contours")
    names_on = st.toggle("Cluster names", value=True, key="map_cluster_names")

found = search_rows(run.run_id, query)
greyed = group_mask(points, shown)
if only_collection:
    outside = np.ones(points.n, dtype=bool)
    outside[selection.cached_collection_rows(run.run_id, collection)] = False
    greyed = outside if greyed is None else greyed | outside
if unknown.any():
    greyed = unknown if greyed is None else greyed | unknown
options = cached_colour_options(run.run_id, stamp)
clustering = clustering_of(colour, options)
labels = cached_labels(run.run_id, method, clustering, stamp) if names_on and clustering else []
tag = colour.removeprefix("tag:") if colour.startswith("tag:") else None
histograms = cached_histograms(run.run_id, tag, clustering, stamp)
focus = workspace.focus_row(run)
neighbours = [] if focus is None else nearest_others(run.run_id, focus, k)["row"].astype(int).tolist()

st.session_state[DRAWN_KEY] = run.run_id
atlas_map(points, key=ATLAS_KEY, selected=workspace.selection_rows(run), focus=focus, linked=neighbours,
          highlighted=found, greyed=greyed, labels=labels, contours=contours, histograms=histograms,
          ranges=st.session_state.get(RANGES_KEY, {}).get(run.run_id), drag=st.session_state.get(DRAG_KEY, "lasso"),
          height=620)
quality = cached_quality(run.run_id, method)
st.caption(f"{points.n:,} tracks of run `{run.run_id}`. Scroll to zoom; the tools at the map's top left choose "
           f"what dragging does (lasso, box or pan); click a point to open it. **Map quality:** {quality['text']}.")

left, right = st.columns(2)
with left:
    search_section(run, found, query)
    if focus is None:
        st.info("Click a point on the map to hear that track and see its nearest neighbours.")
    else:
        track_panel(run, focus, k, autoplay=autoplay,
                    compared=colour.removeprefix(AGREEMENT) if colour.startswith(AGREEMENT) else None)
with right:
    sets_panel(run, collection, k)
