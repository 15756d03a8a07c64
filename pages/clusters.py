"""Clusters: how tracks group under k-means, on audio features, embeddings or both (results of core.clusters)."""
from __future__ import annotations

import streamlit as st

from core.clusters import ClusterConfig, cluster_inputs_done, clusters_dir, load_clusters, profile_matrix, run_clusters
from core.feature_table import SourceKind
from ui import nav
from ui.figures import cluster_curves_figure, cluster_scatter_figure, label_mix_figure, map_figure, profile_figure
from ui.forms import job_form
from ui.sources import INPUT_NAMES
from ui.state import cached_points
from ui.widgets import pick_source, projection_picker


def settings(source) -> dict:
    """The cluster settings form's widgets; returns :class:`core.clusters.ClusterConfig` fields."""
    inputs = st.multiselect("Inputs", source.available_inputs(), default=source.available_inputs(),
                            format_func=INPUT_NAMES.get, key="cluster_inputs")
    k_min, k_max = st.slider("k from / to", 2, 30, (2, 12), help="k is chosen by the best silhouette",
                             key="cluster_k_range")
    return {"input": tuple(inputs), "k_min": k_min, "k_max": k_max}


def run_form(source, has_results: bool) -> None:
    job_form(title="Compute clusters", key="cluster_form", submit="Compute clusters", expanded=not has_results,
             settings=lambda: settings(source),
             job=lambda values, progress: run_clusters(source, cfg=ClusterConfig(**values), progress=progress))


def cluster_names(clusters) -> list[str]:
    return [f"cluster {c + 1}" for c in clusters]


def map_section(source, assignments) -> None:
    """The run's map coloured by cluster; for a feature table, a PCA of the clustered matrix."""
    names = dict(zip(assignments["track_id"], cluster_names(assignments["cluster"])))
    if source.kind is SourceKind.RUN:
        method = projection_picker("clusters_projection")
        points = cached_points(source.name, method).copy()
        points["label"] = source.tracks["track_id"].map(names).fillna("not clustered").to_numpy()
        fig = map_figure(points, method=method, legend_title="cluster")
    else:
        fig = cluster_scatter_figure(assignments.assign(cluster=cluster_names(assignments["cluster"])))
    st.plotly_chart(fig, key="cluster_map")


nav.require_router(__file__)
st.title("Clusters")
source = pick_source()
folder = clusters_dir(source)
run_form(source, has_results=bool(cluster_inputs_done(folder)))
done = cluster_inputs_done(folder)
if not done:
    st.info(f"No clusters for {source.title} yet: press **Compute clusters** above (seconds), or run "
            "`python -m core cluster` in a terminal.")
    st.stop()

input_ = st.segmented_control("Clustered on", done, format_func=INPUT_NAMES.get, default=done[0],
                              key="cluster_input") or done[0]
result = load_clusters(folder, input_)
summary = result["summary"]
a, b, c, d = st.columns(4)
a.metric("k (best silhouette)", summary["k"])
b.metric("Silhouette", f"{summary['silhouette']:.3f}")
c.metric("Agreement with labels (ARI)", "-" if summary.get("ari") is None else f"{summary['ari']:.3f}")
d.metric("NMI with labels", "-" if summary.get("nmi") is None else f"{summary['nmi']:.3f}")
st.plotly_chart(cluster_curves_figure(result["curves"], k=summary["k"]), key="curves_chart")

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
map_section(source, result["assignments"])
