"""The HTTP API (speechsearch/server.py) on a real index of two calls, through FastAPI's
TestClient: search with playable links, seekable audio, auth, jobs, roots, limits, errors."""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import wave

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")
from fastapi.testclient import TestClient  # noqa: E402

from speechsearch import Library  # noqa: E402
from speechsearch.errors import InvalidInputError  # noqa: E402
from speechsearch.server import ApiError, create_app, serve  # noqa: E402
from speechsearch.server.media import byte_range  # noqa: E402

from conftest import CALL_FILES, LIBRIVOX, ffmpeg  # noqa: E402

KEY = "test-key-4f1c9a0b2d"
REFUND, CANCEL = CALL_FILES["refund"], CALL_FILES["cancel_subscription"]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """An app over an index of the refund and cancel-subscription calls, which lie in its root."""
    root = tmp_path_factory.mktemp("root")
    for f in (REFUND, CANCEL):
        shutil.copy(f, root / f.name)
    lib = Library(tmp_path_factory.mktemp("idx") / "server.idx")
    report = lib.add(root)
    assert report.ok and len(report.added) == 2, report.summary()
    app = create_app(lib, api_key=KEY, roots=[root], max_upload_mb=1)
    with TestClient(app, headers={"X-API-Key": KEY}) as c:
        c.root = root  # type: ignore[attr-defined]
        c.lib = lib  # type: ignore[attr-defined]
        yield c
    lib.close()


