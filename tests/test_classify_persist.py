"""core.analysis.classify.persist: every model family saved without pickle, reloaded, with class probabilities."""
from __future__ import annotations

import json

import numpy as np
import pytest

from core.analysis.classify import MODEL_NAMES, MODEL_SPECS, ClassifyConfig, load_classifier, make_pipeline, save_classifier
from core.analysis.classify.persist import softmax
from core.base.errors import ClassifyError


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_predict_proba_on_a_binary_problem(model, tmp_path, rng):
    x = np.vstack([rng.normal(-2, 1, (20, 3)), rng.normal(2, 1, (20, 3))])
    y = np.repeat([0, 1], 20)
    spec = MODEL_SPECS[model]
    pipeline = make_pipeline(spec, ClassifyConfig()).fit(x, y)
    save_classifier(pipeline, spec.family, tmp_path, feature_names=["a", "b", "c"], classes=["no", "yes"])
    loaded = load_classifier(tmp_path)
    proba = loaded.predict_proba(x)
    assert proba.shape == (40, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert (proba.argmax(axis=1) == loaded.predict_index(x)).all()
    assert (loaded.predict_index(x) == pipeline.predict(x).reshape(-1)).all()
    assert proba[:20, 0].mean() > 0.5 and proba[20:, 1].mean() > 0.5  # column 1 is "yes"


def test_softmax_rows_sum_to_one_and_keep_the_order():
    scores = np.array([[2.0, 1.0, 0.0], [-1000.0, 0.0, 1000.0]])  # large values must not overflow
    proba = softmax(scores)
    assert np.allclose(proba.sum(axis=1), 1.0) and (proba.argmax(axis=1) == [0, 2]).all()
    assert proba[0, 0] / proba[0, 1] == pytest.approx(np.e)


def test_unknown_family_and_missing_folder_are_refused(tmp_path, rng):
    with pytest.raises(ClassifyError, match="meta.json missing"):
        load_classifier(tmp_path)
    x, y = rng.normal(size=(20, 2)), np.repeat([0, 1], 10)
    pipeline = make_pipeline(MODEL_SPECS["logreg"], ClassifyConfig()).fit(x, y)
    save_classifier(pipeline, "sklearn", tmp_path, feature_names=["a", "b"], classes=["x", "y"])
    meta = json.loads((tmp_path / "meta.json").read_text())
    (tmp_path / "meta.json").write_text(json.dumps({**meta, "family": "pickle"}))
    with pytest.raises(ClassifyError, match="unknown model family 'pickle'"):
        load_classifier(tmp_path)
