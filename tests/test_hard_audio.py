"""Hard audio: long silence, room tone, noise, hum and hold music give no text, with either
engine, and nothing the library stores loops on itself.

A caller who indexes a folder of recordings relies on two things here: a recording with no
speech in it adds no searchable text (so "thank you" never finds four minutes of silence), and a
call that holds music between two speech turns is found by what was said, with nothing
attributed to the music. Both engines are checked twice: with the default settings (the VAD
removes most of this before Whisper sees it) and with the VAD let wide open, so that every
second reaches Whisper and its own guards alone must keep the text out.

The music is real (two instrumentals; see tests/data/hold-music-CREDITS.txt), heard through a
phone line. Silence, room tone, noise and hum are generated here from a fixed seed.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from speechsearch import Library

from _text import says, words
from conftest import CALL_FILES, DATA, ffmpeg, write_wav

SR = 16000
ENGINES = [
    "faster-whisper",
    pytest.param("openai-whisper", marks=pytest.mark.skipif(
        importlib.util.find_spec("whisper") is None,
        reason="openai-whisper is not installed (pip install 'speechsearch[openai-whisper-cpu]')")),
]
MUSIC = {"1918": DATA / "hold-music-1918.mp3", "funkyrobot": DATA / "hold-music-funkyrobot.mp3"}
NOISES = ["white", "pink", "brown", "hum"]
# what Whisper tends to write for silence or music, and words a user might well search for
QUERIES = ["thank you", "you", "Thanks for watching!", "music", "hello, how can I help you?",
           "please subscribe"]

# the call with music on hold: cancel-subscription-call.mp3 cut between two turns
CALL = CALL_FILES["cancel_subscription"]
CUT = 17.49  # the customer has given her account number; "Thank you, Rachel" starts at 17.76
HOLD = 30.0  # seconds of music on hold
MARGIN = 1.0  # seconds at each edge of the music where a word time may spill over


# ------------------------------------------------------------------ audio ---------------------
def _level(x: np.ndarray, dbfs: float) -> np.ndarray:
    x = x - x.mean()
    return (x / np.sqrt(np.mean(x ** 2)) * 10 ** (dbfs / 20)).astype(np.float32)


def _coloured(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise whose power falls as 1/f**exponent (0 white, 1 pink, 2 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spectrum), dtype=float)
    f[0] = 1.0
    return np.fft.irfft(spectrum / f ** (exponent / 2), n)


def _hum(seconds: float, mains: float = 50.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return sum(a * np.sin(2 * np.pi * mains * k * t + k) for k, a in [(1, 1), (2, .5), (3, .3), (5, .2), (7, .1)])


def _load16k(path: Path) -> np.ndarray:
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(SR), "-f", "s16le", "-"]
    pcm = subprocess.run(cmd, capture_output=True, check=True).stdout
    return np.frombuffer(pcm, np.int16).astype(np.float32) / 32768


def _phone_line(wav: Path, out: Path) -> Path:
    """The 8 kHz G.711 mu-law WAV that a call recorder writes."""
    ffmpeg("-i", str(wav), "-ar", "8000", "-acodec", "pcm_mulaw", str(out))
    wav.unlink()
    return out


@pytest.fixture(scope="module")
def hard(tmp_path_factory) -> dict:
    """Every hard-audio file, by name."""
    d = tmp_path_factory.mktemp("hard-audio")
    rng = np.random.default_rng(20261125)
    files = {}
    # four minutes of digital silence, stored losslessly
    write_wav(d / "silence.wav", np.zeros(240 * SR, np.float32))
    ffmpeg("-i", str(d / "silence.wav"), str(d / "silence.flac"))
    files["silence"] = d / "silence.flac"
    # four minutes of a quiet room: air (-60 dBFS pink), mains hum and a slow ventilation rumble
    room = (_level(_coloured(rng, 240 * SR, 1.0), -60) + _level(_hum(240), -72)
            + _level(_coloured(rng, 240 * SR, 2.0), -62))
    write_wav(d / "room.wav", room)
    ffmpeg("-i", str(d / "room.wav"), "-c:a", "libmp3lame", "-b:a", "64k", str(d / "room-tone.mp3"))
    files["room"] = d / "room-tone.mp3"
    # a minute of noise or hum at speech level (-20 dBFS RMS)
    for name, x in [("white", _coloured(rng, 60 * SR, 0.0)), ("pink", _coloured(rng, 60 * SR, 1.0)),
                    ("brown", _coloured(rng, 60 * SR, 2.0)), ("hum", _hum(60, 60.0))]:
        files[name] = write_wav(d / f"{name}-noise.wav", _level(x, -20))
    # real music on hold, as a call recorder stores it
    for name, src in MUSIC.items():
        ffmpeg("-i", str(src), "-acodec", "pcm_mulaw", str(d / f"hold-{name}.wav"))
        files[f"music-{name}"] = d / f"hold-{name}.wav"
    # a real call with music on hold between two turns
    call, music = _load16k(CALL), _load16k(MUSIC["1918"])[: int(HOLD * SR)]
    cut = int(CUT * SR)
    write_wav(d / "call16k.wav", np.concatenate([call[:cut], music, call[cut:]]))
    files["call"] = _phone_line(d / "call16k.wav", d / "call-with-hold.wav")
    for f in d.glob("*.wav"):
        if f not in files.values():
            f.unlink()
    return files


NO_SPEECH = ["silence", "room", *NOISES, *(f"music-{m}" for m in MUSIC)]


@pytest.fixture(scope="module", params=ENGINES)
def hard_index(request, hard, tmp_path_factory):
    """Each engine's index of every hard-audio file, default settings, built in one add."""
    lib = Library(tmp_path_factory.mktemp("idx") / "hard.idx", transcriber=request.param)
    report = lib.add(list(hard.values()))
    assert report.ok, report.summary()
    yield lib, report
    lib.close()


