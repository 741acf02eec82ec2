"""The vector store's contract, held by both backends: embedded Chroma in the index directory and
a real Chroma server (`chroma run`, the `chroma_server` fixture in conftest.py). Real text vectors
(MiniLM on real sentences), our metadata and where-filters; then a Library round trip on each
backend with the same real call, which must rank and score the same."""

from __future__ import annotations

import shutil
import uuid

import numpy as np
import pytest

from speechsearch import Library
from speechsearch.embed.text import TextEmbedder
from speechsearch.errors import InvalidInputError, StoreError
from speechsearch.store import ChromaServer, ChromaStore, collection_prefix

from conftest import CALL_FILES, free_port

SENTENCES = [
    ("a.mp3", 0.0, "I was charged twice for the same order and I want a refund.", {"agent": "A12", "priority": 2}),
    ("a.mp3", 12.5, "The second charge should be reversed within five business days.", {"agent": "A12", "priority": 2}),
    ("b.mp3", 0.0, "My account is locked after too many password attempts.", {"agent": "B7", "priority": 1}),
    ("b.mp3", 9.0, "I reset the password and sent a verification code to your phone.", {"agent": "B7", "priority": 1}),
    ("c.mp3", 3.0, "The parcel was supposed to arrive on Monday but it is still missing.",
     {"agent": "A12", "priority": 3}),
]


@pytest.fixture(scope="module")
def embedder():
    return TextEmbedder()


@pytest.fixture(params=["embedded", "server"])
def backend(request):
    """None for the embedded store, else the URL of the real Chroma server."""
    return None if request.param == "embedded" else request.getfixturevalue("chroma_server")


def make_store(tmp_path, url, collection="windows"):
    server = ChromaServer.parse(url) if url else None
    prefix = collection_prefix(uuid.uuid4().hex) if server else ""
    return ChromaStore(tmp_path / "chroma", collection=collection, server=server, prefix=prefix)


@pytest.fixture
def filled(tmp_path, backend, embedder):
    store = make_store(tmp_path, backend)
    vectors = embedder.encode([s[2] for s in SENTENCES])
    ids = [f"w{i}" for i in range(len(SENTENCES))]
    metas = [dict(path=f"/calls/{p}", file_hash="h-" + p, start=start, end=start + 10.0, channel=0,
                  asr_model="tiny.en", text_model="all-MiniLM-L6-v2", **user)
             for p, start, _, user in SENTENCES]
    store.upsert(ids, vectors, [s[2] for s in SENTENCES], metas)
    yield store, ids, vectors
    store.drop()


def test_upsert_count_and_query(filled, embedder):
    store, ids, vectors = filled
    assert store.count() == 5
    hits = store.query(embedder.encode_query("refund for a double charge"), n=3)
    assert hits[0].id == "w0" and hits[0].metadata["path"] == "/calls/a.mp3"
    assert hits[0].text.startswith("I was charged twice")
    assert [h.distance for h in hits] == sorted(h.distance for h in hits)
    exact = store.query(vectors[3], n=1)[0]
    assert exact.id == "w3" and exact.distance == pytest.approx(0.0, abs=1e-5)
    store.upsert(["w0"], vectors[:1], [SENTENCES[0][2]], [dict(path="/calls/a.mp3", start=0.0, end=10.0)])
    assert store.count() == 5  # upsert replaces, never duplicates


def test_where_filters_on_our_metadata(filled, embedder):
    store, _, _ = filled
    q = embedder.encode_query("password problems")
    assert {h.id for h in store.query(q, n=5, where={"agent": "A12"})} == {"w0", "w1", "w4"}
    assert {h.id for h in store.query(q, n=5, where={"path": "/calls/b.mp3"})} == {"w2", "w3"}
    got = store.query(q, n=5, where={"$and": [{"priority": {"$gte": 2}}, {"start": {"$lt": 5.0}}]})
    assert {h.id for h in got} == {"w0", "w4"}
    assert {h.id for h in store.query(q, n=5, where={"path": {"$in": ["/calls/b.mp3", "/calls/c.mp3"]}})} \
        == {"w2", "w3", "w4"}
    assert store.query(q, n=5, where={"agent": "nobody"}) == []


