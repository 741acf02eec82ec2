"""`Library.tune(acoustic=True)`: other voices and channels made offline, a head trained on the
acoustic CNN, the index switched to it (or kept) and switched back by `untune`. Real
synthesisers (espeak-ng, flite: `make test` installs them), real ffmpeg, real CNN, real index."""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pytest

from speechsearch import Library, synth
from speechsearch import tune_acoustic as ta
from speechsearch.audio import decode
from speechsearch.embed.acoustic import HEAD_FILE, TunedAcoustic, get_acoustic_embedder

from conftest import DATA

SENTENCE = "Hello, I am calling about the parcel I ordered last Tuesday."


def _db(x: np.ndarray) -> float:
    return 10 * np.log10(float(np.mean(x ** 2)) + 1e-20)


def test_synthesisers_speak_and_channels_are_what_they_say():
    assert {"espeak-ng", "flite"} <= set(synth.engines()), "make test installs espeak-ng and flite"
    rng = random.Random(0)
    for voice in (synth.Voice("espeak-ng", "en-us+f3"), synth.Voice("flite", "slt")):
        audio = synth.speak(SENTENCE, voice, pitch=2.0)
        assert 2.0 < len(audio) / 16000 < 8.0, voice  # a sentence, its silence trimmed
        assert _db(audio[:4000]) > _db(audio) - 20  # speech starts within 0.25 s (0.1 s margin kept)
    clean = synth.speak(SENTENCE, synth.Voice("flite", "rms"))
    noisy = synth.augment(clean, synth.Channel(15.0, "pink", "wide", None, 1.0), seed=1)
    assert len(noisy) == len(clean)
    assert abs((_db(clean) - _db(noisy - clean)) - 15.0) < 0.5  # the SNR asked for
    phone = synth.augment(clean, synth.Channel(None, "white", "telephone", "gsm", 1.0))
    spectrum = np.abs(np.fft.rfft(phone)) ** 2
    freqs = np.fft.rfftfreq(len(phone), 1 / 16000)
    assert spectrum[freqs > 4200].sum() < 0.01 * spectrum.sum()  # the 8 kHz telephone band
    assert abs(len(phone) - len(clean)) < 0.1 * 16000
    fast = synth.augment(clean, synth.Channel(None, "white", "wide", "mp3", 1.07))
    assert abs(len(fast) / len(clean) - 1 / 1.07) < 0.03  # 7 % faster, through MP3
    audio, how = synth.revoice(SENTENCE, rng, synth.voices(["espeak-ng", "flite"]))
    assert len(audio) > 16000 and ("espeak-ng:" in how or "flite:" in how)
    with pytest.raises(Exception, match="unknown synthesiser"):
        synth.speak(SENTENCE, synth.Voice("nope", "x"))


def test_a_head_that_changes_nothing_gives_the_base_vectors(tmp_path):
    """The numpy head and pooling of a tuned embedder: with a zero head and the base centre it
    must embed exactly as the base model does (the same clip, the same vector)."""
    base = get_acoustic_embedder("speech-embedding")
    dim = base.frame_dim
    np.savez(tmp_path / HEAD_FILE, w1=np.random.default_rng(0).normal(size=(dim, 8)).astype(np.float32),
             b1=np.zeros(8, np.float32), w2=np.zeros((8, dim), np.float32), b2=np.zeros(dim, np.float32),
             centre=base.centre)
    tuned = TunedAcoustic(base, tmp_path)
    clip = decode(str(DATA / "late-delivery-call.flac"))[16000:16000 * 6]
    assert np.allclose(tuned.embed(clip), base.embed(clip), atol=1e-5)
    assert tuned.model_id == base.model_id + "+tuned:" + tmp_path.name and tuned.dim == base.dim


@pytest.fixture
def copy(indexed, tmp_path):
    target = tmp_path / "acoustic.idx"
    shutil.copytree(indexed.path, target)
    calls = json.loads((DATA / "calls.json").read_text())["calls"]
    folder = indexed.folder
    queries = [{"id": f"{c['intent']}-{n}", "type": "text", "kind": "intent", "query": q,
                "relevant": [{"file": str(folder / c["file"].split("/")[-1])}]}
               for c in calls for n, q in enumerate(c["example_queries"])]
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"queries": queries}))
    lib = Library(target)
    yield lib, labels, folder
    lib.close()


def _vectors(lib: Library) -> dict:
    return {i: np.asarray(v, np.float32) for page in lib._acoustic().iter_rows()
            for i, v in zip(page["ids"], page["embeddings"])}


def test_acoustic_tune_switches_the_index_or_keeps_it_and_untune_goes_back(copy, monkeypatch):
    lib, labels, folder = copy
    monkeypatch.setattr(ta, "SENTENCES", 40)  # a small tune: this index has five calls
    before = _vectors(lib)
    base_id = lib.info()["models"]["acoustic_model"]
    other = Library(lib.path)  # another process's view of the index, opened before the tune
    clip = decode(str(folder / "late-delivery-call.flac"))[16000 * 3:16000 * 9]
    report = lib.tune(labels, text=False, fusion=False, seed=0)
    part = report.acoustic
    assert part["renderings"] >= 60 and len(part["losses"]) == ta.EPOCHS and part["missing"] == []
    assert 0.0 <= part["held_before"] <= 1.0 and "acoustic model" in report.summary()
    after = _vectors(lib)
    assert set(after) == set(before)  # every indexed sentence, once
    if part["applied"]:
        assert part["held_after"] > part["held_before"]
        model = lib.info()["models"]["acoustic_model"]
        assert model.startswith(base_id + "+tuned:acoustic-")
        hits = other.search_audio(clip, k=3, signals=("acoustic",), sample_rate=16000)  # the other process follows the switch
        assert other._pipeline.acoustic.model_id == model and hits
        with Library(lib.path) as again:
            assert isinstance(again._pipeline.acoustic, TunedAcoustic)
            first = again.search_audio(clip, k=1, signals=("acoustic",), sample_rate=16000)[0]
            assert first.path.endswith("late-delivery-call.flac") and first.start < 9 and first.end > 3
        lib.untune()
        assert lib.info()["models"]["acoustic_model"] == base_id
        back = _vectors(lib)
        assert set(back) == set(before)
        assert min(float(before[i] @ back[i]) for i in before) > 0.999  # the base vectors again
        assert not list((lib.path / "models").glob("acoustic-*"))
    else:  # not better: the index keeps its model and its vectors
        assert lib.info()["models"]["acoustic_model"] == base_id
        assert min(float(before[i] @ after[i]) for i in before) > 0.999
        assert not (lib.path / "models").exists() or not list((lib.path / "models").glob("acoustic-*"))
    other.close()