def wait_for(client, job_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s")


def wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as w:
        return w.getnframes() / w.getframerate()


def test_health_needs_no_key_and_every_api_route_needs_one(client):
    anon = TestClient(client.app)
    assert anon.get("/api/health").json()["status"] == "ok"
    r = anon.get("/api/info")
    assert r.status_code == 401 and r.json()["error"] == "Unauthorized" and "X-API-Key" in r.json()["detail"]
    assert anon.get("/api/files", headers={"X-API-Key": "wrong"}).status_code == 403
    for method, url in [("GET", "/api/search?q=refund"), ("GET", "/jobs/abc"), ("DELETE", "/api/files?path=/x"),
                        ("GET", f"/api/audio?path={client.root}/refund-call.mp3&start=0&end=1")]:
        assert anon.request(method, url).status_code == 401, url
    assert client.get("/api/info").json()["files"] == 2


def test_text_search_returns_the_call_with_a_playable_signed_link(client):
    r = client.get("/api/search", params={"q": "customer wants their money back", "k": 3})
    assert r.status_code == 200
    hit = r.json()["hits"][0]
    assert hit["path"] == str(client.root / "refund-call.mp3") and hit["text"] and hit["score"] > 0
    anon = TestClient(client.app)  # the link is signed: an <audio> element sends no key
    audio = anon.get(hit["audio_url"])
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
    assert wav_seconds(audio.content) == pytest.approx(hit["end"] - hit["start"], abs=0.05)
    tampered = hit["audio_url"].replace("start=", "start=0")
    assert anon.get(tampered).status_code == 403


def test_audio_span_honours_range_requests(client):
    params = {"path": str(client.root / "refund-call.mp3"), "start": 1, "end": 3}
    full = client.get("/api/audio", params=params)
    assert full.status_code == 200 and full.headers["accept-ranges"] == "bytes"
    assert len(full.content) == 44 + 2 * 16000 * 2 and wav_seconds(full.content) == pytest.approx(2.0)
    size = len(full.content)
    part = client.get("/api/audio", params=params, headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206 and part.headers["content-range"] == f"bytes 100-1099/{size}"
    assert part.content == full.content[100:1100]
    tail = client.get("/api/audio", params=params, headers={"Range": "bytes=-50"})
    assert tail.status_code == 206 and tail.content == full.content[-50:]
    past = client.get("/api/audio", params=params, headers={"Range": f"bytes={size}-"})
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{size}"
    whole = client.get("/api/audio", params={"path": params["path"]})  # no span: the whole file
    assert wav_seconds(whole.content) == pytest.approx(43.6, abs=0.3)


@pytest.mark.parametrize("header,size,want", [
    (None, 10, None), ("bytes=0-", 10, (0, 9)), ("bytes=2-4", 10, (2, 4)), ("bytes=5-100", 10, (5, 9)),
    ("bytes=-3", 10, (7, 9)), ("bytes=-30", 10, (0, 9)), ("bytes=0-1,4-5", 10, None), ("items=0-1", 10, None),
    ("bytes=4-2", 10, None)])
def test_byte_range(header, size, want):
    assert byte_range(header, size) == want


def test_unsatisfiable_range():
    for header in ("bytes=10-", "bytes=-0"):
        with pytest.raises(ApiError) as e:
            byte_range(header, 10)
        assert e.value.status_code == 416


def test_unknown_paths_are_404_and_bad_input_400(client):
    for r in (client.get("/api/files/info", params={"path": "/nowhere/x.mp3"}),
              client.get("/api/audio", params={"path": "/etc/passwd"}),
              client.delete("/api/files", params={"path": "/nowhere/x.mp3"})):
        assert r.status_code == 404 and r.json()["error"] == "NotIndexedError", r.text
    r = client.get("/api/search", params={"q": "refund", "where": '{"agnt": "A12"}'})
    assert r.status_code == 400 and r.json()["error"] == "InvalidInputError"
    assert "known fields" in r.json()["detail"] and "path" in r.json()["detail"]
    assert client.get("/api/search", params={"q": "refund", "where": "{agent"}).status_code == 400
    assert client.get("/api/search", params={"q": "  "}).status_code == 400
    r = client.get("/api/search", params={"q": "refund", "k": 0})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "k"
    r = client.get("/api/audio", params={"path": str(client.root / "refund-call.mp3"), "start": 500})
    assert r.status_code == 400 and "past the end" in r.json()["detail"]
    r = client.get("/api/nothing-here")
    assert r.status_code == 404 and r.json()["error"] == "NotFound" and "Traceback" not in r.text


def test_server_side_paths_only_inside_the_roots(client, tmp_path):
    root = client.root
    trap = root / "trap"
    trap.mkdir()
    outside = shutil.copy(LIBRIVOX, tmp_path / "outside.flac")
    os.symlink("/etc/passwd", trap / "passwd.mp3")
    os.symlink(outside, trap / "outside.flac")
    os.symlink(root / "refund-call.mp3", trap / "inside.mp3")
    try:
        for path in ("/etc/passwd", f"{root}/../../etc/passwd", "../outside.flac", str(trap / "passwd.mp3"),
                     str(trap / "outside.flac"), str(tmp_path)):
            r = client.post("/api/files", json={"path": path})
            assert r.status_code == 403 and r.json()["error"] == "Forbidden", (path, r.text)
        assert client.post("/api/files", json={"path": "missing.mp3"}).status_code == 404
        r = client.post("/api/files", json={"path": "trap"})  # a folder: links out are refused, not added
        assert r.status_code == 202 and r.headers["location"].endswith(r.json()["job"])
        job = wait_for(client, r.json()["job"])
        assert job["status"] == "done" and set(job["refused"]) == {str(outside), "/etc/passwd"}
        assert [s["path"] for s in job["report"]["skipped"]] == [str(root / "refund-call.mp3")]
        assert job["progress"]["files_done"] == job["progress"]["files_total"] == 1
        assert client.get(f"/jobs/{job['id']}").json()["status"] == "done"  # the path too
    finally:
        shutil.rmtree(trap)


def test_uploaded_file_is_added_by_a_job_and_becomes_searchable(client):
    with open(LIBRIVOX, "rb") as f:
        r = client.post("/api/files", files={"file": ("Reading 1.flac", f, "audio/flac")},
                        data={"metadata": json.dumps({"source": "upload"})})
    assert r.status_code == 202, r.text
    job = wait_for(client, r.json()["job"])
    assert job["status"] == "done" and len(job["report"]["added"]) == 1, job
    assert job["progress"]["audio_seconds"] == pytest.approx(5.3, abs=0.3)
    path = job["report"]["added"][0]["path"]
    assert path.endswith("/Reading_1.flac") and "uploads" in path
    hit = client.get("/api/search", params={"q": "cold hearted and selfish", "k": 1}).json()["hits"][0]
    assert hit["path"] == path and hit["metadata"] == {"source": "upload"}
    r = client.delete("/api/files", params={"path": path})
    assert r.json()["removed"] == 1 and not os.path.exists(path)  # the server's own copy goes too


def test_uploads_are_checked(client):
    r = client.post("/api/files", files={"file": ("notes.txt", b"hello", "text/plain")})
    assert r.status_code == 415 and ".wav" in r.json()["detail"]
    r = client.post("/api/files", files={"file": ("broken.wav", b"not audio at all" * 100, "audio/wav")})
    job = wait_for(client, r.json()["job"])
    assert job["status"] == "done" and len(job["report"]["failed"]) == 1
    assert not os.path.exists(job["report"]["failed"][0]["path"])  # a failed upload is not kept
    big = b"\0" * (3 << 19)  # 1.5 MB, over this app's 1 MB limit
    r = client.post("/api/files", files={"file": ("big.wav", big, "audio/wav")})
    assert r.status_code == 413 and r.json()["error"] == "PayloadTooLarge"
    body = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.wav\"\r\n"
            b"Content-Type: audio/wav\r\n\r\n" + big + b"\r\n--b--\r\n")
    r = client.post("/api/files", content=iter([body[i:i + 65536] for i in range(0, len(body), 65536)]),
                    headers={"Content-Type": "multipart/form-data; boundary=b"})  # chunked: no length
    assert r.status_code == 413
    assert client.post("/api/files", json={"metadata": {}}).status_code == 400
    assert client.post("/api/files", content=b"x", headers={"Content-Type": "text/plain"}).status_code == 415


def test_search_by_a_clip_cut_from_the_call(client, tmp_path):
    clip = tmp_path / "clip.wav"
    ffmpeg("-ss", "4.8", "-t", "5.3", "-i", str(REFUND), "-ac", "1", "-ar", "16000", str(clip))
    with open(clip, "rb") as f:
        r = client.post("/api/search-audio", files={"file": ("clip.wav", f, "audio/wav")}, data={"k": "3"})
    assert r.status_code == 200, r.text
    hit = r.json()["hits"][0]
    assert hit["path"].endswith("refund-call.mp3") and hit["start"] < 10 and hit["end"] > 5
    assert hit["audio_url"].startswith("/api/audio?")


def test_files_info_and_metadata(client):
    files = client.get("/api/files").json()["files"]
    cancel = next(f for f in files if f["path"].endswith("cancel-subscription-call.mp3"))
    assert cancel["status"] == "ready" and cancel["segments"] > 0 and cancel["duration"] > 40
    assert client.get("/api/files/info", params={"path": cancel["path"]}).json()["hash"] == cancel["hash"]
    r = client.patch("/api/files/metadata", json={"path": cancel["path"], "metadata": {"agent": "A7"}})
    assert r.status_code == 200 and r.json()["metadata"] == {"agent": "A7"}
    hits = client.get("/api/search", params={"q": "cancel my plan", "where": '{"agent": "A7"}'}).json()["hits"]
    assert hits and {h["path"] for h in hits} == {cancel["path"]}
    info = client.get("/api/info").json()
    assert info["files"] == 2 and info["segments"] > 0


def test_openapi_documents_the_routes(client):
    spec = client.get("/openapi.json").json()
    for route in ("/api/search", "/api/search-audio", "/api/files", "/api/jobs/{job_id}", "/jobs/{job_id}",
                  "/api/audio", "/api/files/info", "/api/info", "/api/health"):
        assert route in spec["paths"], route
    assert "multipart/form-data" in spec["paths"]["/api/files"]["post"]["requestBody"]["content"]
    assert client.get("/docs").status_code == 200


def test_no_key_only_on_localhost(client, tmp_path, monkeypatch):
    monkeypatch.delenv("SPEECHSEARCH_API_KEY", raising=False)
    with pytest.raises(InvalidInputError, match="API key"):
        create_app(client.lib, api_key=None)
    with pytest.raises(InvalidInputError, match="reachable from other machines"):
        serve(tmp_path / "x.idx", host="0.0.0.0", api_key=None, allow_no_key_on_localhost=True)
    assert not (tmp_path / "x.idx").exists()
    app = create_app(client.lib, api_key=None, allow_no_key_on_localhost=True)
    local = TestClient(app, base_url="http://127.0.0.1:8000", client=("127.0.0.1", 5000))
    assert local.get("/api/info").status_code == 200
    assert local.get("/api/info", headers={"Origin": "http://localhost:8000"}).status_code == 200
    assert TestClient(app, client=("192.168.1.9", 5000)).get("/api/info").status_code == 403
    # a web page elsewhere, through the user's browser: a rebound name, or a cross-site post
    assert local.get("/api/info", headers={"Host": "evil.example"}).status_code == 403
    r = local.post("/api/files", headers={"Origin": "https://evil.example"}, files={"file": ("a.wav", b"x")})
    assert r.status_code == 403 and r.json()["error"] == "Forbidden"


def test_erase_a_customer_by_metadata_and_compact(tmp_path):
    """Right to erasure over HTTP: POST /api/files/remove with a metadata filter removes every
    file of that customer (and nothing else), reports it, and /api/compact gives the space
    back. A file whose name is not UTF-8 is served as audio under the name the index shows."""
    root = tmp_path / "root"
    root.mkdir()
    mine, other = shutil.copy(LIBRIVOX, root / "mine.flac"), shutil.copy(LIBRIVOX, root / "other.flac")
    odd = os.path.join(os.fsencode(root), b"caf\xe9.flac")
    shutil.copy(LIBRIVOX, odd)
    lib = Library(tmp_path / "erase.idx")
    try:
        assert lib.add(mine, metadata={"customer_id": "C-1042"}).ok
        assert lib.add(other, metadata={"customer_id": "C-7"}).ok
        assert lib.add(odd, metadata={"customer_id": "C-7"}).ok
        with TestClient(create_app(lib, api_key=KEY, roots=[root]), headers={"X-API-Key": KEY}) as c:
            shown = next(f["path"] for f in c.get("/api/files").json()["files"] if "caf" in f["path"])
            audio = c.get("/api/audio", params={"path": shown, "start": 0, "end": 2})
            assert audio.status_code == 200 and wav_seconds(audio.content) == pytest.approx(2.0, abs=0.1)
            for bad in ({}, {"where": {}}, {"where": "customer_id"}, {"where": {"speaker": "S1"}}):
                r = c.post("/api/files/remove", json=bad)
                assert r.status_code == 400, (bad, r.text)
            r = c.post("/api/files/remove", json={"where": {"customer_id": "C-1042"}})
            assert r.status_code == 200, r.text
            report = r.json()
            assert report["files"] == [str(mine)] and report["windows"] > 0 and report["vectors"]["text"] > 0
            hits = c.get("/api/search", params={"q": "cold hearted and selfish", "k": 10}).json()["hits"]
            assert hits and str(mine) not in {h["path"] for h in hits}
            assert len(c.get("/api/files").json()["files"]) == 2
            assert c.post("/api/files/remove", json={"where": {"customer_id": "C-1042"}}).json()["files"] == []
            r = c.post("/api/compact")
            assert r.status_code == 200 and r.json()["bytes_after"] > 0, r.text
            assert c.get("/api/search", params={"q": "cold hearted and selfish", "k": 1}).json()["hits"]
    finally:
        lib.close()


def test_similar_calls_and_topics(client):
    refund = str(client.root / REFUND.name)
    r = client.get("/api/similar", params={"path": refund, "k": 3})
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]
    assert [h["path"] for h in hits] == [str(client.root / CANCEL.name)]  # the other call, never itself
    assert hits[0]["query"]["path"] == refund and hits[0]["audio_url"] and hits[0]["query"]["text"]
    hit = client.get("/api/search", params={"q": "charged twice", "k": 1}).json()["hits"][0]
    moments = client.get("/api/similar", params={"hit": hit["id"]}).json()["hits"]
    assert moments and all(m["path"] != hit["path"] for m in moments)
    assert client.get("/api/similar", params={"path": "/etc/passwd"}).status_code == 404  # only indexed files
    assert client.get("/api/similar").status_code == 400
    topics = client.get("/api/topics").json()["topics"]
    assert sum(t["size"] for t in topics) == 2 and all(t["label"] and t["examples"][0]["audio_url"] for t in topics)
    assert client.get("/api/topics", params={"period": "year"}).status_code == 400
