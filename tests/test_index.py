import numpy as np
import pandas as pd

from core.evaluation.knn import knn_evaluation
from core.search.exact import cosine_topk


def test_cosine_topk_orders_by_similarity(rng):
    lib = rng.normal(size=(50, 8)).astype(np.float32)
    idx, sims = cosine_topk(lib, lib[[3, 7]], k=4)
    assert list(idx[:, 0]) == [3, 7] and np.allclose(sims[:, 0], 1.0, atol=1e-5)
    norm = lib / np.linalg.norm(lib, axis=1, keepdims=True)
    brute = np.argsort(-(norm[3] @ norm.T))[:4]
    assert list(idx[0]) == list(brute)


def test_leave_one_out_excludes_self(rng):
    idx, _ = cosine_topk(np.eye(5), np.eye(5), k=2, exclude_self=True)
    assert all(i not in row for i, row in enumerate(idx))


def test_knn_evaluation_on_planted_clusters(rng):
    centres = rng.normal(size=(3, 16)) * 5
    x = np.vstack([c + rng.normal(size=(20, 16)) for c in centres])
    labels = np.repeat(["a", "b", "c"], 20)
    good = knn_evaluation(x, labels)
    assert good["knn_accuracy"] > 0.95 and good["precision_at_k"] > 0.9 and good["n_classes"] == 3
    chance = knn_evaluation(rng.normal(size=(60, 16)), labels)
    assert chance["knn_accuracy"] < 0.6
    assert knn_evaluation(x, [None] * 60) is None


def test_knn_evaluation_accepts_pandas_missing_labels(rng):
    labels = pd.Series(["a", "b", None, "a", "b", "a", "b", "a"], dtype="string")  # None becomes pd.NA
    result = knn_evaluation(rng.normal(size=(8, 4)), labels, k=3)
    assert result["n_tracks"] == 7
    assert knn_evaluation(rng.normal(size=(3, 4)), pd.Series([None] * 3, dtype="string")) is None
