"""No table is wider than its column: the Runs table and Compare's runs and settings tables, measured in real
Chromium at a 1280 px window (the sidebar open) on a served ``streamlit run app.py``.

Streamlit draws a dataframe on a canvas inside a scroller: a table whose columns need more room than its column
of the page scrolls sideways, and the scroller's ``scrollWidth`` exceeds its ``clientWidth``.
"""
from __future__ import annotations

import json

import pytest

from core.base.paths import runs_dir
from tests.run_copies import copy_run
from tests.test_browser import (  # noqa: F401 (fixtures)
    CHROMIUM,
    CHROMIUM_ARGS,
    STEP_MS,
    no_exception_shown,
    playwright_api,
    settle,
    shot,
    streamlit_server,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

WIDTHS_JS = """() => [...document.querySelectorAll('[data-testid="stDataFrame"]')].map(frame => {
  const scroller = frame.querySelector('.dvn-scroller');
  return {frame: Math.round(frame.getBoundingClientRect().width),
          column: Math.round(frame.parentElement.getBoundingClientRect().width),
          content: scroller ? scroller.scrollWidth : -1, shown: scroller ? scroller.clientWidth : -1};
})"""


@pytest.fixture(scope="module")
def server(playwright_api, tiny_run_id):  # noqa: F811
    other = runs_dir() / copy_run(tiny_run_id, "tiny-wide-other")  # Compare needs two runs, with settings that differ
    config = json.loads((other / "config.json").read_text())
    config["train"].update(lr=0.0005, lowpass_hz=[2000, 8000], recipe="a-recipe-with-a-long-name")
    (other / "config.json").write_text(json.dumps(config))
    with streamlit_server() as url:
        yield url


def table_widths(page) -> list[dict]:
    page.wait_for_function("() => document.querySelectorAll('[data-testid=\"stDataFrame\"] .dvn-scroller').length"
                           " === document.querySelectorAll('[data-testid=\"stDataFrame\"]').length", timeout=STEP_MS)
    return page.evaluate(WIDTHS_JS)


def test_no_table_is_wider_than_its_column_at_1280_px(server, playwright_api, tiny_run_id, tmp_path):  # noqa: F811
    with playwright_api() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(STEP_MS)
            page.goto(server)
            settle(page, "Active run")
            no_exception_shown(page)
            runs = table_widths(page)
            shot(page, "tables-runs-1280")
            print("runs:", runs)
            page.goto(f"{server}/compare")
            page.get_by_text("Settings that differ").wait_for()
            settle(page)
            no_exception_shown(page)
            compare = table_widths(page)
            shot(page, "tables-compare-1280")
        finally:
            browser.close()
    print("runs:", runs, "compare:", compare)
    assert len(runs) == 1 and len(compare) >= 2  # Runs; Compare's scores and settings (then its per-label tables)
    assert compare[1]["column"] < compare[0]["column"] / 2  # the settings table, in the narrower right column
    for table in runs + compare[:2]:
        assert table["frame"] <= table["column"] + 1, table  # the frame stays in its column
        assert table["content"] <= table["shown"] + 1, table  # and its columns fit it: no sideways scrolling
