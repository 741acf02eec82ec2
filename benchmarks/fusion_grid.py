"""Choose the fusion defaults by measurement: collect every dev-set query's candidate windows
with all their raw signal scores once, then replay the pure fusion functions over a grid of
methods, weights and scales, and print MRR@10 per query type for each.

    python benchmarks/fusion_grid.py [--qrels benchmarks/devset/qrels.json] [--index DIR]

The index is the one `speechsearch eval` builds (default `.speechsearch-eval.idx` beside the
qrels); run `speechsearch eval QRELS` once first. Single signals are in the grid too, so the
table shows whether fusion beats each of them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from speechsearch import Library  # noqa: E402
from speechsearch.evaluate import judge, load_qrels  # noqa: E402
from speechsearch.fusion import FusionOptions, fuse  # noqa: E402
from speechsearch.search import Candidates, _complete, finish  # noqa: E402
from speechsearch.audio import load_clip  # noqa: E402


def collect(lib: Library, queries: list) -> list:
    """(query, Candidates) with every signal's raw score for every candidate."""
    p = lib._pipeline
    out = []
    for q in queries:
        if q["type"] == "text":
            text = q["query"]
            acoustic_vec = None
        else:
            audio = load_clip(q["clip"])
            segs, _ = p.transcriber.transcribe(audio)
            text = " ".join(s.text for s in segs).strip()
            acoustic_vec = p.acoustic.embed(audio)
        text_vec = p.embedder.encode_query(text) if text else None
        cand = Candidates()
        if text_vec is not None:
            for row in lib._store.query(text_vec, n=60):
                cand.rows[row.id] = row
                cand.signal("text")[row.id] = 1.0 - row.distance
        if text:
            cand.signal("lexical").update(lib._catalog.lexical(text, 60))
        on = {"text", "lexical"}
        if acoustic_vec is not None:
            on.add("acoustic")
            best = cand.signal("acoustic")
            for unit in lib._acoustic_store.query(acoustic_vec, n=180):
                w = unit.metadata["window_id"]
                best[w] = max(best.get(w, -1.0), 1.0 - unit.distance)
        _complete(cand, lib._store, None, on, text_vec, lib._acoustic_store if acoustic_vec is not None else None,
                  acoustic_vec)
        out.append((q, cand))
    return out


def score(collected: list, options: FusionOptions) -> dict:
    by_group: dict = {}
    for q, cand in collected:
        on = {s for s, w in options.weights.items() if w > 0 and s in cand.scores}
        ranked = fuse({s: cand.scores[s] for s in on}, options)
        hits = finish(ranked, cand, CATALOG, 10, on)
        o = judge(q, hits, "grid", 0.0)
        by_group.setdefault(q["type"], []).append(o.rr)
        by_group.setdefault(f"{q['type']}/{q.get('kind')}", []).append(o.rr)
    return {g: sum(v) / len(v) for g, v in sorted(by_group.items())}


def main() -> int:
    global CATALOG
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--qrels", default=str(ROOT / "benchmarks" / "devset" / "qrels.json"))
    ap.add_argument("--index", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--types", default="text,audio", help="query types to run (default text,audio)")
    args = ap.parse_args()
    qrels = load_qrels(args.qrels)
    lib = Library(args.index or qrels.path.parent / ".speechsearch-eval.idx")
    CATALOG = lib._catalog
    types = args.types.split(",")
    collected = collect(lib, [q for q in qrels.queries if q["type"] in types])
    base = FusionOptions()
    rows = []
    singles = [{"text": 1.0}, {"lexical": 1.0}, {"acoustic": 1.0}]
    grid = [{"text": 1.0, "lexical": lw, "acoustic": aw}
            for lw, aw in itertools.product((0.1, 0.2, 0.3, 0.5, 1.0, 2.0), (0.25, 0.5, 1.0, 2.0))]
    lex_scales = ((0.0, 1.0), (0.2, 1.0), (0.4, 1.0), (0.5, 1.0), (0.6, 1.0), (0.8, 1.0))
    ac_scales = ((0.2, 0.8), (0.3, 0.8), (0.4, 0.9))
    for weights in singles:
        rows.append(("single", weights, None, score(collected, FusionOptions("calibrated", weights))))
    for weights in grid:
        for method in ("minmax", "rrf"):
            rows.append((method, weights, None, score(collected, FusionOptions(method, weights))))
        for ls, acs in itertools.product(lex_scales, ac_scales):
            scales = dict(base.scales, lexical=ls, acoustic=acs)
            rows.append(("calibrated", weights, scales,
                         score(collected, FusionOptions("calibrated", weights, scales))))
    groups = sorted({g for r in rows for g in r[3]})
    print("| method | weights | scales (lexical, acoustic) | " + " | ".join(groups) + " |")
    print("| --- | --- | --- |" + " ---: |" * len(groups))
    best_text = max(rows[3:], key=lambda r: r[3].get("text", 0))
    best_audio = max(rows[3:], key=lambda r: r[3].get("audio", 0))
    for r in rows[:3] + [best_text, best_audio] + sorted(rows[3:], key=lambda r: -(r[3].get("text", 0) + r[3].get("audio", 0)))[:10]:
        sc = "-" if r[2] is None else f"{r[2]['lexical']}, {r[2]['acoustic']}"
        w = ", ".join(f"{k} {v:g}" for k, v in r[1].items())
        print(f"| {r[0]} | {w} | {sc} | " + " | ".join(f"{r[3].get(g, 0):.3f}" for g in groups) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps([{"method": r[0], "weights": r[1], "scales": r[2], "mrr": r[3]}
                                               for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
