"""Run aliases: stored in the run folder, resolved wherever a run id is accepted (load_run, --run, compare, the
API's /runs/{run}), listed beside the id, refused when they clash with another run's id or alias."""
from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from api import ApiConfig, create_app
from core.base.errors import RunError
from core.base.paths import runs_dir
from core.cli import main
from core.runs.aliases import ALIAS_FILE, aliases, read_alias, run_id_of, run_label, set_alias
from core.runs.folder import load_run, run_summary
from tests.run_copies import copy_run


@pytest.fixture(scope="module")
def two_ids(tiny_run_id) -> tuple[str, str]:
    return tiny_run_id, copy_run(tiny_run_id, "tiny-alias-other")


@pytest.fixture(autouse=True)
def no_aliases(two_ids):
    for run_id in two_ids:
        (runs_dir() / run_id / ALIAS_FILE).unlink(missing_ok=True)


def test_an_alias_is_stored_in_the_run_folder_and_opens_the_run(two_ids):
    first, _ = two_ids
    assert set_alias(first, " Baseline ") == "Baseline"
    assert json.loads((runs_dir() / first / ALIAS_FILE).read_text()) == {"alias": "Baseline"}
    assert not list((runs_dir() / first).glob(f".{ALIAS_FILE}.*"))  # written through a temp file, none left
    assert load_run("Baseline").run_id == first and load_run("baseline").run_id == first  # any case
    assert run_id_of(first) == first and run_id_of("nothing-like-it") is None
    assert aliases() == {"Baseline": first} and read_alias(runs_dir() / first) == "Baseline"
    assert run_label(first) == f"Baseline · {first}" and run_summary(first)["alias"] == "Baseline"
    assert set_alias(first, None) is None and read_alias(runs_dir() / first) is None
    with pytest.raises(RunError, match="no run named 'Baseline'"):
        load_run("Baseline")


def test_an_alias_that_clashes_or_is_not_a_plain_name_is_refused(two_ids):
    first, other = two_ids
    set_alias(first, "baseline")
    with pytest.raises(RunError, match=f"run {first} already has it"):
        set_alias(other, "BASELINE")
    with pytest.raises(RunError, match=f"it is the id of another run \\({first}\\)"):
        set_alias(other, first)
    for bad in ("../x", "a/b", ".hidden", "x" * 41, "two words", "default"):
        with pytest.raises(RunError, match="cannot be an alias"):
            set_alias(other, bad)
    assert read_alias(runs_dir() / other) is None and set_alias(first, "baseline") == "baseline"  # its own: fine
    with pytest.raises(RunError, match="no run named"):
        set_alias("no-such-run", "fine")


def test_the_cli_sets_lists_and_resolves_aliases(two_ids, capsys):
    first, other = two_ids
    assert main(["runs", "alias", first, "base"]) == 0
    assert f"run {first}: alias base" in capsys.readouterr().out
    assert main(["runs", "alias", other, "base"]) == 2
    assert f"alias 'base' is refused: run {first} already has it" in capsys.readouterr().err
    assert main(["runs"]) == 0
    listing = capsys.readouterr().out
    assert "alias" in listing.splitlines()[0] and "base" in listing and "None" not in listing
    assert main(["index", "--run", "base"]) == 0  # --run takes the alias
    assert f"run {first}:" in capsys.readouterr().out
    assert main(["compare", "base", other]) == 0
    assert f"[1] {first}" in capsys.readouterr().out
    assert main(["runs", "alias", "base", "--clear"]) == 0 and read_alias(runs_dir() / first) is None


def test_the_api_answers_a_run_by_its_alias_and_lists_it(two_ids, tmp_path):
    first, other = two_ids
    set_alias(other, "second")
    with TestClient(create_app(ApiConfig(run=first, upload_dir=str(tmp_path)), api_key="")) as client:
        by_alias = client.get("/runs/second/tracks", params={"q": "", "limit": 3})
        by_id = client.get(f"/runs/{other}/tracks", params={"q": "", "limit": 3})
        assert by_alias.status_code == 200 and by_alias.json() == by_id.json()
        listed = {r["run_id"]: r.get("alias") for r in client.get("/runs").json()}
        assert listed[other] == "second" and listed[first] is None
        assert client.get("/runs/nosuchalias/tracks").status_code == 404


def test_the_runs_page_names_the_active_run_and_every_picker_shows_the_alias(two_ids):
    from tests.pagetest import open_page

    first, other = two_ids
    set_alias(other, "taken")
    at = open_page(active_run_id=first)
    at.text_input(key=f"run_alias_name_{first}").input("taken")
    next(b for b in at.button if b.label == "Save alias").click().run()
    assert [e.value for e in at.error] == [f"alias 'taken' is refused: run {other} already has it"]
    at.text_input(key=f"run_alias_name_{first}").input("mine")
    next(b for b in at.button if b.label == "Save alias").click().run()
    assert not at.exception and read_alias(runs_dir() / first) == "mine"
    assert any("now also called mine" in s.value for s in at.success)
    table = at.dataframe[0].value.set_index("run_id")
    assert table.loc[first, "alias"] == "mine" and table.loc[other, "alias"] == "taken"  # shown at once
    assert f"mine · {first}" in at.selectbox(key="runs_pick").options
    at.switch_page("pages/compare.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert {f"mine · {first}", f"taken · {other}"} <= set(at.multiselect(key="compare_runs").options)
    assert f"mine · {first}" in set(at.dataframe[0].value["run"])