# the VAD let wide open: whatever is in the file reaches Whisper
UNGATED = ["silence-30s", "white-30s", *(f"music-{m}" for m in MUSIC)]


@pytest.fixture(scope="module", params=ENGINES)
def ungated(request, hard, tmp_path_factory):
    """Each engine's index, VAD threshold 0: silence, noise, hold music and the call with music
    on hold all reach Whisper whole, and only its guards stand between them and the index."""
    d = tmp_path_factory.mktemp("ungated")
    white = _level(_coloured(np.random.default_rng(3), 30 * SR, 0.0), -20)
    files = {"silence-30s": write_wav(d / "silence-30s.wav", np.zeros(30 * SR, np.float32)),
             "white-30s": write_wav(d / "white-30s.wav", white),
             **{k: hard[k] for k in ("music-1918", "music-funkyrobot", "call")}}
    lib = Library(tmp_path_factory.mktemp("idx") / "ungated.idx", transcriber=request.param,
                  vad={"threshold": 0.0})
    report = lib.add(list(files.values()))
    assert report.ok, report.summary()
    yield lib, files
    lib.close()


# ------------------------------------------------------------------ checks --------------------
def _transcript(lib: Library, path: Path) -> list:
    return lib._catalog.transcript(str(path))


def _words(transcript: list) -> list:
    return [w for s in transcript for w in s["words"]]


def _said(transcript: list) -> str:
    return " ".join(s["text"] for s in transcript)


def _compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data))


def _longest_run(transcript: list) -> tuple:
    """The word said most times in a row across the transcript, and how many times."""
    tokens = re.findall(r"[a-z0-9']+", _said(transcript).lower())
    best, run = ("", 0), 0
    for i, t in enumerate(tokens):
        run = run + 1 if i and t == tokens[i - 1] else 1
        if run > best[1]:
            best = (t, run)
    return best


def _assert_no_loops(transcript: list, name: str) -> None:
    for s in transcript:
        assert _compression_ratio(s["text"]) <= 2.4, (name, s["text"])
    word, times = _longest_run(transcript)
    assert times <= 4, f"{name}: {word!r} {times} times in a row in {_said(transcript)!r}"


