"""Query benchmark: latency of a whole ``Library.search(query, k=10)`` call, and HNSW recall.

An index is filled with N synthetic rows (files of 100 windows each) through the library's own
commit path (``speechsearch.ingest.commit_file``), so the catalogue marks every file ready exactly
as ``add`` would. Vectors: 70 % are real MiniLM embeddings of varied generated sentences plus a
little Gaussian noise (cosine ~0.7-0.95 to their sentence, so they cluster like real windows),
30 % are random unit vectors. The window text is the sentence.

At each size, ~200 real text queries (none in the index) are timed after a warm-up, each query
running every pipeline in turn so that machine noise hits all of them alike:

  lib.search           the whole call: checks, one-thread MiniLM query embedding, Chroma queries of
                       the windows and of the context units (one per two windows, ~50 s each),
                       the windows the contexts cover (SQLite), BM25, fusion, ready-file filter,
                       collapse of overlaps
  encode_query         the library's query embedding alone
  store.query n=24     the library's Chroma query alone (precomputed vector)
  chroma.query         BASELINE: plain ``collection.query(n_results=10)``, precomputed vector
  MiniLM + chroma      what a hand-glued pipeline does: ``SentenceTransformer.encode`` (default
                       threads) + ``collection.query(n_results=10)``
  chroma defaults      ``collection.query`` on a second collection with Chroma's default HNSW
                       settings (cosine), same vectors

recall@10 is against exact brute-force search (numpy) with the same query vectors; for
lib.search it is the share of the exact top 10 among the returned hits.

    python benchmarks/query.py [--sizes 10000,100000] [--queries 200] [--json OUT]
"""
from __future__ import annotations

import argparse, itertools, json, os, random, shutil, statistics, tempfile, time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SEED = 20261125
PER_FILE = 100

WHO = ["The customer", "My manager", "The agent", "Our team", "The driver", "A caller", "The nurse", "The tenant",
       "The teacher", "Her brother", "The engineer", "The landlord", "The pharmacist", "The accountant", "My neighbour",
       "The support desk", "The courier", "The student", "The doctor", "The chef"]
DID = ["asked for a refund on", "complained about", "could not find", "wanted to cancel", "was charged twice for",
       "reported a problem with", "praised", "forgot the password for", "needs a replacement for", "is waiting for",
       "wants to upgrade", "explained the delay with", "signed the contract for", "lost the receipt for",
       "booked an appointment about", "read the manual for", "repaired", "argued about the price of",
       "sent an email about", "returned"]
WHAT = ["the broken washing machine", "a monthly subscription", "the late parcel", "the hotel booking",
        "an insurance claim", "the new laptop", "the electricity bill", "a flight to Chicago", "the rental car",
        "the kitchen renovation", "a prescription refill", "the school trip", "the mortgage application",
        "a concert ticket", "the software licence", "the heating system", "a gym membership", "the wedding catering",
        "the tax return", "a damaged sofa", "the online order", "the phone contract", "a lost credit card",
        "the parking permit", "the dentist visit"]
WHEN = ["yesterday", "last week", "this morning", "after the storm", "before the holidays", "on Monday",
        "for the third time", "without any notice", "during the meeting", "over the phone"]
QUERIES = ["customer wants money back", "someone angry about a bill", "package arrived late", "how do I reset my password",
           "cancel my plan", "problem with a delivery", "doctor appointment", "car hire booking", "heating not working",
           "double charge on credit card", "flight was delayed", "insurance will not pay", "order never arrived",
           "complaint about noise from neighbours", "renew my prescription", "price is too high", "thank you for the help",
           "school excursion permission", "home loan approval", "ticket for the show", "account is locked",
           "replacement part ordered", "receipt missing", "storm damage to the house", "talked to the manager",
           "licence key does not work", "upgrade to a bigger plan", "they repaired the machine", "food for the party",
           "paperwork for taxes", "sofa was damaged", "phone bill too expensive", "bank card stolen", "parking fine",
           "toothache", "the driver was rude", "waiting on hold for ages", "contract signed today", "email confirmation",
           "return the item"]
