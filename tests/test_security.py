"""Security and privacy of the lock file and the HTTP server (issue 13, part 4): what the writer
lock tells others, hostile query parameters, filter and query size limits, the bounded job
queue, and writes that wait for a job without holding the threads that answer searches."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from speechsearch import Library
from speechsearch.errors import IndexLockedError, InvalidInputError
from speechsearch.filters import MAX_WHERE_DEPTH, MAX_WHERE_VALUES, build_where, json_object
from speechsearch.lock import WriterLock

from conftest import CALL_FILES, LIBRIVOX

SECRET = "K9-s3cr3t-Tok3n-77f1"
KEY = "test-key-77aa01"


@pytest.fixture
def held_by_serve(tmp_path):
    """An index whose writer lock is held by another process started as
    ``speechsearch serve --index IDX --api-key SECRET --root=/data?token=SECRET``."""
    index = tmp_path / "locked.idx"
    program = tmp_path / "speechsearch"  # the console script's name, so the subcommand is kept
    program.write_text(textwrap.dedent("""
        import sys
        from speechsearch.lock import writer_lock
        with writer_lock(sys.argv[3]).hold("add"):
            print("held", flush=True)
            sys.stdin.read()
    """))
    proc = subprocess.Popen([sys.executable, str(program), "serve", "--index", str(index), "--api-key", SECRET,
                             f"--root=/data?token={SECRET}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield index, proc
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def test_the_lock_file_and_lock_errors_hold_no_arguments(held_by_serve):
    index, proc = held_by_serve
    lock = index / "write.lock"
    assert stat.S_IMODE(os.stat(lock).st_mode) == 0o600
    content = lock.read_text()
    holder = json.loads(content)
    assert SECRET not in content and holder["pid"] == proc.pid and holder["command"] == "speechsearch serve"
    assert set(holder) == {"pid", "host", "command", "what", "since"}

    with Library(index) as lib:
        with pytest.raises(IndexLockedError) as e:
            lib.remove("/data/x.wav")
    assert SECRET not in str(e.value) and f"pid {proc.pid}" in str(e.value)
    assert "(speechsearch serve)" in str(e.value) and SECRET not in json.dumps(e.value.holder)

    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from speechsearch.server import create_app

    with Library(index) as lib, TestClient(create_app(lib, api_key="k")) as client:
        r = client.delete("/api/files", params={"path": "/data/x.wav"}, headers={"X-API-Key": "k"})
    assert r.status_code == 409 and r.json()["error"] == "IndexLockedError", r.text
    assert f"pid {proc.pid}" in r.text and SECRET not in r.text


def test_an_older_lock_file_is_tightened_and_its_command_line_not_repeated(tmp_path):
    path = tmp_path / "write.lock"
    path.write_text(json.dumps({"pid": 4242, "host": "h", "what": "add", "since": "2026-01-01T00:00:00+00:00",
                                "command": f"/venv/bin/python -m speechsearch serve --api-key {SECRET}"}))
    os.chmod(path, 0o644)
    lock = WriterLock(path)
    holder = lock.holder()
    assert holder["pid"] == 4242 and holder["command"] == "python" and SECRET not in json.dumps(holder)
    with lock.hold("add"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert lock.holder()["command"] in ("pytest", "python", os.path.basename(sys.executable))


# -- filters --------------------------------------------------------------------------------------

TYPES = {"agent": "string", "duration": "number"}


def nested(levels: int) -> dict:
    where: dict = {"agent": "A12"}
    for _ in range(levels):
        where = {"$and": [where, {"duration": {"$gt": 1}}]}
    return where


def test_where_depth_and_size_are_limited():
    assert build_where(nested(MAX_WHERE_DEPTH), TYPES) is not None
    with pytest.raises(InvalidInputError, match=f"more than {MAX_WHERE_DEPTH} levels deep"):
        build_where(nested(MAX_WHERE_DEPTH + 1), TYPES)
    with pytest.raises(InvalidInputError, match=f"more than {MAX_WHERE_DEPTH} levels deep"):
        build_where(nested(5000), TYPES)  # not a RecursionError
    assert build_where({"agent": {"$in": [str(i) for i in range(MAX_WHERE_VALUES)]}}, TYPES) is not None
    with pytest.raises(InvalidInputError, match=f"more than {MAX_WHERE_VALUES} values"):
        build_where({"agent": {"$in": [str(i) for i in range(MAX_WHERE_VALUES)]}, "duration": 3}, TYPES)
    with pytest.raises(InvalidInputError, match="nested thousands of levels deep"):
        json_object('{"$and": [' * 5000 + "{}" + "]}" * 5000, "where")
    with pytest.raises(InvalidInputError) as e:  # an error message shows a bounded part of the value
        build_where({"agent": {"$eq": [[[[["x" * 10000]]]]] * 100}}, TYPES)
    assert len(str(e.value)) < 500


# -- the server -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lib_root(tmp_path_factory):
    """A Library over an index of the short LibriVox clip, which lies in its root."""
    pytest.importorskip("fastapi")
    pytest.importorskip("python_multipart")
    root = tmp_path_factory.mktemp("root")
    shutil.copy(LIBRIVOX, root / "book.flac")
    lib = Library(tmp_path_factory.mktemp("idx") / "security.idx")
    assert lib.add(root).ok
    yield lib, root
    lib.close()


@pytest.fixture(scope="module")
def client(lib_root):
    from fastapi.testclient import TestClient

    from speechsearch.server import create_app

    lib, root = lib_root
    with TestClient(create_app(lib, api_key=KEY, roots=[root]), headers={"X-API-Key": KEY},
                    raise_server_exceptions=False) as c:
        assert c.get("/api/search", params={"q": "selfish"}).status_code == 200  # loads the text model
        yield c


def test_non_ascii_signature_and_key_are_refused_not_500(client):
    from fastapi.testclient import TestClient

    anon = TestClient(client.app, raise_server_exceptions=False)
    hit = client.get("/api/search", params={"q": "cold hearted and selfish", "k": 1}).json()["hits"][0]
    assert anon.get(hit["audio_url"]).status_code == 200
    path, query = hit["audio_url"].split("?", 1)
    params = dict(p.split("=", 1) for p in query.split("&"))
    for sig, exp in (("%C3%A9" * 32, params["exp"]), ("\u00e9", params["exp"]), (params["sig"], "%C2%B2"),
                     (params["sig"], "9" * 5000), ("%ED%A0%80", params["exp"])):
        url = path + "?" + "&".join(f"{k}={v}" for k, v in {**params, "sig": sig, "exp": exp}.items())
        r = anon.get(url)
        assert r.status_code == 403 and r.json()["error"] == "Forbidden", (sig[:20], exp[:20], r.text)
        assert "expired or was changed" in r.json()["detail"]
    for key in ("cl\u00e9".encode(), b"\xff\xfe", KEY.encode() + "\u00e9".encode()):
        r = anon.get("/api/info", headers={"X-API-Key": key})
        assert r.status_code == 403 and "does not hold this server's key" in r.json()["detail"], r.text
    r = client.get("/api/files", headers={"Content-Length": "9" * 5000})  # no body at all
    assert r.status_code in (200, 413), r.text


def test_deep_or_large_filters_and_long_queries_are_400_or_422(client):
    deep = '{"$and":[' * 1500 + '{"path":"x"}' + "]}" * 1500  # too deep for json.loads (RecursionError)
    for where in (deep, json.dumps(nested(MAX_WHERE_DEPTH + 1)).replace("agent", "path").replace("duration", "start")):
        r = client.get("/api/search", params={"q": "selfish", "where": where})
        assert r.status_code == 400 and r.json()["error"] == "InvalidInputError", r.text[:300]
        assert "deep" in r.json()["detail"] and len(r.text) < 1000
    r = client.post("/api/search-audio", files={"file": ("c.flac", LIBRIVOX.read_bytes(), "audio/flac")},
                    data={"where": deep})
    assert r.status_code == 400 and "deep" in r.json()["detail"], r.text[:300]
    r = client.post("/api/files", content=b'{"path": "book.flac", "metadata": ' + b"[" * 100000 + b"]" * 100000
                    + b"}", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "InvalidInputError", r.text[:300]

    from speechsearch.server.app import MAX_QUERY_CHARS

    assert client.get("/api/search", params={"q": "selfish " * (MAX_QUERY_CHARS // 8)}).status_code == 200
    r = client.get("/api/search", params={"q": "x" * (MAX_QUERY_CHARS + 1)})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "q", r.text[:300]
    assert f"at most {MAX_QUERY_CHARS} characters" in r.json()["detail"]


@pytest.mark.parametrize("method,url,kwargs", [
    ("GET", "/api/search", {"params": {"q": "\x00 caf\u00e9", "speaker": "\x00", "where": '{"path": "\\ud800"}'}}),
    ("GET", "/api/search?q=%ED%A0%80%FF&where=%FF%7B", {}),
    ("GET", "/api/search", {"params": {"q": "a", "where": '{"start": {"$gt": 1e999}}'}}),
    ("GET", "/api/search", {"params": {"q": "a", "where": '{"start": ' + "9" * 5000 + "}"}}),
    ("GET", "/api/search", {"params": {"q": "a", "k": "9" * 5000}}),
    ("GET", "/api/files/info", {"params": {"path": "\x00/\u00e9"}}),
    ("GET", "/api/audio", {"params": {"path": "/x\x00", "start": "nan"}}),
    ("GET", "/api/audio", {"params": {"path": "/x", "start": "1e999"}}),
    ("DELETE", "/api/files", {"params": {"path": "\x00"}}),
    ("PATCH", "/api/files/metadata", {"json": {"path": "\x00", "metadata": {"a": [1]}}}),
    ("PATCH", "/api/files/metadata", {"content": b"[" * 100000, "headers": {"Content-Type": "application/json"}}),
    ("POST", "/api/files", {"json": {"path": "\x00"}}),
    ("POST", "/api/files", {"json": {"path": ["a"]}}),
    ("POST", "/api/files", {"content": b"\xff\xfe{", "headers": {"Content-Type": "application/json"}}),
    ("POST", "/api/files", {"files": {"file": ("a.wav", b"x")}, "data": {"metadata": "[" * 100000}}),
    ("GET", "/api/jobs/%00%ff", {}),
    # lone surrogates (JSON escapes), which SQLite, Chroma and the file system cannot take
    ("GET", "/api/search", {"params": {"q": "a", "where": '{"path": {"$in": ["\\udc80"]}}'}}),
    ("PATCH", "/api/files/metadata", {"content": b'{"path": "/x", "metadata": {"agent": "\\ud800"}}',
                                      "headers": {"Content-Type": "application/json"}}),
    ("POST", "/api/files", {"content": b'{"path": "\\ud800.wav"}', "headers": {"Content-Type": "application/json"}}),
    ("POST", "/api/files", {"files": {"file": ("a.wav", b"x")}, "data": {"metadata": '{"a": "\\udfff"}'}}),
    ("POST", "/api/files", {"content": b'--b\r\nContent-Disposition: form-data; name="file"; filename="\xff\xfe.wav"'
                                       b'\r\n\r\nx\r\n--b\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n'
                                       b'{"a": \xff}\r\n--b--\r\n',
                            "headers": {"Content-Type": "multipart/form-data; boundary=b"}}),
    ("POST", "/api/search-audio", {"content": b'--b\r\nContent-Disposition: form-data; name="file"; filename="c.wav"'
                                              b'\r\n\r\nxx\r\n--b\r\nContent-Disposition: form-data; name="where"'
                                              b'\r\n\r\n\xff\r\n--b--\r\n',
                                   "headers": {"Content-Type": "multipart/form-data; boundary=b"}}),
])
def test_bad_input_is_never_a_500(client, method, url, kwargs):
    r = client.request(method, url, **kwargs)
    assert 400 <= r.status_code < 500, r.text[:300]
    assert "Traceback" not in r.text and r.json()["detail"]


def test_a_full_job_queue_is_429_and_writes_wait_for_a_job_without_blocking_searches(lib_root, monkeypatch):
    """While an add job transcribes a call (holding the write lock for its step), a second add is
    429 (max_jobs=1), and metadata edits and removes wait for the step on the write thread: a
    search sent after them is answered before any of them, even with few threads for the
    synchronous routes (each waiting write used to hold one)."""
    import anyio
    from fastapi.testclient import TestClient

    from speechsearch.server import create_app, state as state_module

    lib, root = lib_root
    call = shutil.copy(CALL_FILES["cancel_subscription"], root / "call.mp3")
    app = create_app(lib, api_key=KEY, roots=[root], max_jobs=1)
    state = app.state.speechsearch
    with TestClient(app, headers={"X-API-Key": KEY}, raise_server_exceptions=False) as client:
        def few_threads() -> None:  # the threadpool of sync routes, as small as a busy server's free part
            anyio.to_thread.current_default_thread_limiter().total_tokens = 3

        client.portal.call(few_threads)
        assert client.get("/api/search", params={"q": "selfish"}).status_code == 200
        r = client.post("/api/files", json={"path": "call.mp3"})
        assert r.status_code == 202, r.text
        job_url = r.json()["url"]
        deadline = time.monotonic() + 60
        while not state.write_lock.locked():  # the job's step has begun
            assert time.monotonic() < deadline and client.get(job_url).json()["status"] in ("queued", "running")
            time.sleep(0.01)

        full = client.post("/api/files", files={"file": ("again.flac", LIBRIVOX.read_bytes(), "audio/flac")})
        assert full.status_code == 429 and full.json()["error"] == "TooManyRequests", full.text
        assert int(full.headers["retry-after"]) > 0 and "add jobs are queued" in full.json()["detail"]
        assert not any((root.parent / "uploads").glob("*/again.flac")) and not any(
            (lib.path / "uploads").glob("*/again.flac"))  # the refused upload is not kept

        monkeypatch.setattr(state_module, "WRITE_WAIT", 0.3)  # a write that cannot wait long: 503
        r = client.patch("/api/files/metadata", json={"path": str(root / "book.flac"), "metadata": {"agent": "B1"}})
        assert r.status_code == 503 and r.json()["error"] == "ServiceUnavailable", r.text
        assert int(r.headers["retry-after"]) > 0
        monkeypatch.setattr(state_module, "WRITE_WAIT", 300.0)
        monkeypatch.setattr(state_module, "MAX_WAITING_WRITES", 0)  # too many writes waiting: 429
        r = client.delete("/api/files", params={"path": str(root / "book.flac")})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0, r.text
        monkeypatch.setattr(state_module, "MAX_WAITING_WRITES", 32)

        done: dict = {}

        def write(name: str, method: str, url: str, **kwargs) -> None:
            response = client.request(method, url, **kwargs)
            done[name] = (time.monotonic(), response.status_code, response.text)

        writes = [threading.Thread(target=write, args=(f"patch{i}", "PATCH", "/api/files/metadata"),
                                   kwargs={"json": {"path": str(root / "book.flac"), "metadata": {"agent": f"A{i}"}}})
                  for i in range(3)]
        writes.append(threading.Thread(target=write, args=("delete", "DELETE", "/api/files"),
                                       kwargs={"params": {"path": str(root / "not-indexed.wav")}}))
        for t in writes:
            t.start()
        time.sleep(1.0)  # the writes are in and waiting
        assert state.write_lock.locked() and not done, "the job's step ended before the test could search"
        r = client.get("/api/search", params={"q": "cold hearted and selfish", "k": 1})
        searched = time.monotonic()
        assert r.status_code == 200 and r.json()["hits"][0]["path"] == str(root / "book.flac")
        assert not done, f"a write finished before the search: {sorted(done)}"  # the job still writes
        for t in writes:
            t.join(timeout=300)
        assert set(done) == {"patch0", "patch1", "patch2", "delete"}
        assert all(at > searched for at, _, _ in done.values())
        assert [done[f"patch{i}"][1] for i in range(3)] == [200] * 3, done
        assert done["delete"][1] == 404 and "NotIndexedError" in done["delete"][2]
        deadline = time.monotonic() + 300
        while (job := client.get(job_url).json())["status"] not in ("done", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert job["status"] == "done" and [a["path"] for a in job["report"]["added"]] == [str(call)], job
        assert client.delete("/api/files", params={"path": str(call)}).json()["removed"] == 1
