"""Learning from a team's labelled queries: re-fit the fusion weights, and prove it on held-out ones.

`Library.tune(labels)` takes the same qrels file as `speechsearch eval`. Its text queries are
split into a training part and a held-out part (by query, or by group: ``holdout_groups="intent"``
holds whole intents out). Each query is run once with every signal on and a wide candidate pool
(`collect`); the raw scores of its candidate windows are kept, so that any set of weights ranks
them exactly as `Library.search` would. The logistic fusion model is then fitted on the training
queries (`fit`: pairwise logistic ranking, regularisation chosen by cross-validation over the
training queries, Platt calibration so the score stays a probability) and both the weights in
use and the new ones rank the held-out queries. The new weights are applied only when no query
type of the held-out part gets worse than `NOISE` in MRR@10.

The text model is fine-tuned too (`text_triplets`, `train_text`): `Library.tune` re-embeds the
index with it beside the collections in use and judges it, with fusion weights re-fitted for its
scores, on the same held-out queries before switching.

What is learned lives in the index (`meta`: "fusion_tuned", "tune_stack", "tune_history"; a
tuned text model in `models/text-N`), with the labels' hash, the settings and the metrics;
`Library.untune()` undoes the last applied tune. The acoustic head is trained in `tune_acoustic`.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .errors import InvalidInputError
from .evaluate import Metrics, QueryOutcome, judge, load_qrels
from .fusion import FusionOptions
from .search import collapse, gather
from .types import Hit

__all__ = ["TuneReport", "Plan", "plan", "collect", "fit", "rank", "split", "tune_fusion", "held_metrics", "candidates",
           "text_triplets", "train_text", "NOISE", "MIN_QUERIES"]

TEXT_FEATURES = ("text", "context", "file", "lexical")
CS = (1.0, 10.0, 100.0)  # inverse regularisation strengths tried by cross-validation
NOISE = 0.02  # a held-out MRR@10 drop larger than this on any query type: the tune is not applied
MIN_QUERIES = 6  # text queries needed to train and to hold some out
THRESHOLD = 0.5

Rows = List[Dict[str, Any]]
Data = List[Tuple[Dict[str, Any], Rows]]


def collect(lib: Any, queries: Sequence[Dict[str, Any]], candidates: int = 60,
            view: Optional[Tuple[Any, Any, Any]] = None) -> Data:
    """Each text query with its candidate windows: path, times, channel, speaker and the raw
    score of every signal (gathered with all of them on, so any weights can rank them). `view`:
    (window store, context store, text embedder) to use instead of the index's own (a tuned
    text model's collections before they are switched to)."""
    every = {s: 1.0 for s in TEXT_FEATURES}
    options = FusionOptions(weights=dict(every, exact=1.0), candidates=candidates)
    store, contexts, embedder = view or (lib._text_store(), lib._contexts(), lib._pipeline.embedder)
    out = []
    for q in queries:
        text = q["query"]
        cand, on = gather(store, lib._catalog, 10, options, text=text,
                          text_vector=embedder.encode_query(text), context_store=contexts)
        ready = lib._catalog.ready(cand.place(i)[0] for i in cand.ids())
        rows = []
        for i in cand.ids():
            path, start, end, channel, speaker = cand.place(i)
            if path not in ready:
                continue
            rows.append({"id": i, "path": path, "start": float(start), "end": float(end),
                         "channel": int(channel), "speaker": speaker,
                         "x": {s: float(cand.scores.get(s, {}).get(i, 0.0)) for s in on}})
        out.append((q, rows))
    return out


def phi(signal: str, x: float, floors: Dict[str, float]) -> float:
    """fusion.feature: a signal with a floor counts only above it."""
    f = floors.get(signal)
    return x if f is None else max(0.0, x - f) / (1.0 - f)


def rank(q: Dict[str, Any], rows: Rows, weights: Dict[str, float], bias: float,
         floors: Dict[str, float]) -> QueryOutcome:
    """The query's outcome (evaluate.judge) with its windows scored by the logistic model."""
    hits = []
    for r in rows:
        z = bias + sum(w * phi(s, r["x"].get(s, 0.0), floors) for s, w in weights.items())
        score = 1 / (1 + math.exp(-z)) if z > -500 else 0.0
        hits.append(Hit(r["path"], r["start"], r["end"], "", score, channel=r["channel"], id=r["id"],
                        speaker=r["speaker"]))
    hits.sort(key=lambda h: (-h.score, h.id))
    return judge(q, collapse(hits, 10), "tune", 0.0)


