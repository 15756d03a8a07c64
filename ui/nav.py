"""The app's pages, and every page run inside the router (``app.py``), with public Streamlit calls only.

Streamlit treats a ``pages/`` folder beside the entry script as an old-style multipage app until some session
calls ``st.navigation`` ("as soon as any session of your app executes st.navigation, your app will ignore the
pages/ directory, across all sessions"). So the very first request after a server start that goes straight to,
say, ``/map`` or ``/runs`` runs ``pages/map.py`` alone: no sidebar run picker, a sidebar of file names. A page
that finds itself outside the router does the router's part itself (:func:`require_router`), and every page has
the same address in both modes (its file name), so that switch neither loses the page nor changes its widgets'
ids. That is why the address ``/`` is a hidden page of its own (:func:`home`) that moves on to ``/runs``: as the
default page, the Runs page would be ``/`` for the router but ``/runs`` in the old mode. AppTest starts every run
in the old mode, so page tests take that path too.

Why each page still makes that one call (Streamlit 1.67's source): the old mode is a class attribute,
``PagesManager.uses_pages_directory``, set once per server process when the first session starts (whether a
``pages/`` folder lies beside the entry script) and cleared only by ``st.navigation``; while it is set, the script
runner runs its own router over that folder in place of ``app.py``, so on a first request to ``/map`` no line of
``app.py`` runs. No setting changes that (``client.showSidebarNavigation`` only hides the menu), and nothing of
ours runs before the first session under ``streamlit run`` (only an ``st.App`` ASGI server has a start-up hook,
and it replaces the server the app is tested on). The pages stay in ``pages/`` (the design card), so the first
code of ours that runs is the page itself: :func:`require_router`. Checked in Chromium
(``tests/test_browser.py``): without the call a first request to ``/map`` or ``/runs`` draws the page with the
folder's file names as the menu and no run picker; with it, the app's navigation and the run picker.
"""
from __future__ import annotations

import contextlib
import contextvars
from pathlib import Path
from typing import Iterator

import streamlit as st
from streamlit.errors import StreamlitAPIException

ROOT = Path(__file__).resolve().parent.parent  # where app.py and pages/ are
FAVICON = Path(__file__).resolve().parent / "assets" / "favicon.png"

_in_router = contextvars.ContextVar("timbre_in_router", default=False)


# section -> (file in pages/, title); the first page is the default. No page icons: a page's icon becomes the
# browser's favicon, and Streamlit fetches a material icon's favicon from Google's font CDN (which an offline machine
# cannot reach), while emoji show as empty boxes where no emoji font is installed; the favicon is our own file.
PAGES = {
    "Embeddings": [("runs.py", "Runs"), ("library.py", "Library"), ("map.py", "Map"), ("recommend.py", "Recommend"),
                   ("compare.py", "Compare runs")],
    "Analysis": [("classifiers.py", "Classifiers"), ("features.py", "Features"), ("clusters.py", "Clusters")],
}
PAGE_FILES = frozenset(ROOT / "pages" / file for section in PAGES.values() for file, _ in section)
FIRST_FILE = ROOT / "pages" / next(iter(PAGES.values()))[0][0]  # where the address ``/`` leads


def home() -> None:
    """The address ``/`` (a hidden page): the first of :data:`PAGES` at its own address."""
    st.switch_page(FIRST_FILE)


def app_pages() -> dict[str, list]:
    """The navigation: :data:`PAGES` as ``st.Page`` objects (absolute paths, so any script may name them), after
    the hidden default page :func:`home`."""
    start = st.Page(home, title="Home", url_path="home", default=True, visibility="hidden")
    sections = {name: [st.Page(ROOT / "pages" / file, title=title) for file, title in section]
                for name, section in PAGES.items()}
    first = next(iter(sections))
    return {**sections, first: [start, *sections[first]]}


def frame() -> None:
    """What the router sets up around every page: the page config (wide) and the sidebar's run picker."""
    from ui.widgets import run_picker  # ui.widgets draws with state this module does not need

    # a file of our own: a material icon as the favicon is fetched from Google's font CDN, which an offline
    # machine cannot reach
    st.set_page_config(page_title="Timbre Atlas", page_icon=str(FAVICON), layout="wide")
    run_picker()


@contextlib.contextmanager
def routing() -> Iterator[None]:
    """The router wraps ``page.run()`` in this: pages run inside it know they are routed, and an error no page
    expected is logged with an id, which is all the browser sees (:func:`ui.errors.reported`)."""
    from ui.errors import reported

    token = _in_router.set(True)
    try:
        with reported():
            yield
    finally:
        _in_router.reset(token)


def require_router(page_file: str) -> None:
    """Call on a page, with its ``__file__``, before it draws anything.

    Outside the router, do what it does in the same run: ``st.navigation`` with the app's pages (which also ends
    the old ``pages/`` mode for good), :func:`frame`, and the page run by its ``st.Page``; then stop. Run on from
    here instead, the page's widgets would get other ids than the router gives them (``st.navigation`` switches
    the ids' page to the main script), and the next click's press or value would be lost. Does nothing inside
    the router, for a file that is not one of :data:`PAGES`, or where the app's pages are not pages of this app.
    """
    page = Path(page_file).resolve()
    if _in_router.get() or page not in PAGE_FILES:
        return
    try:
        chosen = st.navigation(app_pages())
    except StreamlitAPIException:
        return
    frame()
    with routing():
        chosen.run()  # this page again, as the router runs it: its widgets get the ids the router gives them
    st.stop()  # and not a second time here
