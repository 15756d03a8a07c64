"""core.analysis.classify.split: the stratified, seeded test mask (the stored split is tested end to end in test_classify)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from core.analysis.classify.split import stratified_test_mask


def test_stratified_test_mask_takes_each_label_in_proportion():
    labels = np.array(["a"] * 40 + ["b"] * 8 + ["c"] * 2 + ["d"])
    mask = stratified_test_mask(labels, test_size=0.25, seed=3)
    counts = pd.Series(labels[mask]).value_counts().to_dict()
    assert counts == {"a": 10, "b": 2, "c": 1}  # a singleton never goes to the test split
    assert (stratified_test_mask(labels, test_size=0.25, seed=3) == mask).all()
