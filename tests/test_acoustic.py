"""Acoustic embedders (speechsearch.embed.acoustic) on real dev-set audio with the real models.

The model tests skip when the package that ships the weights is not installed
(``pip install --no-deps openwakeword==0.5.1`` / ``efficientword-net==1.0.5``); the MFCC
baseline and the argument checks always run.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from speechsearch.audio import decode
from speechsearch.embed import acoustic
from speechsearch.embed.acoustic import (
    DEFAULT,
    EMBEDDERS,
    AcousticEmbedder,
    get_acoustic_embedder,
)
from speechsearch.errors import InvalidInputError, MissingDependencyError

DEVSET = Path(__file__).resolve().parent.parent / "benchmarks" / "devset"
SR = 16000

needs_devset = pytest.mark.skipif(not (DEVSET / "qrels.json").exists(), reason="dev set not present")
_PKG = {"speech-embedding": "openwakeword", "efficientword": "eff_word_net", "mfcc": None}


def _installed(name: str) -> bool:
    mod = _PKG[name]
    return mod is None or importlib.util.find_spec(mod) is not None


def _param(name: str):
    return pytest.param(name, marks=pytest.mark.skipif(not _installed(name), reason=f"{_PKG[name]} not installed"))


ALL = [_param(n) for n in EMBEDDERS]
needs_default = pytest.mark.skipif(not _installed(DEFAULT), reason=f"{_PKG[DEFAULT]} not installed")


@pytest.fixture(scope="module")
def qrels():
    return json.loads((DEVSET / "qrels.json").read_text())


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """4 s of a real call (TTS voices, MP3)."""
    return decode(str(DEVSET / "audio" / "refund-01.mp3"))[7 * SR:11 * SR]


def test_unknown_name_lists_valid_names():
    with pytest.raises(InvalidInputError) as e:
        get_acoustic_embedder("wav2vec-huge")
    for name in EMBEDDERS:
        assert name in str(e.value)


def test_bad_pooling_and_bad_type():
    with pytest.raises(InvalidInputError, match="pooling"):
        get_acoustic_embedder("mfcc", pooling="median")
    with pytest.raises(InvalidInputError):
        get_acoustic_embedder(42)  # type: ignore[arg-type]


def test_missing_package_names_the_pip_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(acoustic.importlib.util, "find_spec",
                        lambda m, *a: None if m in ("openwakeword", "eff_word_net") else real(m, *a))
    with pytest.raises(MissingDependencyError, match="pip install .*openwakeword==0.5.1"):
        get_acoustic_embedder("speech-embedding")
    with pytest.raises(MissingDependencyError, match="pip install .*efficientword-net==1.0.5"):
        get_acoustic_embedder("efficientword")
    assert isinstance(MissingDependencyError("x"), ImportError)


def test_instance_passes_through_and_is_cached():
    e = get_acoustic_embedder("mfcc")
    assert get_acoustic_embedder(e) is e
    assert get_acoustic_embedder("MFCC") is e
    assert isinstance(e, AcousticEmbedder)


@needs_devset
@pytest.mark.parametrize("name", ALL)
def test_dim_unit_norm_and_many(name, speech):
    e = get_acoustic_embedder(name)
    v = e.embed(speech)
    assert v.shape == (e.dim,) and v.dtype == np.float32
    assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-4
    m = e.embed_many([speech, speech[: SR], speech * 0.3])
    assert m.shape == (3, e.dim) and m.dtype == np.float32
    np.testing.assert_allclose(m[0], v, atol=1e-5)
    assert np.allclose(np.linalg.norm(m, axis=1), 1.0, atol=1e-4)
    assert e.embed_many([]).shape == (0, e.dim)
    assert e.model_id.startswith(name + "/")


@needs_devset
@pytest.mark.parametrize("name", ALL)
def test_short_clip_is_padded_bad_clips_rejected(name, speech):
    e = get_acoustic_embedder(name)
    short = e.embed(speech[SR: SR + SR // 10])  # 0.1 s: centred in zeros up to the model window
    assert short.shape == (e.dim,) and abs(float(np.linalg.norm(short)) - 1.0) < 1e-4
    for bad in (np.zeros(0, np.float32), np.zeros((2, SR), np.float32), np.full(SR, np.nan, np.float32)):
        with pytest.raises(InvalidInputError):
            e.embed(bad)
    ints = e.embed((speech * 32767).astype(np.int16))  # int16 PCM is scaled to [-1, 1]
    assert float(ints @ e.embed(speech)) > 0.99


@needs_devset
@pytest.mark.parametrize("name", [_param("speech-embedding"), _param("efficientword")])
def test_codec2_clip_nearest_to_its_original(name, qrels):
    """A Codec 2 coded clip (700-3200 bit/s vocoder) is nearest to its original among the ten
    codec2 recordings of the dev set."""
    e = get_acoustic_embedder(name)
    originals = [f["file"] for f in qrels["files"] if f["file"].startswith("audio/codec2-")]
    index = e.embed_many([decode(str(DEVSET / p)) for p in originals])
    picked = [q for q in qrels["queries"] if q.get("kind") == "qbe-codec"][:5]
    for q in picked:
        best = originals[int(np.argmax(index @ e.embed(decode(str(DEVSET / q["clip"])))))]
        assert best == q["relevant"][0]["file"], q["id"]


@needs_devset
@needs_default
def test_respoken_sentence_finds_its_call(qrels):
    """A sentence of a call re-spoken by another TTS voice with noise (query a01) is nearest to
    a turn of the right call, among every turn of four calls."""
    e = get_acoustic_embedder()
    q = next(x for x in qrels["queries"] if x["id"] == "a01")
    calls = ["audio/refund-01.mp3", "audio/refund-02.ogg", "audio/account-01.ogg", "audio/cancel-01.ogg"]
    entries = {f["file"]: f for f in qrels["files"]}
    vecs, owners = [], []
    for p in calls:
        frames = e.frames(decode(str(DEVSET / p)))  # whole file once, pooled per turn
        for t in entries[p]["turns"]:
            vecs.append(e.pool_span(frames, t["start"], t["end"]))
            owners.append(p)
    sims = np.stack(vecs) @ e.embed(decode(str(DEVSET / q["clip"])))
    assert owners[int(np.argmax(sims))] == q["relevant"][0]["file"]


@needs_devset
@needs_default
def test_pool_span_close_to_embedding_the_cut(qrels):
    e = get_acoustic_embedder()
    audio = decode(str(DEVSET / "audio" / "refund-01.mp3"))
    frames = e.frames(audio)
    turn = next(f for f in qrels["files"] if f["file"] == "audio/refund-01.mp3")["turns"][1]
    a = e.pool_span(frames, turn["start"], turn["end"])
    b = e.embed(audio[int(turn["start"] * SR):int(turn["end"] * SR)])
    assert float(a @ b) > 0.9


@needs_devset
@needs_default
def test_threads_share_one_instance(speech):
    e = get_acoustic_embedder()
    want = e.embed(speech)
    got = [None, None]

    def work(i):
        got[i] = e.embed(speech)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for g in got:
        np.testing.assert_allclose(g, want, atol=1e-5)
