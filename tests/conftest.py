"""Shared fixtures: real audio from the repo, one index of the example calls built once per
session, and helpers to make bad or unusual audio files with ffmpeg from the real clips; and the
list of slow tests (`pytest -m "not slow"` leaves them out; `make test` runs everything).

Models load once per process (speechsearch caches them), so every Library in the test run
shares the same Whisper and MiniLM instances. Transcript text is compared through
tests/_text.py (normalised), since Whisper's text depends on the CPU: docs/testing.md.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from speechsearch import Library

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DATA = ROOT / "tests" / "data"

CALL_FILES = {
    "refund": EXAMPLES / "refund-call.mp3",
    "account_locked": EXAMPLES / "account-locked-call.ogg",
    "cancel_subscription": DATA / "cancel-subscription-call.mp3",
    "late_delivery": DATA / "late-delivery-call.flac",
}
HUMAN_CALL = EXAMPLES / "phone-call-human.flac"
LIBRIVOX = DATA / "librivox-short.flac"


# The slowest end-to-end tests, marked `slow` here rather than in their files: the quick loop
# `.venv/bin/python -m pytest -m "not slow"` leaves them out, `make test` runs them all.
# fnmatch patterns on node ids ("[...]" is escaped as "[[]...]"); a pattern ending in "*" takes every
# parameter of a test. Times: setup + call, measured with --durations on this 2-core machine
# while other jobs ran (the whole suite took 467-556 s alone, so divide by about 2).
SLOW = [
    "tests/test_concurrency.py::test_add_while_serving_and_a_second_writer",  # 164 s (76 + 88)
    "tests/test_cli.py::test_search_audio_reindex_and_eval",  # 114 s: six CLI processes
    "tests/test_interrupt.py::test_killed_add_resumes_without_duplicates",  # 78 s
    "tests/test_distributed.py::test_cli_add_ray_local",  # 32 s: starts Ray
    "tests/test_distributed.py::test_ray_ingest_into_chroma_server",  # 30 s: starts Ray
    "tests/test_cli.py::test_search_readable_and_json",  # 48 s: two CLI processes
    "tests/test_concurrency.py::test_serve_holds_the_lock_only_during_its_own_writes",  # 39 s (31 + 9)
    "tests/test_parallel_ingest.py::test_two_workers_give_the_same_index_as_one",  # 34 s
    "tests/test_cli.py::test_default_index_is_in_the_working_directory",  # 31 s: three CLI processes
    "tests/test_concurrency.py::test_several_writers_with_a_chroma_server",  # 24 s
    # 17 s (on a lighter load than the others): three CLI processes; the slowest left in the quick loop
    "tests/test_cli.py::test_a_file_name_that_is_not_utf8_is_added_shown_and_removed",
    # hard audio with the VAD wide open, both engines: 18 + 17 s to index, then 0.1 s a test
    "tests/test_hard_audio.py::test_whisper_guards_alone_*",
    # hard audio through openai-whisper (faster-whisper's run stays in the quick loop): 12 s to index
    "tests/test_hard_audio.py::*[[]openai-whisper*",
]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(fnmatch.fnmatchcase(item.nodeid, pattern) for pattern in SLOW):
            item.add_marker(pytest.mark.slow)


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", *args], check=True)


def write_wav(path: Path, audio: np.ndarray, rate: int = 16000) -> Path:
    """Write float audio (samples, or samples x channels) as 16-bit PCM WAV."""
    import wave

    audio = np.asarray(audio, np.float32)
    channels = 1 if audio.ndim == 1 else audio.shape[1]
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


@pytest.fixture(scope="session")
def calls() -> dict:
    """calls.json: for each synthetic call its intent, turns with exact times, example queries."""
    data = json.loads((DATA / "calls.json").read_text())
    return {c["intent"]: c for c in data["calls"]}


@pytest.fixture(scope="session")
def indexed(tmp_path_factory) -> Library:
    """An index of the four synthetic calls and the real human call, built once."""
    folder = tmp_path_factory.mktemp("calls")
    for f in [*CALL_FILES.values(), HUMAN_CALL]:
        shutil.copy(f, folder / f.name)
    lib = Library(tmp_path_factory.mktemp("idx") / "calls.idx")
    report = lib.add(folder)
    assert report.ok, report.summary()
    lib.folder = folder  # type: ignore[attr-defined]
    return lib


@pytest.fixture
def lib(tmp_path) -> Library:
    with Library(tmp_path / "test.idx") as library:
        yield library


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """A real Chroma server (`chroma run`) on a free loopback port, for the session: its URL."""
    import os
    import sys
    import time
    import urllib.request

    chroma = Path(sys.executable).with_name("chroma")
    if not chroma.exists():
        pytest.fail(f"{chroma} not found: chromadb's CLI comes with `pip install chromadb`")
    data = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    log = open(data / "server.log", "wb")
    env = dict(os.environ, ANONYMIZED_TELEMETRY="False")
    proc = subprocess.Popen([str(chroma), "run", "--path", str(data / "db"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"`chroma run` did not come up on {url}: {(data / 'server.log').read_text()[-2000:]}")
        time.sleep(0.3)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
