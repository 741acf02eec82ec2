"""Similar calls and topics against the calls' known intents, with the naive baseline in the same run.

    python benchmarks/recommend.py --index DIR --qrels benchmarks/devset/qrels.json [--json OUT]
    python benchmarks/recommend.py --scale 10000        # topics() time on 10,000 synthetic calls

For every call with an intent (`files[].intent` of the qrels), `Library.similar(call)` ranks the
other files; precision@1 and @3 count same-intent calls. `Library.topics()` groups the calls (the
number chosen by the library, and the true number given as `n=`); NMI and purity against the
intents. The naive baseline: one all-MiniLM-L6-v2 vector per call, the mean of its transcript
segments' vectors, cosine neighbours, k-means with the true number of intents.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from speechsearch import Library  # noqa: E402


def intents(qrels: str) -> dict:
    q = json.load(open(qrels))
    root = os.path.dirname(os.path.abspath(qrels))
    return {os.path.abspath(os.path.join(root, f["file"])): f["intent"] for f in q["files"]
            if f.get("intent") and f.get("kind", "call") == "call"}


def precision(ranked: dict, truth: dict) -> tuple:
    p1 = p3 = 0.0
    for a, order in ranked.items():
        p1 += truth.get(order[0]) == truth[a] if order else 0
        p3 += sum(truth.get(f) == truth[a] for f in order[:3]) / 3
    return round(p1 / len(ranked), 3), round(p3 / len(ranked), 3)


def agreement(labels: dict, truth: dict) -> tuple:
    from sklearn.metrics import normalized_mutual_info_score

    files = sorted(truth)
    a = [labels[f] for f in files]
    b = [truth[f] for f in files]
    purity = sum(max(sum(1 for x, y in zip(a, b) if x == c and y == t) for t in set(b)) for c in set(a)) / len(a)
    return round(float(normalized_mutual_info_score(b, a)), 3), round(purity, 3)


def run(index: str, qrels: str) -> dict:
    from sklearn.cluster import KMeans

    truth = intents(qrels)
    lib = Library(index)
    files = [f.path for f in lib.files()]
    calls = [f for f in files if f in truth]
    truth = {f: truth[f] for f in calls}
    n_true = len(set(truth.values()))
    out = {"index": index, "calls": len(calls), "files": len(files), "intents": n_true}
    t0 = time.perf_counter()
    ranked = {a: [h.path for h in lib.similar(a, k=10)] for a in calls}
    out["similar_s_per_call"] = round((time.perf_counter() - t0) / len(calls), 4)
    out["similar"] = precision(ranked, truth)
    t0 = time.perf_counter()
    auto = lib.topics(files=calls)  # the calls: the sets' other recordings have no intent
    out["topics_s"] = round(time.perf_counter() - t0, 3)
    fixed = lib.topics(n=n_true, files=calls)
    for name, topics in (("topics_auto", auto), ("topics_true_n", fixed)):
        labels = {f: t.id for t in topics for f in t.files}
        out[name] = agreement(labels, truth) + (len(topics),)
    out["labels"] = [t.label for t in fixed]
    # stability: the topics of all calls but the last 4 (by path) against those of all calls, on
    # the calls both include (adjusted Rand index; 1.0: the same grouping)
    from sklearn.metrics import adjusted_rand_score

    fewer = lib.topics(files=sorted(calls)[:-4])
    before = {f: t.id for t in fewer for f in t.files}
    after = {f: t.id for t in auto for f in t.files}
    common = sorted(before)
    out["stability_ari_minus4"] = round(float(adjusted_rand_score([before[f] for f in common],
                                                                  [after[f] for f in common])), 3)
    out["label_kept_minus4"] = round(len({t.label for t in fewer} & {t.label for t in auto}) / max(1, len(auto)), 3)
    # 4 calls added: the labels kept with the index's memory of the last topics (the library now)
    # and without it (fresh labels only, as before), same run, both from no memory
    def kept(memory: bool) -> float:
        lib._catalog.set_meta({"topic_names": "null"})
        first = lib.topics(files=sorted(calls)[:-4])
        if not memory:
            lib._catalog.set_meta({"topic_names": "null"})
        then = lib.topics(files=calls)
        return round(len({t.label for t in first} & {t.label for t in then}) / max(1, len(then)), 3)

    out["label_kept_plus4"] = kept(True)
    out["label_kept_plus4_no_memory"] = kept(False)
    # the index's own text model alone (no second model in the call vectors), same run
    if lib._call_embedder() is not None:
        lib._second_embedder, lib._call_index = (lib._second_embedder[0], None), None
        own = {a: [h.path for h in lib.similar(a, k=10)] for a in calls}
        out["similar_own_model"] = precision(own, truth)
        labels = {f: t.id for t in lib.topics(files=calls) for f in t.files}
        out["topics_auto_own_model"] = agreement(labels, truth) + (len(set(labels.values())),)
    # the naive baseline, same run: mean MiniLM vector of each call's transcript segments
    embedder = lib._pipeline.embedder
    vec = {}
    for f in files:
        texts = [s.text for s in lib.transcript(f) if s.text.strip()] or [" "]
        v = embedder.encode(texts).mean(0)
        vec[f] = v / (np.linalg.norm(v) or 1.0)
    naive = {a: sorted((f for f in files if f != a), key=lambda f: -float(vec[a] @ vec[f])) for a in calls}
    out["naive_similar"] = precision(naive, truth)
    km = KMeans(n_clusters=n_true, n_init=10, random_state=0).fit_predict(np.stack([vec[f] for f in calls]))
    out["naive_topics_true_n"] = agreement(dict(zip(calls, km.tolist())), truth)
    lib.close()
    return out


def scale(n: int, index: str) -> dict:
    """topics() on `n` calls: the call vectors of a real index repeated with noise (the clustering
    and labelling cost; reading the vectors from Chroma is timed apart)."""
    from speechsearch import recommend

    lib = Library(index)
    base, _ = lib._calls(None, None)
    rng = np.random.default_rng(0)
    reps = np.repeat(base.vectors, int(np.ceil(n / len(base.files))), axis=0)[:n]
    reps = recommend._unit(reps + rng.normal(0, 0.05, reps.shape).astype(np.float32))
    t0 = time.perf_counter()
    labels, tried = recommend.cluster(reps)
    t_cluster = time.perf_counter() - t0
    index = recommend.CallIndex([f"call-{i}" for i in range(n)], reps, np.zeros(reps.shape[1], np.float32))
    t0 = time.perf_counter()
    recommend.density(index)
    t_density = time.perf_counter() - t0
    out = {"calls": n, "dim": int(reps.shape[1]), "cluster_s": round(t_cluster, 2), "density_s": round(t_density, 2),
           "topics": int(labels.max()) + 1, "silhouettes": tried}
    if base.own is not None:  # the baseline in the same run: the index model's half alone (round 2)
        own = np.repeat(base.own, int(np.ceil(n / len(base.files))), axis=0)[:n]
        own = recommend._unit(own + rng.normal(0, 0.05, own.shape).astype(np.float32))
        t0 = time.perf_counter()
        recommend.cluster(own)
        out["own_model_dim"], out["own_model_cluster_s"] = int(own.shape[1]), round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        recommend.density(recommend.CallIndex([f"call-{i}" for i in range(n)], own, np.zeros(own.shape[1], np.float32)))
        out["own_model_density_s"] = round(time.perf_counter() - t0, 2)
    lib.close()
    return out


def build_scaled(n: int, source: str, target: str) -> None:
    """An index of `n` calls made from `source`'s transcripts (exported, copied under new paths,
    imported: windows and vectors are built from the text; no audio is needed)."""
    import tempfile

    lib = Library(source)
    with tempfile.TemporaryDirectory() as tmp:
        lib.export_transcripts(os.path.join(tmp, "src.jsonl"))
        lib.close()
        src = [json.loads(line) for line in open(os.path.join(tmp, "src.jsonl"))]
        with open(os.path.join(tmp, "big.jsonl"), "w") as out:
            for i in range(n):
                rec = dict(src[i % len(src)])
                rec["path"] = f"/scaled/{i:05d}-{os.path.basename(rec['path'])}"
                rec["hash"] = f"{i:032x}"
                out.write(json.dumps(rec) + "\n")
        t0 = time.perf_counter()
        big = Library(target)
        report = big.import_transcripts(os.path.join(tmp, "big.jsonl"))
        print(json.dumps({"imported": len(report.indexed) if hasattr(report, "indexed") else None,
                          "import_s": round(time.perf_counter() - t0, 1)}))
        big.close()


def time_topics(index: str) -> dict:
    """`Library.topics()` on a whole index: cold (the call vectors read from Chroma and built;
    the second model embeds every unit it has not kept yet), warm (cached), reopened (a new
    Library: call vectors built again, the second model's unit vectors read from the
    catalogue), and after one call is imported (the call vectors updated: only its rows are
    read), in one process; then the imported call is removed again."""
    import tempfile

    from speechsearch import recommend

    lib = Library(index)
    n = len(lib.files())
    kept = lib._catalog._read().execute("SELECT COUNT(*) FROM unit_vectors").fetchone()[0]
    t0 = time.perf_counter()
    cold = lib.topics()
    t1 = time.perf_counter()
    warm = lib.topics()
    t2 = time.perf_counter()
    embedded = lib._catalog._read().execute("SELECT COUNT(*) FROM unit_vectors").fetchone()[0] - kept
    lib.close()
    lib = Library(index)  # a new process's first topics(): the second model's unit vectors are kept
    t5 = time.perf_counter()
    reopened = lib.topics()
    t6 = time.perf_counter()
    first = lib.files()[0].path
    with tempfile.TemporaryDirectory() as tmp:
        lib.export_transcripts(os.path.join(tmp, "one.jsonl"), [first])
        rec = json.loads(open(os.path.join(tmp, "one.jsonl")).readline())
        rec["path"], rec["hash"] = "/scaled/added-by-time-topics.flac", "f" * 32
        with open(os.path.join(tmp, "add.jsonl"), "w") as out:
            out.write(json.dumps(rec) + "\n")
        lib.import_transcripts(os.path.join(tmp, "add.jsonl"))
    t3 = time.perf_counter()
    added = lib.topics()
    t4 = time.perf_counter()
    changed = lib._call_index[1].changed
    # the baseline in the same run: round 2 (the second model off), built and then warm
    lib._second_embedder, lib._call_index = (lib._second_embedder[0], None), None
    t7 = time.perf_counter()
    lib.topics()
    t8 = time.perf_counter()
    lib.topics()
    t9 = time.perf_counter()
    lib.remove(rec["path"])
    lib.close()
    return {"calls": n, "topics": len(cold), "cold_s": round(t1 - t0, 2), "units_embedded_cold": embedded,
            "warm_s": round(t2 - t1, 2), "reopened_s": round(t6 - t5, 2),
            "same": [t.files for t in cold] == [t.files for t in warm] == [t.files for t in reopened],
            "after_one_added_s": round(t4 - t3, 2), "updated_not_rebuilt": changed == 1,
            "rebuild_share": recommend.REBUILD, "topics_after_add": len(added),
            "own_model_cold_s": round(t8 - t7, 2), "own_model_warm_s": round(t9 - t8, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", action="append", default=[])
    ap.add_argument("--qrels", action="append", default=[])
    ap.add_argument("--scale", type=int)
    ap.add_argument("--build", metavar="DIR", help="with --scale: build an index of that many calls from --index")
    ap.add_argument("--time-topics", metavar="DIR", help="time topics() on this index, cold and warm")
    ap.add_argument("--json")
    args = ap.parse_args()
    results = []
    if args.scale and args.build:
        build_scaled(args.scale, args.index[0], args.build)
        results.append(time_topics(args.build))
    elif args.time_topics:
        results.append(time_topics(args.time_topics))
    elif args.scale:
        results.append(scale(args.scale, args.index[0]))
    else:
        for index, qrels in zip(args.index, args.qrels):
            results.append(run(index, qrels))
    for r in results:
        print(json.dumps(r))
    if args.json:
        json.dump(results, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