def platt(data: Data, weights: Dict[str, float], floors: Dict[str, float]) -> Tuple[Dict[str, float], float]:
    """Scale `weights` and find a bias so that sigmoid(bias + w.x) is the probability that a
    candidate window's call is relevant (one-dimensional logistic regression, each query
    weighing the same)."""
    from sklearn.linear_model import LogisticRegression

    Z, Y, W = [], [], []
    for q, rows in data:
        rel = {r["file"] for r in q["relevant"]}
        for r in rows:
            Z.append(sum(w * phi(s, r["x"].get(s, 0.0), floors) for s, w in weights.items()))
            Y.append(1 if r["path"] in rel else 0)
            W.append(1.0 / max(1, len(rows)))
    if len(set(Y)) < 2:
        raise InvalidInputError("the training queries' candidates are all relevant or all irrelevant; "
                                "label more queries (or more varied ones) to tune")
    model = LogisticRegression(C=1e6, max_iter=2000)
    model.fit(np.array(Z)[:, None], np.array(Y), sample_weight=np.array(W) * len(data) / sum(W))
    a = float(model.coef_[0][0])
    return {s: float(v) * a for s, v in weights.items()}, float(model.intercept_[0])


def fit_pairwise(data: Data, features: Sequence[str], c: float, floors: Dict[str, float],
                 balance: bool = True) -> Tuple[Dict[str, float], float]:
    """Ranking: a logistic regression on within-query pairs (a window of a relevant call against
    one of an irrelevant call), each query type weighing the same (`balance`; else each query);
    then `platt` calibration."""
    from sklearn.linear_model import LogisticRegression

    D, w = [], []
    # each query type weighs the same, whatever the share of its queries in the labels: a set of
    # mostly fact lookups must not teach weights that trade paraphrased intents away
    per_group: Dict[str, int] = defaultdict(int)
    for q, _ in data:
        per_group[group(q)] += 1
    for q, rows in data:
        share = 1.0 / (per_group[group(q)] * len(per_group)) if balance else 1.0
        rel = {r["file"] for r in q["relevant"]}
        feats = np.array([[phi(s, r["x"].get(s, 0.0), floors) for s in features] for r in rows])
        pos = [n for n, r in enumerate(rows) if r["path"] in rel]
        neg = [n for n, r in enumerate(rows) if r["path"] not in rel]
        if not pos or not neg:
            continue
        pairs = [(a, b) for a in pos for b in neg]
        for a, b in pairs:
            D.append(feats[a] - feats[b])
            w.append(share / len(pairs))
    if not D:
        raise InvalidInputError("no training query has both a relevant and an irrelevant candidate; "
                                "check that the labels name indexed files")
    D_, w_ = np.array(D), np.array(w)
    X = np.concatenate([D_, -D_])
    y = np.concatenate([np.ones(len(D_)), np.zeros(len(D_))])
    ranker = LogisticRegression(C=c, fit_intercept=False, max_iter=5000)
    ranker.fit(X, y, sample_weight=np.concatenate([w_, w_]) * len(data) / w_.sum())
    # a signal may only help: a negative weight would push matches down on new queries
    coef = {s: max(0.0, float(v)) for s, v in zip(features, ranker.coef_[0])}
    if not any(coef.values()):
        raise InvalidInputError("the labels give no signal a positive weight; check them")
    return platt(data, coef, floors)


def fit(train: Data, features: Sequence[str], floors: Dict[str, float], seed: int = 0
        ) -> Tuple[Dict[str, float], float, float]:
    """The weights and bias fitted on `train`, with the regularisation chosen by 3-fold
    cross-validation over its queries (mean MRR@10). Returns (weights, bias, C)."""
    rng = random.Random(seed)
    order = list(range(len(train)))
    rng.shuffle(order)
    folds = [order[n::3] for n in range(3)]
    best_c, best = CS[0], -1.0
    for c in CS:
        scores: Dict[str, List[float]] = defaultdict(list)
        for held in folds:
            inner = [train[i] for i in order if i not in held]
            try:
                w, b = fit_pairwise(inner, features, c, floors)
            except InvalidInputError:
                continue
            for i in held:
                scores[group(train[i][0])].append(rank(train[i][0], train[i][1], w, b, floors).rr)
        mean = float(np.mean([np.mean(v) for v in scores.values()])) if scores else -1.0  # types alike
        if mean > best + 1e-9:
            best_c, best = c, mean
    weights, bias = fit_pairwise(train, features, best_c, floors)
    return weights, bias, best_c


