"""Security and privacy of the lock file and the HTTP server (issue 13, part 4): what the writer
lock tells others, hostile query parameters, filter and query size limits, the bounded job
queue, and writes that wait for a job without holding the threads that answer searches."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from speechsearch import Library
from speechsearch.errors import IndexLockedError
from speechsearch.lock import WriterLock

SECRET = "K9-s3cr3t-Tok3n-77f1"


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
