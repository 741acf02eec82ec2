"""`Library.similar` and `Library.topics`: calls like this one, and what the calls are about.
Real index of the example calls (real Whisper transcripts, real MiniLM vectors)."""

from __future__ import annotations

import shutil

import numpy as np

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
            assert set(h.scores) == {"call", "neighbourhood", "moment"} and -1.0 <= h.scores["call"] <= 1.0
            assert -1.0 <= h.scores["neighbourhood"] <= 1.0 and h.score <= h.scores["call"] + 1.0
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
    assert hits[0].path == original and hits[0].scores["call"] > 0.8, [(h.path, h.scores) for h in hits]
    assert hits[0].score > hits[1].score + 0.2  # far more alike than the next call


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


class _Reads:
    """A real store that counts what is read from it (every call goes to the store)."""

    def __init__(self, store):
        self.store, self.all, self.paths = store, 0, []

    def iter_rows(self, *a, **k):
        self.all += 1
        return self.store.iter_rows(*a, **k)

    def get_where(self, where, embeddings=False):
        self.paths += list(where["path"]["$in"])
        return self.store.get_where(where, embeddings)


def test_call_vectors_follow_adds_and_removes_reading_only_the_changed_calls(indexed, monkeypatch):
    from speechsearch import recommend

    monkeypatch.setattr(recommend, "REBUILD", 1.0)  # five calls: any change is over the default share
    windows, contexts = _Reads(indexed._text_store()), _Reads(indexed._contexts())
    ready = indexed._catalog.ready([f.path for f in indexed.files()])
    late = next(p for p in ready if p.endswith("late-delivery-call.flac"))
    before = recommend.build(windows.store, contexts.store, None, {p: h for p, h in ready.items() if p != late})
    after = recommend.update(before, windows, contexts, ready)
    assert windows.all == contexts.all == 0 and windows.paths == contexts.paths == [late]  # only its rows read
    full = recommend.build(windows.store, contexts.store, None, ready)
    assert after.files == full.files and after.changed == 1 and sorted(after.window_ids) == sorted(full.window_ids)
    for f in before.files:  # the other calls' vectors do not move (frozen centroid)...
        assert np.allclose(after.vectors[after.index_of(f)], before.vectors[before.index_of(f)])
    # ...and the new call's is what a full build gives it, up to the centroid of one call fewer
    assert float(after.vectors[after.index_of(late)] @ full.vectors[full.index_of(late)]) > 0.9
    mine = after.window_file == after.index_of(late)
    assert mine.sum() == (full.window_file == full.index_of(late)).sum() > 0
    gone = recommend.update(after, windows, contexts, {p: h for p, h in ready.items() if p != late})
    assert late not in gone.files and not (set(gone.window_ids) - set(before.window_ids))
    assert np.allclose(gone.vectors, before.vectors) and gone.changed == 2
    monkeypatch.setattr(recommend, "REBUILD", 0.2)
    rebuilt = recommend.update(before, windows.store, contexts.store, ready)  # 1 of 4 calls: over 20 %
    assert rebuilt.changed == 0 and np.allclose(rebuilt.vectors, full.vectors)


def test_similar_and_topics_follow_the_index(indexed, tmp_path):
    target = tmp_path / "follow.idx"
    shutil.copytree(indexed.path, target)
    with Library(target) as lib:
        paths = sorted(f.path for f in lib.files())
        late = next(p for p in paths if p.endswith("late-delivery-call.flac"))
        other = next(p for p in paths if p != late)
        assert late in {h.path for h in lib.similar(other, k=10)}
        lib.remove(late)
        assert late not in {h.path for h in lib.similar(other, k=10)}
        assert late not in {f for t in lib.topics() for f in t.files}
        lib.add(late)
        assert late in {h.path for h in lib.similar(other, k=10)}
        assert sorted(f for t in lib.topics() for f in t.files) == paths


def test_a_call_close_to_every_call_does_not_top_every_list():
    """Eight calls in four pairs and a ninth that is the mean of them all (a long call that says
    a bit of everything): by plain cosine it is most calls' nearest; `neighbours` discounts each
    call's usual closeness to its nearest calls, so the partners come back."""
    from speechsearch.recommend import CallIndex, _unit, neighbours

    rng = np.random.default_rng(0)
    centres = _unit(rng.normal(size=(4, 32)))
    calls = _unit(np.repeat(centres, 2, 0) + 1.2 * _unit(rng.normal(size=(8, 32))))
    V = np.vstack([calls, _unit(calls.sum(0))]).astype(np.float32)
    index = CallIndex([f"call-{i}" for i in range(9)], V, np.zeros(32, np.float32))
    plain = [int(np.argsort(-(V @ V[a]))[1]) for a in range(8)]
    ranked = [neighbours(index, V[a], 8, exclude=a) for a in range(8)]
    first = [r[0][0] for r in ranked]
    assert plain.count(8) >= 5 and first.count(8) <= 3
    assert sum(f == a ^ 1 for a, f in enumerate(first)) > sum(p == a ^ 1 for a, p in enumerate(plain))
    for a, r in enumerate(ranked):  # the score ranks; the cosine is given beside it
        assert [s for _, s, _ in r] == sorted((s for _, s, _ in r), reverse=True)
        assert all(abs(c - float(V[i] @ V[a])) < 1e-5 for i, _, c in r)


