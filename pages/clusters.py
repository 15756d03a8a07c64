"""Clusters: how tracks group under k-means, on audio features, embeddings or both (results of core.clusters)."""
from __future__ import annotations

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from core.clusters import (ClusterConfig, cluster_inputs_done, clusters_dir, load_clusters, profile_matrix,
                           run_clusters)
from core.errors import TimbreError
from core.maps import map_figure
from pages._shared import INPUT_NAMES, cached_points, pick_source, projection_picker

def run_form(source, has_results: bool) -> None:
    with st.expander("Compute clusters", expanded=not has_results):
        with st.form("cluster_form"):
            inputs = st.multiselect("Inputs", source.available_inputs(), default=source.available_inputs(),
                                    format_func=INPUT_NAMES.get, key="cluster_inputs")
            k_range = st.slider("k from / to", 2, 30, (2, 12), help="k is chosen by the best silhouette",
                                key="cluster_k_range")
            go_ = st.form_submit_button("Compute clusters", type="primary")
        if go_:
            bar = st.progress(0.0, text="starting...")
            cfg = ClusterConfig(input=tuple(inputs), k_min=k_range[0], k_max=k_range[1])
            try:
                run_clusters(source, cfg=cfg, progress=lambda d, t, m: bar.progress(min(1.0, d / max(t, 1)), text=m))
            except TimbreError as error:
                st.error(str(error))


def curves_chart(curves, k: int):
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Elbow: inertia", "Silhouette (higher is better)"))
    fig.add_trace(go.Scatter(x=curves["k"], y=curves["inertia"], mode="lines+markers", name="inertia"), 1, 1)
    fig.add_trace(go.Scatter(x=curves["k"], y=curves["silhouette"], mode="lines+markers", name="silhouette"), 1, 2)
    for col in (1, 2):
        fig.add_vline(x=k, line_dash="dash", line_color="#d62728", row=1, col=col)
        fig.update_xaxes(title_text="k", dtick=1, row=1, col=col)
    fig.update_layout(height=330, showlegend=False, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def cluster_names(clusters) -> list[str]:
    return [f"cluster {c + 1}" for c in clusters]


def map_section(source, assignments) -> None:
    """The run's map coloured by cluster; for a feature table, a PCA of the clustered matrix."""
    names = dict(zip(assignments["track_id"], cluster_names(assignments["cluster"])))
    if source.kind == "run":
        method = projection_picker("clusters_projection")
        points = cached_points(source.name, method).copy()
        points["label"] = source.tracks["track_id"].map(names).fillna("not clustered").to_numpy()
        fig = map_figure(points, method=method)
    else:
        frame = assignments.assign(cluster=cluster_names(assignments["cluster"]))
        fig = px.scatter(frame, x="pca_x", y="pca_y", color="cluster", hover_name="track_id",
                         hover_data=["label"], labels={"pca_x": "PCA 1", "pca_y": "PCA 2"})
        fig.update_layout(height=560)
    fig.update_layout(legend={"title": {"text": "cluster"}})
    st.plotly_chart(fig, key="cluster_map")


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
st.plotly_chart(curves_chart(result["curves"], summary["k"]), key="curves_chart")

st.subheader("Cluster profiles")
left, right = st.columns(2)
with left:
    mix = result["label_mix"].assign(cluster=lambda f: cluster_names(f["cluster"]))
    fig = px.bar(mix, x="cluster", y="count", color="label", title="Size and label make-up",
                 hover_data={"share": ":.0%"})
    fig.update_layout(height=420, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    st.plotly_chart(fig, key="label_mix_chart")
with right:
    profile = result["feature_profile"]
    if profile is None:
        st.caption("No audio features to profile the clusters with.")
    else:
        n = st.slider("Most distinctive features", 5, 40, 15, key="profile_n")
        wide = profile_matrix(profile, n=n)
        fig = px.imshow(wide.T, x=cluster_names(wide.index), y=list(wide.columns), zmin=-2, zmax=2,
                        color_continuous_scale="RdBu_r", aspect="auto",
                        labels={"color": "z", "x": "", "y": ""}, title="Cluster mean vs overall mean (in sd)")
        fig.update_layout(height=max(420, 60 + 20 * len(wide.columns)), margin={"l": 10, "r": 10, "t": 40, "b": 10})
        st.plotly_chart(fig, key="profile_chart")

st.subheader("Map coloured by cluster")
map_section(source, result["assignments"])
