"""Helpers every page uses: the active run (kept in session state) and cached loaders."""
from __future__ import annotations

import streamlit as st

from core.runs import Run, list_runs, load_run

RUN_KEY = "active_run_id"


@st.cache_resource(show_spinner="Loading run...")
def cached_run(run_id: str) -> Run:
    """A run with its arrays and model loaded once per server (runs never change after they are written)."""
    run = load_run(run_id)
    run.embeddings, run.projections, run.tracks, run.model  # noqa: B018 (warm the lazy attributes)
    return run


def active_run_id() -> str | None:
    """The run chosen on the Runs page, else the newest one; None when there is no run at all."""
    runs = list_runs()
    if not runs:
        return None
    if st.session_state.get(RUN_KEY) not in runs:
        st.session_state[RUN_KEY] = runs[0]
    return st.session_state[RUN_KEY]


def require_run() -> Run:
    """The active run, or a plain message pointing to the Runs page (and the page stops)."""
    run_id = active_run_id()
    if run_id is None:
        st.info("There is no run yet. Build the demo run (or train your own) on the Runs page.")
        st.page_link("pages/runs.py", label="Go to Runs", icon=":material/folder_open:")
        st.stop()
    return cached_run(run_id)
