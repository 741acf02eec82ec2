"""Distributed ingestion on a real local Ray cluster (2 single-core workers), writing to a real
Chroma server: the same index as a local Library.add, bad files reported, workers reused."""

from __future__ import annotations

import difflib
import os
import subprocess
import sys

import pytest

from speechsearch import Library
from speechsearch.distributed import ingest

from conftest import CALL_FILES, ROOT


INTENTS = ["refund", "account_locked", "late_delivery"]


def _words(lib: Library, path: str) -> list:
    return [w for seg in lib.transcript(path) for w in seg.text.lower().split()]


def test_ray_ingest_into_chroma_server(tmp_path, chroma_server, calls, indexed):
    folder = tmp_path / "calls"
    folder.mkdir()
    for intent in INTENTS:
        os.symlink(CALL_FILES[intent], folder / CALL_FILES[intent].name)
    broken = folder / "broken.mp3"
    broken.write_bytes(b"ID3 this is not audio" * 50)

    report = ingest([folder], tmp_path / "ray.idx", chroma_url=chroma_server, workers=2)

    added = sorted(os.path.basename(r.path) for r in report.added)
    assert added == sorted(CALL_FILES[i].name for i in INTENTS), report.summary()
    assert [os.path.basename(f.path) for f in report.failed] == ["broken.mp3"]
    assert "broken.mp3" in report.failed[0].error and "audio" in report.failed[0].error
    ray = report.options["ray"]
    assert len(ray["workers"]) == 2  # two actors, each loaded its models once at start
    assert len(ray["files_per_worker"]) == 2 and sum(ray["files_per_worker"].values()) == 4

    lib = Library(tmp_path / "ray.idx", chroma_url=chroma_server)
    assert lib.info()["files"] == 3
    for intent in INTENTS:
        query = calls[intent]["example_queries"][0]
        top = lib.search(query, k=1)[0]
        assert os.path.basename(top.path) == CALL_FILES[intent].name, (query, top)
        # the same transcript as the serial index of the same call (int8 batches may differ slightly)
        local = next(f.path for f in indexed.files() if os.path.basename(f.path) == CALL_FILES[intent].name)
        ratio = difflib.SequenceMatcher(None, _words(lib, top.path), _words(indexed, local)).ratio()
        assert ratio > 0.95, (intent, ratio)
    lib.close()


def test_cli_add_ray_local(tmp_path, calls):
    """`speechsearch add --ray local`: a local cluster, then an ordinary search finds the call."""
    index = tmp_path / "cli.idx"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, "-m", "speechsearch", "add", str(CALL_FILES["refund"]),
                          "--index", str(index), "--ray", "local", "--ray-workers", "1"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "added 1 file" in run.stdout + run.stderr
    with Library(index) as lib:
        top = lib.search(calls["refund"]["example_queries"][0], k=1)[0]
        assert os.path.basename(top.path) == CALL_FILES["refund"].name


@pytest.mark.parametrize("address, message", [("nonsense", "expected auto, local, HOST:PORT"),
                                              (None, "cannot reach the Ray cluster")])
def test_a_bad_ray_address_fails_at_once(tmp_path, address, message):
    from conftest import free_port

    from speechsearch.errors import SpeechSearchError

    address = address or f"127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(SpeechSearchError, match=message):
        ingest([CALL_FILES["refund"]], tmp_path / "x.idx", ray_address=address)
    with Library(tmp_path / "x.idx") as lib:
        assert lib.info()["files"] == 0
