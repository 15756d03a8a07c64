"""Features: how the classic audio features relate to each other and to the labels."""
from __future__ import annotations

import streamlit as st

from core.analysis import feature_correlation, feature_groups
from core.base import TimbreError
from ui import nav
from ui.figures import correlation_figure, feature_scatter_figure, violin_figure
from ui.sources import source_stamp
from ui.widgets import SOURCE_KEY, cached_source, pick_source

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


nav.require_router(__file__)
st.title("Features")
source = pick_source()
key = st.session_state[SOURCE_KEY]
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
    st.plotly_chart(correlation_figure(corr, method=method or "spearman"), key="corr_chart")
else:
    st.caption("Choose families with at least two features.")

st.subheader("One feature across labels")
feature = st.selectbox("Feature", features, index=first_index(features), key="violin_feature")
st.plotly_chart(violin_figure(frame, feature=feature), key="violin_chart")

st.subheader("Two features")
left, right = st.columns(2)
x_feature = left.selectbox("x", features, index=first_index(features), key="scatter_x")
y_feature = right.selectbox("y", features, index=first_index(features, 1), key="scatter_y")
st.plotly_chart(feature_scatter_figure(frame, x=x_feature, y=y_feature), key="scatter_chart")