def split(queries: Sequence[Dict[str, Any]], holdout: float, seed: int, group_of: Optional[Any] = None
          ) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """(train, held out): a `holdout` share of the queries, drawn with `seed`; with `group_of`
    (query -> group name), whole groups are held out."""
    rng = random.Random(seed)
    if group_of is None:
        idx = list(range(len(queries)))
        rng.shuffle(idx)
        n = max(1, round(holdout * len(queries)))
        held = set(idx[:n])
        return [q for i, q in enumerate(queries) if i not in held], [q for i, q in enumerate(queries) if i in held]
    groups = sorted({group_of(q) for q in queries})
    rng.shuffle(groups)
    n = max(1, round(holdout * len(groups)))
    held = set(groups[:n])
    return [q for q in queries if group_of(q) not in held], [q for q in queries if group_of(q) in held]


def group(q: Dict[str, Any]) -> str:
    """A query's type, as the report groups it ("text/intent")."""
    return f"{q['type']}/{q.get('kind', 'all')}"


def metrics_by_type(outcomes: Sequence[QueryOutcome]) -> Dict[str, Dict[str, Any]]:
    """Per query group (and "text" over all): MRR@10, nDCG@10, P/R/F1 at 0.5, count."""
    by: Dict[str, List[QueryOutcome]] = defaultdict(list)
    for o in outcomes:
        by[o.group].append(o)
        by[o.group.split("/")[0]].append(o)
    out = {}
    for g, os_ in sorted(by.items()):
        m = Metrics.of(os_, THRESHOLD)
        out[g] = {"queries": m.queries, "mrr": round(m.mrr, 4), "r1": round(m.r1, 4), "ndcg": round(m.ndcg, 4),
                  "span_hit": None if m.span_hit is None else round(m.span_hit, 4),
                  "precision": round(m.precision, 4), "recall": round(m.recall, 4), "f1": round(m.f1, 4)}
    return out


