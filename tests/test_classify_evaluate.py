"""core.analysis.classify.evaluate and core.analysis.classify.importance on small arrays whose answer is known."""
from __future__ import annotations

import numpy as np
import pytest

from core.analysis.classify.evaluate import iqr_inliers, score_predictions
from core.analysis.classify.importance import permutation_importance


def test_iqr_outliers_are_flagged_on_training_rows_only(rng):
    x = rng.normal(0, 1, (60, 10))
    y = np.repeat([0, 1, 2], 20)
    x[[3, 30]] += 50.0  # two rows extreme in every column
    keep = iqr_inliers(x, y, factor=3.0, max_share=0.1, min_per_class=5)
    assert keep.sum() == 58 and not keep[3] and not keep[30]
    protected = iqr_inliers(x, y, factor=3.0, max_share=0.1, min_per_class=20)  # a class may not shrink below 20
    assert protected.all()

def test_permutation_importance_matches_its_definition(rng):
    x = rng.normal(0, 1, (40, 3))
    y = (x[:, 0] > 0).astype(int)
    mean, std = permutation_importance(lambda rows: (rows[:, 0] > 0).astype(int), x, y, repeats=20, seed=0)
    assert mean[0] == pytest.approx(0.5, abs=0.15) and mean[1] == mean[2] == 0.0 and std[1] == 0.0


def test_score_predictions_counts_per_class_and_confusion():
    metrics, confusion = score_predictions(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0]), ["a", "b", "c"])
    assert confusion.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert metrics["accuracy"] == pytest.approx(0.6) and metrics["balanced_accuracy"] == pytest.approx(0.5)
    assert [c["support"] for c in metrics["per_class"]] == [2, 2, 1]
    assert metrics["per_class"][1]["precision"] == pytest.approx(2 / 3) and metrics["per_class"][2]["f1"] == 0.0
