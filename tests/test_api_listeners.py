"""The API's listeners: keys, events, history import, one's own data, personalised answers with reasons, a corrupt
store answered with pure audio, and 20 concurrent clients of a real ``python -m api`` losing no event."""
from __future__ import annotations

import concurrent.futures
import os
import sqlite3
import subprocess
import sys

import httpx
import pytest
from fastapi.testclient import TestClient

from api import ApiConfig, create_app
from core.base.paths import REPO_ROOT as ROOT
from core.data.tracks import display_name
from core.listeners.store import ListenerStore, store_path
from core.runs.folder import load_run
from tests.processes import free_port, stop
from tests.test_api import wait_healthy


@pytest.fixture(scope="module")
def client(tiny_run_id):
    with TestClient(create_app(ApiConfig(run=tiny_run_id), api_key="")) as c:
        yield c


def new_key(client, name: str) -> dict:
    made = client.post("/listeners", json={"name": name})
    assert made.status_code == 201, made.text
    return {"X-Listener-Key": made.json()["key"]}


def ids_of(run, label: str) -> list[str]:
    return list(run.tracks.loc[run.tracks["label"] == label, "track_id"])


def test_a_listeners_likes_reshape_the_neighbours_with_reasons(client, tiny_run_id):
    run = load_run(tiny_run_id)
    me = new_key(client, "piano fan")
    query = ids_of(run, "electronic")[0]
    plain = client.get(f"/runs/default/tracks/{query}/neighbours", params={"k": 4}).json()
    cold = client.get(f"/runs/default/tracks/{query}/neighbours", params={"k": 4}, headers=me).json()
    assert [n["track_id"] for n in cold["neighbours"]] == [n["track_id"] for n in plain["neighbours"]]
    assert not cold["personal"] and cold["note"].startswith("no plays or likes yet")
    for track in ids_of(run, "piano")[:3]:
        sent = client.post("/runs/default/events", json={"track_id": track, "kind": "liked", "query": "test"},
                           headers=me)
        assert sent.status_code == 201 and sent.json()["event_id"] > 0
    for track in ids_of(run, "electronic")[1:]:
        client.post("/runs/default/events", json={"track_id": track, "kind": "disliked"}, headers=me)
    body = client.get(f"/runs/default/tracks/{query}/neighbours", params={"k": 4}, headers=me).json()
    assert body["personal"] and body["note"] is None
    labels = [n["label"] for n in body["neighbours"]]
    assert "electronic" not in labels and labels.count("piano") >= 3
    assert all(n["why"] for n in body["neighbours"])
    assert any(w.startswith("you liked piano_") for n in body["neighbours"] for w in n["why"])
    assert {tuple(n["why"]) for n in plain["neighbours"]} == {(f"sounds like {plain['track']['name']}",)}
    for_you = client.get("/runs/default/for-you", params={"k": 2}, headers=me).json()
    assert for_you["personal"] and len(for_you["neighbours"]) == 2
    assert not set(ids_of(run, "piano")[:3]) & {n["track_id"] for n in for_you["neighbours"]}


def test_listeners_see_and_delete_only_their_own_data(client, tiny_run_id):
    run = load_run(tiny_run_id)
    ann, bob = new_key(client, "ann"), new_key(client, "bob")
    track = run.tracks["track_id"].iloc[0]
    client.post("/runs/default/events", json={"track_id": track, "kind": "played"}, headers=ann)
    client.post("/runs/default/events", json={"track_id": track, "kind": "skipped"}, headers=bob)
    mine = client.get("/listeners/me", headers=ann).json()
    assert mine["name"] == "ann" and mine["counts"] == {"played": 1, "liked": 0, "disliked": 0, "skipped": 0}
    assert [(e["track_id"], e["kind"], e["source"]) for e in mine["events"]] == [(track, "played", "api")]
    assert mine["events"][0]["name"] == display_name(run.tracks.iloc[0])
    assert client.delete("/listeners/me", headers=ann).json() == {"deleted_events": 1}
    gone = client.get("/listeners/me", headers=ann)
    assert gone.status_code == 404 and "no listener has this key" in gone.json()["detail"]
    assert client.get("/listeners/me", headers=bob).json()["counts"]["skipped"] == 1
    assert client.get("/listeners/me").status_code == 422  # no key, no data