def test_ready_answers_for_more_files_than_sqlite_binds_at_once(tmp_path):
    """`similar` and `topics` ask the catalogue which of all its files are ready; SQLite binds at
    most 32,766 values a statement, and an index of call-centre calls passes that."""
    from speechsearch.catalog import Catalog

    catalog = Catalog(tmp_path / "catalog.sqlite3")
    paths = [f"/calls/{n:06d}.mp3" for n in range(40000)]
    with catalog._db:  # setup: 40,000 indexed files in one transaction
        catalog._db.executemany("INSERT INTO files(path, hash, status, added_at) VALUES (?, ?, 'ready', 0)",
                                [(p, f"h{n}") for n, p in enumerate(paths)])
    import sqlite3

    # Debian's SQLite allows 250,000; the usual build (python.org, macOS) 32,766: test with that
    catalog._read().setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32766)
    ready = catalog.ready(paths + ["/calls/not-indexed.mp3"])
    assert len(ready) == 40000 and ready["/calls/039999.mp3"] == "h39999"
    catalog.close()


def test_topics_keep_two_reasons_of_one_domain_apart():
    """Five domains, two reasons to call in each, four calls per reason: the best silhouette cuts
    at the domains (5); topics are the reasons, so `cluster` takes the most groups whose
    silhouette is near the best one's."""
    from sklearn.metrics import normalized_mutual_info_score

    from speechsearch.recommend import _unit, cluster

    rng = np.random.default_rng(0)
    domains = _unit(rng.normal(size=(5, 64)))
    reasons = _unit(np.repeat(domains, 2, 0) + 0.55 * _unit(rng.normal(size=(10, 64))))
    calls = _unit(np.repeat(reasons, 4, 0) + 0.35 * _unit(rng.normal(size=(40, 64)))).astype(np.float32)
    labels, tried = cluster(calls)
    assert max(tried, key=tried.get) == 5  # the domains score best...
    assert 10 <= len(set(labels.tolist())) <= 12  # ...and the reasons are kept apart
    assert normalized_mutual_info_score(np.repeat(np.arange(10), 4), labels) > 0.9
    assert (cluster(calls)[0] == labels).all()  # the same calls give the same topics


class _Counting:
    """The second text model, counting what it is asked to embed."""

    def __init__(self, embedder):
        self.embedder, self.texts = embedder, []

    def encode(self, texts, *a, **k):
        self.texts += list(texts)
        return self.embedder.encode(texts, *a, **k)


def _rows(lib):
    return lib._catalog._read().execute("SELECT model, id, path FROM unit_vectors").fetchall()


def test_call_vectors_join_a_second_model_embedded_once_per_unit(indexed, tmp_path):
    """Call vectors join the index model's (MiniLM) with all-mpnet-base-v2's; mpnet embeds each
    window and context unit once, keeps it in the index, and follows removes and adds."""
    target = tmp_path / "second.idx"
    shutil.copytree(indexed.path, target)
    with Library(target) as lib:
        paths = sorted(f.path for f in lib.files())
        late = next(p for p in paths if p.endswith("late-delivery-call.flac"))
        with lib._catalog._db:  # as if similar() had never been asked here (the shared index may have been)
            lib._catalog._db.execute("DELETE FROM unit_vectors")
        units = lib._text_store().count() + lib._contexts().count()
        spy = _Counting(lib._call_embedder())
        lib._second_embedder = (lib._second_embedder[0], spy)
        first = lib.similar(paths[0], k=3)
        index, _ = lib._calls(None, None)
        assert index.second is not None and index.vectors.shape[1] == 384 + 768
        assert np.allclose(np.linalg.norm(index.vectors, axis=1), 1.0, atol=1e-5)
        assert len(spy.texts) == units == len(_rows(lib))  # every unit once...
        some = spy.texts[:3]
        kept = lib._catalog.unit_vectors("all-mpnet-base-v2:windows", index.window_ids[:3])
        fresh = np.asarray(spy.embedder.encode(some))
        for i, v in zip(index.window_ids[:3], fresh):  # ...kept (float16) as the model gives it (INT8
            # results move a little with what else is in the batch)
            assert float(kept[i] @ v) / (np.linalg.norm(kept[i]) * np.linalg.norm(v)) > 0.99
    with Library(target) as lib:  # another process: nothing embedded again, the same neighbours
        spy = _Counting(lib._call_embedder())
        lib._second_embedder = (lib._second_embedder[0], spy)
        assert [(h.path, h.score) for h in lib.similar(paths[0], k=3)] == [(h.path, h.score) for h in first]
        assert spy.texts == []
        lib.remove(late)
        assert late not in {p for _, _, p in _rows(lib)} and len(lib.topics()) >= 1
        assert spy.texts == []
        lib.add(late)  # similar() has been used here: the add embeds the new call's units...
        late_units = sum(1 for _, _, p in _rows(lib) if p == late)
        assert 0 < len(spy.texts) == late_units < units  # ...and only its units
        assert late in {h.path for h in lib.similar(paths[0], k=5)} and len(spy.texts) == late_units


