"""Shared fixtures: real audio from the repo, one index of the example calls built once per
session, and helpers to make bad or unusual audio files with ffmpeg from the real clips.

Models load once per process (speechsearch caches them), so every Library in the test run
shares the same Whisper and MiniLM instances.
"""

from __future__ import annotations

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
