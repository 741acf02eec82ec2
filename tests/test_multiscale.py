"""Units at two scales: windows (what a hit shows) and the longer context units around them,
with the calls they come from scored as a whole; and the fused score as a probability."""

from __future__ import annotations

import shutil

import pytest

from speechsearch import Library
from speechsearch.errors import InvalidInputError
from speechsearch.fusion import FusionOptions, fuse
from speechsearch.types import Segment, Word
from speechsearch.windows import make_contexts

from conftest import CALL_FILES


def _segments(n: int, seconds: float = 4.0, channel: int = 0):
    """n sentences of `seconds` each, 0.5 s apart, with word times."""
    out = []
    for i in range(n):
        t = i * (seconds + 0.5)
        words = tuple(Word(t + j * seconds / 4, t + (j + 1) * seconds / 4, f" w{i}x{j}" + ("." if j == 3 else ""))
                      for j in range(4))
        out.append(Segment(t, t + seconds, "".join(w.text for w in words), words, channel=channel))
    return out


def test_contexts_span_30_to_60_seconds_per_channel():
    segs = _segments(30) + _segments(12, channel=1)
    contexts = make_contexts(segs)
    assert {c.channel for c in contexts} == {0, 1}
    for c in contexts:
        assert c.end - c.start <= 60.0 + 1e-6
    long = [c for c in contexts if c.channel == 0]
    assert all(c.end - c.start >= 30.0 for c in long[:-1])  # all but a last short tail
    covered = sorted((c.start, c.end) for c in long)
    assert covered[0][0] == 0.0 and covered[-1][1] == pytest.approx(segs[29].end)
    for (a0, a1), (b0, b1) in zip(covered, covered[1:]):
        assert b0 < a1  # consecutive contexts overlap: no sentence falls between two contexts
    assert make_contexts(segs, _options(context_min_seconds=0)) == []


def _options(**kw):
    from speechsearch.options import WindowOptions

    return WindowOptions(**kw)


def test_an_index_stores_contexts_and_search_uses_them(indexed):
    assert indexed._contexts() is not None and indexed._contexts().count() > 0
    hits = indexed.search("the customer's flight plans changed and they want their money back", k=3)
    assert hits and {"text", "context"} <= set(hits[0].scores)
    for h in hits:
        assert 0.0 <= h.score <= 1.0


def test_scores_are_calibrated_probabilities(indexed):
    """A query that names a call's problem scores above 0.5; one about nothing in the index
    scores well below it, whatever the index."""
    good = indexed.search("charged twice for the same order", k=1)[0]
    assert good.path.endswith("refund-call.mp3") and good.score > 0.5
    nonsense = indexed.search("volcanic eruption on a distant moon", k=1)
    assert not nonsense or nonsense[0].score < 0.3


def test_old_index_without_contexts_searches_and_reindex_adds_them(tmp_path):
    f = shutil.copy(CALL_FILES["refund"], tmp_path / "call.mp3")
    with Library(tmp_path / "old.idx", acoustic=False, windows={"context_min_seconds": 0}) as old:
        old.add(f)
        assert old._contexts() is None  # built without contexts: the signal is off
        hits = old.search("charged twice for the same order", k=1)
        assert hits and "context" not in hits[0].scores
    with Library(tmp_path / "old.idx", acoustic=False) as lib:
        assert lib._contexts() is None  # files added now would not be comparable: off until reindex
        lib.reindex()
        assert lib._contexts() is not None and lib._contexts().count() > 0
        hits = lib.search("charged twice for the same order", k=1)
        assert hits[0].path == str(f) and "context" in hits[0].scores
        lib.remove(f)
        assert lib._contexts().count() == 0  # removing a file removes its contexts


def test_metadata_filters_apply_to_contexts(tmp_path):
    a = shutil.copy(CALL_FILES["refund"], tmp_path / "a.mp3")
    b = shutil.copy(CALL_FILES["cancel_subscription"], tmp_path / "b.mp3")
    with Library(tmp_path / "f.idx", acoustic=False) as lib:
        lib.add(a, metadata={"queue": "billing"})
        lib.add(b, metadata={"queue": "retention"})
        hits = lib.search("charged twice for the same order", where={"queue": "retention"})
        assert hits and all(h.path == str(b) for h in hits)
        lib.update_metadata(a, {"queue": "retention"})
        hits = lib.search("charged twice for the same order", where={"queue": "retention"}, signals=("context",))
        assert hits and hits[0].path == str(a)


def test_fusion_options_are_checked_when_made():
    with pytest.raises(InvalidInputError, match="unknown signal"):
        FusionOptions(weights={"txet": 1.0})
    with pytest.raises(InvalidInputError, match=">= 0"):
        FusionOptions(weights={"text": -1.0})
    with pytest.raises(InvalidInputError, match="floors"):
        FusionOptions(floors={"lexical": 1.5})
    with pytest.raises(InvalidInputError, match="method"):
        FusionOptions(method="borda")


def test_logistic_fusion_floors_and_zero_weights():
    o = FusionOptions(weights={"text": 4.0, "lexical": 2.0, "acoustic": 0.0}, bias=-2.0, floors={"lexical": 0.5})
    ranked = dict(fuse({"text": {"a": 0.5, "b": 0.5}, "lexical": {"a": 0.4, "b": 0.9},
                        "acoustic": {"a": 1.0}}, o))
    assert ranked["a"] == pytest.approx(0.5)  # lexical under its floor adds nothing; acoustic is off
    assert ranked["b"] == pytest.approx(1 / (1 + pytest.importorskip("math").exp(-1.6)))
