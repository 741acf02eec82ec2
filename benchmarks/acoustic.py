"""Acoustic query-by-example benchmark: which embedder, pooling and segment size find the file
(and the span) where a clip was said, on the dev set (benchmarks/devset/qrels.json).

Index: every dev-set file is cut into candidate segments at one granularity

  turn     each reference turn of a call; files without turns (distractors, codec2 originals)
           whole when <= 6 s, else cut into equal pieces of at most 5 s
  win3     sliding 3 s windows, 1.5 s hop (the last one aligned to the end; whole file if < 3 s)
  libwin   the library's search windows: consecutive turns grouped up to ~20 s; files without
           turns whole (all are < 30 s)

and each segment is embedded (``embed`` of the cut audio; ``--pooled`` instead computes the
frame vectors of each file once and pools the frames inside each segment, which is how an
indexer would do it cheaply). Each audio query clip (kinds qbe-tts, qbe-codec) is embedded the
same way; files are ranked by their best segment's cosine similarity.

Each embedder x granularity is scored with pooling mean / meanstd / max (one vector per
segment) and ``frames`` (no pooling, late interaction: mean over query frames of the best
cosine to any segment frame; needs all frames stored, a re-ranking option), each without and
with centring (``center``: subtract the mean of the index's vectors -- or frames -- from index
and query before the cosine; a library-side step, the mean is a corpus statistic).

Metrics: Recall@1 and MRR@10 of the relevant file per kind and over all; span@1 = the top
segment overall is in the relevant file and overlaps its relevant span (queries with a span);
cost = seconds of embedding per second of indexed audio (single onnxruntime thread), reported as
ms per audio second, for the whole index at that granularity (overlapping windows cost more);
floats/min = stored floats per minute of audio (vector size x segments).

    python benchmarks/acoustic.py [--embedders speech-embedding,efficientword,mfcc]
                                  [--granularity turn,win3,libwin] [--pooled] [--json OUT]
"""
from __future__ import annotations

import argparse, json, math, sys, time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from speechsearch.audio import decode  # noqa: E402
from speechsearch.embed.acoustic import EMBEDDERS, POOLINGS, get_acoustic_embedder  # noqa: E402

SR = 16000
DEVSET = ROOT / "benchmarks" / "devset"
GRANULARITIES = ("turn", "win3", "libwin")


def _split(dur: float, piece: float = 5.0) -> List[Tuple[float, float]]:
    if dur <= 6.0:
        return [(0.0, dur)]
    n = math.ceil(dur / piece)
    return [(dur * i / n, dur * (i + 1) / n) for i in range(n)]


def segments(entry: dict, dur: float, granularity: str) -> List[Tuple[float, float]]:
    turns = [(t["start"], t["end"]) for t in entry.get("turns") or []]
    if granularity == "turn":
        return turns or _split(dur)
    if granularity == "win3":
        if dur <= 3.0:
            return [(0.0, dur)]
        starts = list(np.arange(0.0, dur - 3.0 + 1e-9, 1.5))
        if starts[-1] + 3.0 < dur - 0.05:
            starts.append(dur - 3.0)
        return [(float(s), float(s) + 3.0) for s in starts]
    if granularity == "libwin":
        if not turns:
            return [(0.0, dur)]
        out, cur = [], None
        for s, e in turns:
            if cur is not None and e - cur[0] > 20.0:
                out.append(cur)
                cur = None
            cur = (s, e) if cur is None else (cur[0], e)
        out.append(cur)
        return out
    raise ValueError(granularity)


def load(devset: Path):
    q = json.loads((devset / "qrels.json").read_text())
    files = {f["file"]: (f, decode(str(devset / f["file"]))) for f in q["files"]}
    queries = [(x, decode(str(devset / x["clip"]))) for x in q["queries"] if x.get("type") == "audio"]
    return files, queries


def cut(audio: np.ndarray, s: float, e: float) -> np.ndarray:
    return audio[int(round(s * SR)):max(int(round(e * SR)), int(round(s * SR)) + 1)]


_FILE_FRAMES: Dict[str, Tuple[float, Dict[str, np.ndarray]]] = {}


def file_frames(emb, files) -> Tuple[float, Dict[str, np.ndarray]]:
    """Frame vectors of every whole file (computed once per embedder) and their cost."""
    if emb.name not in _FILE_FRAMES:
        t0 = time.perf_counter()
        fr = {p: emb.frames(a) for p, (_, a) in files.items()}
        audio_s = sum(len(a) / SR for _, a in files.values())
        _FILE_FRAMES[emb.name] = ((time.perf_counter() - t0) / audio_s * 1000.0, fr)
    return _FILE_FRAMES[emb.name]


