"""Clusters: how tracks group under k-means or HDBSCAN, on audio features, embeddings or both (results of
core.analysis.clusters), as cards worth exploring: size, labels, characteristic tags and features, central tracks."""
from __future__ import annotations

import streamlit as st

from core.analysis import CLUSTER_METHOD_NAMES as METHOD_NAMES
from core.analysis import CLUSTER_METHODS as METHODS
from core.analysis import (
    SourceKind,
    aligned_tags,
    cluster_cards,
    cluster_inputs_done,
    cluster_name,
    clusters_dir,
    load_clusters,
    profile_matrix,
    rows_of_ids,
)
from core.analysis import cluster_result_name as result_name
from core.data import display_names
from ui import nav, workspace
from ui.atlas import atlas_map, decode_event
from ui.atlas_layers import cached_labels, label_layer
from ui.figures import cluster_curves_figure, cluster_scatter_figure, label_mix_figure, profile_figure
from ui.forms import background_job_form, source_target
from ui.sources import INPUT_NAMES
from ui.state import cached_run, colour_stamp
from ui.widgets import pick_source, play, projection_picker
from ui.workspace import list_actions

CARDS_PER_ROW = 3


def settings(source, method: str) -> dict:
    """The cluster settings form's widgets; returns :class:`core.analysis.clusters.ClusterConfig` fields."""
    inputs = st.multiselect("Inputs", source.available_inputs(), default=source.available_inputs(),
                            format_func=INPUT_NAMES.get, key="cluster_inputs")
    if method == "hdbscan":
        size = st.slider("Smallest cluster (tracks)", 3, 50, 8, key="cluster_min_size",
                         help="Smaller groups become noise")
        reduce = st.radio("Cluster", ["umap", "none"], horizontal=True, key="cluster_reduce",
                          format_func={"umap": "a UMAP reduction", "none": "the matrix itself"}.get)
        return {"method": method, "input": tuple(inputs), "min_cluster_size": size, "reduce": reduce}
    k_min, k_max = st.slider("k from / to", 2, 30, (2, 12), help="k is chosen by the best silhouette",
                             key="cluster_k_range")
    return {"method": method, "input": tuple(inputs), "k_min": k_min, "k_max": k_max}


def run_form(source, method: str, has_results: bool) -> bool:
    """Settings and the button that computes clusters as a background job (one at a time per source, whichever
    the method), with its progress, and what the finished job did; True while the job runs."""
    return background_job_form(
        kind="cluster", target=source_target(source), title=f"Compute clusters: {METHOD_NAMES[method]}",
        key=f"cluster_form_{method}", submit="Compute clusters", expanded=not has_results,
        settings=lambda: settings(source, method),
        report=lambda result: st.success(f"Clustered {result['n_results']} input(s) in {result['seconds']:.1f} s."))


def newest_first(folder, method: str, done: list[str]) -> str:
    """The "Clustered on" choice: what the user picked, except that a newer result (a job just finished, or a
    result computed elsewhere) is shown first, whichever input it was computed on."""
    stamps = {i: (folder / result_name(method, i) / "summary.json").stat().st_mtime for i in done}
    newest = max(done, key=stamps.get)
    seen = f"cluster_input_seen_{method}"
    if st.session_state.get(seen) != stamps[newest]:
        st.session_state[seen] = stamps[newest]
        st.session_state["cluster_input"] = newest
    if st.session_state.get("cluster_input") not in done:
        st.session_state["cluster_input"] = newest
    return st.segmented_control("Clustered on", done, format_func=INPUT_NAMES.get, key="cluster_input") or newest


def cluster_names(clusters) -> list[str]:
    return [cluster_name(c) for c in clusters]


def fmt(value, pattern: str = "{:.3f}") -> str:
    return "-" if value is None else pattern.format(value)


def methods_table(folder, input_: str) -> list[dict]:
    """Every method with results on ``input_``: clusters, noise, silhouette and agreement with the labels."""
    rows = []
    for method in METHODS:
        if input_ in cluster_inputs_done(folder, method):
            s = load_clusters(folder, input_, method)["summary"]
            rows.append({"method": METHOD_NAMES[method], "clusters": s["k"], "noise": f"{s['noise_share']:.0%}",
                         "silhouette": fmt(s.get("silhouette")), "ARI with labels": fmt(s.get("ari")),
                         "NMI with labels": fmt(s.get("nmi"))})
    return rows


def card(item: dict, source, members) -> None:
    """One cluster card: size, label mix, characteristic tags and features, central tracks with players; for a
    run, the cluster's ``members`` (its track ids) can join the selection or a collection."""
    with st.container(border=True):
        st.markdown(f"**{item['name']}** · {item['size']} tracks ({item['share']:.0%})")
        labels = ", ".join(f"{lab} {n}" for lab, n in list(item["labels"].items())[:4])
        st.caption(f"labels: {labels}")
        if item["tags"]:
            st.markdown("tags: " + ", ".join(f"**{t}** ×{lift:.2f}" for t, lift in item["tags"]))
        if item["features"]:
            st.caption("features (z): " + ", ".join(f"{f} {z:+.1f}" for f, z in item["features"][:4]))
        rows = source.tracks.reset_index(drop=True)
        central = rows[rows["track_id"].astype(str).isin(item["central"])]
        for (_, track), name in zip(central.iterrows(), display_names(central)):
            label = track["label"] if isinstance(track["label"], str) else "no label"
            st.caption(f"near the centre: {name} ({label})")
            if "path" in track:
                play(track["path"])
        if source.kind is SourceKind.RUN:
            run = cached_run(source.name)
            list_actions(run, rows_of_ids(run, members), key=f"cluster_card_{item['cluster']}", what="this cluster")


