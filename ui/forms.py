"""The run-a-job form of the analysis pages: settings in a form inside an expander, a button, a progress bar
while the job runs, and a plain error when it cannot."""
from __future__ import annotations

from typing import Callable, TypeVar

import streamlit as st

from core.base.errors import TimbreError
from core.base.progress import Progress

Result = TypeVar("Result")


def progress_bar() -> Progress:
    """A :class:`core.base.progress.Progress` drawn as a Streamlit progress bar (message as its text)."""
    bar = st.progress(0.0, text="starting...")

    def update(done: int, total: int, message: str = "", **values: float) -> None:
        bar.progress(min(1.0, done / max(total, 1)), text=message or f"{done} / {total}")

    return update


def job_form(*, title: str, key: str, submit: str, expanded: bool, settings: Callable[[], object],
             job: Callable[[object, Progress], Result]) -> Result | None:
    """Draw the form; when it is submitted, run ``job(settings, progress)`` and return its result.

    Parameters
    ----------
    title : str
        The expander's label.
    key : str
        The form's key.
    submit : str
        The button's label.
    expanded : bool
        Open the expander (when there are no results yet).
    settings : callable
        Draws the form's widgets and returns what they say (e.g. a config dataclass); only called inside the form.
    job : callable
        ``job(settings, progress)`` runs the work; a :class:`core.base.errors.TimbreError` is shown as an error.

    Returns
    -------
    The job's result, or None when the form was not submitted or the job failed.
    """
    with st.expander(title, expanded=expanded):
        with st.form(key):
            chosen = settings()
            pressed = st.form_submit_button(submit, type="primary")
        if not pressed:
            return None
        progress = progress_bar()
        try:
            return job(chosen, progress)
        except TimbreError as error:
            st.error(str(error))
            return None
