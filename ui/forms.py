"""The run-a-job forms of the analysis pages and the Map page: settings in a form inside an expander, a button
that starts a :mod:`core.jobs` job (classify, cluster, tags), its progress while it runs, and a plain error when it
cannot (:func:`background_job_form`); the Map page's neighbour-agreement job (:func:`agreement_job`)."""
from __future__ import annotations

from typing import Callable

import streamlit as st

from core import jobs
from core.analysis import Source, SourceKind
from core.base import TimbreError

POLL_S = 1.0  # how often a running job's progress is redrawn


def source_target(source: Source) -> dict:
    """The ``run`` / ``features`` arguments of :func:`core.jobs.start_analysis_job` that name ``source``."""
    return {"run": source.name} if source.kind is SourceKind.RUN else {"features": source.name}


@st.fragment(run_every=POLL_S)
def job_progress(job_id: str, *, key: str) -> None:
    """A running job's progress bar and Cancel button, redrawn every :data:`POLL_S` seconds; the whole page
    reruns when the job has ended (its results are then on disk)."""
    job = jobs.job_status(job_id)
    if job["state"] not in jobs.ACTIVE:
        st.rerun()
    done, total = job.get("done", 0), job.get("total", 0)
    text = (job.get("message") or job.get("stage") or "starting") + (f" ({done} / {total})" if total else "")
    st.progress(min(1.0, done / total) if total else 0.0, text=text)
    # a callback: the job is stopped before the page runs again, and that run shows it stopped
    st.button("Cancel", icon=":material/stop:", key=f"{key}_cancel", on_click=jobs.cancel_job, args=(job_id,))


def job_outcome(job: dict, *, key: str, report: Callable[[dict], None]) -> None:
    """What a job this session followed left: ``report(result)`` when it is done, else why it failed or that it
    was cancelled; then a Close button that forgets the job."""
    if job["state"] == "done":
        report(job.get("result") or {})
    elif job["state"] == "failed":
        st.error(f"The job failed: {job.get('error')}")
        with st.expander("Job log"):
            st.code(jobs.job_log(job["job_id"]) or "(empty)", language=None)
    elif job["state"] == "cancelled":
        st.warning("The job was cancelled; results finished before that are kept.")
    st.button("Close", key=f"{key}_close", on_click=st.session_state.pop, args=(key, None))


def background_job_form(*, kind: str, target: dict, title: str, key: str, submit: str, expanded: bool,
                        settings: Callable[[], dict], report: Callable[[dict], None]) -> bool:
    """Draw the form of a :mod:`core.jobs` job on ``target``, start the job when it is submitted and follow it.

    A job of ``kind`` already running on ``target`` (started by another session, or before a page reload) is
    found and followed: its progress and a Cancel button are shown, and the form cannot start a second one.

    Parameters
    ----------
    kind : "classify", "cluster" or "tags"
    target : dict
        The source (and collection) arguments of :func:`core.jobs.start_analysis_job`; tags: the run.
    title, key, submit, expanded
        The expander's label, the form's key (also the prefix of this session's state and buttons), the button's
        label, and whether the expander is open.
    settings : callable
        Draws the form's widgets and returns the config's fields; only called inside the form.
    report : callable
        ``report(result)`` draws what a finished job this session followed did (its status's ``result``); shown
        until Close is pressed.

    Returns
    -------
    bool
        True while a job of ``kind`` runs on ``target`` (its results are not there yet).
    """
    followed = f"{key}_job"  # the job this session follows
    job = jobs.find_analysis_job(kind, **target)
    running = job is not None and job["state"] in jobs.ACTIVE
    if running:
        st.session_state[followed] = job["job_id"]  # followed to its end, also after a reload
    with st.expander(title, expanded=expanded and not running):
        with st.form(key):
            chosen = settings()
            pressed = st.form_submit_button(submit, type="primary", disabled=running)
    if pressed and not running:
        try:
            job = jobs.job_status(jobs.start_analysis_job(kind, **target, config=chosen))
        except TimbreError as error:
            st.error(str(error))
            return False
        # followed from this run on (no st.rerun: the form shows its button disabled from the next full run)
        st.session_state[followed], running = job["job_id"], True
    if running:
        job_progress(job["job_id"], key=key)
    elif job is not None and st.session_state.get(followed) == job["job_id"]:
        job_outcome(job, key=followed, report=report)
    return running


def agreement_job(run_id: str, other_id: str, *, key: str) -> None:
    """The background job that computes the neighbour agreement of ``run_id`` with ``other_id``: a button that
    starts it, its progress and Cancel while it runs (the page reruns when it ends), why it failed."""
    job = jobs.find_agreement_job(run_id, other_id)
    if job is not None and job["state"] in jobs.ACTIVE:
        job_progress(job["job_id"], key=key)
        return
    if job is not None and job["state"] == "failed":
        st.error(f"Comparing the neighbourhoods failed: {job.get('error')}")
    if st.button("Compute the neighbour agreement", key=f"{key}_start", type="primary"):
        try:
            jobs.start_agreement_job(run_id, other_id)
        except TimbreError as error:
            st.error(str(error))
            return
        st.rerun()