@dataclass
class TuneReport:
    """What one `Library.tune` did: held-out metrics before and after per query type, whether
    the new weights were applied (and why not), the weights, and the settings."""

    labels: str
    labels_sha256: str
    train_queries: int
    heldout_queries: int
    before: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    after: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    applied: bool = False
    reason: str = ""
    weights: Dict[str, float] = field(default_factory=dict)
    bias: float = 0.0
    previous: Dict[str, Any] = field(default_factory=dict)
    settings: Dict[str, Any] = field(default_factory=dict)
    skipped: List[str] = field(default_factory=list)
    seconds: float = 0.0
    text: Dict[str, Any] = field(default_factory=dict)  # the text model's part, when it ran
    acoustic: Dict[str, Any] = field(default_factory=dict)  # the acoustic head's part, when it ran

    def summary(self) -> str:
        lines = []
        if self.text:
            t = self.text
            lines.append(f"text model: fine-tuned {t.get('base')} on {t.get('triplets', 0)} (query, window, "
                         f"hard negative) triplets, loss per epoch {t.get('losses')}")
            for g in t.get("before", {}):
                lines.append(f"  held-out {g}: MRR@10 {t['before'][g]['mrr']:.3f} -> {t['after'][g]['mrr']:.3f}")
            lines.append(("  applied: " if t.get("applied") else "  not applied: ") + str(t.get("reason", "")))
        if self.acoustic:
            a = self.acoustic
            if "losses" in a:
                lines.append(f"acoustic model: a head on {a.get('base')} trained on {a.get('renderings', 0)} renderings "
                             f"of {a.get('train_sentences', 0)} sentences ({len(a.get('voices', []))} synthetic "
                             f"voices), loss per epoch {a['losses']}")
                lines.append(f"  re-spoken sentences kept out of training, R@1: {a['held_before']:.3f} -> "
                             f"{a['held_after']:.3f} (epoch {a['epoch']})")
            for g in a.get("before", {}):
                b, f = a["before"][g], a["after"][g]
                lines.append(f"  labelled {g} ({b['queries']}): R@1 {b['r1']:.3f} -> {f['r1']:.3f}, "
                             f"MRR@10 {b['mrr']:.3f} -> {f['mrr']:.3f}")
            lines.append(("  applied: " if a.get("applied") else "  not applied: ") + str(a.get("reason", "")))
        lines += [f"fusion weights: fitted on {self.train_queries} labelled queries; "
                  f"held out {self.heldout_queries} ({self.labels})",
                 "| held-out | MRR@10 before | after | nDCG@10 before | after | F1@0.5 before | after |",
                 "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for g in self.before:
            b, a = self.before[g], self.after.get(g, {})
            lines.append(f"| {g} ({b['queries']}) | {b['mrr']:.3f} | {a.get('mrr', float('nan')):.3f} | "
                         f"{b['ndcg']:.3f} | {a.get('ndcg', float('nan')):.3f} | {b['f1']:.3f} | "
                         f"{a.get('f1', float('nan')):.3f} |")
        lines.append(("applied: " if self.applied else "not applied: ") + self.reason)
        reasons: Dict[str, List[str]] = defaultdict(list)
        for s in self.skipped:
            name, _, why = s.partition(": ")
            reasons[why].append(name)
        lines += [f"skipped {len(names)}: {why} ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''})"
                  for why, names in reasons.items()]
        return "\n".join(lines)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def decide(before: Dict[str, Dict[str, Any]], after: Dict[str, Dict[str, Any]]) -> Tuple[bool, str]:
    """Apply only when no held-out query type loses more than NOISE MRR@10."""
    worse = [f"{g} {before[g]['mrr']:.3f} -> {after[g]['mrr']:.3f}" for g in before
             if after[g]["mrr"] < before[g]["mrr"] - NOISE]
    if worse:
        return False, f"held-out MRR@10 would drop by more than {NOISE}: " + "; ".join(worse)
    gain = after["text"]["mrr"] - before["text"]["mrr"]
    return True, f"held-out MRR@10 {before['text']['mrr']:.3f} -> {after['text']['mrr']:.3f} ({gain:+.3f})"


@dataclass
class Plan:
    """Checked labels and their split."""

    labels: str
    labels_sha256: str
    train: List[Dict[str, Any]]
    held: List[Dict[str, Any]]
    skipped: List[str]
    settings: Dict[str, Any]
    gathered: Dict[Any, Data] = field(default_factory=dict, repr=False)  # see `candidates`


def candidates(lib: Any, p: Plan, part: str, view: Optional[Tuple[Any, Any, Any]] = None) -> Data:
    """`collect` of the plan's "train" or "held" queries, once per text model: the text and
    fusion parts of one tune rank the same candidates of the model in use."""
    key = (part, None if view is None else id(view[0]))
    if key not in p.gathered:
        p.gathered[key] = collect(lib, p.train if part == "train" else p.held, view=view)
    return p.gathered[key]


def plan(lib: Any, labels: str, holdout: float = 0.3, seed: int = 0, holdout_groups: Optional[str] = None) -> Plan:
    """Read and check `labels` against the index and split its text queries."""
    if isinstance(holdout, bool) or not isinstance(holdout, (int, float)) or not 0.1 <= holdout <= 0.5:
        raise InvalidInputError(f"holdout must be a share between 0.1 and 0.5 of the queries, got {holdout!r}")
    if holdout_groups not in (None, "intent"):
        raise InvalidInputError(f"holdout_groups must be None or 'intent', got {holdout_groups!r}")
    qrels = load_qrels(labels)
    check_labels(lib, qrels)
    text = [q for q in qrels.queries if q["type"] == "text"]
    skipped = [f"{q.get('id', '?')}: query by example (judges the acoustic head; its fusion weights are not tuned yet)"
               for q in qrels.queries if q["type"] != "text"]
    if len(text) < MIN_QUERIES:
        raise InvalidInputError(f"{qrels.path}: {len(text)} text queries; tuning needs at least {MIN_QUERIES} "
                                "to train on some and hold others out")
    group_of = None
    if holdout_groups == "intent":
        intents = _intents(qrels)
        group_of = lambda q: min(intents.get(r["file"], r["file"]) for r in q["relevant"])  # noqa: E731
    train_q, held_q = split(text, holdout, seed, group_of)
    if len(train_q) < 3 or not held_q:
        raise InvalidInputError(f"{qrels.path}: the split left {len(train_q)} queries to train on and "
                                f"{len(held_q)} to hold out; label more queries")
    return Plan(str(qrels.path), hashlib.sha256(qrels.path.read_bytes()).hexdigest(), train_q, held_q, skipped,
                {"holdout": holdout, "seed": seed, "holdout_groups": holdout_groups})


def tune_fusion(lib: Any, labels: str, holdout: float = 0.3, seed: int = 0,
                holdout_groups: Optional[str] = None, checked: Optional[Plan] = None) -> TuneReport:
    """Fit the fusion weights of `lib` to `labels` and measure them on held-out queries (nothing
    is applied here: see `Library.tune`)."""
    t0 = time.perf_counter()
    p = checked or plan(lib, labels, holdout, seed, holdout_groups)
    fitted = refit(lib, p)
    applied, reason = decide(fitted["kept"], fitted["fitted"])
    current = lib.fusion
    return TuneReport(labels=p.labels, labels_sha256=p.labels_sha256, train_queries=len(p.train),
                      heldout_queries=len(p.held), before=fitted["kept"], after=fitted["fitted"], applied=applied,
                      reason=reason, weights=fitted["weights"], bias=fitted["bias"],
                      previous={"weights": {s: float(w) for s, w in current.weights.items() if w > 0},
                                "bias": current.bias},
                      settings=dict(p.settings, features=fitted["features"], C=fitted["C"], floors=fitted["floors"]),
                      skipped=p.skipped, seconds=time.perf_counter() - t0)


def refit(lib: Any, p: Plan, view: Optional[Tuple[Any, Any, Any]] = None) -> Dict[str, Any]:
    """Fusion weights fitted on `p`'s training queries for the text model of `view` (default:
    the index's own), and the held-out metrics of the weights in use and of the new ones there."""
    train, held = candidates(lib, p, "train", view), candidates(lib, p, "held", view)
    current = lib.fusion
    floors = dict(current.floors)
    before_w = {s: float(w) for s, w in current.weights.items() if w > 0}
    features = tuple(s for s in TEXT_FEATURES if before_w.get(s, 0) > 0) or ("text", "lexical")
    weights, bias, c = fit(train, features, floors, p.settings["seed"])
    if before_w.get("exact"):
        weights["exact"] = before_w["exact"]  # lookups by number: a rule, not fitted (fusion.EXACT_WEIGHT)
    return {"weights": {k: round(v, 4) for k, v in weights.items()}, "bias": round(bias, 4), "C": c,
            "features": list(features), "floors": floors,
            "kept": metrics_by_type([rank(q, rows, before_w, current.bias, floors) for q, rows in held]),
            "fitted": metrics_by_type([rank(q, rows, weights, bias, floors) for q, rows in held])}


def held_metrics(lib: Any, p: Plan, view: Optional[Tuple[Any, Any, Any]] = None) -> Dict[str, Dict[str, Any]]:
    """The held-out metrics of the plan's held-out queries ranked with the weights in use
    (optionally on `view`)."""
    o = lib.fusion
    weights = {s: float(w) for s, w in o.weights.items() if w > 0}
    return metrics_by_type([rank(q, rows, weights, o.bias, dict(o.floors)) for q, rows in
                            candidates(lib, p, "held", view)])


def check_labels(lib: Any, qrels: Any) -> None:
    """Every labelled file indexed and ready, every span inside its file: else a clear error
    naming the entry, before anything is run or trained."""
    known = {f.path: f for f in lib.files()}
    for q in qrels.queries:
        name = q.get("id") or q.get("query") or "?"
        if q["type"] == "text" and not str(q.get("query", "")).strip():
            raise InvalidInputError(f"{qrels.path}: query {name!r} has no text")
        for r in q["relevant"]:
            info = known.get(r["file"])
            if info is None or info.status != "ready":
                raise InvalidInputError(f"{qrels.path}: query {name!r} names {r['file']}, which is not indexed; "
                                        "add it first (or run `speechsearch eval` on these labels, which adds them)")
            if "start" in r or "end" in r:
                start, end = float(r.get("start", 0.0)), float(r.get("end", info.duration or 0.0))
                if not 0 <= start < end or (info.duration and end > info.duration + 1.0):
                    raise InvalidInputError(f"{qrels.path}: query {name!r}: the span {start}-{end} s is outside "
                                            f"{r['file']} ({info.duration or 0:.1f} s)")


def _intents(qrels: Any) -> Dict[str, str]:
    """File -> its intent, from the qrels' "files" entries that name one."""
    import json

    data = json.loads(qrels.path.read_text())
    root = qrels.path.parent
    return {str((root / f["file"]).resolve()): str(f["intent"]) for f in data.get("files", []) if "intent" in f}


# -- the text model ---------------------------------------------------------------------------
TEXT_EPOCHS = 3
TEXT_LR = 2e-5
TEXT_BATCH = 16


def text_triplets(catalog: Any, train: Data, positives: int = 2, negatives: int = 2) -> List[Tuple[str, str, str]]:
    """(query, relevant window text, irrelevant window text) triplets from the training queries:
    the positives are the best windows (by the current text cosine) of a relevant call that
    overlap the labelled span when there is one; the negatives the best windows of other calls,
    mined from the index itself (hard negatives)."""
    texts: Dict[str, Dict[str, str]] = {}

    def text_of(path: str, wid: str) -> str:
        if path not in texts:
            texts[path] = {i: w.text for i, w in catalog.windows(path)}
        return texts[path].get(wid, "")

    out = []
    for q, rows in train:
        rel = {r["file"] for r in q["relevant"]}
        spans = {r["file"]: (float(r["start"]), float(r["end"])) for r in q["relevant"] if "start" in r and "end" in r}
        ranked = sorted(rows, key=lambda r: -r["x"].get("text", 0.0))
        pos = [r for r in ranked if r["path"] in rel and (r["path"] not in spans or (
            r["start"] < spans[r["path"]][1] and spans[r["path"]][0] < r["end"]))][:positives]
        neg = [r for r in ranked if r["path"] not in rel][:negatives]
        for p in pos:
            for n in neg:
                a, b = text_of(p["path"], p["id"]), text_of(n["path"], n["id"])
                if a and b:
                    out.append((q["query"], a, b))
    return out


def train_text(model: Any, triplets: Sequence[Tuple[str, str, str]], seed: int = 0,
               epochs: int = TEXT_EPOCHS, lr: float = TEXT_LR, batch: int = TEXT_BATCH) -> Tuple[Any, List[float]]:
    """A copy of the sentence-transformers `model` fine-tuned on `triplets` with in-batch and hard
    negatives (multiple-negatives ranking loss: each query must pick its own relevant window out
    of every window of the batch, relevant or hard negative). Returns (model, mean loss per epoch)."""
    import copy

    import torch

    if not triplets:
        raise InvalidInputError("no training pairs: the training queries found none of their relevant calls")
    torch.manual_seed(seed)
    tuned = copy.deepcopy(model)
    tuned.train()
    optimiser = torch.optim.AdamW(tuned.parameters(), lr=lr)
    rng = random.Random(seed)
    order = list(triplets)
    preprocess = getattr(tuned, "preprocess", None) or tuned.tokenize

    def embed(texts: Sequence[str]) -> Any:
        features = preprocess(list(texts))
        features = {k: v.to(tuned.device) if hasattr(v, "to") else v for k, v in features.items()}
        return torch.nn.functional.normalize(tuned(features)["sentence_embedding"], dim=-1)

    losses = []
    for _ in range(epochs):
        rng.shuffle(order)
        total, steps = 0.0, 0
        for at in range(0, len(order), batch):
            part = order[at:at + batch]
            a, p, n = (embed([t[k] for t in part]) for k in range(3))
            logits = 20.0 * a @ torch.cat([p, n]).T  # scale 20: sentence-transformers' default
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(part), device=logits.device))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total, steps = total + float(loss.detach()), steps + 1
        losses.append(round(total / max(1, steps), 4))
    tuned.eval()
    return tuned, losses
