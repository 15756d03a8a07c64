"""ui.sources: the analysis pages' data choices as select-box keys, and their cache stamps."""
from __future__ import annotations

import os
import time

import pytest

from core.analysis.sources import SourceKind
from core.data.tables import import_feature_table
from tests.test_feature_table import spotify_like, write_csv
from ui.sources import parse_key, source_choices, source_for_key, source_key, source_stamp


def test_source_choices_list_the_run_and_imported_tables(tmp_path, rng, tiny_run_id):
    import_feature_table(write_csv(tmp_path, spotify_like(rng)), "spotify_choice", label="genre")
    choices = source_choices(tiny_run_id)
    assert list(choices)[0] == f"run:{tiny_run_id}" and "dataset:spotify_choice" in choices
    assert choices["dataset:spotify_choice"] == "imported table spotify_choice"
    assert source_for_key("dataset:spotify_choice").available_inputs() == ["features"]
    run_source = source_for_key(f"run:{tiny_run_id}")
    assert run_source.kind is SourceKind.RUN and run_source.kind == "run" and run_source.name == tiny_run_id
    assert source_stamp("dataset:spotify_choice") > 0 and source_stamp(f"run:{tiny_run_id}") > 0


def test_keys_round_trip_and_unknown_kinds_are_refused():
    assert parse_key(source_key(SourceKind.DATASET, "a:b")) == (SourceKind.DATASET, "a:b")
    with pytest.raises(ValueError):
        parse_key("table:x")


def test_the_stamp_changes_when_the_files_do(tmp_path, rng):
    import_feature_table(write_csv(tmp_path, spotify_like(rng)), "stamped", label="genre")
    key = source_key(SourceKind.DATASET, "stamped")
    before = source_stamp(key)
    later = time.time() + 60
    features = source_for_key(key).path / "features.parquet"
    os.utime(features, (later, later))
    assert source_stamp(key) == pytest.approx(later) and later > before
    assert source_stamp(source_key(SourceKind.DATASET, "never-made")) == 0.0
