"""core.analysis.classify.models: the registry, grids sized to the data, frozen configs."""
from __future__ import annotations

import dataclasses

import pytest

from core.analysis.classify import MODEL_NAMES, MODEL_SPECS, ClassifyConfig


def test_registry_names_every_model_and_its_saved_family():
    assert tuple(MODEL_SPECS) == MODEL_NAMES
    assert {s.family for s in MODEL_SPECS.values()} == {"sklearn", "xgboost", "lightgbm", "catboost"}


def test_knn_grid_never_asks_for_more_neighbours_than_rows():
    assert MODEL_SPECS["knn"].grid(10, 100)["n_neighbors"] == [3, 7, 15]
    assert MODEL_SPECS["knn"].grid(10, 8)["n_neighbors"] == [3, 7]
    assert MODEL_SPECS["knn"].grid(10, 2)["n_neighbors"] == [2]


def test_svm_gamma_scales_with_the_number_of_features():
    assert MODEL_SPECS["svm"].grid(4, 50)["gamma"] == [0.075, 0.25]


def test_config_is_frozen():
    cfg = ClassifyConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1
    assert dataclasses.replace(cfg, seed=1).seed == 1 and cfg.models == MODEL_NAMES