def evaluate(emb_name: str, granularity: str, files, queries, pooled: bool) -> List[dict]:
    emb = get_acoustic_embedder(emb_name, threads=1, center=False)
    emb.frames(np.zeros(SR * 2, np.float32))  # load + warm up outside the timing
    seg_frames, seg_meta = [], []
    audio_s = sum(len(a) / SR for _, a in files.values())
    t0 = time.perf_counter()
    if pooled:
        cost, all_frames = file_frames(emb, files)
    for path, (entry, audio) in files.items():
        dur = len(audio) / SR
        segs = segments(entry, dur, granularity)
        if pooled:
            fr = all_frames[path]
            t = emb.frame_times(len(fr))
            for s, e in segs:
                sel = (t >= s) & (t <= e)
                if not sel.any():
                    sel[int(np.argmin(np.abs(t - (s + e) / 2)))] = True
                seg_frames.append(fr[sel])
                seg_meta.append((path, s, e))
        else:
            for s, e in segs:
                seg_frames.append(emb.frames(cut(audio, s, e)))
                seg_meta.append((path, s, e))
    if not pooled:
        cost = (time.perf_counter() - t0) / audio_s * 1000.0
    q_frames = [emb.frames(a) for _, a in queries]
    paths = [m[0] for m in seg_meta]
    rows = []
    variants = [(p, c) for p in POOLINGS + ("frames",) for c in ("-", "index")]
    variants += [(p, "built-in") for p in POOLINGS if type(emb)(pooling=p).centre is not None]
    for pooling, center in variants:
        if pooling == "frames":
            score = late_interaction_scorer(seg_frames, center == "index")
            dim = emb.frame_dim
        else:
            e = type(emb)(pooling=pooling, center=center == "built-in")
            index = np.stack([e.pool(f) for f in seg_frames])
            mu = index.mean(0) if center == "index" else np.zeros(index.shape[1], np.float32)
            index = _unit_rows(index - mu)
            score = lambda qf, index=index, mu=mu, e=e: index @ _unit_rows(e.pool(qf) - mu)
            dim = index.shape[1]
        row = {"embedder": emb_name, "pooling": pooling, "center": center, "granularity": granularity,
               "pooled": pooled, "dim": int(dim), "segments": len(seg_meta),
               "floats_per_min": round(sum(len(f) for f in seg_frames) * dim / (audio_s / 60.0))
               if pooling == "frames" else round(len(seg_meta) * dim / (audio_s / 60.0)),
               "ms_per_audio_s": round(cost, 2)}
        row.update(metrics([score(qf) for qf in q_frames], queries, paths, seg_meta))
        rows.append(row)
    return rows


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def late_interaction_scorer(seg_frames: List[np.ndarray], center: bool):
    """No pooling: score(query, segment) = mean over query frames of the best cosine to any
    frame of the segment (ColBERT-style MaxSim; needs every frame stored)."""
    allf = np.concatenate(seg_frames)
    mu = allf.mean(0) if center else np.zeros(allf.shape[1], np.float32)
    bounds = np.cumsum([0] + [len(f) for f in seg_frames])
    allf = _unit_rows(allf - mu)

    def score(qf: np.ndarray) -> np.ndarray:
        sim = _unit_rows(qf - mu) @ allf.T
        return np.array([sim[:, bounds[i]:bounds[i + 1]].max(1).mean() for i in range(len(seg_frames))])
    return score


def metrics(all_sims: List[np.ndarray], queries, paths: List[str], seg_meta) -> dict:
    per: Dict[str, list] = {"qbe-tts": [], "qbe-codec": []}
    for (q, _), sims in zip(queries, all_sims):
        best: Dict[str, float] = {}
        for p, v in zip(paths, sims):
            best[p] = max(best.get(p, -9.0), float(v))
        ranking = sorted(best, key=best.get, reverse=True)
        rel = {r["file"] for r in q["relevant"]}
        rank = next((i + 1 for i, p in enumerate(ranking) if p in rel), None)
        span = None
        spans = [r for r in q["relevant"] if "start" in r]
        if spans:
            p, s, e = seg_meta[int(np.argmax(sims))]
            span = any(p == r["file"] and min(e, r["end"]) - max(s, r["start"]) > 0 for r in spans)
        if q["kind"] in per:  # spoken paraphrases (qbe-intent) share no sound with their calls
            per[q["kind"]].append((rank, span))
    row = {}
    for kind, res in list(per.items()) + [("all", per["qbe-tts"] + per["qbe-codec"])]:
        row[f"r1_{kind}"] = round(float(np.mean([r == 1 for r, _ in res])), 3)
        row[f"mrr_{kind}"] = round(float(np.mean([1.0 / r if r and r <= 10 else 0.0 for r, _ in res])), 3)
        row[f"n_{kind}"] = len(res)
    sp = [s for _, s in per["qbe-tts"] + per["qbe-codec"] if s is not None]
    row["span1"], row["n_span"] = round(float(np.mean(sp)), 3), len(sp)
    return row