def test_get_and_get_where(filled):
    store, _, vectors = filled
    rows = store.get(["w1", "w2", "missing"], embeddings=True)
    assert set(rows) == {"w1", "w2"}
    row, vec = rows["w2"]
    assert row.metadata["agent"] == "B7" and row.text.startswith("My account is locked")
    np.testing.assert_allclose(vec, vectors[2], atol=1e-6)
    assert set(store.get(["w1", "w2"], where={"agent": "A12"})) == {"w1"}
    assert store.get([]) == {}
    found = store.get_where({"path": "/calls/b.mp3"}, embeddings=True)
    assert sorted(r.id for r, _ in found) == ["w2", "w3"] and all(v.shape == (384,) for _, v in found)
    assert sorted(r.id for r, v in store.get_where({"start": {"$gt": 5.0}})) == ["w1", "w3"]


def test_update_metadata_delete_path_and_drop(filled, embedder):
    store, _, _ = filled
    store.update_metadata(["w2", "w3"], [dict(path="/calls/b.mp3", start=0.0, end=10.0, agent="C3"),
                                          dict(path="/calls/b.mp3", start=9.0, end=19.0, agent="C3")])
    assert {h.id for h in store.query(embedder.encode_query("locked"), n=5, where={"agent": "C3"})} == {"w2", "w3"}
    store.delete_path("/calls/b.mp3")
    assert store.count() == 3 and store.get(["w2", "w3"]) == {}
    store.delete_path("/calls/never-indexed.mp3")  # nothing to delete is fine
    assert store.count() == 3
    store.drop()
    assert store.count() == 0  # a dropped collection comes back empty on next use


def test_collections_of_two_indexes_do_not_mix(tmp_path, backend, embedder):
    a, b = make_store(tmp_path / "a", backend), make_store(tmp_path / "b", backend)
    vec = embedder.encode(["one sentence"])
    a.upsert(["x"], vec, ["one sentence"], [{"path": "/a"}])
    try:
        assert a.count() == 1 and b.count() == 0
    finally:
        a.drop()
        b.drop()


# -- the Library on both backends ---------------------------------------------------------------
@pytest.fixture(scope="module")
def call(tmp_path_factory):
    folder = tmp_path_factory.mktemp("contract-audio")
    return shutil.copy(CALL_FILES["refund"], folder / "refund.mp3")


@pytest.fixture(scope="module")
def embedded_lib(tmp_path_factory, call):
    lib = Library(tmp_path_factory.mktemp("contract") / "embedded.idx", chroma_url="")
    assert lib.add(call).ok
    yield lib
    lib.close()


QUERIES = ["charged twice for the same purchase", "how long until the money is back", "thank you for calling"]


