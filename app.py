"""Timbre Atlas: the st.navigation router (pages draw, core/ computes)."""
import streamlit as st

st.set_page_config(page_title="Timbre Atlas", page_icon=":material/graphic_eq:", layout="wide")
st.navigation({
    "Embeddings": [
        st.Page("pages/runs.py", title="Runs", icon=":material/folder_open:", default=True),
        st.Page("pages/map.py", title="Map", icon=":material/scatter_plot:"),
        st.Page("pages/recommend.py", title="Recommend", icon=":material/mic:"),
        st.Page("pages/compare.py", title="Compare runs", icon=":material/compare:"),
    ],
    "Analysis": [
        st.Page("pages/classifiers.py", title="Classifiers", icon=":material/model_training:"),
        st.Page("pages/features.py", title="Features", icon=":material/insights:"),
        st.Page("pages/clusters.py", title="Clusters", icon=":material/bubble_chart:"),
    ],
}).run()
