"""The evaluation harness: run labelled queries against an index and measure the ranking.

A qrels file (JSON) lists audio files and queries with their relevant files and, optionally,
the span where the answer is::

    {"files": [{"file": "audio/refund-01.mp3", ...}],
     "queries": [{"id": "t01", "type": "text", "kind": "intent", "query": "customer wants their money back",
                  "relevant": [{"file": "audio/refund-01.mp3", "start": 7.1, "end": 11.8}]},
                 {"id": "a01", "type": "audio", "kind": "qbe-tts", "clip": "clips/a01.wav",
                  "relevant": [{"file": "audio/refund-01.mp3"}]}]}

Paths are relative to the qrels file. Hits are judged per file: the ranked hits are reduced to
the distinct files in hit order, and a file is relevant when the query lists it.

Metrics, per group of queries (type/kind) and overall:
MRR@10, Recall@1/5/10, nDCG@10 (binary gains), span-hit rate (the first hit from a relevant file
overlaps that file's relevant span), and precision/recall/F1 of the files whose best hit scores at
least a threshold (micro-averaged).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .errors import InvalidInputError
from .types import AddReport, Hit

__all__ = ["Qrels", "load_qrels", "QueryOutcome", "Metrics", "EvalReport", "evaluate", "MODES"]

# What each mode runs: text queries and audio (query-by-example) queries.
MODES: Dict[str, Dict[str, Optional[Tuple[str, ...]]]] = {
    "fused": {"text": None, "audio": None},  # None: the library's default signals
    "text": {"text": ("text",), "audio": ("text",)},
    "context": {"text": ("context",), "audio": ("context",)},
    "lexical": {"text": ("lexical",), "audio": ("lexical",)},
    "acoustic": {"text": None, "audio": ("acoustic",)},
}
SPAN_TOLERANCE = 0.5  # seconds


@dataclass
class Qrels:
    path: Path
    files: List[str]
    queries: List[Dict[str, Any]]


def load_qrels(path: str) -> Qrels:
    """Read and check a qrels file; paths become absolute."""
    p = Path(path).resolve()
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise InvalidInputError(f"{p}: no such qrels file") from None
    except json.JSONDecodeError as e:
        raise InvalidInputError(f"{p}: not valid JSON ({e})") from None
    root = p.parent
    files = [str((root / f["file"]).resolve()) for f in data.get("files", [])]
    queries = []
    for q in data.get("queries", []):
        if q.get("type") not in ("text", "audio") or not q.get("relevant"):
            raise InvalidInputError(f"{p}: query {q.get('id')!r} needs type 'text' or 'audio' and a "
                                    "non-empty 'relevant' list")
        q = dict(q)
        q["relevant"] = [dict(r, file=str((root / r["file"]).resolve())) for r in q["relevant"]]
        if q["type"] == "audio":
            q["clip"] = str((root / q["clip"]).resolve())
        queries.append(q)
    if not queries:
        raise InvalidInputError(f"{p}: no queries")
    for q in queries:
        files.extend(r["file"] for r in q["relevant"] if r["file"] not in files)
    return Qrels(p, list(dict.fromkeys(files)), queries)


@dataclass
class QueryOutcome:
    id: str
    group: str
    mode: str
    files: List[str]  # distinct files in hit order
    scores: List[float]  # best score per file, same order
    relevant: List[str]
    rr: float
    recall: Dict[int, float]
    ndcg: float
    span_hit: Optional[bool]
    seconds: float


def judge(q: Dict[str, Any], hits: Sequence[Hit], mode: str, seconds: float, k: int = 10) -> QueryOutcome:
    """Score one query's ranked hits against its relevance judgements."""
    relevant = [r["file"] for r in q["relevant"]]
    files: List[str] = []
    scores: List[float] = []
    for h in hits[:k]:
        if h.path not in files:
            files.append(h.path)
            scores.append(h.score)
    ranks = [i for i, f in enumerate(files, 1) if f in relevant]
    rr = 1.0 / ranks[0] if ranks else 0.0
    recall = {n: len({f for f in files[:n] if f in relevant}) / len(set(relevant)) for n in (1, 5, 10)}
    dcg = sum(1.0 / math.log2(r + 1) for r in ranks)
    idcg = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(set(relevant)), k) + 1))
    span_hit = None
    spans = {r["file"]: (r["start"], r["end"]) for r in q["relevant"] if "start" in r and "end" in r}
    if spans:
        first = next((h for h in hits[:k] if h.path in relevant), None)
        span_hit = False
        if first is not None and first.path in spans:
            s, e = spans[first.path]
            span_hit = first.start < e + SPAN_TOLERANCE and s - SPAN_TOLERANCE < first.end
    group = f"{q['type']}/{q.get('kind', 'all')}"
    return QueryOutcome(q.get("id", ""), group, mode, files, scores, relevant, rr, recall,
                        dcg / idcg if idcg else 0.0, span_hit, seconds)