PREFIX = ["", "find where ", "moment when ", "call where ", "someone says ", "part about "]


def sentences(n: int, rng: random.Random) -> list:
    combos = list(itertools.product(WHO, DID, WHAT, WHEN))
    return [f"{a} {b} {c} {d}." for a, b, c, d in rng.sample(combos, n)]


def queries(n: int, rng: random.Random) -> list:
    calls = json.loads((ROOT / "tests/data/calls.json").read_text())["calls"]
    pool = [q for c in calls for q in c.get("example_queries", [])]
    pool += sorted({p + q for p in PREFIX for q in QUERIES} - set(pool))
    return rng.sample(pool, min(n, len(pool)))


def pct(xs: list, p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def recall(got: list, exact: np.ndarray, ids: list) -> float:
    want = {ids[i] for i in exact}
    return len(want & set(got)) / len(want)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000", help="index sizes in rows (windows), ascending")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--dir", help="where to build the indexes (default: a temporary folder, removed after)")
    ap.add_argument("--json", help="write all results here")
    ap.add_argument("--reuse", action="store_true",
                    help="time an index an earlier run left in --dir (one size) instead of building it")
    a = ap.parse_args()
    sizes = sorted(int(s) for s in a.sizes.split(","))

    import chromadb
    from chromadb.config import Settings
    from speechsearch import Library
    from speechsearch.ingest import Processed, commit_file
    from speechsearch.store import HNSW
    from speechsearch.types import Window

    rng = random.Random(SEED)
    nprng = np.random.default_rng(SEED)
    work = Path(a.dir or tempfile.mkdtemp(prefix="speechsearch-bench-"))
    lib = Library(work / "bench.idx", show_progress=False)
    lib._record_models()  # what add() does first
    models = lib._pipeline.models
    embedder = lib._pipeline.embedder
    catalog, store = lib._catalog, lib._store
    col = store.collection
    default_client = chromadb.PersistentClient(path=str(work / "defaults"), settings=Settings(anonymized_telemetry=False))
    dcol = default_client.get_or_create_collection("windows", embedding_function=None,
                                                   configuration={"hnsw": {"space": "cosine"}})
    print(f"index in {work}; library HNSW {HNSW}; load average {os.getloadavg()[0]:.2f}", flush=True)

    t = time.perf_counter()
    texts = sentences(3000, rng)
    base = embedder.encode(texts)
    print(f"embedded {len(texts)} sentences in {time.perf_counter() - t:.1f} s", flush=True)
    qtexts = queries(a.queries + a.warmup, rng)
    st_model = embedder.load()
    qvecs = np.stack([embedder.encode_query(q) for q in qtexts])

    all_vecs = np.zeros((0, 384), np.float32)
    all_ids: list = []
    results, builds = [], []
    n_files = 0
    if a.reuse:  # the vectors of the index already built in --dir, for exact recall
        for at in range(0, col.count(), 5000):
            page = col.get(include=["embeddings"], limit=5000, offset=at)
            all_ids += page["ids"]
            all_vecs = np.concatenate([all_vecs, np.asarray(page["embeddings"], np.float32)])
        sizes = [len(all_ids)]
        print(f"reusing {len(all_ids)} rows in {work}", flush=True)
    for size in sizes:
        t = time.perf_counter()
        while len(all_ids) < size:
            pick = nprng.integers(0, len(texts), PER_FILE)
            vecs = base[pick] + nprng.normal(0, 1, (PER_FILE, 384)).astype(np.float32) * \
                nprng.uniform(0.02, 0.06, (PER_FILE, 1)).astype(np.float32)
            rand = nprng.random(PER_FILE) < 0.3
            vecs[rand] = nprng.normal(0, 1, (int(rand.sum()), 384))
            vecs = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
            wins = [Window(i * 20.0, i * 20.0 + 24.0, texts[j]) for i, j in enumerate(pick)]
            # context units as ingest makes them: ~50 s each, overlapping, one per two windows
            ctx = [Window(i * 40.0, i * 40.0 + 64.0, " ".join(w.text for w in wins[2 * i:2 * i + 3]))
                   for i in range(PER_FILE // 2)]
            cvecs = np.stack([vecs[2 * i:2 * i + 3].mean(0) for i in range(PER_FILE // 2)])
            cvecs = (cvecs / np.linalg.norm(cvecs, axis=1, keepdims=True)).astype(np.float32)
            path, h = f"/bench/calls/{n_files:06d}.mp3", f"{n_files:032x}"
            commit_file(catalog, store, path, h, Processed(PER_FILE * 20.0 + 4, [], wins, vecs, "en", [],
                                                           contexts=ctx, context_vectors=cvecs),
                        {}, models, context_store=lib._contexts())
            ids = [r[0] for r in catalog.window_rows(path)]
            dcol.add(ids=ids, embeddings=vecs)
            all_vecs = np.concatenate([all_vecs, vecs])
            all_ids += ids
            n_files += 1
            if n_files % 100 == 0:
                print(f"  {len(all_ids)} rows, {time.perf_counter() - t:.0f} s", flush=True)
        build_s = time.perf_counter() - t
        if not a.reuse:
            builds.append({"rows": size, "seconds": build_s})
        assert len(lib) == size == col.count() == dcol.count(), (len(lib), size, col.count(), dcol.count())
        print(f"{size} rows (both collections) in {build_s:.0f} s; timing {a.queries} queries", flush=True)

        exact = [np.argpartition(-(all_vecs @ v), 10)[:10] for v in qvecs]
        lat: dict = {name: [] for name in ("lib.search", "encode_query", "store.query n=24", "chroma.query",
                                           "MiniLM + chroma", "chroma defaults")}
        rec: dict = {name: [] for name in ("lib.search", "chroma.query", "MiniLM + chroma", "chroma defaults")}
        for qi, (q, v) in enumerate(zip(qtexts, qvecs)):
            timed = qi >= a.warmup
            steps = [
                ("lib.search", lambda: [hh.id for hh in lib.search(q, k=10)]),
                ("encode_query", lambda: embedder.encode_query(q)),
                ("store.query n=24", lambda: store.query(v, n=24)),
                ("chroma.query", lambda: col.query(query_embeddings=[v], n_results=10)["ids"][0]),
                ("MiniLM + chroma", lambda: col.query(query_embeddings=st_model.encode([q]), n_results=10)["ids"][0]),
                ("chroma defaults", lambda: dcol.query(query_embeddings=[v], n_results=10)["ids"][0]),
            ]
            for name, fn in steps:
                t0 = time.perf_counter()
                out = fn()
                dt = (time.perf_counter() - t0) * 1000
                if timed:
                    lat[name].append(dt)
                    if name in rec:
                        rec[name].append(recall(out, exact[qi], all_ids))
        for name, xs in lat.items():
            r = statistics.mean(rec[name]) if rec.get(name) else None
            results.append({"rows": size, "pipeline": name, "p50_ms": pct(xs, 50), "p95_ms": pct(xs, 95), "recall@10": r})
            print(f"  {name:18s} p50 {pct(xs, 50):6.1f} ms  p95 {pct(xs, 95):6.1f} ms" +
                  (f"  recall@10 {r:.3f}" if r is not None else ""), flush=True)

    print(f"\n## Query latency, k=10, {a.queries} queries after {a.warmup} warm-up "
          f"(library HNSW: {HNSW}; load average {os.getloadavg()[0]:.2f})\n")
    print("| rows | pipeline | p50 ms | p95 ms | recall@10 |\n| ---: | --- | ---: | ---: | ---: |")
    for r in results:
        rc = f"{r['recall@10']:.3f}" if r["recall@10"] is not None else "-"
        print(f"| {r['rows']} | {r['pipeline']} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {rc} |")
    print("\nindex build (library commit path + default collection): " +
          ", ".join(f"{b['rows']} rows {b['seconds']:.0f} s" for b in builds))
    if a.json:
        Path(a.json).write_text(json.dumps({"hnsw": HNSW, "results": results, "builds": builds}, indent=1))
    lib.close()
    if not a.dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
