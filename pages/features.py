"""Features: how the classic audio features relate to each other and to the labels."""
from __future__ import annotations

import plotly.express as px
import streamlit as st

from core.errors import TimbreError
from core.feature_table import feature_correlation, feature_groups, source_stamp
from pages._shared import cached_source, pick_source

DEFAULT_GROUPS = ("rhythm", "energy", "spectral", "MFCC means", "other")
# Features shown first when a table has them (readable and usually telling); otherwise the first columns.
FIRST_CHOICES = ("spectral_centroid_mean", "rms_mean", "danceability", "energy")


def first_index(features: list[str], skip: int = 0) -> int:
    present = [features.index(f) for f in FIRST_CHOICES if f in features]
    return present[skip] if len(present) > skip else min(skip, len(features) - 1)


@st.cache_data(show_spinner=False, max_entries=16)
def cached_table(key: str, stamp: float):
    """Labelled tracks with their features (track_id, label, name, features...)."""
    return cached_source(key, stamp).labelled_features()


st.title("Features")
source = pick_source()
key = st.session_state["analysis_source"]
try:
    frame = cached_table(key, source_stamp(key))
except TimbreError as error:
    st.info(f"{error}. Ingest the dataset with features (`python -m core ingest DIR --name NAME`) to see them here.")
    st.stop()
if frame.empty:
    st.info(f"{source.title}: no labelled track has audio features.")
    st.stop()
features = [c for c in frame.columns if c not in ("track_id", "label", "name")]
groups = feature_groups(features)
st.caption(f"{len(frame)} labelled tracks, {len(features)} features, labels: "
           + ", ".join(f"{k} {v}" for k, v in frame["label"].value_counts().items()))

st.subheader("Correlation between features")
left, right = st.columns([3, 1])
chosen_groups = left.multiselect("Feature families", list(groups), key="corr_groups",
                                 default=[g for g in groups if g in DEFAULT_GROUPS] or list(groups)[:1])
method = right.segmented_control("Correlation", ["spearman", "pearson"], default="spearman", key="corr_method")
columns = [c for g in chosen_groups for c in groups[g]]
if len(columns) >= 2:
    corr = feature_correlation(frame, columns, method=method or "spearman")
    fig = px.imshow(corr, zmin=-1, zmax=1, color_continuous_scale="RdBu_r", aspect="auto",
                    labels={"color": method or "spearman"})
    fig.update_layout(height=min(1000, 220 + 14 * len(columns)), margin={"l": 10, "r": 10, "t": 30, "b": 10})
    st.plotly_chart(fig, key="corr_chart")
else:
    st.caption("Choose families with at least two features.")

st.subheader("One feature across labels")
feature = st.selectbox("Feature", features, index=first_index(features), key="violin_feature")
fig = px.violin(frame, x="label", y=feature, color="label", box=True, points="all", hover_name="name")
fig.update_layout(height=450, showlegend=False, margin={"l": 10, "r": 10, "t": 30, "b": 10})
st.plotly_chart(fig, key="violin_chart")

st.subheader("Two features")
left, right = st.columns(2)
x_feature = left.selectbox("x", features, index=first_index(features), key="scatter_x")
y_feature = right.selectbox("y", features, index=first_index(features, 1), key="scatter_y")
fig = px.scatter(frame, x=x_feature, y=y_feature, color="label", hover_name="name", opacity=0.85)
fig.update_layout(height=500, margin={"l": 10, "r": 10, "t": 30, "b": 10})
st.plotly_chart(fig, key="scatter_chart")