@dataclass
class Metrics:
    queries: int
    mrr: float
    r1: float
    r5: float
    r10: float
    ndcg: float
    span_hit: Optional[float]
    precision: float
    recall: float
    f1: float
    threshold: float
    ms: float

    @classmethod
    def of(cls, outcomes: Sequence[QueryOutcome], threshold: float) -> "Metrics":
        n = len(outcomes)
        mean = lambda xs: sum(xs) / len(xs) if xs else 0.0  # noqa: E731
        spans = [o.span_hit for o in outcomes if o.span_hit is not None]
        tp = fp = rel = 0
        for o in outcomes:
            kept = [f for f, s in zip(o.files, o.scores) if s >= threshold]
            tp += sum(1 for f in kept if f in o.relevant)
            fp += sum(1 for f in kept if f not in o.relevant)
            rel += len(set(o.relevant))
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / rel if rel else 0.0
        return cls(n, mean([o.rr for o in outcomes]), mean([o.recall[1] for o in outcomes]),
                   mean([o.recall[5] for o in outcomes]), mean([o.recall[10] for o in outcomes]),
                   mean([o.ndcg for o in outcomes]), mean(spans) if spans else None, p, r,
                   2 * p * r / (p + r) if p + r else 0.0, threshold,
                   1000 * mean([o.seconds for o in outcomes]))


@dataclass
class EvalReport:
    qrels: str
    index: str
    k: int
    threshold: float
    metrics: Dict[str, Dict[str, Metrics]] = field(default_factory=dict)  # mode -> group -> metrics
    outcomes: List[QueryOutcome] = field(default_factory=list)
    add_report: Optional[AddReport] = None

    def table(self) -> str:
        head = ("| mode | queries | n | MRR@10 | R@1 | R@5 | R@10 | nDCG@10 | span-hit | "
                f"P@{self.threshold:g} | R@{self.threshold:g} | F1@{self.threshold:g} | ms/query |")
        lines = [head, "|" + " --- |" * 2 + " ---: |" * 10]
        for mode, groups in self.metrics.items():
            for group, m in groups.items():
                span = "-" if m.span_hit is None else f"{m.span_hit:.3f}"
                lines.append(f"| {mode} | {group} | {m.queries} | {m.mrr:.3f} | {m.r1:.3f} | {m.r5:.3f} | "
                             f"{m.r10:.3f} | {m.ndcg:.3f} | {span} | {m.precision:.3f} | {m.recall:.3f} | "
                             f"{m.f1:.3f} | {m.ms:.0f} |")
        return "\n".join(lines)

    def to_dict(self) -> Dict[str, Any]:
        return {"qrels": self.qrels, "index": self.index, "k": self.k, "threshold": self.threshold,
                "metrics": {m: {g: asdict(x) for g, x in gs.items()} for m, gs in self.metrics.items()},
                "outcomes": [asdict(o) for o in self.outcomes]}


def evaluate(lib: Any, qrels: Qrels, modes: Sequence[str] = ("fused",), k: int = 10,
             threshold: float = 0.5, progress: Optional[Callable[[str], None]] = None) -> EvalReport:
    """Index the qrels' files into `lib` (unchanged files are skipped), run every query in every
    mode that applies to it, and compute the metrics."""
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise InvalidInputError(f"unknown mode(s) {bad}; choose from {sorted(MODES)}")
    report = EvalReport(str(qrels.path), str(lib.path), k, threshold)
    report.add_report = lib.add(qrels.files)
    for mode in modes:
        for q in qrels.queries:
            if q["type"] not in MODES[mode] or (mode == "acoustic" and q["type"] == "text"):
                continue
            signals = MODES[mode][q["type"]]
            kwargs = {} if signals is None else {"signals": signals}
            t0 = time.perf_counter()
            if q["type"] == "text":
                hits = lib.search(q["query"], k=k, **kwargs)
            else:
                hits = lib.search_audio(q["clip"], k=k, **kwargs)
            report.outcomes.append(judge(q, hits, mode, time.perf_counter() - t0, k))
            if progress is not None:
                progress(q.get("id", ""))
    for mode in modes:
        mine = [o for o in report.outcomes if o.mode == mode]
        groups: Dict[str, List[QueryOutcome]] = {}
        for o in mine:
            groups.setdefault(o.group, []).append(o)
            groups.setdefault(o.group.split("/")[0], []).append(o)
        report.metrics[mode] = {g: Metrics.of(v, threshold) for g, v in sorted(groups.items())}
    return report
