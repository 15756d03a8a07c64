"""The query service under the page, the API and the bot: its run cache, typed errors, genre and track records,
and the one definition of the query limits."""
from __future__ import annotations

import threading
import time
import tomllib

import numpy as np
import pytest

import core.service.service as service_module
from core.analysis.genre import predict_genre
from core.analysis.tags import run_tags, top_tags
from core.audio.decode import load_audio
from core.base.constants import MAX_UPLOAD_MB
from core.base.errors import AudioDecodeError, InvalidQuery, NeedsAudio, NoClassifier, NotFound, QueryError, TagError, TooLarge
from core.base.paths import REPO_ROOT
from core.data.uploads import check_upload
from core.runs.folder import load_run
from core.service.service import GenreResult, QueryService, default_run
from tests.run_copies import classified_run, copy_run


@pytest.fixture(scope="module")
def service(tiny_run_id) -> QueryService:
    return QueryService(load_run(tiny_run_id), warm=False)


def test_the_dashboards_upload_limit_is_cores():
    """.streamlit/config.toml's server.maxUploadSize (what the upload widget enforces) is core's one limit."""
    config = tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == MAX_UPLOAD_MB


def test_too_large_is_bad_audio_and_a_query_error():
    with pytest.raises(TooLarge, match=r"a.wav: too large: 3.0 MB, the limit is 2 MB") as raised:
        check_upload("a.wav", 3 * 2**20, max_mb=2)
    assert isinstance(raised.value, AudioDecodeError) and isinstance(raised.value, QueryError)
    assert raised.value.path == "a.wav"


def test_runs_are_opened_once_and_shared(service, tiny_run_id):
    assert service.run() is service.run(tiny_run_id) and service.loaded() == [tiny_run_id]
    with pytest.raises(NotFound, match="no run named 'nope'") as raised:
        service.run("nope")
    assert raised.value.what == "run"
    with pytest.raises(NotFound, match="no run named '../x'"):  # a name never reaches another folder
        service.run("../x")


def test_concurrent_first_requests_load_a_run_once(tiny_run_id, monkeypatch):
    other = copy_run(tiny_run_id, "tiny-service-concurrent")
    loads = []

    def slow_load(run_id):
        loads.append(run_id)
        time.sleep(0.2)  # long enough for every thread to ask before the first load ends
        return load_run(run_id)

    monkeypatch.setattr(service_module, "load_run", slow_load)
    queries = QueryService(warm=False)
    got = []
    threads = [threading.Thread(target=lambda: got.append(queries.run(other))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loads == [other] and len(got) == 6 and all(r is got[0] for r in got)


def test_without_any_run_the_service_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("TIMBRE_ARTIFACTS", str(tmp_path))
    assert default_run() is None
    with pytest.raises(NotFound, match="there is no run yet: build one with `python -m core demo`") as raised:
        QueryService().run()
    assert raised.value.what == "runs"


def test_tracks_by_id_and_by_tag(service):
    run = service.run()
    assert service.track_row(run, run.tracks["track_id"].iloc[4]) == 4
    with pytest.raises(NotFound, match="no track 'nope' in run") as raised:
        service.track_row(run, "nope")
    assert raised.value.what == "track"
    ids = list(run.tracks["track_id"].iloc[[5, 2]])
    assert service.track_rows(run, ids + ids[:1]).tolist() == [2, 5]
    with pytest.raises(InvalidQuery, match="track_ids is empty"):
        service.track_rows(run, [])
    with pytest.raises(NotFound, match=r"2 track id\(s\) not in run .*'x', 'y'"):
        service.track_rows(run, ids + ["x", "y"])
    with pytest.raises(InvalidQuery, match="no musicnn tag named 'piano'"):
        service.find_tracks(run, tag="piano")
    assert len(service.find_tracks(run, "piano")) == 4 and len(service.find_tracks(run)) == 12
    by_tag = service.find_tracks(run, "piano", tag="Mellow")
    assert set(by_tag["label"]) == {"piano"} and len(by_tag) == 4


def test_the_search_box_finds_words_or_a_tag_and_a_tracks_neighbours_come_with_it_or_without(service):
    """The dashboard's and the bot's text search and similar-track lists (QueryService.search, nearest_tracks,
    neighbours)."""
    run = service.run()
    words = service.search(run, "piano", limit=3)
    assert len(words) == 3 and set(words["label"]) == {"piano"} and {"row", "name"} <= set(words.columns)
    assert service.search(run, "  ").empty
    mellow = run_tags(run)["Mellow"].to_numpy()
    by_tag = service.search(run, "tag:mellow", limit=5)
    likelihood = mellow[by_tag["row"].to_numpy()]
    assert len(by_tag) == 5 and (np.diff(likelihood) <= 0).all()  # most likely first ...
    assert likelihood[-1] >= np.delete(mellow, by_tag["row"].to_numpy()).max()  # ... and the five most likely
    assert by_tag["name"].tolist() == [service.records(run, run.tracks.iloc[[r]])[0]["name"] for r in by_tag["row"]]
    with pytest.raises(TagError, match="no musicnn tag named 'pianoo'"):
        service.search(run, "tag:pianoo")
    near = service.nearest_tracks(run, 3, k=4)
    assert near["row"].iloc[0] == 3 and near["score"].iloc[0] == pytest.approx(1.0) and len(near) == 4
    others = service.neighbours(run, 3, k=3)
    assert others["row"].tolist() == near["row"].iloc[1:].tolist() and others["rank"].tolist() == [1, 2, 3]


def test_a_run_without_tags_is_a_tag_error_not_an_invalid_query(tiny_run_id):
    import json

    from core.base.paths import runs_dir

    bare = copy_run(tiny_run_id, "tiny-service-untagged")
    config = runs_dir() / bare / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "dataset": "gone"}))
    queries = QueryService(warm=False)
    with pytest.raises(TagError, match="no musicnn tags to order by: .*dataset 'gone'") as raised:
        queries.find_tracks(queries.run(bare), tag="rock")
    assert not isinstance(raised.value, QueryError)
    assert all(r["tags"] == [] for r in queries.records(queries.run(bare), queries.run(bare).tracks.head(2)))


