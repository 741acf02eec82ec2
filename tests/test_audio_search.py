"""Query by example on real audio: clips said by another voice with noise, codec-coded speech,
every input form, the bad clips, and indexes without acoustic vectors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from speechsearch import Library
from speechsearch.audio import decode
from speechsearch.errors import AudioError, InvalidInputError, StoreError

from conftest import ROOT, write_wav

DEVSET = ROOT / "benchmarks" / "devset"
FILES = ["audio/refund-01.mp3", "audio/account-01.ogg", "audio/address-01.ogg", "audio/codec2-forig.flac",
         "audio/codec2-hts1a.flac"]


@pytest.fixture(scope="module")
def qbe(tmp_path_factory):
    folder = tmp_path_factory.mktemp("devset")
    for f in FILES:
        shutil.copy(DEVSET / f, folder / f.split("/")[1])
    lib = Library(tmp_path_factory.mktemp("qbe") / "qbe.idx")
    assert lib.add(folder).ok
    lib.folder = folder  # type: ignore[attr-defined]
    return lib


def test_clip_in_another_voice_with_noise_finds_its_call(qbe):
    # a01: a sentence of refund-01 said by a different TTS voice, pink noise at ~17 dB SNR
    hits = qbe.search_audio(DEVSET / "clips" / "a01.wav", k=3)
    assert hits[0].path.endswith("refund-01.mp3")
    assert {"text", "context", "lexical", "acoustic"} <= set(hits[0].scores)  # every signal's raw score
    assert hits[0].start <= 32.1 and hits[0].end >= 27.3  # the span where the sentence was said


def test_acoustic_signal_alone_finds_codec_coded_speech(qbe):
    # the same utterance through the codec2 2400 bit/s speech codec, 8 kHz
    hits = qbe.search_audio(DEVSET / "clips" / "a15.wav", k=3, signals=("acoustic",))
    assert hits[0].path.endswith("codec2-forig.flac")
    assert set(hits[0].scores) == {"acoustic"}


def test_every_clip_form_gives_the_same_answer(qbe):
    path = DEVSET / "clips" / "a01.wav"
    audio = decode(str(path))
    by_path = [h.id for h in qbe.search_audio(path, k=2)]
    assert [h.id for h in qbe.search_audio(path.read_bytes(), k=2)] == by_path
    assert [h.id for h in qbe.search_audio(audio, k=2, sample_rate=16000)] == by_path
    pcm = (audio * 32767).astype(np.int16)
    assert qbe.search_audio((pcm, 16000), k=1)[0].path.endswith("refund-01.mp3")
    stereo_8k = np.stack([audio[::2], audio[::2]], axis=1)
    assert qbe.search_audio(stereo_8k, k=1, sample_rate=8000)[0].path.endswith("refund-01.mp3")


def test_bad_clips_are_clear_errors(qbe, tmp_path):
    silent = write_wav(tmp_path / "silent.wav", np.zeros(16000 * 2, np.float32))
    with pytest.raises(InvalidInputError, match="no speech found in the clip"):
        qbe.search_audio(silent)
    short = decode(str(DEVSET / "clips" / "a01.wav"))[: int(16000 * 0.2)]
    with pytest.raises(InvalidInputError, match="at least 0.3 s"):
        qbe.search_audio(short, sample_rate=16000)
    with pytest.raises(AudioError, match="clip's bytes: could not decode audio"):
        qbe.search_audio(b"this is not audio at all" * 20)
    with pytest.raises(InvalidInputError, match="sample_rate"):
        qbe.search_audio(np.zeros(16000, np.float32))
    with pytest.raises(InvalidInputError, match="signals"):
        qbe.search_audio(DEVSET / "clips" / "a01.wav", signals=("voice",))


def test_index_without_acoustic_vectors_says_how_to_backfill(tmp_path):
    f = shutil.copy(DEVSET / "audio" / "codec2-forig.flac", tmp_path / "orig.flac")
    clip = DEVSET / "clips" / "a15.wav"
    with Library(tmp_path / "old.idx", acoustic=False) as lib:
        lib.add(f)
        assert lib._acoustic_store.count() == 0
        assert lib.search_audio(clip, k=1)[0].path == str(f)  # transcript signals still work
        with pytest.raises(StoreError, match="reindex --acoustic"):
            lib.search_audio(clip, signals=("acoustic",))
    with Library(tmp_path / "old.idx") as lib:  # "auto" on an old index: no acoustic until backfilled
        assert lib._pipeline.acoustic is None
        assert lib.reindex_acoustic() == 1
        hit = lib.search_audio(clip, k=1, signals=("acoustic",))[0]
        assert hit.path == str(f) and hit.scores["acoustic"] > 0.5
        assert lib.reindex_acoustic() == 0  # nothing left to do
    with Library(tmp_path / "old.idx") as lib:
        assert lib._pipeline.acoustic is not None  # the index now records its acoustic model


def test_voice_mode_finds_where_the_speaker_spoke(tmp_path):
    from conftest import HUMAN_CALL, LIBRIVOX

    folder = tmp_path / "rec"
    folder.mkdir()
    for f in (HUMAN_CALL, LIBRIVOX, DEVSET / "audio" / "refund-01.mp3"):
        shutil.copy(f, folder / f.name)
    with Library(tmp_path / "voice.idx", voice=True) as lib:
        lib.add(folder)
        assert lib._voice_store.count() > 0
        # the reader of the LibriVox sentence, in a different cut of her recording
        clip = decode(str(LIBRIVOX))[int(16000 * 2.0):int(16000 * 5.0)]
        hits = lib.search_audio(clip, sample_rate=16000, k=3, mode="voice")
        assert hits[0].path.endswith("librivox-short.flac") and set(hits[0].scores) == {"voice"}
    with Library(tmp_path / "voice.idx") as lib:  # voice vectors stay searchable
        assert lib.search_audio(clip, sample_rate=16000, k=1, mode="voice")[0].path.endswith("librivox-short.flac")
    with Library(tmp_path / "novoice.idx") as lib:
        lib.add(LIBRIVOX)
        with pytest.raises(StoreError, match="voice=True"):
            lib.search_audio(clip, sample_rate=16000, mode="voice")
        with pytest.raises(InvalidInputError, match="'content' or 'voice'"):
            lib.search_audio(clip, sample_rate=16000, mode="speaker")
