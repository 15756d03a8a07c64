"""ui.errors: a page's unexpected error reaches the browser as an id only, and the server's log as the id with
its traceback; Streamlit's own error display is set to show no details."""
from __future__ import annotations

import logging
import re
import tomllib
from pathlib import Path

from streamlit.testing.v1 import AppTest

from ui import errors

ROOT = Path(__file__).resolve().parent.parent


def routed_page_that_fails():
    import streamlit as st

    from ui import nav

    with nav.routing():  # as app.py runs every page
        st.write("drawn before the error")
        raise ValueError("/srv/secret/path/tracks.parquet is broken")


class Kept(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def test_the_served_app_shows_no_error_details():
    settings = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert settings["client"]["showErrorDetails"] == "none"


def test_a_page_error_shows_an_id_and_logs_the_traceback_under_it(monkeypatch):
    monkeypatch.delenv("TIMBRE_PAGE_ERRORS", raising=False)  # as served
    kept = Kept()
    errors.LOG.addHandler(kept)
    try:
        at = AppTest.from_function(routed_page_that_fails).run()
    finally:
        errors.LOG.removeHandler(kept)
    assert not at.exception  # no traceback element at all
    shown = "\n".join(e.value for e in at.error)
    assert "secret" not in shown and "ValueError" not in shown and "Traceback" not in shown
    error_id = re.search(r"error id `([0-9a-f]{8})`", shown).group(1)
    assert at.markdown[0].value == "drawn before the error"
    [record] = kept.records
    logged = logging.Formatter().format(record)
    assert error_id in logged and "/srv/secret/path/tracks.parquet is broken" in logged and "Traceback" in logged


def test_in_development_the_error_is_raised_again(monkeypatch):
    monkeypatch.setenv("TIMBRE_PAGE_ERRORS", "raise")
    at = AppTest.from_function(routed_page_that_fails).run()
    assert at.exception and re.search(r"error id `[0-9a-f]{8}`", at.error[0].value)


def test_streamlit_control_flow_passes_through(monkeypatch):
    monkeypatch.delenv("TIMBRE_PAGE_ERRORS", raising=False)

    def page():
        import streamlit as st

        from ui.errors import reported

        with reported():
            st.write("shown")
            st.stop()
        st.write("never")

    at = AppTest.from_function(page).run()
    assert [m.value for m in at.markdown] == ["shown"] and not at.error and not at.exception
