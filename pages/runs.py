"""Runs: every run folder with its dataset, size, key config and evaluation; choose the active run."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core import jobs
from core.base import TimbreError, public_path, runs_dir
from core.runs import MAX_ALIAS_CHARS as MAX_CHARS
from core.runs import list_runs, read_alias, run_label, run_summary, set_alias
from ui import nav
from ui.figures import loss_figure
from ui.forms import job_progress
from ui.state import active_run_id, set_active_run
from ui.widgets import open_run, score_pair

DEMO_JOB = "runs_demo_job"  # the demo job this session follows (its run becomes the active run when it is done)


@st.cache_data(show_spinner=False, max_entries=64)
def cached_summary(run_id: str) -> dict:
    """:func:`core.runs.folder.run_summary` (runs never change once written)."""
    return run_summary(run_id)


def demo_job(*, key: str, primary: bool) -> None:
    """The button that builds the demo run in a background job (:func:`core.jobs.start_demo_job`: never in this
    server's process), then its progress and Cancel while it runs; when the job this session followed is done, its
    run becomes the active run. A demo job already running (another session, a reload) is followed too."""
    job = jobs.find_demo_job()
    if job is not None and job["state"] in jobs.ACTIVE:
        st.session_state[DEMO_JOB] = job["job_id"]
        job_progress(job["job_id"], key=key)  # reruns the page when the job ends
        return
    if job is not None and st.session_state.get(DEMO_JOB) == job["job_id"]:
        st.session_state.pop(DEMO_JOB)
        if job["state"] == "done":
            set_active_run(job["result"]["run_id"])
            st.rerun()
        elif job["state"] == "failed":
            st.error(f"The demo run could not be built: {job.get('error')}")
    if st.button("Build the demo run", type="primary" if primary else "secondary", icon=":material/play_arrow:",
                 key=f"{key}_start"):
        try:
            st.session_state[DEMO_JOB] = jobs.start_demo_job()
        except TimbreError as error:
            st.error(str(error))
            return
        st.rerun()


def no_runs() -> None:
    st.info(f"There is no run yet (looked in `{public_path(runs_dir())}`).\n\n"
            "Build the demo run: 48 synthetic tracks in six styles (electronic, strings, guitar, piano, rock, "
            "hip-hop), an encoder trained on them and evaluated against an MFCC baseline. It takes under three "
            "minutes, even on a busy 2-core machine. "
            "To use your own music, see the README (`python -m core ingest` and `python -m core train`).")
    demo_job(key="demo_first", primary=True)


def runs_frame(run_ids: list[str]) -> pd.DataFrame:
    # the alias is read fresh: it is the one thing of a run that changes (here or by `python -m core runs alias`)
    frame = pd.DataFrame([{**cached_summary(r), "alias": read_alias(runs_dir() / r) or ""} for r in run_ids])
    frame.insert(0, "active", frame["run_id"] == active_run_id())
    frame["created"] = pd.to_datetime(frame["created"], errors="coerce")
    frame["knn_pair"] = [score_pair(a, b) for a, b in zip(frame["knn5_acc"], frame["mfcc_knn5_acc"])]
    frame["p_pair"] = [score_pair(a, b) for a, b in zip(frame["p_at_5"], frame["mfcc_p_at_5"])]
    return frame


def runs_table(frame: pd.DataFrame) -> None:
    """The runs, one row each: what tells runs apart (recipe, distillation, dataset; the id starts with the date)
    and the scores beside the MFCC baseline's; the active run's details are below (date, tracks, epochs, chunk,
    training time, loss, folder). Columns of set widths that fit a 1280 px window with the sidebar open
    (tests/test_browser_tables.py). A "broken" column only when a run is broken, empty for the healthy ones."""
    score = {"format": "%.3f", "width": "small"}
    order = ["active", "alias", "run_id", "recipe", "distill", "dataset", "knn_pair", "p_pair", "recording_top1"]
    if frame["broken"].notna().any():
        order.insert(2, "broken")
        frame = frame.assign(broken=frame["broken"].fillna(""))
    st.dataframe(frame, hide_index=True, width="stretch", column_order=order, column_config={
        "active": st.column_config.CheckboxColumn("active", width=48),
        "run_id": st.column_config.TextColumn("run", width=170),
        "knn_pair": st.column_config.TextColumn("5-NN (MFCC)", width=100, help="leave-one-out 5-NN accuracy of the "
                                                "learned embedding (of the MFCC baseline)"),
        "p_pair": st.column_config.TextColumn("P@5 (MFCC)", width=100, help="precision@5 of the learned embedding "
                                              "(of the MFCC baseline)"),
        "alias": st.column_config.TextColumn("alias", width=76, help="a short name for the run, accepted "
                                             "wherever its id is (set below, or `python -m core runs alias RUN NAME`)"),
        "created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
        "tracks": st.column_config.NumberColumn("tracks", width="small"),
        "labelled": st.column_config.NumberColumn("labelled", width="small"),
        "epochs": st.column_config.NumberColumn("epochs", width="small"),
        "size_mb": st.column_config.NumberColumn("size (MB)", format="%.1f"),
        "chunk_seconds": st.column_config.NumberColumn("chunk (s)", format="%.1f"),
        "train_minutes": st.column_config.NumberColumn("train (min)", format="%.1f"),
        "final_loss": st.column_config.NumberColumn("final loss", format="%.3f"),
        "knn5_acc": st.column_config.NumberColumn("5-NN acc", help="learned embedding", **score),
        "mfcc_knn5_acc": st.column_config.NumberColumn("MFCC 5-NN", help="MFCC baseline", **score),
        "p_at_5": st.column_config.NumberColumn("P@5", help="learned embedding", **score),
        "mfcc_p_at_5": st.column_config.NumberColumn("MFCC P@5", help="MFCC baseline", **score),
        "recording_top1": st.column_config.NumberColumn("rec. top-1", help=RECORDING_HELP, format="%.3f", width=72),
        "recording_top5": st.column_config.NumberColumn("rec. top-5", help=RECORDING_HELP, **score),
        "recipe": st.column_config.TextColumn("recipe", width=96, help="the training recipe (configs/*.toml), "
                                              "or the frozen pretrained musicnn reference"),
        "dataset": st.column_config.TextColumn("dataset", width=84),
        "distill": st.column_config.NumberColumn("distill", width=56, format="%.2g",
                                                 help="weight of distillation from musicnn; 0 = none"),
        "broken": st.column_config.TextColumn("broken", width="medium", help="why the run cannot be opened"),
    })


RECORDING_HELP = ("Query by recording: 10 s excerpts of library tracks, low-passed at 3.4 kHz, white noise at "
                  "10 dB SNR, random gain; the share whose source track comes first (top-1) or in the top 5.")


def metric_pair(column, title: str, learned, baseline) -> None:
    if learned is None:
        column.metric(title, "n/a", help="No labels: the k-NN evaluation was skipped.")
        return
    if baseline is None:
        column.metric(title, f"{learned:.3f}")
        return
    gain = round(learned - baseline, 3)
    column.metric(title, f"{learned:.3f}", delta=f"{gain:+.3f} vs MFCC" if gain else "same as MFCC",
                  delta_color="normal" if gain else "off", delta_arrow="auto" if gain else "off",
                  help=f"MFCC baseline: {baseline:.3f}")


ALIAS_KEY, ALIAS_NOTE = "run_alias_name", "run_alias_note"


def save_alias(run_id: str) -> None:
    """The form's callback (before the page reruns, so the table already shows the new alias)."""
    try:
        alias = set_alias(run_id, st.session_state.get(f"{ALIAS_KEY}_{run_id}", ""))
    except TimbreError as error:
        st.session_state[ALIAS_NOTE] = ("error", str(error))
    else:
        st.session_state[ALIAS_NOTE] = ("success", f"Run {run_id} is now also called {alias}." if alias
                                        else f"Run {run_id} has no alias.")


def alias_form(run_id: str) -> None:
    """Name the active run (an empty name removes its alias); a clash or a bad name gets a plain message."""
    kind, text = st.session_state.pop(ALIAS_NOTE, (None, ""))
    with st.form("run_alias", border=False):
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        left.text_input("Alias", value=read_alias(runs_dir() / run_id) or "", max_chars=MAX_CHARS, key=f"{ALIAS_KEY}_{run_id}",
                        help="A short name for this run, shown beside its id and accepted wherever a run id is "
                             "(`--run`, the API's /runs/{run}). Empty: no alias.")
        right.form_submit_button("Save alias", on_click=save_alias, args=(run_id,))
    if kind:
        getattr(st, kind)(text)


def run_details(run_id: str) -> None:
    summary = cached_summary(run_id)
    st.subheader(f"Active run: {run_label(run_id)}")
    alias_form(run_id)
    run = open_run(run_id, stop=False)
    if run is None:
        return
    cols = st.columns(5)
    metric_pair(cols[0], "5-NN accuracy", summary["knn5_acc"], summary["mfcc_knn5_acc"])
    metric_pair(cols[1], "precision@5", summary["p_at_5"], summary["mfcc_p_at_5"])
    top1 = summary["recording_top1"]
    cols[2].metric("query by recording", "n/a" if top1 is None else f"{top1:.3f}", help=RECORDING_HELP + (
        "" if top1 is None else f" Top-5: {summary['recording_top5']:.3f}."))
    cols[3].metric("tracks", f"{summary['tracks']:,}", help=f"{summary['labelled']:,} labelled")
    if summary["kind"] == "reference":
        cols[4].metric("encoder", "musicnn", help="the frozen pretrained reference (MSD), not trained here")
    else:
        cols[4].metric("training", f"{summary['train_minutes']:.1f} min", help=f"{summary['epochs']} epochs")
    left, right = st.columns([3, 2])
    with left:
        losses = run.metrics.get("loss") or []
        if losses:
            st.plotly_chart(loss_figure({run_id: losses}), width="stretch")
    with right:
        train = run.config.get("train", {})
        st.markdown(f"**dataset** {summary['dataset']} · **created** {summary['created']}  \n"
                    f"**chunk** {summary['chunk_seconds']} s · **embedding** {train.get('embedding_dim')} d · "
                    f"**widths** {train.get('widths')} · **batch** {train.get('batch_size')}  \n"
                    f"**folder** `{public_path(run.path)}`")
        st.page_link("pages/map.py", label="Open the map", icon=":material/scatter_plot:")
        st.page_link("pages/recommend.py", label="Find similar tracks", icon=":material/mic:")


nav.require_router(__file__)
st.title("Runs")
current = active_run_id()
if current is None:
    no_runs()
    st.stop()

run_ids = list_runs()
st.caption(f"{len(run_ids)} run(s) in `{public_path(runs_dir())}`; choose the active run in the sidebar. Learned-embedding "
           "scores beside the MFCC baseline's (leave-one-out 5-NN by cosine similarity).")
runs_table(runs_frame(run_ids))
run_details(current)
with st.expander("Build another demo run"):
    demo_job(key="demo_again", primary=False)