def test_bad_listener_requests_are_plain_4xx(client, tiny_run_id):
    me = new_key(client, "careful")
    track = load_run(tiny_run_id).tracks["track_id"].iloc[0]
    assert client.post("/listeners", json={"name": "careful"}).json()["detail"].startswith("an API listener named")
    bad = client.post("/runs/default/events", json={"track_id": track, "kind": "loved"}, headers=me)
    assert bad.status_code == 422 and bad.json()["detail"] == "event 'loved': one of played, liked, disliked, skipped"
    missing = client.post("/runs/default/events", json={"track_id": "nope", "kind": "liked"}, headers=me)
    assert missing.status_code == 422 and "no track 'nope'" in missing.json()["detail"]
    assert client.post("/runs/default/events", json={"track_id": track, "kind": "liked"},
                       headers={"X-Listener-Key": "guess"}).status_code == 404
    empty = client.get("/runs/default/for-you", headers=me)
    assert empty.status_code == 422 and "like or play a few tracks first" in empty.json()["detail"]
    junk = client.post("/runs/default/history", files={"file": ("h.csv", b"\x00\x01 nothing here")}, headers=me)
    assert junk.status_code == 422 and junk.json()["detail"].startswith("h.csv: ")


def test_history_import_over_http(client, tiny_run_id):
    me = new_key(client, "scrobbler")
    csv = "artist,track,date\n" + "".join(f",piano_{i % 4},\"0{1 + i % 9} Mar 2024, 10:00\"\n" for i in range(50))
    csv += ",a song the library lacks,\"01 Mar 2024, 11:00\"\n" * 3
    body = client.post("/runs/default/history", files={"file": ("scrobbles.csv", csv.encode())}, headers=me).json()
    assert body == {"rows": 53, "matched": 50, "tracks": 4, "unmatched": 3,
                    "unmatched_top": [["a song the library lacks", 3]]}
    assert client.get("/listeners/me", headers=me).json()["counts"]["played"] == 50


def test_a_corrupt_store_answers_pure_audio_and_refuses_writes_plainly(client, tiny_run_id, tmp_path):
    service = client.app.state.service
    me = new_key(client, "before the damage")
    track = load_run(tiny_run_id).tracks["track_id"].iloc[3]
    good = service.listening._store
    broken = tmp_path / "listeners.sqlite"
    broken.write_bytes(b"\x13garbage" * 512)
    service.listening._store = ListenerStore(broken)
    try:
        answer = client.get(f"/runs/default/tracks/{track}/neighbours", params={"k": 3}, headers=me)
        assert answer.status_code == 200 and len(answer.json()["neighbours"]) == 3
        assert "pure audio similarity" in answer.json()["note"] and "not a readable SQLite" in answer.json()["note"]
        write = client.post("/runs/default/events", json={"track_id": track, "kind": "liked"}, headers=me)
        assert write.status_code == 503 and write.json()["detail"].startswith("listener database listeners.sqlite:")
        assert str(tmp_path) not in write.json()["detail"]  # never the server's folders
    finally:
        service.listening._store = good


def test_twenty_concurrent_clients_of_a_real_server_lose_no_event(tiny_run_id, tmp_path):
    run = load_run(tiny_run_id)
    port, log = free_port(), open(tmp_path / "server.log", "wb")
    server = subprocess.Popen([sys.executable, "-m", "api", "--port", str(port), "--run", str(run.path),
                               "--log-level", "warning"], cwd=ROOT, env={**os.environ, "TIMBRE_API_KEY": ""},
                              stdout=log, stderr=subprocess.STDOUT)
    url, tracks = f"http://127.0.0.1:{port}", list(run.tracks["track_id"])
    try:
        wait_healthy(url, server)

        def client_posts(i: int) -> list[int]:
            with httpx.Client(base_url=url, timeout=60.0) as http:
                key = {"X-Listener-Key": http.post("/listeners", json={"name": f"client {i}"}).json()["key"]}
                return [http.post("/runs/default/events", headers=key,
                                  json={"track_id": tracks[(i + j) % len(tracks)], "kind": "played"}).status_code
                        for j in range(10)]

        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            codes = [c for answer in pool.map(client_posts, range(20)) for c in answer]
        assert codes == [201] * 200
    finally:
        stop(server)
        log.close()
    with sqlite3.connect(store_path()) as db:  # the server's store, read directly
        per_listener = dict(db.execute("SELECT l.name, count(*) FROM events e JOIN listeners l USING (listener_id) "
                                       "WHERE l.name LIKE 'client %' GROUP BY l.name").fetchall())
    assert per_listener == {f"client {i}": 10 for i in range(20)}
