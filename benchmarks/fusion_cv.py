"""Choose the fusion weights by cross-validation, not by the best number on one set.

    python benchmarks/fusion_cv.py [--qrels benchmarks/devset/qrels.json] [--index DIR]
                                   [--report QRELS --report-index DIR] [--json OUT]

1. Every query of the tuning set is run once with every signal on and a wide candidate pool;
   each candidate window's raw scores (text, context, file, lexical, acoustic) are kept.
2. Leave-one-intent-out: for each intent, a logistic regression (is this window's call
   relevant?) is fitted on the queries of the other intents and ranks the held-out intent's
   queries (its paraphrased intent queries and the lexical queries naming its calls). Queries
   whose relevant files have no intent (codec originals) form one more fold.
3. Each feature set and regularisation is scored by its mean MRR@10 over the folds, per query
   type; the one with the best worst-type mean wins (ties: fewer features). It is refitted on
   the whole tuning set and its coefficients are printed for `speechsearch/fusion.py`.
4. For query by example, the text coefficients stay as fitted (a clip's transcript is searched
   like a typed query) and only the acoustic weight and floor are chosen, the same way.
5. With --report, the final coefficients rank a second (held-out) set, for reporting only.

The index must hold the set's files (``speechsearch eval QRELS --index DIR`` builds it).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from speechsearch import Library  # noqa: E402
from speechsearch.audio import load_clip  # noqa: E402
from speechsearch.evaluate import load_qrels  # noqa: E402
from speechsearch.fusion import FusionOptions  # noqa: E402
from speechsearch.search import gather  # noqa: E402
from speechsearch.tune import fit_pairwise as _fit_pairwise, phi, platt, rank  # noqa: E402  (one fit for the library and this script)


def fit_pairwise(data, features, c, floors):
    """The fit fusion.FITTED was chosen with: every query weighs the same (Library.tune weighs
    every query type the same instead)."""
    return _fit_pairwise(data, features, c, floors, balance=False)

TEXT_FEATURES = ("text", "context", "file", "lexical")
FEATURE_SETS = [("text", "lexical"), ("context", "lexical"), ("text", "context", "lexical"),
                ("text", "file", "lexical"), ("text", "context", "file", "lexical")]
CS = (0.0, 1.0, 10.0, 100.0)  # 0: the weight grid instead of pairwise logistic regression
LEXICAL_FLOORS = (0.0, 0.4, 0.6)


def collect(lib: Library, queries: Sequence[dict], candidates: int = 60) -> List[Tuple[dict, List[dict]]]:
    """Each query with its candidate windows: path, times, channel, speaker and raw scores."""
    p = lib._pipeline
    every = {s: 1.0 for s in TEXT_FEATURES + ("acoustic",)}
    options = FusionOptions(weights=every, candidates=candidates)
    out = []
    for q in queries:
        acoustic_vec = None
        if q["type"] == "text":
            text = q["query"]
        else:
            audio = load_clip(q["clip"])
            segs, _ = p.transcriber.transcribe(audio)
            text = " ".join(s.text for s in segs).strip()
            if p.acoustic is not None:
                acoustic_vec = p.acoustic.embed(audio)
        text_vec = p.embedder.encode_query(text) if text else None
        cand, on = gather(lib._text_store(), lib._catalog, 10, options, text=text, text_vector=text_vec,
                          acoustic_store=lib._acoustic_store if acoustic_vec is not None else None,
                          acoustic_vector=acoustic_vec, context_store=lib._contexts())
        ready = lib._catalog.ready(cand.place(i)[0] for i in cand.ids())
        rows = []
        for i in cand.ids():
            path, start, end, channel, speaker = cand.place(i)
            row = cand.rows.get(i)  # a stored row may be of an older version of the file
            if path not in ready or (row is not None and row.metadata.get("file_hash") != ready[path]):
                continue
            rows.append({"id": i, "path": path, "start": float(start), "end": float(end),
                         "channel": int(channel), "speaker": speaker,
                         "x": {s: float(cand.scores.get(s, {}).get(i, 0.0)) for s in on}})
        out.append((q, rows))
    return out


GRID = {"text": (0.0, 1.0, 2.0, 4.0), "context": (0.0, 1.0, 2.0, 4.0, 8.0), "file": (0.0, 1.0, 2.0, 4.0),
        "lexical": (0.0, 0.25, 0.5, 1.0, 2.0)}


def fit(data: List[Tuple[dict, List[dict]]], features: Sequence[str], c: float,
        floors: Dict[str, float]) -> Tuple[Dict[str, float], float]:
    """`c` > 0: pairwise logistic ranking (fit_pairwise); `c` == 0: a grid of weights, the one
    with the best mean MRR@10 over the query types of `data` (ties: the steadier across
    queries, then the smaller weights). Either way calibrated by `platt`."""
    if c > 0:
        return fit_pairwise(data, features, c, floors)
    best, best_key = None, None
    prepared = []  # per query: features, file index per row, relevant files, group
    for q, rows in data:
        rel = {r["file"] for r in q["relevant"]}
        paths = sorted({r["path"] for r in rows})
        index = {p: n for n, p in enumerate(paths)}
        F = np.array([[phi(s, r["x"].get(s, 0.0), floors) for s in features] for r in rows])
        prepared.append((F, np.array([index[r["path"]] for r in rows]),
                         np.array([p in rel for p in paths]), group(q)))
    for combo in itertools.product(*(GRID[s] for s in features)):
        if not any(combo):
            continue
        w = np.array(combo)
        by: Dict[str, list] = defaultdict(list)
        for F, files, rel, g in prepared:
            # files ranked by their best window (what collapse and judge see first)
            best_of = np.full(len(rel), -np.inf)
            np.maximum.at(best_of, files, F @ w)
            order = np.argsort(-best_of, kind="stable")[:10]
            hits = np.nonzero(rel[order])[0]
            by[g].append(1.0 / (hits[0] + 1) if len(hits) else 0.0)
        key = (round(float(np.mean([np.mean(v) for v in by.values()])), 4), -float(w.sum()))
        if best_key is None or key > best_key:
            best, best_key = combo, key
    return platt(data, dict(zip(features, best)), floors)


def folds_of(qrels_files: Dict[str, dict], collected: List[Tuple[dict, List[dict]]]) -> Dict[str, list]:
    """Fold name (the relevant files' intent) -> its queries."""
    folds: Dict[str, list] = defaultdict(list)
    for q, rows in collected:
        intents = {qrels_files.get(r["file"], {}).get("intent") for r in q["relevant"]}
        intents.discard(None)
        folds[sorted(intents)[0] if intents else "no-intent"].append((q, rows))
    return folds


def group(q: dict) -> str:
    return f"{q['type']}/{q.get('kind', 'all')}"


def metrics(outcomes: List[Any]) -> Dict[str, Dict[str, float]]:
    by: Dict[str, list] = defaultdict(list)
    for o in outcomes:
        by[o.group].append(o)
    out = {}
    for g, os_ in sorted(by.items()):
        spans = [o.span_hit for o in os_ if o.span_hit is not None]
        out[g] = {"n": len(os_), "mrr": float(np.mean([o.rr for o in os_])),
                  "ndcg": float(np.mean([o.ndcg for o in os_])),
                  "span_hit": float(np.mean(spans)) if spans else float("nan")}
    return out


def cross_validate(folds: Dict[str, list], features: Sequence[str], c: float,
                   floors: Dict[str, float]) -> Dict[str, Any]:
    """Fit on all folds but one, rank the one left out; per-fold MRR by query type."""
    per_fold: Dict[str, Dict[str, float]] = {}
    outcomes = []
    for name, held in folds.items():
        train = [x for n, qs in folds.items() if n != name for x in qs]
        weights, bias = fit(train, features, c, floors)
        mine = [rank(q, rows, weights, bias, floors) for q, rows in held]
        outcomes += mine
        per_fold[name] = {g: m["mrr"] for g, m in metrics(mine).items()}
    return {"metrics": metrics(outcomes), "folds": per_fold}


def table(rows: List[Tuple[str, Dict[str, Dict[str, float]]]], groups: Sequence[str]) -> str:
    head = "| setting | " + " | ".join(f"{g} MRR@10 | nDCG@10 | span-hit" for g in groups) + " |"
    lines = [head, "| --- |" + " ---: | ---: | ---: |" * len(groups)]
    for name, m in rows:
        cells = []
        for g in groups:
            x = m.get(g)
            cells += ["-", "-", "-"] if x is None else [f"{x['mrr']:.3f}", f"{x['ndcg']:.3f}",
                                                         "-" if math.isnan(x["span_hit"]) else f"{x['span_hit']:.3f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--qrels", default=str(ROOT / "benchmarks" / "devset" / "qrels.json"))
    ap.add_argument("--index", required=True)
    ap.add_argument("--report", default=None, help="a held-out qrels to report the chosen weights on")
    ap.add_argument("--report-index", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--audio-only", metavar="TEXT_MODEL", default=None,
                    help="keep the text weights fitted for TEXT_MODEL (fusion.FITTED) and choose only the "
                         "query-by-example boost and acoustic weight")
    ap.add_argument("--quick", action="store_true", help="a smaller grid: the feature sets with text and "
                    "lexical, C=10, lexical floors 0.4 and 0.6")
    ap.add_argument("--fresh", action="store_true", help="collect candidates again (default: reuse the "
                    "cache in the index directory)")
    args = ap.parse_args()

    qrels = load_qrels(args.qrels)
    raw = json.loads(Path(args.qrels).read_text())
    files = {str((qrels.path.parent / f["file"]).resolve()): f for f in raw.get("files", [])}
    cache = Path(args.index) / "fusion_cv-candidates.json"
    if cache.exists() and not args.fresh:
        collected = [(q, rows) for q, rows in json.loads(cache.read_text())]
    else:
        collected = collect(Library(args.index), qrels.queries)
        cache.write_text(json.dumps(collected))
    text = [x for x in collected if x[0]["type"] == "text"]
    audio = [x for x in collected if x[0]["type"] == "audio"]
    folds = folds_of(files, text)
    groups = sorted({group(q) for q, _ in text})
    print(f"tuning set {args.qrels}: {len(text)} text queries in {len(folds)} folds, {len(audio)} audio queries\n")

    if args.audio_only:
        from speechsearch.fusion import FITTED

        fit = FITTED[args.audio_only]
        weights, bias, results = dict(fit["weights"]), fit["bias"], []
        best = {"floors": dict(fit["floors"]), "features": tuple(weights), "C": None}
        print(f"text weights kept as fitted for {args.audio_only}: bias {bias}, weights {weights}")
    else:
        results, best, weights, bias = choose_text(args, text, folds, groups)
    return audio_and_report(args, audio, weights, bias, best, results)


def choose_text(args, text, folds, groups):
    """Leave-one-intent-out CV over the text grid; the setting the rule picks, refitted on all."""
    results = []
    singles = [(f"{s} alone", metrics([rank(q, rows, {s: 1.0}, 0.0, {}) for q, rows in text]))
               for s in TEXT_FEATURES]
    grid = itertools.product(FEATURE_SETS, CS, LEXICAL_FLOORS)
    if args.quick:
        grid = itertools.product([f for f in FEATURE_SETS if "text" in f], (10.0,), (0.4, 0.6))
    for features, c, lf in grid:
        if lf and "lexical" not in features:
            continue
        floors = {"lexical": lf} if lf else {}
        cv = cross_validate(folds, features, c, floors)
        worst = min(cv["metrics"][g]["mrr"] for g in groups)
        mean = float(np.mean([cv["metrics"][g]["mrr"] for g in groups]))
        # steadiness: the mean over folds of each fold's worst query type
        steady = float(np.mean([min(f.values()) for f in cv["folds"].values()]))
        results.append({"features": features, "C": c, "floors": floors, "worst": worst, "mean": mean,
                        "steady": steady, "metrics": cv["metrics"], "folds": cv["folds"]})
    print("Each signal alone (no fitting), text queries:\n")
    print(table(singles, groups))
    print("\nLeave-one-intent-out, text queries (each fold fitted without its intent):\n")
    print(table([(f"{'+'.join(r['features'])}, {'grid' if not r['C'] else 'C=%g' % r['C']}, "
                  f"lexical floor {r['floors'].get('lexical', 0):g}"
                  f" (fold-steadiness {r['steady']:.3f})", r["metrics"]) for r in results], groups))
    # the rule, applied on the tuning set: fused must be at least as good as its best
    # single signal on every query type (within 0.01); among those, the best mean, then the steadier
    floor_of = {g: max(m[g]["mrr"] for _, m in singles) for g in groups}
    for r in results:
        r["never_worse"] = all(r["metrics"][g]["mrr"] >= floor_of[g] - 0.01 for g in groups)
    best = max(results, key=lambda r: (r["never_worse"], round(r["mean"], 2), round(r["steady"], 3),
                                       -len(r["features"])))
    print(f"\nbest single signal per type: {floor_of}; settings never worse than it: "
          f"{sum(r['never_worse'] for r in results)} of {len(results)}")
    print(f"\nchosen: {'+'.join(best['features'])}, C={best['C']:g}, floors {best['floors']} (mean CV MRR "
          f"{best['mean']:.3f}, worst type {best['worst']:.3f}, fold-steadiness {best['steady']:.3f})")
    weights, bias = fit(text, best["features"], best["C"], best["floors"])
    print("fitted on all tuning text queries: bias %.3f, weights %s" % (bias, {k: round(v, 3) for k, v in weights.items()}))
    return results, best, weights, bias


def audio_and_report(args, audio, weights, bias, best, results):
    """The query-by-example grid on the tuning set's clips, then the held-out report if asked."""
    audio_rows = []
    chosen_audio = None
    if audio:
        afolds: Dict[str, list] = defaultdict(list)
        for q, rows in audio:
            afolds[q.get("kind", "all")].append((q, rows))
        agroups = sorted({group(q) for q, _ in audio})
        lex = weights.get("lexical", 0.0)
        for mult, lfloor, floor, wa in itertools.product((1.0, 4.0, 8.0, 16.0, 32.0), (0.4, 0.6), (0.8, 0.9),
                                                         (0.0, 2.0)):
            w = dict(weights, lexical=lex * mult, acoustic=wa)
            outs = [rank(q, rows, w, bias, dict(best["floors"], lexical=lfloor, acoustic=floor)) for q, rows in audio]
            m = metrics(outs)
            audio_rows.append({"lexical_x": mult, "lexical_floor": lfloor, "floor": floor, "acoustic": wa,
                               "metrics": m, "worst": min(m[g]["mrr"] for g in agroups),
                               "mean": float(np.mean([m[g]["mrr"] for g in agroups]))})
        print("\nQuery by example: the text weights above, the lexical weight times m, plus an acoustic "
              "weight above a floor:\n")
        print(table([(f"lexical x{r['lexical_x']:g} above {r['lexical_floor']:g}, acoustic {r['acoustic']:g} "
                       f"above {r['floor']:g}", r["metrics"]) for r in audio_rows], agroups))
        # the best worst type, then the best mean; ties: the smallest lexical boost, the higher
        # floors, then a small acoustic weight
        chosen_audio = max(audio_rows, key=lambda r: (round(r["worst"], 3), round(r["mean"], 3), -r["lexical_x"],
                                                      r["lexical_floor"], r["floor"], r["acoustic"]))
        print(f"\nchosen: lexical x{chosen_audio['lexical_x']:g} above {chosen_audio['lexical_floor']:g}, "
              f"acoustic {chosen_audio['acoustic']:g} above {chosen_audio['floor']:g}")

    report = None
    if args.report:
        rq = load_qrels(args.report)
        rindex = Path(args.report_index or rq.path.parent / ".speechsearch-eval.idx")
        rcache = rindex / "fusion_cv-candidates.json"
        if rcache.exists() and not args.fresh:
            rcol = [(q, rows) for q, rows in json.loads(rcache.read_text())]
        else:
            rcol = collect(Library(rindex), rq.queries)
            rcache.write_text(json.dumps(rcol))
        extra = {} if chosen_audio is None else {"acoustic": chosen_audio["acoustic"],
                                                 "lexical": weights.get("lexical", 0.0) * chosen_audio["lexical_x"]}
        afloors = dict(best["floors"]) if chosen_audio is None else \
            dict(best["floors"], acoustic=chosen_audio["floor"], lexical=chosen_audio["lexical_floor"])
        outs = [rank(q, rows, weights, bias, best["floors"]) if q["type"] == "text"
                else rank(q, rows, dict(weights, **extra), bias, afloors) for q, rows in rcol]
        single = {}
        for s in TEXT_FEATURES + ("acoustic",):
            single[f"{s} alone"] = metrics([rank(q, rows, {s: 1.0}, 0.0, {}) for q, rows in rcol])
        report = {"fused": metrics(outs), **single}
        rgroups = sorted({group(q) for q, _ in rcol})
        print(f"\nHeld-out set {args.report} (reported, never tuned on):\n")
        print(table(list(report.items()), rgroups))
    if args.json:
        Path(args.json).write_text(json.dumps({"cv": results, "chosen": {"weights": weights, "bias": bias,
                                               "features": best["features"], "C": best["C"]},
                                               "audio": audio_rows, "report": report}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
