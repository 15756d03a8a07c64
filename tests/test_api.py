"""The REST API: every endpoint and every bad input through FastAPI's TestClient, and once as a real server."""
from __future__ import annotations

import concurrent.futures
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from api import ApiConfig, create_app
from api.__main__ import main as api_main
from api.app import MULTIPART_SLACK
from core.analysis.genre import predict_genre
from core.audio.decode import load_audio
from core.base.errors import RunError
from core.base.paths import REPO_ROOT as ROOT
from core.base.paths import runs_dir
from core.runs.folder import load_run
from core.service.query import similar_tracks
from core.service.service import default_run as resolve_run
from tests.processes import free_port, stop
from tests.run_copies import classified_run, copy_run

NEIGHBOUR_FIELDS = {"track_id", "title", "artist", "label", "score", "spotify_url", "youtube_url"}


@pytest.fixture(scope="module")
def genre_run_id(tiny_run_id) -> str:
    """The tiny run with a saved classifier (on embeddings: the cheapest to train and to query)."""
    return classified_run(tiny_run_id, "embeddings")


@pytest.fixture(scope="module")
def plain_run_id(tiny_run_id) -> str:
    """The tiny run without any classifier."""
    return copy_run(tiny_run_id, "tiny-api-plain")


@pytest.fixture(scope="module")
def upload_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("uploads")


@pytest.fixture(scope="module")
def client(genre_run_id, plain_run_id, upload_dir):
    app = create_app(ApiConfig(run=genre_run_id, upload_dir=str(upload_dir)), api_key="")
    with TestClient(app) as c:
        yield c


@pytest.fixture(autouse=True)
def uploads_are_removed(upload_dir):
    """Whatever a test sent, no upload is left on disk afterwards."""
    yield
    assert list(upload_dir.iterdir()) == []


def wav_bytes(y: np.ndarray, sr: int = 22_050, fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, y, sr, format=fmt)
    return buffer.getvalue()


def track_file(run_id: str, row: int) -> bytes:
    return Path(load_run(run_id).tracks["path"].iloc[row]).read_bytes()


# ------------------------------------------------------------------------------------------ endpoints


def test_health_names_the_default_run(client, genre_run_id):
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["default_run"] == genre_run_id and genre_run_id in body["loaded_runs"]


def test_runs_lists_every_run_with_its_evaluation(client, genre_run_id, plain_run_id, tiny_run_id):
    runs = {r["run_id"]: r for r in client.get("/runs").json()}
    assert {genre_run_id, plain_run_id, tiny_run_id} <= set(runs)
    assert [r for r in runs.values() if r["default"]] == [runs[genre_run_id]]
    for run in runs.values():
        assert run["dataset"] == "tiny" and run["tracks"] == 12
        assert 0 <= run["knn5_acc"] <= 1 and 0 <= run["mfcc_knn5_acc"] <= 1 and run["size_mb"] > 0
    assert runs[genre_run_id]["genre_classifier"]["model"] == "logreg"
    assert runs[genre_run_id]["genre_classifier"]["classes"] == ["electronic", "piano", "strings"]
    assert runs[plain_run_id]["genre_classifier"] is None


def test_track_search(client, genre_run_id):
    found = client.get("/runs/default/tracks", params={"q": "PIANO"}).json()
    assert found["run"] == genre_run_id and found["total"] == 4
    assert {t["label"] for t in found["tracks"]} == {"piano"}
    assert client.get("/runs/default/tracks", params={"q": "strings_2"}).json()["tracks"][0]["name"] == "strings_2"
    page = client.get(f"/runs/{genre_run_id}/tracks", params={"q": "elec", "limit": 2}).json()
    assert page["total"] == 4 and len(page["tracks"]) == 2  # total counts every match, not the page
    page = client.get("/runs/default/tracks", params={"limit": 3}).json()
    assert page["total"] == 12 and len(page["tracks"]) == 3
    assert client.get("/runs/default/tracks", params={"q": "no such song"}).json()["tracks"] == []
    listed = client.get("/runs/default/tracks", params={"limit": 500}).json()["tracks"]
    assert len(listed) == 12
    for track in listed:
        assert track["file"].endswith(".wav") and "/" not in track["file"]  # never the server's folders
        assert track["spotify_url"].startswith("https://open.spotify.com/search/")
        assert track["youtube_url"].startswith("https://www.youtube.com/results?search_query=")


