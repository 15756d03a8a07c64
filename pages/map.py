"""Map: the run's tracks on a precomputed PCA / t-SNE / UMAP map; click a track to hear it and its neighbours.

Up to :data:`core.analysis.maps.POINT_LIMIT` tracks are drawn as points with hover; more are a density layer under a
sample of points, and drawing a box on it (or filtering labels) narrows the map until its tracks are few enough
to be drawn one by one.
"""
from __future__ import annotations

import streamlit as st

from core.analysis.maps import COLOUR_LABEL, DENSITY_SAMPLE, POINT_LIMIT, Window, colour_title, labels_in_order, map_view, track_focus
from core.analysis.tags import tags_computable, tags_reason
from core.base.errors import TagError
from ui import nav, selection
from ui.figures import map_figure
from ui.forms import background_job_form
from ui.state import (
    cached_colour_options,
    cached_coloured_points,
    cached_points,
    cached_search,
    cached_similar,
    colour_stamp,
    selected_box,
    selected_rows,
)
from ui.widgets import neighbour_list, play, projection_picker, require_run, track_heading

CHART_KEY = "map_chart"
SELECTION_KEY = "map_selection"  # {"run": run_id, "row": int}: survives reruns and page changes
LAST_EVENT_KEY = "map_last_event"
WINDOW_KEY = "map_window"  # {"run", "method", "window": Window}: the box drawn on a density map
# Above this many tracks the track picker searches (a select box would send every name to the browser).
PICKER_LIMIT = 20_000


def has_tags(run) -> bool:
    """Whether the run's map can be coloured by musicnn tags (its dataset's tag files are read again once they
    change: a tags job that just finished, here or in another session, shows at once)."""
    return any(o.startswith("tag:") for o in cached_colour_options(run.run_id, colour_stamp(run.run_id)))


def colour_picker(run) -> str:
    """The "Colour by" select (:func:`core.analysis.maps.colour_options`); says once why there are no tags to colour by."""
    options = cached_colour_options(run.run_id, colour_stamp(run.run_id))
    option = st.selectbox("Colour by", options, format_func=colour_title, key=f"map_colour_{run.run_id}",
                          help="Label, a clustering (Clusters page) or a musicnn tag's likelihood") or COLOUR_LABEL
    if not any(o.startswith("tag:") for o in options):
        st.caption(tags_reason(run))
    return option


def tags_settings() -> dict:
    """The tags form's text; the job's :class:`core.analysis.tasks.TagsConfig` keeps its defaults."""
    st.caption("Runs musicnn over every track of the dataset (about 1 s a track) unless a reference run already "
               "did, in the background: leave the page or reload it, the work goes on.")
    return {}


def tags_report(result: dict) -> None:
    """What a finished tags job did, shown when the run still has no tags (none of its tracks could be read)."""
    st.warning(f"musicnn tagged {result['n_tagged']} of {result['n_tracks']} tracks of dataset "
               f"{result['dataset']!r}; none of them is a track of this run. " + " ".join(result["warnings"]))


def tags_form(run) -> None:
    """When the run's dataset could have musicnn tags but has none yet: the form that computes them as a
    background job on the dataset (:mod:`core.jobs`), its progress and Cancel while it runs (also after a reload,
    or when another session started it). When the job ends the page runs again and offers the tags."""
    if not has_tags(run) and tags_computable(run):
        background_job_form(kind="tags", target={"run": run.run_id}, title="Compute musicnn tags",
                            key="map_tags_form", submit="Compute tags", expanded=False, settings=tags_settings,
                            report=tags_report)


def current_row(run_id: str) -> int | None:
    chosen = st.session_state.get(SELECTION_KEY) or {}
    return chosen.get("row") if chosen.get("run") == run_id else None


def select(run_id: str, row: int | None) -> None:
    st.session_state[SELECTION_KEY] = {"run": run_id, "row": row}


def current_window(run_id: str, method: str) -> Window | None:
    chosen = st.session_state.get(WINDOW_KEY) or {}
    return chosen.get("window") if (chosen.get("run"), chosen.get("method")) == (run_id, method) else None


def set_window(run_id: str, method: str, window: Window | None) -> None:
    st.session_state[WINDOW_KEY] = {"run": run_id, "method": method, "window": window}


def take_chart_event(run_id: str, method: str) -> None:
    """A new box drawn on a density map becomes its window; a lasso or a box drawn over points selects the tracks
    inside (the selection panel below the map); a new click selects that track."""
    event = st.session_state.get(CHART_KEY)
    box, rows, shape = selected_box(event), tuple(selected_rows(event)), selection.drawn_shape(event)
    if (box, rows, shape) == st.session_state.get(LAST_EVENT_KEY):
        return
    st.session_state[LAST_EVENT_KEY] = (box, rows, shape)
    if box is not None and selection.drawn_as_density(run_id, method):
        set_window(run_id, method, Window.around(*box))
    elif shape is not None:
        selection.set_group(run_id, rows)
    elif rows:
        select(run_id, rows[0])


