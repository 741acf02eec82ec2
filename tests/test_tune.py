"""`Library.tune`: fusion weights learned from labelled queries, measured on held-out ones, kept
in the index, undone by `untune`; bad labels refused before anything runs. Real index (a copy
of the session's index of the example calls), real models."""

from __future__ import annotations

import json
import shutil

import pytest

from speechsearch import InvalidInputError, Library
from speechsearch.fusion import FusionOptions
from speechsearch.tune import NOISE, decide, split

from conftest import DATA


@pytest.fixture
def copy(indexed, tmp_path):
    """A copy of the session index (tuning writes to it) and labels for its four calls."""
    target = tmp_path / "tuned.idx"
    shutil.copytree(indexed.path, target)
    calls = json.loads((DATA / "calls.json").read_text())["calls"]
    folder = indexed.folder
    files = [{"file": str(folder / c["file"].split("/")[-1]), "intent": c["intent"]} for c in calls]
    queries = [{"id": f"{c['intent']}-{n}", "type": "text", "kind": "intent", "query": q,
                "relevant": [{"file": str(folder / c["file"].split("/")[-1])}]}
               for c in calls for n, q in enumerate(c["example_queries"])]
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"files": files, "queries": queries}))
    lib = Library(target)
    yield lib, labels, queries
    lib.close()


def test_tune_fits_measures_applies_and_untunes(copy):
    lib, labels, queries = copy
    defaults = lib.fusion
    report = lib.tune(labels, holdout=0.3, seed=1, text=False, acoustic=False)
    assert not report.text and report.train_queries == 8 and report.heldout_queries == 4
    assert set(report.before) == set(report.after) == {"text", "text/intent"}
    assert report.before["text"]["queries"] == 4 and 0 <= report.after["text"]["mrr"] <= 1
    assert report.labels_sha256 and report.settings["C"] in (1.0, 10.0, 100.0)
    assert set(report.weights) >= {"text", "context", "lexical"} and report.weights["exact"] == 4.0
    assert report.applied, report.summary()  # these calls are easy: no held-out type gets worse
    assert lib.fusion.weights == report.weights and lib.fusion.bias == report.bias
    assert lib.fusion.audio_weights == defaults.audio_weights  # query by example is not tuned
    with Library(lib.path) as again:  # kept in the index: another process opening it uses them
        assert again.fusion.weights == report.weights
        for q in queries:
            assert again.search(q["query"], k=1)[0].path == q["relevant"][0]["file"], q
    with Library(lib.path, fusion=FusionOptions()) as given:  # fusion= given wins
        assert given.fusion.weights == FusionOptions().weights
    assert lib.info()["tuned"]["fusion"] and lib.info()["tuned"]["text"] is None  # shown by the web page
    history = lib.tuned()
    assert len(history) == 1 and history[0]["applied"] and history[0]["labels_sha256"] == report.labels_sha256
    assert "held-out" in report.summary()
    back = lib.untune()
    assert back.weights == defaults.weights and back.bias == defaults.bias
    with Library(lib.path) as again:
        assert again.fusion.weights == defaults.weights
    assert lib.tuned()[-1]["untune"] is True
    assert lib.info()["tuned"] is None
    with pytest.raises(InvalidInputError, match="no tune to undo"):
        lib.untune()


def test_holding_out_whole_intents(copy):
    lib, labels, _ = copy
    train, held = split(json.loads(labels.read_text())["queries"], 0.25, 0,
                        lambda q: q["id"].rsplit("-", 1)[0])
    assert {q["id"].rsplit("-", 1)[0] for q in train}.isdisjoint({q["id"].rsplit("-", 1)[0] for q in held})
    report = lib.tune(labels, holdout=0.25, holdout_groups="intent", text=False, acoustic=False)
    assert report.heldout_queries == 3 and report.train_queries == 9  # one intent of four, whole


def test_a_tune_that_hurts_is_not_applied():
    before = {"text": {"mrr": 0.80}, "text/intent": {"mrr": 0.70}, "text/fact": {"mrr": 0.90}}
    worse = {"text": {"mrr": 0.82}, "text/intent": {"mrr": 0.75}, "text/fact": {"mrr": 0.90 - NOISE - 0.01}}
    applied, reason = decide(before, worse)
    assert not applied and "text/fact" in reason
    applied, reason = decide(before, dict(worse, **{"text/fact": {"mrr": 0.89}}))
    assert applied and "0.800 -> 0.820" in reason


def _labels(path, queries, files=()):
    path.write_text(json.dumps({"files": list(files), "queries": queries}))
    return path