def test_neighbours_of_a_library_track(client, genre_run_id):
    run = load_run(genre_run_id)
    row = 5
    track_id = run.tracks["track_id"].iloc[row]
    body = client.get(f"/runs/default/tracks/{track_id}/neighbours", params={"k": 4}).json()
    assert body["track"]["track_id"] == track_id
    near = body["neighbours"]
    assert [n["rank"] for n in near] == [1, 2, 3, 4] and track_id not in [n["track_id"] for n in near]
    assert all(NEIGHBOUR_FIELDS <= set(n) for n in near)
    # the answer known from the embeddings: cosine similarity to every other track, best first
    emb = run.embeddings / np.linalg.norm(run.embeddings, axis=1, keepdims=True)
    sims = emb @ emb[row]
    sims[row] = -np.inf
    best = np.argsort(-sims)[:4]
    assert [n["track_id"] for n in near] == list(run.tracks["track_id"].iloc[best])
    np.testing.assert_allclose([n["score"] for n in near], sims[best], atol=1e-4)
    default_k = client.get(f"/runs/default/tracks/{track_id}/neighbours").json()["neighbours"]
    assert [n["track_id"] for n in default_k] == list(similar_tracks(run, row, k=6)["track_id"].iloc[1:])


def test_recommend_finds_the_uploaded_library_track_first(client, genre_run_id):
    run = load_run(genre_run_id)
    for row in (0, 7):
        response = client.post("/runs/default/recommend", files={"file": ("../../etc/passwd.wav", track_file(genre_run_id, row))},
                               data={"k": "3"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["query"] == {"name": "passwd.wav", "seconds": 8.0}
        near = body["neighbours"]
        assert len(near) == 3 and all(NEIGHBOUR_FIELDS <= set(n) for n in near)
        assert near[0]["track_id"] == run.tracks["track_id"].iloc[row] and near[0]["score"] > 0.99
        assert near[0]["label"] == run.tracks["label"].iloc[row]
        for n in near:  # the score of an upload: the mean of its track cosine and its passage score
            assert n["score"] == pytest.approx((n["cosine"] + n["passage"]) / 2, abs=2e-4)
        assert set(body["map_positions"]) >= {"pca", "umap"} and len(body["map_positions"]["pca"]) == 2


def test_recommend_takes_mp3_and_the_default_k(client, genre_run_id):
    run = load_run(genre_run_id)
    y = load_audio(run.tracks["path"].iloc[2])
    response = client.post("/runs/default/recommend", files={"file": ("q.mp3", wav_bytes(y, fmt="MP3"))})
    near = response.json()["neighbours"]
    assert len(near) == 5 and near[0]["track_id"] == run.tracks["track_id"].iloc[2]


def test_genre_is_the_core_prediction(client, genre_run_id):
    run = load_run(genre_run_id)
    response = client.post("/runs/default/genre", files={"file": ("a.wav", track_file(genre_run_id, 9))})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = predict_genre(run, y=load_audio(run.tracks["path"].iloc[9], min_seconds=3.0))
    assert body["label"] == expected.label and body["input"] == "embeddings" and body["model"] == "logreg"
    assert list(body["probabilities"]) == list(expected.probabilities)  # high -> low
    np.testing.assert_allclose(list(body["probabilities"].values()), list(expected.probabilities.values()), atol=1e-9)
    assert sum(body["probabilities"].values()) == pytest.approx(1.0)
    assert body["cv_accuracy"] == pytest.approx(expected.cv_accuracy)


def test_genre_without_a_classifier_is_a_clear_409(client, plain_run_id):
    response = client.post(f"/runs/{plain_run_id}/genre", files={"file": ("a.wav", track_file(plain_run_id, 0))})
    assert response.status_code == 409
    assert response.json()["detail"] == (f"run '{plain_run_id}' has no saved classifier: train one with "
                                         f"`python -m core classify --run {plain_run_id}` or on the Classifiers page")


# ------------------------------------------------------------------------------------------ bad input


def short_wav():
    return wav_bytes(np.sin(np.arange(22_050) / 5).astype(np.float32) * 0.5)


BAD_UPLOADS = [
    # (what, file name, content, status, detail)
    ("empty", "../../empty.mp3", b"", 422, "empty.mp3: file is empty (0 bytes)"),
    ("not audio", "notes.txt", b"just some text, no audio at all\n" * 50, 422, "notes.txt: not a readable audio file"),
    ("corrupt", "broken.mp3", b"ID3\x03\x00" + bytes(range(256)) * 20, 422, "broken.mp3: not a readable audio file"),
    ("truncated wav", "cut.wav", None, 422, "cut.wav: "),
    ("too short", "short.wav", None, 422, "short.wav: too short: 1.00 s, at least 3.00 s needed"),
    ("silent", "silence.flac", None, 422, "silence.flac: is silent"),
]


def bad_content(what: str, content):
    if what == "truncated wav":
        return wav_bytes(np.zeros(22_050 * 5, np.float32) + 0.1)[:40]
    if what == "too short":
        return short_wav()
    if what == "silent":
        return wav_bytes(np.zeros(22_050 * 5, np.float32), fmt="FLAC")
    return content


@pytest.mark.parametrize("endpoint", ["recommend", "genre"])
@pytest.mark.parametrize("what, name, content, status, detail", BAD_UPLOADS, ids=[b[0] for b in BAD_UPLOADS])
def test_bad_uploads_get_a_4xx_that_says_why(client, endpoint, what, name, content, status, detail):
    response = client.post(f"/runs/default/{endpoint}", files={"file": (name, bad_content(what, content))})
    assert response.status_code == status and response.json()["detail"].startswith(detail), response.text
    assert "Traceback" not in response.text and "/tmp" not in response.text
    assert client.get("/health").status_code == 200  # the server stays up


def raw_multipart(filename: bytes, content: bytes) -> dict:
    """A multipart body written by hand: clients escape odd file names, a hostile one need not."""
    body = (b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n" + content + b"\r\n--xyz--\r\n")
    return dict(content=body, headers={"content-type": "multipart/form-data; boundary=xyz"})


@pytest.mark.parametrize("filename, shown", [(b"a\x00b.wav", "ab.wav"), (b"../../../etc/passwd", "passwd"),
                                             (b"..\\..\\boot.ini.mp3", "boot.ini.mp3"), (b"..", "upload")])
def test_hostile_file_names_are_only_shown_never_used(client, filename, shown):
    response = client.post("/runs/default/recommend", **raw_multipart(filename, short_wav()))
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == f"{shown}: too short: 1.00 s, at least 3.00 s needed"


@pytest.mark.parametrize("request_args, status, detail", [
    (dict(data={"k": "3"}), 422, "file: Field required"),
    (dict(files={"file": ("a.wav", b"x")}, data={"k": "0"}), 422, "k: Input should be greater than or equal to 1"),
    (dict(files={"file": ("a.wav", b"x")}, data={"k": "101"}), 422, "k: Input should be less than or equal to 100"),
    (dict(files={"file": ("a.wav", b"x")}, data={"k": "many"}), 422, "k: Input should be a valid integer"),
    (dict(files={"file": ("a.wav", b"x")}, data={"k": "13"}), 422, "k=13 is more than the 12 tracks of the run"),
    (dict(data={"file": "not a file"}), 422, "file: expected an uploaded file (a multipart/form-data file part"),
    (dict(files={"file": ("", b"RIFF")}), 422, "file: expected an uploaded file"),
    (dict(content=b'{"file": 1}', headers={"content-type": "application/json"}), 422, "file: Field required"),
])
def test_bad_recommend_requests(client, request_args, status, detail):
    response = client.post("/runs/default/recommend", **request_args)
    assert response.status_code == status and response.json()["detail"].startswith(detail), response.text


@pytest.mark.parametrize("path, status, detail", [
    ("/runs/nope/tracks", 404, "no run named 'nope'; GET /runs lists them"),
    ("/runs/.hidden/tracks", 404, "no run named '.hidden'"),
    ("/runs/default/tracks?limit=0", 422, "limit: Input should be greater than or equal to 1"),
    ("/runs/default/tracks?limit=501", 422, "limit: Input should be less than or equal to 500"),
    ("/runs/default/tracks/nope/neighbours", 404, "no track 'nope' in run"),
    ("/runs/nope/tracks/x/neighbours", 404, "no run named 'nope'"),
    ("/runs/default/tracks/{track}/neighbours?k=0", 422, "k: Input should be greater than or equal to 1"),
    ("/runs/default/tracks/{track}/neighbours?k=12", 422, "k=12 is more than the 11 other tracks of the run"),
    ("/runs/default/tracks/{track}/neighbours?k=-3", 422, "k: Input should be greater than or equal to 1"),
    ("/runs/default/tracks/{track}/neighbours?k=2.5", 422, "k: Input should be a valid integer"),
])
def test_bad_lookups(client, genre_run_id, path, status, detail):
    track = load_run(genre_run_id).tracks["track_id"].iloc[0]
    response = client.get(path.format(track=track))
    assert response.status_code == status and response.json()["detail"].startswith(detail), response.text


def test_unknown_run_for_uploads_is_404(client):
    response = client.post("/runs/nope/recommend", files={"file": ("a.wav", short_wav())})
    assert response.status_code == 404 and response.json()["detail"].startswith("no run named 'nope'")


def test_too_large_uploads_are_refused(genre_run_id, upload_dir):
    limit_mb = 0.1
    app = create_app(ApiConfig(run=genre_run_id, upload_dir=str(upload_dir), max_upload_mb=limit_mb), api_key="")
    with TestClient(app) as c:
        # a file just over the cap (the body is within the multipart slack): refused by name while streaming it
        over = wav_bytes(np.random.default_rng(0).normal(0, 0.1, 60_000).astype(np.float32))
        assert 0.1 * 2**20 < len(over) < 0.1 * 2**20 + MULTIPART_SLACK - 1000
        response = c.post("/runs/default/recommend", files={"file": ("../big.wav", over)})
        assert response.status_code == 413
        assert response.json()["detail"] == "big.wav: too large: more than 0.1 MB, the limit is 0.1 MB"
        # a body far over the cap: refused by its Content-Length before it is read
        response = c.post("/runs/default/recommend", files={"file": ("huge.wav", b"\0" * 2**20)})
        assert response.status_code == 413
        assert response.json()["detail"] == "upload too large: more than 0.1 MB, the limit is 0.1 MB"

        # a chunked body without Content-Length: refused once it passes the cap
        def endless():
            for _ in range(64):
                yield b"\0" * 65_536

        response = c.post("/runs/default/recommend", content=endless(),
                          headers={"content-type": "multipart/form-data; boundary=xyz"})
        assert response.status_code == 413 and response.json()["detail"].startswith("upload too large")
        assert c.get("/health").status_code == 200


def test_the_default_cap_is_the_apps():
    assert ApiConfig().max_upload_mb == 200


def test_an_unexpected_error_is_a_500_without_traceback(genre_run_id, monkeypatch):
    import core.service.service

    app = create_app(ApiConfig(run=genre_run_id), api_key="")
    monkeypatch.setattr(core.service.service, "search_tracks", lambda *a, **k: 1 / 0)
    with TestClient(app, raise_server_exceptions=False) as c:
        response = c.get("/runs/default/tracks", params={"q": "x"})
        assert response.status_code == 500
        assert response.json() == {"detail": "internal error (ZeroDivisionError); the server log has the details"}
        assert c.get("/health").status_code == 200


# ------------------------------------------------------------------------------------------ key, CORS, --run


def test_api_key_is_needed_on_every_request_when_set(genre_run_id, monkeypatch):
    monkeypatch.setenv("TIMBRE_API_KEY", "s3cret")
    with TestClient(create_app(ApiConfig(run=genre_run_id))) as c:
        for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}):
            response = c.get("/health", headers=headers)
            assert response.status_code == 401 and response.json()["detail"] == "missing or wrong X-API-Key header"
        assert c.post("/runs/default/recommend", files={"file": ("a.wav", b"x" * 1000)}).status_code == 401
        assert c.get("/runs").status_code == 401
        assert c.get("/health", headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/docs").status_code == 200  # the docs page itself is public; its "Authorize" sends the key
        schema = c.get("/openapi.json").json()
        assert schema["components"]["securitySchemes"]["ApiKey"]["name"] == "X-API-Key"


def test_no_key_no_cors_by_default(client):
    response = client.get("/health", headers={"Origin": "https://example.org"})
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers
    assert client.options("/health", headers={"Origin": "https://example.org",
                                              "Access-Control-Request-Method": "GET"}).status_code == 405


def test_cors_origin_flag_allows_that_origin(genre_run_id):
    with TestClient(create_app(ApiConfig(run=genre_run_id, cors_origin=("https://example.org",)), api_key="")) as c:
        response = c.get("/health", headers={"Origin": "https://example.org"})
        assert response.headers["access-control-allow-origin"] == "https://example.org"
        assert "access-control-allow-origin" not in c.get("/health", headers={"Origin": "https://evil.example"}).headers


def test_run_given_as_id_or_folder(genre_run_id, tmp_path):
    assert resolve_run(genre_run_id).run_id == genre_run_id
    assert resolve_run(str(runs_dir() / genre_run_id)).run_id == genre_run_id
    assert resolve_run(str(runs_dir() / genre_run_id) + "/").path == runs_dir() / genre_run_id
    moved = tmp_path / "moved-run"
    shutil.copytree(runs_dir() / genre_run_id, moved)
    with TestClient(create_app(ApiConfig(run=str(moved)), api_key="")) as c:  # a run folder elsewhere
        assert c.get("/health").json()["default_run"] == "moved-run"
        assert c.get("/runs/default/tracks", params={"q": "piano"}).json()["total"] == 4
    with pytest.raises(RunError, match="no run named 'nope'"):
        resolve_run("nope")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(RunError, match="'half' is incomplete"):
        resolve_run(str(tmp_path / "half"))


def test_cli_refuses_an_unknown_run(capsys):
    assert api_main(["--run", "nope", "--port", "1"]) == 2
    assert "no run named 'nope'" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ the real server


def wait_healthy(url: str, process: subprocess.Popen, *, seconds: float = 180.0) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}")
        try:
            return httpx.get(url + "/health", timeout=2.0).raise_for_status().json()
        except httpx.HTTPError:
            time.sleep(0.5)
    raise AssertionError(f"no answer from {url}/health within {seconds:g} s")


def test_real_server_answers_over_http(genre_run_id, tmp_path):
    run = load_run(genre_run_id)
    port, temp = free_port(), tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "TIMBRE_API_KEY": ""}
    log = open(tmp_path / "server.log", "wb")
    server = subprocess.Popen([sys.executable, "-m", "api", "--port", str(port), "--run", str(run.path),
                               "--log-level", "warning"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_healthy(url, server)["default_run"] == genre_run_id
        y = load_audio(run.tracks["path"].iloc[4])
        mp3 = wav_bytes(y, fmt="MP3")  # a library track's own audio, as a user's MP3

        def ask(_):
            return httpx.post(f"{url}/runs/default/recommend", files={"file": ("mine.mp3", mp3)},
                              data={"k": "3"}, timeout=60.0)

        with concurrent.futures.ThreadPoolExecutor(4) as pool:  # shared run, concurrent requests
            answers = list(pool.map(ask, range(4)))
        assert [a.status_code for a in answers] == [200] * 4
        firsts = {a.json()["neighbours"][0]["track_id"] for a in answers}
        assert firsts == {run.tracks["track_id"].iloc[4]}
        assert len({a.text for a in answers}) == 1  # concurrent answers are identical
        bad = httpx.post(f"{url}/runs/default/recommend", files={"file": ("x.mp3", b"junk" * 100)}, timeout=30.0)
        assert bad.status_code == 422 and bad.json()["detail"].startswith("x.mp3: not a readable audio file")
        assert httpx.get(url + "/health", timeout=5.0).status_code == 200
        # a collection over HTTP: saved, listed, deleted
        ids = list(run.tracks["track_id"].iloc[:2])
        made = httpx.post(f"{url}/runs/default/collections", json={"name": "over http", "track_ids": ids}, timeout=30)
        assert made.status_code == 201, made.text
        listed = httpx.get(f"{url}/runs/default/collections", timeout=30).json()
        assert made.json()["collection_id"] in [c["collection_id"] for c in listed]
        assert httpx.delete(f"{url}/runs/default/collections/{made.json()['collection_id']}", timeout=30).is_success
        similar = httpx.post(f"{url}/runs/default/similar", json={"track_ids": ids, "k": 2}, timeout=30).json()
        assert len(similar["neighbours"]) == 2
        by_tag = httpx.get(f"{url}/runs/default/tracks", params={"tag": "rock", "limit": 3}, timeout=30).json()
        assert len(by_tag["tracks"]) == 3 and all(len(t["tags"]) == 3 for t in by_tag["tracks"])
        assert httpx.get(f"{url}/runs/default/tracks", params={"tag": "rok"}, timeout=30).status_code == 422
        assert list(temp.iterdir()) == []  # every upload's temp file removed
    finally:
        stop(server)
        log.close()
    assert server.returncode is not None


# ------------------------------------------------------------------------------------------ sets of tracks


def test_similar_to_several_tracks_leaves_them_out(client, genre_run_id):
    run = load_run(genre_run_id)
    ids = list(run.tracks["track_id"].iloc[[0, 4]])
    body = client.post("/runs/default/similar", json={"track_ids": ids + ids[:1], "k": 3}).json()
    assert [t["track_id"] for t in body["query"]] == ids
    near = body["neighbours"]
    assert [n["rank"] for n in near] == [1, 2, 3] and not set(ids) & {n["track_id"] for n in near}
    emb = run.embeddings / np.linalg.norm(run.embeddings, axis=1, keepdims=True)
    mean_cosine = (emb @ emb[[0, 4]].T).mean(axis=1)
    mean_cosine[[0, 4]] = -np.inf
    best = np.argsort(-mean_cosine)[:3]
    assert [n["track_id"] for n in near] == list(run.tracks["track_id"].iloc[best])
    np.testing.assert_allclose([n["score"] for n in near], mean_cosine[best], atol=1e-3)


@pytest.mark.parametrize("body, status, detail", [
    ({"track_ids": []}, 422, "track_ids is empty"),
    ({"track_ids": ["nope"]}, 404, "1 track id(s) not in run"),
    ({"track_ids": "abc"}, 422, "track_ids"),
    ({"k": 3}, 422, "track_ids: Field required"),
])
def test_similar_refuses_bad_sets(client, body, status, detail):
    response = client.post("/runs/default/similar", json=body)
    assert response.status_code == status and detail in response.json()["detail"], response.text


def test_collections_are_created_listed_read_and_deleted(client, genre_run_id, plain_run_id):
    run = load_run(genre_run_id)
    ids = list(run.tracks["track_id"].iloc[[1, 2, 3]])
    made = client.post("/runs/default/collections", json={"name": " API set ", "track_ids": ids})
    assert made.status_code == 201, made.text
    saved = made.json()
    assert saved["name"] == "API set" and saved["n_tracks"] == 3 and saved["n_in_run"] == 3
    assert saved["dataset"] == "tiny"
    # another run of the dataset shares it
    listed = client.get(f"/runs/{plain_run_id}/collections").json()
    assert [c["collection_id"] for c in listed if c["name"] == "API set"] == [saved["collection_id"]]
    one = client.get(f"/runs/default/collections/{saved['collection_id']}").json()
    assert [t["track_id"] for t in one["tracks"]] == sorted(ids, key=list(run.tracks["track_id"]).index)
    for bad, detail in ((" ", "needs a name"), ("api SET", "already a collection"), ("../x", "looks like a path"),
                        ("x" * 61, "at most 60")):
        refused = client.post("/runs/default/collections", json={"name": bad, "track_ids": ids})
        assert refused.status_code == 422 and detail in refused.json()["detail"], refused.text
    assert client.post("/runs/default/collections", json={"name": "none", "track_ids": []}).status_code == 422
    gone = client.delete(f"/runs/default/collections/{saved['collection_id']}")
    assert gone.status_code == 200 and gone.json()["name"] == "API set"
    assert saved["collection_id"] not in [c["collection_id"] for c in client.get("/runs/default/collections").json()]
    for missing in (saved["collection_id"], "..%2F..%2Fruns", "0123"):
        response = client.delete(f"/runs/default/collections/{missing}")
        assert response.status_code == 404, response.text


# ------------------------------------------------------------------------------------------ musicnn tags


def test_every_track_record_carries_its_top_tags(client, genre_run_id):
    from core.analysis.tags import run_tags, top_tags

    run = load_run(genre_run_id)  # the tiny dataset was distilled from musicnn: its tag cache is there
    tags = run_tags(run)
    listed = client.get("/runs/default/tracks", params={"limit": 500}).json()["tracks"]
    for track in listed:
        row = int(np.flatnonzero(run.tracks["track_id"] == track["track_id"])[0])
        assert [t["tag"] for t in track["tags"]] == [t for t, _ in top_tags(tags, row, n=3)]
    near = client.get(f"/runs/default/tracks/{listed[0]['track_id']}/neighbours", params={"k": 2}).json()
    assert len(near["track"]["tags"]) == 3 and all(len(n["tags"]) == 3 for n in near["neighbours"])


def test_tracks_ordered_by_a_tag(client, genre_run_id):
    from core.analysis.tags import run_tags

    tags = run_tags(load_run(genre_run_id))
    body = client.get("/runs/default/tracks", params={"tag": "electronic", "limit": 5}).json()
    most = np.argsort(-tags["electronic"].to_numpy(), kind="stable")[:5]
    assert body["total"] == 12 and len(body["tracks"]) == 5
    assert [t["track_id"] for t in body["tracks"]] == load_run(genre_run_id).tracks["track_id"].iloc[most].tolist()
    piano = client.get("/runs/default/tracks", params={"tag": "Mellow", "q": "piano", "limit": 50}).json()
    assert piano["total"] == 4 and {t["label"] for t in piano["tracks"]} == {"piano"}
    bad = client.get("/runs/default/tracks", params={"tag": "piano"})
    assert bad.status_code == 422 and "no musicnn tag named 'piano'" in bad.json()["detail"]


def test_a_run_without_tags_says_why(client, tiny_run_id):
    import json

    bare = copy_run(tiny_run_id, "tiny-api-untagged")
    config = runs_dir() / bare / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "dataset": "gone"}))
    listed = client.get(f"/runs/{bare}/tracks").json()["tracks"]
    assert listed and all(t["tags"] == [] for t in listed)
    answer = client.get(f"/runs/{bare}/tracks", params={"tag": "rock"})
    assert answer.status_code == 409 and "dataset 'gone' is not in this workspace" in answer.json()["detail"]


