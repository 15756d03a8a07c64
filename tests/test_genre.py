"""Genre of a query: the run's best saved classifier on inputs computed exactly as the library's were."""
from __future__ import annotations

import numpy as np
import pytest

from core.analysis.genre import best_classifier, classifier_row, predict_genre
from core.analysis.sources import load_source
from core.audio.decode import load_audio
from core.base.errors import ClassifyError, NeedsAudio
from core.runs.folder import load_run
from tests.run_copies import classified_run, copy_run


@pytest.fixture(scope="module", params=["features", "embeddings", "both"])
def genre_run(request, tiny_run_id):
    return load_run(classified_run(tiny_run_id, request.param)), request.param


def track_audio(run, row: int) -> np.ndarray:
    """A library track decoded as ingest decoded it."""
    return load_audio(run.tracks["path"].iloc[row], sr=run.mel_params.sr, max_seconds=600.0, min_seconds=3.0)


def test_a_run_without_classifiers_gives_none(tiny_run_id):
    run = load_run(copy_run(tiny_run_id, "tiny-genre-none"))
    assert best_classifier(run) is None
    assert predict_genre(run, y=track_audio(run, 0)) is None


def test_a_library_track_gets_what_the_classifier_gives_its_stored_row(genre_run):
    """The query's features/embedding equal the library's, so its probabilities do too."""
    run, input = genre_run
    best = best_classifier(run)
    stored = load_source(run=run.run_id).matrix(input)[best.feature_names].to_numpy(np.float64)
    # features are computed from the same decoded audio by the same code: equal up to float rounding;
    # library embeddings come from float16-stored log-mels, so those agree a little less closely
    tolerance = 1e-6 if input == "features" else 0.02
    for row in (0, 5, 11):
        prediction = predict_genre(run, y=track_audio(run, row))
        expected = best.classifier.predict_proba(stored[row:row + 1])[0]
        got = [prediction.probabilities[c] for c in best.classes]
        np.testing.assert_allclose(got, expected, atol=tolerance)
        assert prediction.label == best.classes[int(np.argmax(expected))]
        assert prediction.input == input and prediction.model == "logreg"
        assert prediction.cv_accuracy == pytest.approx(best.cv_mean)
        values = list(prediction.probabilities.values())
        assert values == sorted(values, reverse=True) and sum(values) == pytest.approx(1.0)
        assert set(prediction.probabilities) == set(run.tracks["label"])
        assert prediction.top(1) == [(prediction.label, values[0])]


def test_features_classifier_names_each_styles_own_tracks(tiny_run_id):
    """Three synthetic styles are easy to tell apart by their audio features: every track gets its label back."""
    run = load_run(classified_run(tiny_run_id, "features"))
    for row, label in enumerate(run.tracks["label"]):
        assert predict_genre(run, y=track_audio(run, row)).label == label


def test_a_given_embedding_is_used_as_is(tiny_run_id):
    run = load_run(classified_run(tiny_run_id, "embeddings"))
    best = best_classifier(run)
    prediction = predict_genre(run, embedding=run.embeddings[3])
    expected = best.classifier.predict_proba(run.embeddings[3:4].astype(np.float64))[0]
    np.testing.assert_allclose([prediction.probabilities[c] for c in best.classes], expected, atol=1e-12)


def test_audio_is_required_for_a_features_classifier(tiny_run_id):
    run = load_run(classified_run(tiny_run_id, "features"))
    with pytest.raises(NeedsAudio, match="pass the audio y"):
        predict_genre(run, embedding=run.embeddings[0])


def test_classifier_row_orders_values_and_names_what_is_missing():
    assert classifier_row(["b", "a"], {"a": 1.0, "b": 2.0, "c": 3.0}).tolist() == [[2.0, 1.0]]
    with pytest.raises(ClassifyError, match="needs 1 input.*: tempo_bpm"):
        classifier_row(["tempo_bpm", "a"], {"a": 1.0})
