"""core.analysis.classify.results: confusion normalising, and picking the best model by CV, never by the test split."""
from __future__ import annotations

import pandas as pd

from core.analysis.classify.results import best_per_input, ranked, row_normalised


def test_row_normalised_confusion():
    matrix = row_normalised([[3, 1], [0, 0]])
    assert matrix.tolist() == [[0.75, 0.25], [0.0, 0.0]]


def test_best_per_input_picks_by_cv_and_breaks_ties_by_test_accuracy():
    summary = pd.DataFrame({"input": ["features", "features", "features", "embeddings", "embeddings"],
                            "model": ["svm", "knn", "logreg", "svm", "mlp"],
                            "cv_mean": [0.80, 0.90, 0.90, 0.70, 0.60],
                            "test_accuracy": [0.99, 0.70, 0.75, 0.50, 0.90]})
    best = best_per_input(summary).set_index("input")["model"].to_dict()
    assert best == {"features": "logreg", "embeddings": "svm"}  # svm's 0.99 on test never wins over CV
    assert ranked(summary)["model"].tolist() == ["logreg", "knn", "svm", "svm", "mlp"]
    assert best_per_input(summary.iloc[:0]).empty