def test_library_round_trip_on_a_server_matches_embedded(tmp_path, chroma_server, call, embedded_lib):
    index = tmp_path / "server.idx"
    with Library(index, chroma_url=chroma_server) as lib:
        report = lib.add(call)
        assert report.ok and len(report.added) == 1, report.summary()
        assert lib.info()["store"] == chroma_server
        assert lib._store.name.startswith("ss-") and lib._store.name.endswith("-windows")
        assert not (index / "chroma").exists()  # no vectors in the directory, only the catalogue
        assert len(lib) == len(embedded_lib) == lib._store.count() > 1
        for q in QUERIES:
            got, want = lib.search(q, k=5), embedded_lib.search(q, k=5)
            assert [(h.path, h.start, h.end) for h in got] == [(h.path, h.start, h.end) for h in want], q
            for g, w in zip(got, want):
                assert g.score == pytest.approx(w.score, abs=1e-4)
                assert set(g.scores) == set(w.scores)
                for name in g.scores:
                    assert g.scores[name] == pytest.approx(w.scores[name], abs=1e-4), (q, name)
        # a second index on the same server keeps its own collections
        with Library(tmp_path / "other.idx", chroma_url=chroma_server) as other:
            assert other._store.name != lib._store.name and other.search("refund") == []

    # reopened: with the same server (another spelling of localhost too), and wrongly
    port = ChromaServer.parse(chroma_server).port
    with Library(index, chroma_url=f"http://localhost:{port}") as again:
        assert again.search(QUERIES[0], k=1)[0].path == str(call)
    with pytest.raises(InvalidInputError, match=f"on the Chroma server at {chroma_server}; open it with "
                                                f"chroma_url='{chroma_server}'"):
        Library(index)
    with pytest.raises(InvalidInputError, match=f"--chroma-url {chroma_server}"):
        Library(index, chroma_url="http://127.0.0.1:1")
    with pytest.raises(InvalidInputError, match="embedded Chroma"):
        Library(embedded_lib.path, chroma_url=chroma_server)

    with Library(index, chroma_url=chroma_server) as lib:
        assert lib.remove(call) == 1
        assert lib.files() == [] and lib._store.count() == 0 and lib._acoustic_store.count() == 0
        assert lib.search(QUERIES[0]) == []


def test_reindex_on_a_server_swaps_collections(tmp_path, chroma_server, call):
    import chromadb

    with Library(tmp_path / "r.idx", chroma_url=chroma_server) as lib:
        lib.add(call)
        before = lib.search(QUERIES[0], k=1)[0]
        old = lib._store.name
        assert lib.reindex() == len(lib)
        assert lib._store.name == old.replace("-windows", "-windows-1")
        after = lib.search(QUERIES[0], k=1)[0]
        assert (after.path, after.start) == (before.path, before.start)
        assert after.score == pytest.approx(before.score, abs=1e-4)
        server = ChromaServer.parse(chroma_server)
        names = {c.name for c in chromadb.HttpClient(host=server.host, port=server.port).list_collections()}
        assert lib._store.name in names and old not in names
        lib.remove(call)


def test_a_server_that_is_down_is_a_clear_error(tmp_path, call):
    url = f"http://127.0.0.1:{free_port()}"
    lib = Library(tmp_path / "down.idx", chroma_url=url)  # opening touches only the catalogue
    with pytest.raises(StoreError, match=rf"cannot reach the Chroma server at {url} .*start it with: "
                                         rf"chroma run --path DIR --host 127.0.0.1 --port {url.rsplit(':', 1)[1]}"):
        lib.add(call)
    assert lib.files() == []
    lib.close()


@pytest.mark.parametrize("url, message", [("127.0.0.1:8000", "expected http://HOST:PORT"),
                                          ("ftp://host:1", "expected http://HOST:PORT"),
                                          ("http://host:99999", "port"),
                                          ("http://host:1/some/path", "only scheme, host, port"),
                                          ("http://host:1/?token=x", "unknown parameter")])
def test_bad_urls_are_refused(tmp_path, url, message):
    with pytest.raises(InvalidInputError, match=message):
        Library(tmp_path / "bad.idx", chroma_url=url)


def test_url_normalisation():
    s = ChromaServer.parse("HTTPS://Chroma.Example:9443/?database=calls")
    assert s.url == "https://chroma.example:9443/?database=calls" and s.ssl and s.tenant == "default_tenant"
    assert ChromaServer.parse("http://localhost").url == "http://localhost:8000"
    assert ChromaServer.parse("http://127.0.0.1:8000").same_server(ChromaServer.parse("http://localhost:8000"))
    assert not ChromaServer.parse("http://127.0.0.1:8000").same_server(ChromaServer.parse("http://127.0.0.1:8001"))
