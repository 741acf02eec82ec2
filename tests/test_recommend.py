"""`Library.similar` and `Library.topics`: calls like this one, and what the calls are about.
Real index of the example calls (real Whisper transcripts, real MiniLM vectors)."""

from __future__ import annotations

import shutil

import pytest

from speechsearch import InvalidInputError, Library, NotIndexedError
from speechsearch.recommend import bucket, label
from speechsearch.types import SimilarHit

from conftest import ffmpeg


def test_similar_file_ranks_other_calls_and_says_why(indexed):
    files = {f.path: f for f in indexed.files()}
    for query in files:
        hits = indexed.similar(query, k=3)
        assert 1 <= len(hits) <= 3 and all(isinstance(h, SimilarHit) for h in hits)
        assert query not in {h.path for h in hits} and len({h.path for h in hits}) == len(hits)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        for h in hits:
            assert -1.0 <= h.score <= 1.0 and set(h.scores) == {"call", "moment"}
            assert 0 <= h.start < h.end <= files[h.path].duration + 0.5 and h.text  # the shared moment...
            assert h.query_path == query and 0 <= h.query_start < h.query_end <= files[query].duration + 0.5
            assert h.query_text  # ...and the query's own moment it matched
    with pytest.raises(InvalidInputError):
        indexed.similar(next(iter(files)), k=0)


def test_a_recording_of_an_indexed_call_finds_that_call(indexed, tmp_path):
    """A recording that is not indexed (here: a call re-encoded at 8 kHz as MP3) is transcribed
    and compared; the call it records must come first."""
    original = next(f.path for f in indexed.files() if f.path.endswith("late-delivery-call.flac"))
    copy = tmp_path / "same-call-phone.mp3"
    ffmpeg("-i", original, "-ar", "8000", "-ac", "1", "-b:a", "24k", str(copy))
    hits = indexed.similar(copy, k=2)
    assert hits[0].path == original and hits[0].score > 0.8, [(h.path, h.score) for h in hits]


def test_similar_hit_finds_moments_in_other_calls(indexed):
    hit = indexed.search("I want my money back for the order", k=1)[0]
    moments = indexed.similar(hit, k=3)
    assert moments and hit.path not in {h.path for h in moments}
    assert len({h.path for h in moments}) == len(moments)  # one per call


def test_topics_are_labelled_stable_and_counted_over_time(indexed, tmp_path):
    target = tmp_path / "topics.idx"
    shutil.copytree(indexed.path, target)
    with Library(target) as lib:
        paths = sorted(f.path for f in lib.files())
        for n, path in enumerate(paths):
            lib.update_metadata(path, {"started_at": f"2026-0{1 + n % 2}-1{n}T09:30:00Z"})
        topics = lib.topics(by="started_at", period="month")
        again = lib.topics(by="started_at", period="month")
        assert [(t.label, t.files) for t in topics] == [(t.label, t.files) for t in again]  # stable
        assert sorted(f for t in topics for f in t.files) == paths  # every call in one topic
        assert [t.size for t in topics] == sorted((t.size for t in topics), reverse=True)
        for t in topics:
            assert t.size == len(t.files) and t.label and t.terms and t.examples
            assert sum(t.counts.values()) == t.size and set(t.counts) <= {"2026-01", "2026-02"}
            assert all(e.path in t.files for e in t.examples)
        two = lib.topics(n=2)
        assert len(two) == 2 and sum(t.size for t in two) == len(paths)
        some = lib.topics(n=1, files=paths[:2])
        assert len(some) == 1 and sorted(some[0].files) == paths[:2]
        with pytest.raises(InvalidInputError):
            lib.topics(period="year")
        with pytest.raises(NotIndexedError):
            lib.topics(files=[str(tmp_path / "nope.mp3")])


def test_buckets_and_labels():
    assert bucket("2026-03-02T10:00:00Z", "week") == "2026-W10"
    assert bucket("2026-03-02", "month") == "2026-03"
    assert bucket(0, "day") == "1970-01-01" and bucket(None, "week") == "unknown"
    assert bucket("not a date", "month") == "unknown"
    terms = label([["my parcel never arrived, the parcel tracking is stuck", "where is my parcel, tracking says lost"],
                   ["I was charged twice, refund the charge", "a double charge on my card, I want a refund"]])
    assert terms[0][:2] == ["parcel", "tracking"] and set(terms[1][:2]) == {"charge", "refund"}


def test_a_filtered_search_for_a_number_said_in_a_call(indexed):
    """BM25 and the number lookup find the same window; with a filter, both asked Chroma for it
    and Chroma refused the repeated id (found while building `similar`)."""
    hits = indexed.search("order number 55028", k=3, where={"language": "en"})
    assert hits and hits[0].path.endswith("late-delivery-call.flac")
