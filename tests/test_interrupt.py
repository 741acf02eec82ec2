"""An add killed part-way leaves a usable index; running it again finishes the job with no
duplicate segments."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np

from speechsearch import Library
from speechsearch.ingest import process_file, window_ids

from conftest import CALL_FILES, LIBRIVOX


def _ready_files(index) -> int:
    try:
        db = sqlite3.connect(f"file:{index / 'catalog.sqlite3'}?mode=ro", uri=True, timeout=1)
        return db.execute("SELECT COUNT(*) FROM files WHERE status='ready'").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_killed_add_resumes_without_duplicates(tmp_path):
    folder = tmp_path / "calls"
    folder.mkdir()
    for name in ("refund", "cancel_subscription", "late_delivery"):
        shutil.copy(CALL_FILES[name], folder / CALL_FILES[name].name)
    index = tmp_path / "killed.idx"
    proc = subprocess.Popen([sys.executable, "-m", "speechsearch", "add", str(folder), "--index",
                             str(index), "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while _ready_files(index) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = _ready_files(index)
    assert 1 <= done_before < 3, "the kill should land part-way through the batch"

    with Library(index) as lib:  # usable straight after the kill
        assert lib.search("charged twice for the same order", k=1)
        assert len(lib) == lib._store.count() or lib.info()["incomplete"]
        report = lib.add(folder)
        assert len(report.skipped) == done_before and len(report.added) == 3 - done_before
        assert lib._store.count() == len(lib)
        assert all(f.status == "ready" for f in lib.files())
        total = len(lib)

    with Library(tmp_path / "clean.idx") as clean:
        clean.add(folder)
        assert len(clean) == total


def test_crash_between_vectors_and_catalogue_is_invisible_then_repaired(tmp_path):
    f = shutil.copy(LIBRIVOX, tmp_path / "clip.flac")
    index = tmp_path / "crash.idx"
    with Library(index) as lib:
        # Do what commit_file does, but "crash" after the vectors are stored.
        from speechsearch.audio import file_hash

        processed = process_file(str(f), lib._pipeline)
        h = file_hash(str(f))
        lib._catalog.begin_file(str(f), h)
        ids = window_ids(str(f), h, len(processed.windows))
        metas = [{"path": str(f), "file_hash": h, "start": w.start, "end": w.end, "channel": 0}
                 for w in processed.windows]
        lib._store.upsert(ids, processed.vectors, [w.text for w in processed.windows], metas)
    with Library(index) as lib:
        assert lib.search("selfish", k=5) == []  # half-written file is not served
        assert lib.info()["incomplete"] == [str(f)]
        report = lib.add(f)
        assert len(report.added) == 1
        assert lib._store.count() == len(lib) == 1
        assert lib.search("selfish", k=5)[0].path == str(f)
        assert np.isclose(lib.search("selfish", k=1)[0].start, processed.windows[0].start)