def frame_cost(emb_name: str, files, seconds: float = 60.0, repeat: int = 3) -> float:
    """ms per audio second of ``frames()`` on `seconds` of real audio, one thread, best of
    `repeat` (the machine is shared, so the minimum is the steadiest figure)."""
    emb = get_acoustic_embedder(emb_name, threads=1)
    audio = np.concatenate([a for _, a in files.values()])[: int(seconds * SR)]
    emb.frames(audio[: 2 * SR])
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        emb.frames(audio)
        best = min(best, time.perf_counter() - t0)
    return best / (len(audio) / SR) * 1000.0


def make_centre() -> None:
    """Print the built-in centre of speech-embedding "meanstd" vectors (see acoustic.py)."""
    import base64
    import textwrap
    emb = get_acoustic_embedder("speech-embedding", pooling="meanstd", center=False)
    paths = sorted(p for d in ("examples", "tests/data") for p in (ROOT / d).iterdir()
                   if p.suffix in (".mp3", ".ogg", ".flac", ".wav"))
    vecs = []
    for p in paths:
        fr = emb.frames(decode(str(p)))
        t = emb.frame_times(len(fr))
        for s in np.arange(0.0, max(t[-1] - 4.0, 0.0) + 1e-9, 2.0):
            sel = (t >= s) & (t <= s + 4.0)
            if sel.sum() > 1:
                vecs.append(emb.pool(fr[sel]))
    c = np.stack(vecs).mean(0).astype(np.float16)
    print(f"{len(vecs)} windows of {len(paths)} files; |centre| = {float(np.linalg.norm(c)):.4f}")
    print(textwrap.fill(base64.b64encode(c.tobytes()).decode(), 92))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embedders", default=",".join(EMBEDDERS))
    ap.add_argument("--granularity", default=",".join(GRANULARITIES))
    ap.add_argument("--pooled", action="store_true", help="pool file-level frames instead of embedding cut segments")
    ap.add_argument("--devset", default=str(DEVSET))
    ap.add_argument("--json", help="write the rows here")
    ap.add_argument("--make-centre", action="store_true", help="print the speech-embedding centre and exit")
    args = ap.parse_args()
    if args.make_centre:
        return make_centre()
    files, queries = load(Path(args.devset))
    print(f"dev set: {len(files)} files, {sum(len(a) for _, a in files.values()) / SR:.0f} s of audio, "
          f"{len(queries)} audio queries ({sum(q['kind'] == 'qbe-tts' for q, _ in queries)} qbe-tts, "
          f"{sum(q['kind'] == 'qbe-codec' for q, _ in queries)} qbe-codec); mode: "
          f"{'pooled file frames' if args.pooled else 'embed each cut segment'}")
    rows, costs = [], {}
    for name in args.embedders.split(","):
        costs[name] = round(frame_cost(name, files), 2)
        for g in args.granularity.split(","):
            for r in evaluate(name, g, files, queries, args.pooled):
                r["frames_ms_per_audio_s"] = costs[name]
                rows.append(r)
    head = ("embedder", "pooling", "center", "gran", "dim", "segs", "R@1 tts", "MRR tts", "R@1 codec", "MRR codec",
            "R@1 all", "MRR all", "span@1", "ms/audio-s", "floats/min")
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        vals = (r["embedder"], r["pooling"], r["center"], r["granularity"], r["dim"], r["segments"], r["r1_qbe-tts"],
                r["mrr_qbe-tts"], r["r1_qbe-codec"], r["mrr_qbe-codec"], r["r1_all"], r["mrr_all"], r["span1"],
                r["ms_per_audio_s"], r["floats_per_min"])
        print("| " + " | ".join(str(v) for v in vals) + " |")
    print("frames() cost, ms per audio second, 1 thread, best of 3 on 60 s: "
          + ", ".join(f"{k} {v}" for k, v in costs.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "pooled": args.pooled,
                                               "frames_ms_per_audio_s": costs, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