def test_records_carry_display_names_file_names_links_and_top_tags(service):
    run = service.run()
    near = service.neighbours(run, 3, k=2)
    records = service.records(run, near)
    tags = run_tags(run)
    for record, (_, row) in zip(records, near.iterrows()):
        assert record["name"] == row["path"].rsplit("/", 1)[-1].rsplit(".", 1)[0]  # no tags in the files: the stem
        assert record["file"] == row["path"].rsplit("/", 1)[-1]
        assert record["spotify_url"].startswith("https://open.spotify.com/search/")
        assert record["rank"] == row["rank"] and record["score"] == pytest.approx(row["score"])
        assert [t["tag"] for t in record["tags"]] == [t for t, _ in top_tags(tags, int(row["row"]), n=3)]
        assert "cosine" not in record  # a library track's neighbours have no passage score


def test_k_is_checked_once_for_every_query(service):
    run = service.run()
    with pytest.raises(InvalidQuery, match="k=12 is more than the 11 other tracks"):
        service.neighbours(run, 0, k=12)
    query = service.load(run, run.tracks["path"].iloc[0])
    with pytest.raises(InvalidQuery, match="k=0: ask for 1 to 12 tracks"):
        service.recommend(run, query, k=0)


def test_an_audio_query_names_its_file_and_finds_itself(service):
    run = service.run()
    query = service.load(run, run.tracks["path"].iloc[7], name="../../secret/mine.wav")
    assert query.name == "mine.wav" and query.seconds == 8.0 and query.y.dtype == np.float32
    answer = service.recommend(run, query, k=3)
    assert answer.recommendation.neighbours["row"].iloc[0] == 7
    assert answer.genre == GenreResult()  # the run has no classifier: nothing to show, nothing to explain


def test_genre_without_a_classifier_is_typed(service):
    run = service.run()
    with pytest.raises(NoClassifier, match=f"run '{run.run_id}' has no saved classifier: train one with"):
        service.genre(run, embedding=run.embeddings[0])
    assert service.track_genre(run, 0) == GenreResult()


def test_the_answers_genre_is_the_core_prediction(tiny_run_id):
    run = load_run(classified_run(tiny_run_id, "both"))
    queries = QueryService(run, warm=False)
    query = queries.load(run, run.tracks["path"].iloc[9])
    answer = queries.recommend(run, query, k=2)
    expected = predict_genre(run, y=query.y)
    assert answer.genre.prediction.label == expected.label and answer.genre.note is None
    np.testing.assert_allclose(list(answer.genre.prediction.probabilities.values()),
                               list(expected.probabilities.values()), atol=1e-6)
    assert queries.recommend(run, query, k=2, genre=False).genre == GenreResult()


def test_a_library_tracks_genre_decodes_its_file_only_when_the_classifier_needs_audio(tiny_run_id):
    run = load_run(classified_run(tiny_run_id, "both"))
    queries = QueryService(run, warm=False)
    with pytest.raises(NeedsAudio):
        queries.genre(run, embedding=run.embeddings[1])
    y = load_audio(run.tracks["path"].iloc[1], min_seconds=3.0)
    assert queries.library_genre(run, 1).label == predict_genre(run, y=y).label
    run.tracks = run.tracks.assign(path=["/gone/away/" + p.rsplit("/", 1)[-1] for p in run.tracks["path"]])
    with pytest.raises(AudioDecodeError) as raised:
        queries.library_genre(run, 1)
    assert str(raised.value).endswith(": file not found") and "/gone" not in str(raised.value)
    assert queries.track_genre(run, 1) == GenreResult(note=str(raised.value))
    embeddings_only = load_run(classified_run(tiny_run_id, "embeddings"))
    assert QueryService(embeddings_only, warm=False).library_genre(embeddings_only, 1).input == "embeddings"
