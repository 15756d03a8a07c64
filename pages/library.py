"""Library: bring your own music (a folder on the server or uploaded files), ingest it and train a run, as a
background job that survives page reloads and can be cancelled."""
from __future__ import annotations

import dataclasses

import pandas as pd
import streamlit as st

from core import jobs
from core.base import LIBRARY_ROOTS_ENV, TimbreError, library_roots, public_path, shown_path
from core.data import UPLOAD_TYPES, check_dataset_name, list_datasets, save_uploads
from core.training import TrainConfig
from ui import nav
from ui.figures import loss_figure
from ui.state import set_active_run

JOB_KEY = "library_job"  # the job this session follows
DISMISSED_KEY = "library_dismissed"  # a finished job whose result the user closed
POLL_S = 1.0
SOURCES = {"folder": "A folder on the server", "upload": "Upload files", "dataset": "A dataset already ingested"}
STAGES = {"starting": "Starting", "ingesting": "Analysing audio", "training": "Training the encoder"}
DEFAULTS = TrainConfig()


def followed_job() -> dict | None:
    """The job this session started, else one still running (after a reload), else the newest unless dismissed."""
    every = jobs.list_jobs(kinds=jobs.LIBRARY_KINDS)  # classify and cluster jobs are their pages'
    by_id = {job["job_id"]: job for job in every}
    chosen = by_id.get(st.session_state.get(JOB_KEY))
    if chosen is None:
        running = [job for job in every if job["state"] in jobs.ACTIVE]
        chosen = running[0] if running else (every[0] if every else None)
    if chosen is None or chosen["job_id"] == st.session_state.get(DISMISSED_KEY):
        return None
    st.session_state[JOB_KEY] = chosen["job_id"]
    return chosen


def describe(job: dict) -> str:
    spec = job["spec"]
    what = {"ingest": "ingest", "train": "training", "ingest+train": "ingest and training"}.get(job["kind"], job["kind"])
    source = f" from `{public_path(spec['source'])}`" if spec.get("source") else ""
    started = job.get("created") or spec.get("created")
    return f"Job `{job['job_id']}`: {what} of dataset **{spec['dataset']}**{source}, started {started}"


def loss_chart(losses: list[float]) -> None:
    if losses:
        st.plotly_chart(loss_figure({"loss": losses}), width="stretch")


@st.fragment(run_every=POLL_S)
def live_job(job_id: str) -> None:
    """Progress of a running job, redrawn every :data:`POLL_S` seconds; the whole page reruns when it ends."""
    job = jobs.job_status(job_id)
    if job["state"] not in jobs.ACTIVE:
        st.rerun()
    stage = job.get("stage") or "starting"
    done, total = job.get("done", 0), job.get("total", 0)
    counts = f": {done} / {total}" if total else ""
    message = f" · {job['message']}" if job.get("message") else ""
    st.progress(min(1.0, done / total) if total else 0.0,
                text=f"{STAGES.get(stage, stage.capitalize())}{counts}{message}")
    loss_chart(job.get("losses") or [])
    if st.button("Cancel", icon=":material/stop:", key="cancel_job"):
        with st.spinner("Stopping the job..."):
            jobs.cancel_job(job_id)
        st.rerun()


def job_result(job: dict) -> None:
    """What a finished job left: the dataset and its skipped files, the new run, or why it failed."""
    result = job.get("result") or {}
    if job["state"] == "failed":
        st.error(f"The job failed: {job.get('error')}")
        with st.expander("Job log"):
            st.code(jobs.job_log(job["job_id"]) or "(empty)", language=None)
    elif job["state"] == "cancelled":
        st.warning("The job was cancelled; no run was written. Files analysed before that are kept and are not "
                   "analysed again by the next ingest of this dataset.")
    if "n_tracks" in result:
        st.success(f"Dataset **{result['dataset']}**: {result['n_tracks']:,} tracks "
                   f"({result['n_analysed']:,} files analysed now"
                   + (f", {result['n_rejected']:,} could not be used" if result.get("n_rejected") else "")
                   + f", {result['n_cached']:,} unchanged and reused).")
    skipped = result.get("skipped") or []
    if skipped:
        st.warning(f"{len(skipped)} file(s) could not be used and were skipped:")
        table = pd.DataFrame(skipped, columns=["path", "reason"])
        source = job["spec"].get("source")
        table["path"] = [public_path(path, base=source) for path in table["path"]]  # inside the library folder
        st.dataframe(table, hide_index=True, width="stretch")
    if result.get("run_id"):
        st.success(f"Run **{result['run_id']}** is ready; it is listed on the Runs page.")
        if st.button("Make it the active run", icon=":material/check:"):
            set_active_run(result["run_id"])
            st.toast(f"Active run: {result['run_id']}")
    loss_chart(job.get("losses") or [])
    if st.button("Close", key="dismiss_job"):
        st.session_state[DISMISSED_KEY] = job["job_id"]
        st.session_state.pop(JOB_KEY, None)
        st.rerun()


