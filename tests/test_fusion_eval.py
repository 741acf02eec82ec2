"""Fusion and evaluation are pure functions: checked on hand-made scores and rankings."""

from __future__ import annotations

import json

import pytest

from speechsearch.evaluate import Metrics, judge, load_qrels
from speechsearch.fusion import FusionOptions, fuse, normalise
from speechsearch.types import Hit


def test_calibrated_fusion_blends_scaled_scores():
    o = FusionOptions(method="calibrated", weights={"text": 1.0, "lexical": 1.0},
                      scales={"text": (0.0, 1.0), "lexical": (0.0, 10.0)})
    ranked = fuse({"text": {"a": 0.9, "b": 0.5}, "lexical": {"b": 10.0}}, o)
    assert ranked == [("b", pytest.approx(0.75)), ("a", pytest.approx(0.45))]


def test_single_signal_keeps_its_own_order():
    scores = {"x": 0.2, "y": 0.8, "z": 0.5}
    for method in ("logistic", "calibrated", "minmax", "rrf"):
        ranked = fuse({"text": scores}, FusionOptions(method=method))
        assert [i for i, _ in ranked] == ["y", "z", "x"]


def test_rrf_ignores_scale_and_zero_weights_switch_signals_off():
    o = FusionOptions(method="rrf", weights={"text": 1.0, "acoustic": 1.0, "lexical": 0.0}, rrf_k=60)
    ranked = fuse({"text": {"a": 0.9, "b": 0.8}, "acoustic": {"b": 0.99, "a": 0.98},
                   "lexical": {"c": 100.0}}, o)
    assert {i for i, _ in ranked} == {"a", "b"}
    assert ranked[0][1] == pytest.approx(1 / 61 + 1 / 62)


def test_minmax_normalises_per_query():
    assert normalise({"a": 3.0, "b": 5.0, "c": 4.0}, "minmax", "lexical", FusionOptions()) == \
        {"a": 0.0, "b": 1.0, "c": 0.5}


def test_unknown_method_is_an_error():
    with pytest.raises(ValueError, match="rrf"):
        fuse({"text": {"a": 1.0}}, FusionOptions(method="borda"))


def _hit(path, score, start=0.0, end=10.0):
    return Hit(path, start, end, "t", score)


def test_judge_ranks_files_not_windows():
    q = {"id": "q", "type": "text", "kind": "intent",
         "relevant": [{"file": "/r1", "start": 12.0, "end": 14.0}, {"file": "/r2"}]}
    hits = [_hit("/x", 0.9), _hit("/x", 0.85, 20, 30), _hit("/r1", 0.8, 10, 20), _hit("/y", 0.7), _hit("/r2", 0.6)]
    o = judge(q, hits, "fused", 0.01)
    assert o.files == ["/x", "/r1", "/y", "/r2"]
    assert o.rr == 0.5 and o.recall == {1: 0.0, 5: 1.0, 10: 1.0}
    assert o.span_hit is True
    idcg = 1 + 1 / 1.584962500721156
    assert o.ndcg == pytest.approx((1 / 1.584962500721156 + 1 / 2.321928094887362) / idcg)
    m = Metrics.of([o], threshold=0.65)
    assert m.precision == pytest.approx(1 / 3) and m.recall == pytest.approx(0.5)


def test_span_miss_and_no_hit():
    q = {"id": "q", "type": "audio", "kind": "qbe", "relevant": [{"file": "/r", "start": 50.0, "end": 52.0}]}
    assert judge(q, [_hit("/r", 0.9, 0, 10)], "fused", 0).span_hit is False
    o = judge(q, [], "fused", 0)
    assert o.rr == 0 and o.span_hit is False and o.ndcg == 0


def test_load_qrels_resolves_paths_and_checks_queries(tmp_path):
    (tmp_path / "q.json").write_text(json.dumps({
        "files": [{"file": "a.wav"}],
        "queries": [{"id": "t", "type": "text", "query": "x", "relevant": [{"file": "b.wav"}]}]}))
    qrels = load_qrels(str(tmp_path / "q.json"))
    assert qrels.files == [str(tmp_path / "a.wav"), str(tmp_path / "b.wav")]
    (tmp_path / "bad.json").write_text(json.dumps({"queries": [{"id": "t", "type": "video", "relevant": []}]}))
    from speechsearch.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="type 'text' or 'audio'"):
        load_qrels(str(tmp_path / "bad.json"))


@pytest.mark.parametrize("method", ["logistic", "calibrated", "minmax", "rrf"])
def test_a_zero_weight_turns_its_signal_off_with_every_method(method):
    """A weight of 0 is off, not "unset": the signal neither adds candidates nor moves them."""
    on = FusionOptions(method=method, weights={"text": 1.0, "lexical": 1.0}, bias=0.0)
    off = FusionOptions(method=method, weights={"text": 1.0, "lexical": 0.0}, bias=0.0)
    scores = {"text": {"a": 0.6, "b": 0.5}, "lexical": {"b": 1.0, "c": 1.0}}
    assert {i for i, _ in fuse(scores, on)} == {"a", "b", "c"}
    assert [i for i, _ in fuse(scores, off)] == ["a", "b"]


@pytest.mark.parametrize("bad", [{"weights": {"text": -1.0}}, {"weights": {"txet": 1.0}}, {"method": "borda"},
                                 {"floors": {"lexical": 1.5}}, {"candidates": 0}, {"scales": {"text": (1,)}}])
def test_bad_fusion_options_are_invalid_input_when_made(bad):
    from speechsearch import InvalidInputError

    with pytest.raises(InvalidInputError):
        FusionOptions(**bad)