def _assert_nothing_indexed(lib: Library, path: Path, name: str) -> None:
    transcript = _transcript(lib, path)
    assert not _words(transcript) and not _said(transcript).strip(), f"{name}: {_said(transcript)!r}"
    (info,) = [f for f in lib.files() if f.path == str(path)]
    assert info.status == "ready" and info.segments == 0, (name, info)
    for q in QUERIES:
        assert not [h.text for h in lib.search(q, k=20) if h.path == str(path)], (name, q)


# ------------------------------------------------------------------ tests ---------------------
@pytest.mark.parametrize("name", NO_SPEECH)
def test_no_speech_gives_no_text(hard_index, hard, name):
    """Minutes of silence or room tone, a minute of noise or hum, 40 s of hold music: indexed,
    reported as holding no speech, and no search finds them."""
    lib, report = hard_index
    path = hard[name]
    (added,) = [r for r in report.added if r.path == str(path)]
    assert added.segments == 0 and added.reason == "no speech found", (name, added)
    assert added.duration == pytest.approx({"silence": 240, "room": 240}.get(name, 60 if name in NOISES else 40.2),
                                           abs=0.5)
    _assert_nothing_indexed(lib, path, name)


def test_long_silence_is_not_transcribed_again(hard_index, hard):
    lib, _ = hard_index
    assert [r.path for r in lib.add(hard["silence"]).skipped] == [str(hard["silence"])]


def test_speech_around_hold_music_is_found_and_the_music_gives_no_words(hard_index, hard, calls):
    lib, _ = hard_index
    path = str(hard["call"])
    before = lib.search("customer wants to cancel her monthly plan", k=1)[0]
    assert before.path == path and before.start < CUT
    after = lib.search("moving to Portugal for a new job", k=1)[0]
    assert after.path == path and after.start >= CUT + HOLD - MARGIN, after
    assert says(after.text, "portugal"), after.text
    _assert_music_span_is_empty(_transcript(lib, hard["call"]), calls)


def _assert_music_span_is_empty(transcript: list, calls: dict) -> None:
    words = _words(transcript)
    inside = [w for w in words if w[1] > CUT + MARGIN and w[0] < CUT + HOLD - MARGIN]
    assert not inside, inside
    # the words on either side keep their own times: the turn after the music starts after it
    resumed = [t for t in calls["cancel_subscription"]["turns"] if t["start"] > CUT][0]
    first_after = min(w[0] for w in words if w[0] > CUT)
    assert first_after == pytest.approx(resumed["start"] + HOLD, abs=0.6)
    assert any(w[1] <= CUT for w in words)


def test_no_repetition_loops(hard_index, hard, calls):
    lib, _ = hard_index
    for name, path in hard.items():
        _assert_no_loops(_transcript(lib, path), name)
    # the speech is all there: 118 words of the script's 122 measured with either engine; the
    # count depends on the CPU and on how Whisper writes numbers, so half is the bar
    script = sum(len(words(t["text"])) for t in calls["cancel_subscription"]["turns"])
    assert len(_words(_transcript(lib, hard["call"]))) > script / 2


@pytest.mark.parametrize("name", UNGATED)
def test_whisper_guards_alone_give_no_text(ungated, name):
    """With the VAD letting everything through, Whisper's own guards must keep silence, noise
    and hold music out of the index."""
    lib, files = ungated
    _assert_no_loops(_transcript(lib, files[name]), name)
    _assert_nothing_indexed(lib, files[name], name)


def test_whisper_guards_alone_keep_the_music_on_hold_out_of_a_call(ungated, calls):
    lib, files = ungated
    transcript = _transcript(lib, files["call"])
    _assert_no_loops(transcript, "call")
    assert lib.search("moving to Portugal for a new job", k=1)[0].path == str(files["call"])
    _assert_music_span_is_empty(transcript, calls)