def train_settings(*, disabled: bool) -> dict:
    """The main training settings (defaults from :class:`core.training.config.TrainConfig`)."""
    left, middle, right = st.columns(3)
    epochs = left.number_input("Epochs", min_value=1, max_value=5000, value=DEFAULTS.epochs, step=10,
                               help="Passes over the tracks. " + help_of("epochs"), disabled=disabled)
    chunk = middle.number_input("Chunk length (s)", min_value=0.5, max_value=30.0, value=DEFAULTS.chunk_seconds,
                                step=0.5, help=help_of("chunk_seconds"), disabled=disabled)
    seed = right.number_input("Seed", min_value=0, value=DEFAULTS.seed, step=1, help=help_of("seed"),
                              disabled=disabled)
    return {"epochs": int(epochs), "chunk_seconds": float(chunk), "seed": int(seed)}


def help_of(field: str) -> str:
    """The reason :class:`core.training.config.TrainConfig` gives for a default."""
    return next(f.metadata.get("help", "") for f in dataclasses.fields(TrainConfig) if f.name == field)


def new_job_form(*, disabled: bool = False) -> None:
    """Where the music is, the dataset name, whether to train, and the Start button.

    While a job runs the form is drawn disabled rather than left out: widgets missing from a run lose their
    values, and the form would come back with the wrong source selected.
    """
    st.subheader("1. Your music")
    kind = st.radio("Source", list(SOURCES), format_func=SOURCES.get, horizontal=True, key="library_source",
                    disabled=disabled)
    folder, uploads, datasets = "", [], list_datasets()
    if kind == "folder":
        roots = ", ".join(f"`{shown_path(r)}`" for r in library_roots())
        folder = st.text_input("Folder on the server", key="library_folder", placeholder="gtzan",
                               help="Every audio file below it (wav, flac, ogg, mp3, m4a, ...). Sub-folder names "
                                    "become labels, or put a manifest.csv (path,label[,artist,title]) in it.",
                               disabled=disabled)
        st.caption(f"A folder inside {roots}, by its path or its name there (the server's administrator sets "
                   f"these library folders with `{LIBRARY_ROOTS_ENV}`).")
    elif kind == "upload":
        whole = st.toggle("A whole folder", key="library_upload_folder", disabled=disabled,
                          help="Pick a folder: its sub-folder names become the labels (rock/, jazz/, ...) and the "
                               "files keep their names.")
        uploads = st.file_uploader("Audio folder" if whole else "Audio files", type=list(UPLOAD_TYPES),
                                   accept_multiple_files="directory" if whole else True,
                                   key="library_uploads_folder" if whole else "library_uploads", disabled=disabled)
        st.caption("Saved into a new library folder named after the dataset, then ingested"
                   + (": sub-folder names become labels." if whole else " (no labels: upload a folder for them)."))
    if kind == "dataset":
        if not datasets:
            st.info("No dataset has been ingested yet: choose a folder or upload files.")
            return
        name = st.selectbox("Dataset", datasets, key="library_dataset", disabled=disabled)
    else:
        name = st.text_input("Dataset name", key="library_name", max_chars=64, placeholder="mylib",
                             help="Letters, digits, '-' and '_'. An existing dataset of this name is updated: "
                                  "only new or changed files are analysed.", disabled=disabled)
    st.subheader("2. Training")
    train = True if kind == "dataset" else st.toggle("Train a run when the ingest is done", value=True,
                                                     key="library_train", disabled=disabled)
    settings = train_settings(disabled=disabled) if train else None
    if disabled:
        st.caption("One job at a time from this page: wait for the running one, or cancel it.")
    if st.button("Start", type="primary", icon=":material/play_arrow:", key="library_start", disabled=disabled):
        start(kind=kind, name=name, folder=folder, uploads=uploads, train=settings)


def start(*, kind: str, name: str, folder: str, uploads: list, train: dict | None) -> None:
    """Save uploads if any, start the job, follow it; a refusal is shown as a plain error."""
    try:
        source = None
        if kind == "folder":
            source = folder
        elif kind == "upload":
            check_dataset_name(name)  # before anything is written
            source = save_uploads(((f.name, f.getvalue()) for f in uploads), name,
                                       max_mb=st.get_option("server.maxUploadSize"))
        job_id = jobs.start_job(dataset=name, source=source, train=train)
    except TimbreError as error:
        st.error(str(error))
        return
    st.session_state[JOB_KEY] = job_id
    st.session_state.pop(DISMISSED_KEY, None)
    st.rerun()


nav.require_router(__file__)
st.title("Library")
st.caption("Bring your own music: ingest a folder (decode, log-mels, audio features) and train a run on it. "
           "The job runs in the background: reload the page or close the browser, it goes on; it can be cancelled.")
job = followed_job()
running = job is not None and job["state"] in jobs.ACTIVE
if job is not None:
    st.markdown(describe(job))
    if running:
        live_job(job["job_id"])
    else:
        job_result(job)
    st.divider()
new_job_form(disabled=running)