def test_a_broken_run_is_listed_as_broken_and_never_breaks_the_listing(client, genre_run_id):
    from tests.run_copies import broken_copies

    damaged = broken_copies(genre_run_id, runs_dir())
    try:
        response = client.get("/runs")
        assert response.status_code == 200, response.text
        listed = {r["run_id"]: r for r in response.json()}
        assert listed[genre_run_id]["broken"] is None and listed[genre_run_id]["tracks"] == 12
        for run_id, name in damaged.items():
            assert listed[run_id]["broken"].startswith(f"run '{run_id}' is broken: {name} cannot be read")
        for run_id in damaged:
            response = client.get(f"/runs/{run_id}/tracks")
            assert response.status_code == 409 and "cannot be read" in response.json()["detail"]
            assert str(runs_dir()) not in response.text and "/tmp" not in response.text
        assert client.get("/runs/default/tracks").status_code == 200
    finally:
        for run_id in damaged:
            shutil.rmtree(runs_dir() / run_id)


def test_the_docs_page_works_offline_from_packaged_swagger_ui_5(genre_run_id):
    app = create_app(ApiConfig(run=genre_run_id), api_key="secret")
    with TestClient(app) as c:
        page = c.get("/docs")
        assert page.status_code == 200 and "cdn" not in page.text.lower()
        assets = re.findall(r"""(?:src|href)=['"](/docs-assets/[^'"]+)['"]""", page.text)
        assert {"/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"} <= set(assets)
        for asset in assets:  # public like the page, so the browser can load them before "Authorize"
            response = c.get(asset)
            assert response.status_code == 200 and len(response.content) > 100, asset
        assert len(c.get("/docs-assets/swagger-ui-bundle.js").content) > 500_000  # the real bundle (operations
        # drawn from the OpenAPI 3.1 schema: tests/test_browser.py)
        assert c.get("/openapi.json").json()["info"]["title"] == "Timbre Atlas API"
        assert c.get("/runs").status_code == 401