def test_bad_labels_are_refused_before_anything_runs(copy, tmp_path):
    lib, labels, queries = copy
    missing = [dict(q) for q in queries]
    missing[4] = dict(missing[4], relevant=[{"file": str(tmp_path / "nowhere.mp3")}])
    with pytest.raises(InvalidInputError, match=f"{missing[4]['id']}.*not indexed"):
        lib.tune(_labels(tmp_path / "missing.json", missing))
    outside = [dict(q) for q in queries]
    outside[2] = dict(outside[2], relevant=[dict(outside[2]["relevant"][0], start=500.0, end=510.0)])
    with pytest.raises(InvalidInputError, match=f"{outside[2]['id']}.*outside"):
        lib.tune(_labels(tmp_path / "outside.json", outside))
    with pytest.raises(InvalidInputError, match="at least 6"):
        lib.tune(_labels(tmp_path / "few.json", queries[:4]))
    with pytest.raises(InvalidInputError, match="type 'text' or 'audio'"):
        lib.tune(_labels(tmp_path / "kind.json", [dict(queries[0], type="video")] + queries[1:]))
    with pytest.raises(InvalidInputError, match="holdout"):
        lib.tune(labels, holdout=0.9)
    assert lib.tuned() == [] and not (lib.path / "models").exists() and lib.fusion.weights == FusionOptions.fitted("all-MiniLM-L6-v2").weights


@pytest.mark.parametrize("verdict,fusion", [(True, False), (False, False), (True, True)])
def test_text_model_fine_tuned_switched_to_and_undone(copy, monkeypatch, verdict, fusion):
    """The text model is fine-tuned on the training queries (real training, real re-embedding of
    every window); the index switches to it only when the held-out check says so (forced here
    both ways, so that each path is exercised), and untune goes back."""
    import speechsearch.tune as tuning

    lib, labels, queries = copy
    decide = tuning.decide
    seen = {}

    def forced(before, after):
        seen["real"] = decide(before, after)
        return verdict, "forced by the test"

    monkeypatch.setattr(tuning, "decide", forced)
    count = len(lib)
    report = lib.tune(labels, holdout=0.3, seed=1, fusion=fusion, acoustic=False)
    t = report.text
    assert t["triplets"] >= 8 and len(t["losses"]) == 3 and t["losses"][-1] < t["losses"][0]
    assert set(t["before"]) == set(t["after"]) == {"text", "text/intent"} and "real" in seen
    models = lib.path / "models"
    if not verdict:  # the index keeps its model and collections; the trained one is deleted
        assert lib.info()["models"]["text_model"] == "all-MiniLM-L6-v2" and not list(models.glob("text-*"))
        assert len(lib) == count and lib.search(queries[0]["query"], k=1)
        with pytest.raises(InvalidInputError, match="no tune to undo"):
            lib.untune()
        return
    tuned_model = t["model"]
    assert tuned_model and (models / "text-1" / "config.json").exists()
    assert lib.info()["models"]["text_model"] == tuned_model and lib._text_store().count() == count
    if fusion:  # weights fitted for the new model's scores, judged with it, kept with it
        assert report.applied and t["fusion"]["weights"] == report.weights == dict(lib.fusion.weights)
    with Library(lib.path) as again:  # the tuned model is what the index now opens with
        assert again._pipeline.embedder.model_name == tuned_model
        assert dict(again.fusion.weights) == dict(lib.fusion.weights)
        hits = again.search(queries[0]["query"], k=1)
        assert hits and hits[0].path == queries[0]["relevant"][0]["file"]
    moved = lib.path.parent / "moved.idx"  # a copy elsewhere uses its own copy of the tuned model
    shutil.copytree(lib.path, moved, ignore=shutil.ignore_patterns("*.lock"))
    (models / "text-1").rename(models / "text-1-away")
    try:
        with Library(moved) as elsewhere:
            assert elsewhere._pipeline.embedder.model_name == str(moved / "models" / "text-1")
            assert dict(elsewhere.fusion.weights) == dict(lib.fusion.weights)
            hits = elsewhere.search(queries[0]["query"], k=1)
            assert hits and hits[0].path == queries[0]["relevant"][0]["file"]
    finally:
        (models / "text-1-away").rename(models / "text-1")
    back = lib.untune()
    assert lib.info()["models"]["text_model"] == "all-MiniLM-L6-v2" and not (models / "text-1").exists()
    assert dict(back.weights) == dict(FusionOptions.fitted("all-MiniLM-L6-v2").weights)
    assert lib._text_store().count() == count and lib.search(queries[0]["query"], k=1)