def test_without_the_second_model_call_vectors_are_the_index_models(indexed, tmp_path, monkeypatch):
    """With mpnet's weights not installed, similar and topics work on the index model alone."""
    from speechsearch.embed import onnx_text

    monkeypatch.setattr(onnx_text, "is_installed", lambda name: False)
    with Library(indexed.path) as lib:
        assert lib._call_embedder() is None
        index, _ = lib._calls(None, None)
        assert index.second is None and index.vectors.shape[1] == 384
        call = next(f.path for f in lib.files())
        assert lib.similar(call, k=2) and lib.topics()


def test_an_interrupted_first_embedding_keeps_what_it_finished(indexed, tmp_path, monkeypatch):
    """The first similar() on a big index embeds every unit with the second model (minutes); it
    keeps them a batch at a time, so an interruption loses one batch at most."""
    from speechsearch import recommend

    target = tmp_path / "interrupted.idx"
    shutil.copytree(indexed.path, target)
    monkeypatch.setattr(recommend.Reembedded, "BATCH", 4)
    with Library(target) as lib:
        with lib._catalog._db:
            lib._catalog._db.execute("DELETE FROM unit_vectors")
        real = lib._call_embedder()

        class Stops:
            calls = 0

            def encode(self, texts, *a, **k):
                Stops.calls += 1
                if Stops.calls == 3:
                    raise KeyboardInterrupt  # the user gives up during the third batch
                return real.encode(texts, *a, **k)

        lib._second_embedder = (lib._second_embedder[0], Stops())
        call = next(f.path for f in lib.files())
        with pytest.raises(KeyboardInterrupt):
            lib.similar(call, k=2)
        assert len(_rows(lib)) == 8  # two batches of 4 kept
        spy = _Counting(real)
        lib._second_embedder = (lib._second_embedder[0], spy)
        assert lib.similar(call, k=2)
        units = lib._text_store().count() + lib._contexts().count()
        assert len(spy.texts) == units - 8 and len(_rows(lib)) == units  # only the rest embedded


def test_topic_names_survive_a_few_calls_added_or_removed():
    """A group keeps the name of the remembered topic that holds most of its calls (and most of
    whose present calls it holds); a name goes to one group only; a group that is mostly new
    calls, or split from a bigger topic, gets its fresh label, made unique."""
    from speechsearch.recommend import keep_names

    memory = {"names": ["billing / refund", "delivery / late", "login / password"],
              "files": {"a1": 0, "a2": 0, "a3": 0, "b1": 1, "b2": 1, "b3": 1, "b4": 1, "c1": 2, "c2": 2}}
    groups = [["a1", "a2", "a3", "new1"],  # the billing calls and one new one: keeps its name
              ["b1", "b2", "new2", "new3", "new4"],  # half of delivery and more new: keeps it (2 of 2 known)
              ["b3", "b4"],  # the other half of delivery: the name is taken, fresh label
              ["c1", "new5", "new6"],  # one of login's two present calls: not a majority of them
              ["x1", "x2", "c2"]]  # new calls and login's other one
    fresh = ["refund / charged", "parcel / courier", "billing / refund", "password / reset", "router / slow"]
    names = keep_names(groups, fresh, memory)
    assert names[0] == "billing / refund"
    assert names[2] != "billing / refund" and names[2].startswith("billing / refund")  # unique
    assert names[3] == "password / reset" and names[4] == "router / slow"
    assert len(set(names)) == len(names)
    # delivery's 4 calls split 2 / 2: neither half holds more than half of them
    assert names[1] == "parcel / courier"
    assert keep_names(groups, fresh, None) == fresh
    assert keep_names(groups, fresh, ["not", "a", "memory"]) == fresh  # a damaged memory is ignored
    # login's calls back together with a new one: the name comes back
    assert keep_names([["c1", "c2", "n"], ["a1"]], ["sign in / code", "refund"], memory)[0] == "login / password"


def test_topics_keep_their_names_when_a_call_is_removed_and_added(indexed, tmp_path):
    target = tmp_path / "names.idx"
    shutil.copytree(indexed.path, target)
    with Library(target) as lib:
        first = lib.topics(n=2)
        big = first[0]
        gone = big.files[-1]
        lib.remove(gone)
        after = lib.topics(n=2)
        assert any(t.label == big.label and set(t.files) == set(big.files) - {gone} for t in after)
        lib.add(gone)
        back = lib.topics(n=2)
        assert [(t.label, sorted(t.files)) for t in back] == [(t.label, sorted(t.files)) for t in first]
    with Library(target) as lib:  # another process: the names are kept in the index
        assert [t.label for t in lib.topics(n=2)] == [t.label for t in first]