def test_audio_queries_beyond_the_slots_wait_then_get_503_with_retry_after(genre_run_id):
    app = create_app(ApiConfig(run=genre_run_id, audio_slots=1, queue_seconds=0.2), api_key="")
    upload = {"file": ("q.wav", track_file(genre_run_id, 0))}
    with TestClient(app) as c:
        with app.state.audio_slots.held():  # another query is being decoded
            busy = c.post("/runs/default/recommend", files=upload)
            assert busy.status_code == 503 and busy.headers["Retry-After"] == "5"
            assert "busy with other audio queries" in busy.json()["detail"]
            assert c.get("/runs/default/tracks").status_code == 200  # the rest of the API is not held up
        assert c.post("/runs/default/recommend", files=upload).status_code == 200  # the slot is free again


API_PEAK = """
import io, json, resource, sys
from fastapi.testclient import TestClient
from api.app import ApiConfig, create_app
with TestClient(create_app(ApiConfig(run=sys.argv[1]), api_key="")) as c:
    def post(path):
        with open(path, "rb") as f:
            return c.post("/runs/default/recommend", files={"file": ("q.flac", f)})
    assert post(sys.argv[2]).status_code == 200  # model, run and decoders warm: the baseline
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    response = post(sys.argv[3])
    print(json.dumps({"status": response.status_code, "seconds": response.json()["query"]["seconds"],
                      "grown_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024}))
"""


def test_a_small_upload_that_decodes_to_gigabytes_costs_the_api_little_memory(genre_run_id, tmp_path):
    """A 0.7 MB FLAC of 120 s at 192 kHz x 8 channels (737 MB as float32 samples) raised the server's peak
    memory by about 1 GB before audio was decoded in blocks; now by the query's mono signal and its
    embedding's working set."""
    from tests.test_audio import _decompression_sized_flac

    big, warm = tmp_path / "big.flac", tmp_path / "warm.flac"
    _decompression_sized_flac(big, seconds=120)
    _decompression_sized_flac(warm, seconds=4)
    out = subprocess.run([sys.executable, "-c", API_PEAK, str(runs_dir() / genre_run_id), str(warm), str(big)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == 200 and result["seconds"] == 120.0
    assert result["grown_mb"] < 300, result