def cards_section(source, result) -> None:
    tags = aligned_tags(source.dataset, source.tracks["track_id"])
    cards = cluster_cards(result, track_ids=source.tracks["track_id"].astype(str), tags=tags)
    st.caption("Tags: musicnn tag likelihoods, by lift (mean in the cluster / mean in the library). "
               "Features: the cluster's mean in library standard deviations. "
               + ("" if tags is not None else "No musicnn tags for this data (see the Map page for why)."))
    members = result["assignments"].groupby("cluster")["track_id"].apply(lambda ids: ids.astype(str).tolist())
    for start in range(0, len(cards), CARDS_PER_ROW):
        for column, item in zip(st.columns(CARDS_PER_ROW), cards[start:start + CARDS_PER_ROW]):
            with column:
                card(item, source, members.get(item["cluster"], []))


def take_event(run) -> None:
    """A lasso on the clusters' map is the selection, a click the focused track (:mod:`ui.workspace`)."""
    event = decode_event(st.session_state.get("cluster_atlas"))
    if event is None or event.seq <= st.session_state.get("cluster_atlas_seen", -1):
        return
    st.session_state["cluster_atlas_seen"] = event.seq
    workspace.apply_gesture(run, event)


def map_section(source, assignments, *, clustering: str, input_: str, stamp: str) -> None:
    """The run's atlas map coloured by cluster with the clusters' names; for a feature table, a PCA of the clustered
    matrix."""
    names = dict(zip(assignments["track_id"], cluster_names(assignments["cluster"])))
    if source.kind is SourceKind.RUN:
        method = projection_picker("clusters_projection")
        run = cached_run(source.name)
        take_event(run)  # before drawing: the map then shows what the gesture changed
        coords = run.projections
        groups = source.tracks["track_id"].map(names).fillna("not clustered").to_numpy()
        points = label_layer(run.run_id, coords[f"{method}_x"].to_numpy(), coords[f"{method}_y"].to_numpy(),
                             groups=groups, key=f"clusters/{run.run_id}/{clustering}/{input_}/{method}/{stamp}")
        atlas_map(points, key="cluster_atlas", selected=workspace.selection_rows(run), focus=workspace.focus_row(run),
                  labels=cached_labels(run.run_id, method, clustering, stamp, input=input_), height=560)
        st.caption("Each cluster is named at its centre from its characteristic musicnn tags and an audio feature. "
                   "The selection and the focused track (Map page) are shown; a lasso here selects too.")
        return
    fig = cluster_scatter_figure(assignments.assign(cluster=cluster_names(assignments["cluster"])))
    st.plotly_chart(fig, key="cluster_map")


nav.require_router(__file__)
st.title("Clusters")
source = pick_source()
folder = clusters_dir(source)
method = st.segmented_control("Method", METHODS, format_func=METHOD_NAMES.get, default="kmeans",
                              key="cluster_method") or "kmeans"
running = run_form(source, method, has_results=bool(cluster_inputs_done(folder, method)))
done = cluster_inputs_done(folder, method)
if not done:
    if running:
        st.stop()  # the job's progress is above
    st.info(f"No clusters by {METHOD_NAMES[method]} for {source.title} yet: press **Compute clusters** above "
            f"(seconds), or run `python -m core cluster {source.cli_flag} --method {method}` in a terminal.")
    st.stop()

input_ = newest_first(folder, method, done)
result = load_clusters(folder, input_, method)
summary = result["summary"]
a, b, c, d = st.columns(4)
a.metric("k (best silhouette)" if method == "kmeans" else "Clusters", summary["k"])
if method == "hdbscan":
    b.metric("Noise (in no cluster)", f"{summary['noise_share']:.0%}")
else:
    b.metric("Silhouette", fmt(summary.get("silhouette")))
c.metric("Agreement with labels (ARI)", fmt(summary.get("ari")))
d.metric("NMI with labels", fmt(summary.get("nmi")))
st.dataframe(methods_table(folder, input_), hide_index=True)
if result["curves"] is not None:
    st.plotly_chart(cluster_curves_figure(result["curves"], k=summary["k"]), key="curves_chart")
elif method == "hdbscan":
    st.caption(f"Clustered on {summary.get('space', 'the scaled matrix')}; ARI and NMI count noise as one more "
               "group. Smaller 'smallest cluster' values find more, smaller clusters.")

st.subheader("Clusters worth exploring")
cards_section(source, result)

st.subheader("Cluster profiles")
left, right = st.columns(2)
with left:
    mix = result["label_mix"].assign(cluster=lambda f: cluster_names(f["cluster"]))
    st.plotly_chart(label_mix_figure(mix), key="label_mix_chart")
with right:
    profile = result["feature_profile"]
    if profile is None:
        st.caption("No audio features to profile the clusters with.")
    else:
        n = st.slider("Most distinctive features", 5, 40, 15, key="profile_n")
        wide = profile_matrix(profile, n=n)
        st.plotly_chart(profile_figure(wide.set_axis(cluster_names(wide.index))), key="profile_chart")

st.subheader("Map coloured by cluster")
map_section(source, result["assignments"], clustering=method, input_=input_, stamp=colour_stamp(source.name)
            if source.kind is SourceKind.RUN else "")