def search_rows(run_id: str, query: str) -> list[int]:
    """:func:`ui.state.cached_search`, with a bad ``tag:`` query's reason shown instead of raised."""
    try:
        return cached_search(run_id, query)
    except TagError as error:
        st.warning(str(error))
        return []


def track_picker(run, names, row: int | None) -> None:
    """A search box (names, or ``tag:NAME`` for the tracks most likely to carry a musicnn tag) and a select
    box of its matches; for a run of at most :data:`PICKER_LIMIT` tracks every track while the search is empty."""
    key, options = f"map_pick_{run.run_id}", range(len(names))
    query = st.text_input("Find a track", key=f"map_search_{run.run_id}",
                          placeholder="Title, artist, file or label; tag:rock for the most rock-like tracks")
    if query.strip() or len(names) > PICKER_LIMIT:
        options = list(dict.fromkeys(([] if row is None else [row]) + search_rows(run.run_id, query)))
    st.session_state[key] = row  # follows map clicks
    st.selectbox("Track", options, format_func=names.__getitem__, index=None, key=key,
                 placeholder="Click a point on the map, or type here to search",
                 on_change=lambda: select(run.run_id, st.session_state[key]))


def track_panel(run, row: int, k: int, *, tags: str = ""):
    """The selected track (with its top musicnn ``tags``, text) with a player and links, and its neighbours (itself
    first) with players; returns them."""
    item = run.tracks.iloc[row]
    track_heading(item)
    if tags:
        st.caption(f"musicnn tags: {tags}")
    play(item["path"])
    neighbours = cached_similar(run.run_id, row, k + 1)
    st.markdown(f"**{k} nearest neighbours** by cosine similarity of the embeddings")
    neighbour_list(neighbours, skip_row=row)
    return neighbours


nav.require_router(__file__)
st.title("Map")  # before the run: its error, if any, shows under the title
run = require_run()
tags_form(run)
controls = st.columns([2, 2, 4, 2])
with controls[0]:
    method = projection_picker("map_projection")
with controls[1]:
    colour = colour_picker(run)
take_chart_event(run.run_id, method)
row = current_row(run.run_id)
points = cached_points(run.run_id, method)
if colour != COLOUR_LABEL:
    points = cached_coloured_points(run.run_id, method, colour, colour_stamp(run.run_id))
all_labels = labels_in_order(points)
grouped = colour.startswith(("cluster:", "collection:"))  # the legend and the filter are the groups
with controls[2]:
    shown = st.multiselect(("Collection" if colour.startswith("collection:") else "Clusters") if grouped else "Labels",
                           all_labels, default=all_labels,
                           key=f"map_labels_{run.run_id}" + (f"_{colour}" if grouped else ""),
                           placeholder="No label chosen: showing none")
with controls[3]:
    k = st.slider("Neighbours (k)", 1, 20, 5, key="map_k")
track_picker(run, points["name"].to_numpy(), row)
window = current_window(run.run_id, method)
tools = st.columns([3, 3, 2])
with tools[1]:
    collection, only_collection = selection.collection_picker(run)
members = selection.cached_collection_rows(run.run_id, collection) if only_collection else None
view = map_view(points if members is None else points.iloc[members],
                labels=None if len(shown) == len(all_labels) else shown, window=window, limit=POINT_LIMIT,
                sample=DENSITY_SAMPLE)
with tools[0]:
    drag = selection.drag_control(density=view.density is not None)

chart, panel = st.columns([3, 2])
with panel:
    if row is None:
        st.info("Click a point on the map to hear that track and see its nearest neighbours.")
        neighbours = None
    else:
        neighbours = track_panel(run, row, k, tags=points["tags"].iloc[row])
with chart:
    focus = None if neighbours is None else track_focus(points, row, neighbours)
    st.plotly_chart(map_figure(view.points, method=method, labels=shown, focus=focus, density=view.density,
                               window=window, library=points, legend_title=colour_title(colour)
                               ).update_layout(dragmode=drag),
                    key=CHART_KEY, on_select="rerun",
                    selection_mode=("points", "box") if view.density is not None else ("points", "box", "lasso"),
                    width="stretch", config={"scrollZoom": True, "displaylogo": False})
    selection.remember_drawing(run.run_id, method, density=view.density is not None)
    if view.density is None:
        st.caption(f"{view.n_selected:,} of {len(points):,} tracks of run `{run.run_id}`; maps were computed when "
                   "the run was trained. Scroll to zoom, click a point to select it, drag to pan or to draw a lasso "
                   "or a box around tracks (choose above the map).")
    else:
        st.caption(f"{view.n_selected:,} tracks, more than {POINT_LIMIT:,}: shaded by density (darker: more "
                   f"tracks), with {len(view.points):,} of them as points. Drag a box to zoom in, or filter labels: "
                   f"at {POINT_LIMIT:,} tracks or fewer every one is drawn. Click a point to select it.")
    if window is not None:
        st.button("Show the whole map", key="map_reset", on_click=set_window, args=(run.run_id, method, None))
st.divider()
selection.map_sets(run, collection, k=k)
