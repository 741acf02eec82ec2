"""Several processes on one index, as users run them: `speechsearch add` (the CLI, a subprocess)
while `speechsearch serve` (another subprocess) answers searches; a second writer meeting the
writer lock; the server's own add job beside a CLI writer; and, with a Chroma server, two
writers at once. Real models, real audio, real processes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi")

from speechsearch import Library  # noqa: E402

from conftest import CALL_FILES, LIBRIVOX, free_port  # noqa: E402


def cli(*args: object) -> list:
    return [sys.executable, "-m", "speechsearch", *map(str, args)]


def run(*args: object, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cli(*args), capture_output=True, text=True, timeout=timeout)


def wait_until(check, timeout: float, what: str, proc: "subprocess.Popen | None" = None, log: "Path | None" = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.1)
    detail = log.read_text()[-3000:] if log is not None and log.exists() else ""
    raise AssertionError(f"{what} did not happen within {timeout} s\n{detail}")


def lock_holder(index: Path) -> dict:
    try:
        return json.loads((index / "write.lock").read_text() or "{}")
    except (OSError, ValueError):
        return {}


@pytest.fixture
def served(tmp_path):
    """An index holding one file (the LibriVox clip), served by `speechsearch serve` on a free
    port without a key (loopback only), with `tmp_path/in` as its root."""
    inbox = tmp_path / "in"
    inbox.mkdir()
    first = shutil.copy(LIBRIVOX, inbox / "book.flac")
    index = tmp_path / "calls.idx"
    out = run("add", first, "--index", index, "--no-progress")
    assert out.returncode == 0, out.stderr
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen(cli("serve", "--index", index, "--port", port, "--no-key-on-localhost",
                                    "--root", inbox), stdout=f, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/api/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, 120, "`speechsearch serve` answering /api/health", proc, log)
        with httpx.Client(base_url=base, timeout=60) as client:
            assert client.get("/api/search", params={"q": "selfish"}).status_code == 200  # loads the text model
            yield index, inbox, client, proc, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_add_while_serving_and_a_second_writer(served, tmp_path):
    index, inbox, client, server, log = served
    call = shutil.copy(CALL_FILES["refund"], inbox / "refund.mp3")
    other = shutil.copy(CALL_FILES["late_delivery"], tmp_path / "late.flac")
    writer_log = tmp_path / "add.log"
    with open(writer_log, "wb") as f:
        writer = subprocess.Popen(cli("add", call, "--index", index, "--no-progress"), stdout=f,
                                  stderr=subprocess.STDOUT)
    # the writer lock names its holder as soon as the add starts
    holder = wait_until(lambda: lock_holder(index).get("pid") == writer.pid and lock_holder(index),
                        120, "the add taking the writer lock", writer, writer_log)
    assert holder["what"] == "add" and "speechsearch" in holder["command"] and "add" in holder["command"]

    # a second writing process fails at once, naming the holder; nothing of it is indexed
    t0 = time.monotonic()
    second = run("add", other, "--index", index, "--no-progress", timeout=120)
    second_took = time.monotonic() - t0
    if writer.poll() is None:  # (the first add may only just have finished on a fast machine)
        assert second.returncode == 1, second.stdout + second.stderr
        assert f"locked by a writer: pid {writer.pid}" in second.stderr
        assert "Wait for it to finish" in second.stderr and "--chroma-url" in second.stderr
        assert "Traceback" not in second.stderr
        assert second_took < 60  # it does not wait for the model or the first add

    # the server's own add job meets the same lock while the CLI add runs: the job fails, saying why
    r = client.post("/api/files", json={"path": "book.flac"})
    assert r.status_code == 202, r.text
    job = wait_until(lambda: (j := client.get(f"/api/jobs/{r.json()['job']}").json())["status"]
                     in ("done", "failed") and j, 60, "the server's add job ending")
    if writer.poll() is None:
        assert job["status"] == "failed" and job["error"]["error"] == "IndexLockedError", job
        assert f"pid {writer.pid}" in job["error"]["detail"]

    # searches keep being answered while the add runs
    statuses, seen_new = [], False
    while writer.poll() is None:
        r = client.get("/api/search", params={"q": "charged twice for the same purchase", "k": 3})
        statuses.append(r.status_code)
        assert r.status_code == 200, r.text
        seen_new = seen_new or any(h["path"] == str(call) for h in r.json()["hits"])
    assert writer.wait() == 0, writer_log.read_text()[-3000:]
    assert len(statuses) >= 5 and set(statuses) == {200}, statuses

    # the first search after the add finds the new call, by its dense vector too
    hits = client.get("/api/search", params={"q": "charged twice for the same purchase", "k": 3}).json()["hits"]
    assert hits[0]["path"] == str(call) and "text" in hits[0]["scores"], hits
    assert server.poll() is None, log.read_text()[-3000:]

    # the index is intact: both files, one vector per window, searches from a new process
    info = json.loads(run("info", "--json", "--index", index).stdout)
    assert info["files"] == 2 and info["incomplete"] == [] and info["store"] == "embedded"
    assert str(other) not in {f["path"] for f in info["file_list"]}
    with Library(index) as lib:
        assert lib._store.count() == len(lib) == info["segments"]
    out = run("search", "the money back for a double charge", "-k", "1", "--json", "--index", index)
    assert out.returncode == 0 and json.loads(out.stdout)[0]["path"] == str(call)
    assert not lock_holder(index)  # released


def test_serve_holds_the_lock_only_during_its_own_writes(served, tmp_path):
    index, inbox, client, server, log = served
    call = shutil.copy(CALL_FILES["account_locked"], inbox / "locked.ogg")
    r = client.post("/api/files", json={"path": str(call)})
    assert r.status_code == 202, r.text
    job_id = r.json()["job"]
    # while the job runs, a CLI writer is refused, naming the server's pid
    refused = None
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            break
        if refused is None and lock_holder(index).get("pid") == server.pid:
            # a writer that would change nothing (the file is indexed and unchanged)
            refused = run("add", inbox / "book.flac", "--index", index, "--no-progress", timeout=120)
        time.sleep(0.1)
    assert job["status"] == "done" and job["report"]["added"], job
    assert refused is not None, "never saw the server holding the writer lock during its job"
    if refused.returncode != 0:  # (unless the job ended while the CLI started)
        assert refused.returncode == 1 and f"locked by a writer: pid {server.pid}" in refused.stderr, refused.stderr
    # the job is over: the server holds no lock, and another process writes and reads
    out = run("remove", inbox / "book.flac", "--index", index, timeout=120)
    assert out.returncode == 0 and "removed 1 file(s)" in out.stdout, out.stderr
    hits = client.get("/api/search", params={"q": "my account is locked", "k": 5}).json()["hits"]
    assert hits and hits[0]["path"] == str(call) and all(h["path"] != str(inbox / "book.flac") for h in hits)
    assert [f["path"] for f in client.get("/api/files").json()["files"]] == [str(call)]


def test_several_writers_with_a_chroma_server(tmp_path, chroma_server):
    index = tmp_path / "shared.idx"
    files = [shutil.copy(CALL_FILES[k], tmp_path / CALL_FILES[k].name) for k in ("refund", "cancel_subscription")]
    logs = [tmp_path / f"add{n}.log" for n in range(2)]
    procs = []
    for f, log in zip(files, logs):
        with open(log, "wb") as out:
            procs.append(subprocess.Popen(cli("add", f, "--index", index, "--chroma-url", chroma_server,
                                              "--no-progress"), stdout=out, stderr=subprocess.STDOUT))
    for p, log in zip(procs, logs):
        assert p.wait(timeout=600) == 0, log.read_text()[-3000:]
    with Library(index, chroma_url=chroma_server) as lib:
        assert sorted(f.path for f in lib.files()) == sorted(map(str, files))
        assert all(f.status == "ready" for f in lib.files())
        assert lib._store.count() == len(lib)
        assert lib.search("charged twice", k=1)[0].path == str(files[0])
        assert lib.search("moving abroad for a new job", k=1)[0].path == str(files[1])
    out = run("info", "--index", index)  # opened without the server: told which URL to pass
    assert out.returncode == 2 and f"--chroma-url {chroma_server}" in out.stderr


# -- threads of one process sharing one Library (a web server's workers) -----------------------

def test_a_read_never_sees_another_threads_open_transaction(tmp_path):
    """While one thread holds a catalogue transaction (a commit half done), reads from other
    threads see the last committed state: not the half-done one."""
    import threading

    from speechsearch.catalog import Catalog
    from speechsearch.types import Window

    cat = Catalog(tmp_path / "catalog.sqlite3")
    cat.register_file("/a.wav", "h1")
    cat.finish_file("/a.wav", "h1", duration=10.0, ids=["w1", "w2"],
                    windows=[Window(0, 5, "order 4821 refund", 0), Window(5, 10, "thank you", 0)],
                    language="en", models={}, metadata={"agent": "A1"}, warnings=[], transcript=[])
    inside, release, done = threading.Event(), threading.Event(), threading.Event()

    def half_done_remove():
        with cat._lock, cat._db:  # what remove_file does, stopped before its commit
            cat._db.execute("BEGIN IMMEDIATE")
            cat._db.execute("DELETE FROM windows WHERE path='/a.wav'")
            cat._db.execute("DELETE FROM files WHERE path='/a.wav'")
            inside.set()
            release.wait(10)
            raise RuntimeError("the remove fails: nothing of it may be seen")

    writer = threading.Thread(target=lambda: pytest.raises(RuntimeError, half_done_remove) and done.set())
    writer.start()
    try:
        assert inside.wait(10)
        assert cat.count_windows() == 2 and cat.has_windows()
        assert cat.get_file("/a.wav") is not None and cat.ready(["/a.wav"]) == {"/a.wav": "h1"}
        assert [i for i, _ in cat.lexical("refund", 5)] == ["w1"] and cat.codes("4821", 5) == {"w1": 1.0}
    finally:
        release.set()
        writer.join(10)
    assert done.is_set() and cat.count_windows() == 2  # rolled back
    cat.close()


def test_field_types_recorded_from_several_threads_are_all_kept(tmp_path):
    """The index's record of metadata field types is read, merged and written in one
    transaction: threads adding different fields at once lose none of them."""
    import threading

    from speechsearch.catalog import Catalog
    from speechsearch.ingest import field_types, record_field_types

    cats = [Catalog(tmp_path / "catalog.sqlite3") for _ in range(4)]  # as separate processes would

    def record(n: int) -> None:
        for i in range(25):
            record_field_types(cats[n], {f"f{n}_{i}": i})

    threads = [threading.Thread(target=record, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert field_types(cats[0]) == {f"f{n}_{i}": "number" for n in range(4) for i in range(25)}
    for c in cats:
        c.close()


def test_threads_search_one_library_while_another_adds(tmp_path):
    """A web server's shape: several threads search one Library while one adds files. No search
    fails, every hit comes from a file that was completely indexed, and when the add is done the
    new calls are found."""
    import threading

    folder = tmp_path / "rec"
    folder.mkdir()
    first = shutil.copy(CALL_FILES["refund"], folder / "refund.mp3")
    later = [shutil.copy(CALL_FILES[k], folder / f"{k}{CALL_FILES[k].suffix}") for k in ("late_delivery", "cancel_subscription")]
    lib = Library(tmp_path / "calls.idx")
    try:
        assert lib.add(first).ok
        errors, seen, stop = [], [], threading.Event()

        def searcher() -> None:
            while not stop.is_set():
                try:
                    for h in lib.search("package never arrived", k=5):
                        seen.append((h.path, h.id))
                except Exception as e:  # noqa: BLE001 - any failure is the finding
                    errors.append(repr(e))
                    return

        threads = [threading.Thread(target=searcher) for _ in range(3)]
        for t in threads:
            t.start()
        report = lib.add(later)
        stop.set()
        for t in threads:
            t.join(60)
        assert report.ok and not errors, errors
        assert seen, "the searching threads never got a hit"
        ready = {f.path for f in lib.files() if f.status == "ready"}
        assert {p for p, _ in seen} <= ready
        ids = {i for p in ready for i, *_ in lib._catalog.window_rows(p)}
        assert {i for _, i in seen} <= ids  # no hit from a window that is not (or no longer) indexed
        assert lib.search("package never arrived", k=1)[0].path.endswith("late_delivery.flac")
    finally:
        lib.close()
