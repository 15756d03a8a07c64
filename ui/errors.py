"""An error no page expected: logged on the server with its traceback and a short id, shown in the browser as
that id only (a traceback names server paths and code). ``client.showErrorDetails = "none"`` in
``.streamlit/config.toml`` covers what runs outside :func:`reported` (a fragment's own reruns).

``TIMBRE_PAGE_ERRORS=raise`` (development, and the tests) logs the error and raises it again, so Streamlit shows
it whole where its settings allow.
"""
from __future__ import annotations

import contextlib
import logging
import os
import secrets
import sys
from typing import Iterator

import streamlit as st

LOG = logging.getLogger("timbre_atlas.pages")
if not LOG.handlers:  # Streamlit configures its own loggers only; without this the traceback would go nowhere
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    LOG.addHandler(_handler)
    LOG.propagate = False


def report(error: BaseException) -> str:
    """Log ``error`` with its traceback under a new id, show the id on the page; return the id."""
    error_id = secrets.token_hex(4)
    LOG.error("error id %s: %s: %s", error_id, type(error).__name__, error, exc_info=error)
    st.error(f"Something went wrong on the server (error id `{error_id}`). The details are in the server's log "
             "under that id; reloading the page or choosing other settings may help.", icon=":material/error:")
    return error_id


@contextlib.contextmanager
def reported() -> Iterator[None]:
    """Run a page inside this: an unexpected exception becomes :func:`report`. Streamlit's st.rerun, st.stop and
    st.switch_page raise ``BaseException`` subclasses and pass through."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 - every page error, by design
        report(error)
        if os.environ.get("TIMBRE_PAGE_ERRORS") == "raise":
            raise
