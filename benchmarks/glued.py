"""The baseline speechsearch must beat: tiny.en + MiniLM + Chroma glued by hand, and BM25 alone.

What a user writes in about 100 lines, measured with the same metrics as ``speechsearch eval``
(``speechsearch.evaluate.judge`` and ``Metrics``; hits reduced to distinct files in hit order,
k=10), on any qrels file. speechsearch's own pipeline is not used for the baselines; only its
model resolver (to find the packaged weights offline) and its judging code.

glued   faster-whisper ``WhisperModel(tiny.en, device="cpu", compute_type="int8")`` with default
        ``transcribe()`` settings (beam 5, no VAD); each Whisper segment is one unit
        (start, end, text), embedded with ``SentenceTransformer(all-MiniLM-L6-v2)``
        (``normalize_embeddings=True``) into a ``chromadb.PersistentClient`` collection in a
        temporary folder (cosine space, no embedding function, telemetry off). A text query is
        embedded and the top 30 segments come back; hit score = 1 - cosine distance.
bm25    Okapi BM25 (k1 1.2, b 0.75, lower-case word tokens, a short stopword list) over the
        same Whisper segments; top 30 segments with a positive score; score = raw BM25.

Audio queries (query by example) are transcribed the same way and their text is the query; their
ms/query includes that transcription (timed once, when the clip was first transcribed).
The top 30 segments are reduced to one hit per file (the first, i.e. best, segment of each file)
before ``judge(k=10)``, so every query is judged on up to 10 distinct files; this is the same
file ranking and span-hit as judging all 30 segments, without cutting at 10 segments.
P/R/F1 use the threshold (0.5) on the raw score: cosine similarity for glued, BM25 for bm25
(unbounded, so nearly every returned file passes).

Transcripts are cached in ``benchmarks/.data/glued-<set>.json`` (with transcription wall time
and audio seconds), so a rerun does not transcribe again. WER of the transcripts is measured
against the scripted turns (calls) or the ``transcript`` (human recordings; those marked
"(approximate)" are left out) after normalising both sides (lower case, punctuation
stripped, hyphens to spaces, number words to digits, adjacent numbers joined).

    python benchmarks/glued.py [--qrels benchmarks/devset/qrels.json] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from speechsearch.evaluate import EvalReport, Metrics, QueryOutcome, judge, load_qrels  # noqa: E402
from speechsearch.models import resolve_text_model, resolve_whisper  # noqa: E402
from speechsearch.types import Hit  # noqa: E402

K = 10
TOP = 30  # segments fetched per query
THRESHOLD = 0.5
Segments = List[Tuple[float, float, str]]


# ---------------------------------------------------------------- transcription (cached)

def transcribe_all(paths: Sequence[str], root: Path, cache_path: Path, log) -> Dict[str, dict]:
    """{path: {"segments": [[start, end, text]], "seconds": wall, "duration": audio s}}; a file
    whose size or mtime changed since it was cached is transcribed again."""
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    model_dir = resolve_whisper("tiny.en").source
    if cache.get("model") != model_dir:
        cache = {"model": model_dir, "settings": "tiny.en cpu int8, transcribe() defaults (beam 5, no VAD)",
                 "audio": {}}
    stamp = lambda p: [Path(p).stat().st_size, Path(p).stat().st_mtime_ns]  # noqa: E731
    todo = [p for p in paths if cache["audio"].get(_rel(p, root), {}).get("stamp") != stamp(p)]
    if todo:
        from faster_whisper import WhisperModel

        model = WhisperModel(model_dir, device="cpu", compute_type="int8")
        for i, p in enumerate(todo, 1):
            t0 = time.perf_counter()
            segments, info = model.transcribe(p)
            segs = [[round(s.start, 3), round(s.end, 3), s.text.strip()] for s in segments]
            wall = time.perf_counter() - t0
            cache["audio"][_rel(p, root)] = {"segments": segs, "seconds": round(wall, 3),
                                             "duration": round(info.duration, 3), "stamp": stamp(p)}
            log(f"transcribed {i}/{len(todo)} {_rel(p, root)} ({info.duration:.1f} s audio, {wall:.1f} s)")
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(cache, indent=1))
            tmp.replace(cache_path)
    return {p: cache["audio"][_rel(p, root)] for p in paths}


def _rel(path: str, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path


# ---------------------------------------------------------------- the hand-glued pipeline

class Glued:
    """Whisper segments -> MiniLM -> Chroma, as a user would write it."""

    def __init__(self, units: List[Tuple[str, float, float, str]]):
        import chromadb
        from chromadb.config import Settings
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(resolve_text_model("all-MiniLM-L6-v2").source, device="cpu")
        self.dir = tempfile.mkdtemp(prefix="glued-chroma-")
        client = chromadb.PersistentClient(path=self.dir, settings=Settings(anonymized_telemetry=False))
        self.col = client.create_collection("segments", metadata={"hnsw:space": "cosine"},
                                            embedding_function=None)
        vectors = self.model.encode([u[3] for u in units], normalize_embeddings=True, batch_size=64)
        for i in range(0, len(units), 1000):
            chunk = units[i:i + 1000]
            self.col.add(ids=[str(i + j) for j in range(len(chunk))],
                         embeddings=[v.tolist() for v in vectors[i:i + len(chunk)]],
                         documents=[u[3] for u in chunk],
                         metadatas=[{"path": u[0], "start": u[1], "end": u[2]} for u in chunk])
        self.search("warm up")  # first encode and first HNSW load are not timed

    def search(self, text: str) -> List[Hit]:
        v = self.model.encode([text], normalize_embeddings=True)[0].tolist()
        r = self.col.query(query_embeddings=[v], n_results=min(TOP, self.col.count()),
                           include=["metadatas", "documents", "distances"])
        return [Hit(m["path"], m["start"], m["end"], d, 1.0 - dist)
                for m, d, dist in zip(r["metadatas"][0], r["documents"][0], r["distances"][0])]

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------- BM25 alone

STOPWORDS = set("""a an and are as at be but by for from has have i if in into is it its me my no not of on
or our so that the their them then there these they this to was we were what when where which who will
with you your yes okay ok um uh oh""".split())


def bm25_tokens(text: str) -> List[str]:
    return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOPWORDS]


class BM25:
    def __init__(self, units: List[Tuple[str, float, float, str]], k1: float = 1.2, b: float = 0.75):
        self.units, self.k1, self.b = units, k1, b
        self.docs = [Counter(bm25_tokens(u[3])) for u in units]
        self.lens = [sum(d.values()) for d in self.docs]
        self.avg = sum(self.lens) / max(1, len(self.lens))
        df = Counter(w for d in self.docs for w in d)
        n = len(self.docs)
        self.idf = {w: math.log(1 + (n - f + 0.5) / (f + 0.5)) for w, f in df.items()}

    def search(self, text: str) -> List[Hit]:
        q = bm25_tokens(text)
        scored = []
        for i, (d, n) in enumerate(zip(self.docs, self.lens)):
            s = 0.0
            for w in q:
                f = d.get(w)
                if f:
                    s += self.idf[w] * f * (self.k1 + 1) / (f + self.k1 * (1 - self.b + self.b * n / self.avg))
            if s > 0:
                scored.append((s, i))
        scored.sort(key=lambda x: -x[0])
        return [Hit(self.units[i][0], self.units[i][1], self.units[i][2], self.units[i][3], s)
                for s, i in scored[:TOP]]


# ---------------------------------------------------------------- WER with number normalising

_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split())
         if w != "_"}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1000000}
_ORDINALS = {"first": "one", "second": "two", "third": "three", "fourth": "four", "fifth": "five",
             "sixth": "six", "seventh": "seven", "eighth": "eight", "ninth": "nine", "tenth": "ten",
             "twelfth": "twelve", "twentieth": "twenty", "thirtieth": "thirty"}


def _number_words(tokens: List[str]) -> List[str]:
    """Number words to digits: 'forty five' -> '45', 'two hundred and ten' -> '210'; then
    adjacent numbers are joined into one digit string ('four four seven one', '44 71' and
    '4471' all become '4471'), so a number reads the same however it was spelled."""
    out: List[str] = []
    i = 0
    while i < len(tokens):
        if tokens[i] not in _UNITS and tokens[i] not in _TENS:
            out.append(tokens[i])
            i += 1
            continue
        total, cur = 0, None  # cur: the part below a thousand, None before its first word
        while i < len(tokens):
            w = tokens[i]
            after_hundred = cur is not None and cur >= 100 and cur % 100 == 0
            if w in _TENS or _UNITS.get(w, 0) >= 10:
                if not (cur is None or after_hundred):
                    break
                cur = (cur or 0) + _TENS.get(w, _UNITS.get(w, 0))
            elif w in _UNITS:
                if not (cur is None or after_hundred or (cur % 100 >= 20 and cur % 10 == 0)):
                    break
                cur = (cur or 0) + _UNITS[w]
            elif w == "hundred" and cur is not None and 0 < cur < 100:
                cur *= 100
            elif w in _SCALES and w != "hundred" and cur:
                total, cur = total + cur * _SCALES[w], None
            elif w == "and" and after_hundred and i + 1 < len(tokens) \
                    and (tokens[i + 1] in _UNITS or tokens[i + 1] in _TENS):
                pass
            else:
                break
            i += 1
        out.append(str(total + (cur or 0)))
    joined: List[str] = []
    for w in out:
        if w.isdigit() and joined and joined[-1].isdigit():
            joined[-1] += w
        else:
            joined.append(w)
    return joined


def normalise(text: str) -> List[str]:
    t = text.lower().replace("%", " percent ").replace("&", " and ")
    t = re.sub(r"\$(\d[\d,]*(?:\.\d+)?)", r"\1 dollars", t)
    t = re.sub(r"(\d),(\d{3})", r"\1\2", t)
    t = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", t)
    t = re.sub(r"([a-z])(\d)", r"\1 \2", t)  # x200 -> x 200 (x-200 -> x 200 below)
    t = t.replace("-", " ")
    t = re.sub(r"[^a-z0-9' ]+", " ", t)
    toks = [w.strip("'") for w in t.split()]
    toks = [_ORDINALS.get(w, w) for w in toks if w]
    return _number_words(toks)


def word_errors(ref: str, hyp: str) -> Tuple[int, int]:
    """(edit distance in words, reference words) after normalising both sides."""
    r, h = normalise(ref), normalise(hyp)
    d = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(h) + 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r[i - 1] != h[j - 1]))
    return d[len(h)], len(r)


def wer_report(raw: dict, root: Path, transcripts: Dict[str, dict]) -> dict:
    """WER per file and mean per group: "scripted" (the turns of a call), "human" (a reference
    `transcript`). Transcripts marked "(approximate)" are skipped; "..." (a cut) is dropped."""
    per_file, groups, skipped = {}, {}, []
    for f in raw.get("files", []):
        ref = " ".join(t["text"] for t in f.get("turns") or []) or f.get("transcript") or ""
        path = str((root / f["file"]).resolve())
        if not ref.strip() or path not in transcripts:
            continue
        if not f.get("turns") and "(approximate)" in ref:
            skipped.append(f["file"])
            continue
        ref = ref.replace("...", " ")
        hyp = " ".join(s[2] for s in transcripts[path]["segments"])
        e, n = word_errors(ref, hyp)
        kind = "scripted" if f.get("turns") else "human"
        per_file[f["file"]] = {"kind": kind, "wer": e / max(1, n), "errors": e, "words": n}
        groups.setdefault(kind, []).append(per_file[f["file"]])
        groups.setdefault("all", []).append(per_file[f["file"]])
    summary = {g: {"files": len(v), "mean_wer": sum(x["wer"] for x in v) / len(v),
                   "corpus_wer": sum(x["errors"] for x in v) / max(1, sum(x["words"] for x in v)),
                   "worst": max(x["wer"] for x in v)} for g, v in groups.items()}
    return {"summary": summary, "files": per_file, "skipped_approximate": skipped}


# ---------------------------------------------------------------- main

def run(qrels_path: str, json_out: Optional[str], log) -> str:
    qrels = load_qrels(qrels_path)
    raw = json.loads(qrels.path.read_text())
    root = qrels.path.parent
    name = root.name
    clips = list(dict.fromkeys(q["clip"] for q in qrels.queries if q["type"] == "audio"))
    cache = ROOT / "benchmarks" / ".data" / f"glued-{name}.json"
    tr = transcribe_all(qrels.files + clips, root, cache, log)
    audio_s = sum(tr[p]["duration"] for p in qrels.files)
    wall_s = sum(tr[p]["seconds"] for p in qrels.files)

    units = [(p, s, e, text) for p in qrels.files for s, e, text in tr[p]["segments"] if text.strip()]
    log(f"{len(qrels.files)} files, {len(units)} segments, {len(qrels.queries)} queries")
    t0 = time.perf_counter()
    glued = Glued(units)
    index_s = time.perf_counter() - t0
    bm25 = BM25(units)
    engines = {"glued": glued.search, "bm25": bm25.search}

    outcomes: List[QueryOutcome] = []
    try:
        for mode, search in engines.items():
            for q in qrels.queries:
                extra = 0.0
                if q["type"] == "text":
                    text = q["query"]
                else:
                    text = " ".join(s[2] for s in tr[q["clip"]]["segments"]).strip()
                    extra = tr[q["clip"]]["seconds"]  # the clip's transcription, timed once
                t = time.perf_counter()
                hits = search(text) if text else []
                seconds = time.perf_counter() - t + extra
                best: Dict[str, Hit] = {}
                for h in hits:
                    best.setdefault(h.path, h)  # distinct files in hit order
                outcomes.append(judge(q, list(best.values()), mode, seconds, K))
    finally:
        glued.close()

    reports = {}
    for mode in engines:
        rep = EvalReport(str(qrels.path), f"hand-glued {mode}", K, THRESHOLD)
        groups: Dict[str, List[QueryOutcome]] = {}
        for o in outcomes:
            if o.mode == mode:
                groups.setdefault(o.group, []).append(o)
                groups.setdefault(o.group.split("/")[0], []).append(o)
        rep.metrics[mode] = {g: Metrics.of(v, THRESHOLD) for g, v in sorted(groups.items())}
        rep.outcomes = [o for o in outcomes if o.mode == mode]
        reports[mode] = rep

    wer = wer_report(raw, root, tr)
    lines = [f"# hand-glued baselines on {_rel(str(qrels.path), ROOT)} (k={K}, threshold {THRESHOLD:g} on the raw score)",
             "",
             f"transcription (tiny.en int8, beam 5, no VAD): {audio_s:.0f} s of audio in {wall_s:.0f} s "
             f"({audio_s / max(wall_s, 1e-9):.1f}x real time), {len(qrels.files)} files, {len(units)} segments; "
             f"MiniLM + Chroma indexing {index_s:.1f} s (incl. model load)", ""]
    for mode, rep in reports.items():
        lines += [f"## {mode}", "", rep.table(), ""]
    lines += ["## WER of the glued transcripts (normalised)", "", "| files | n | mean WER | corpus WER | worst |",
              "| --- | ---: | ---: | ---: | ---: |"]
    for g, s in sorted(wer["summary"].items()):
        lines.append(f"| {g} | {s['files']} | {s['mean_wer']:.3f} | {s['corpus_wer']:.3f} | {s['worst']:.3f} |")
    if wer["skipped_approximate"]:
        lines += ["", f"({len(wer['skipped_approximate'])} files with an approximate reference transcript "
                      "are left out)"]
    text = "\n".join(lines)
    if json_out:
        out = {"qrels": str(qrels.path), "k": K, "top_segments": TOP, "threshold": THRESHOLD,
               "transcription": {"audio_seconds": audio_s, "wall_seconds": wall_s, "files": len(qrels.files),
                                 "segments": len(units), "cache": _rel(str(cache), ROOT),
                                 "clips_wall_seconds": sum(tr[c]["seconds"] for c in clips)},
               "index_seconds": index_s,
               "modes": {m: r.to_dict() for m, r in reports.items()}, "wer": wer}
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps(out, indent=1))
    return text


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--qrels", default=str(ROOT / "benchmarks" / "devset" / "qrels.json"))
    ap.add_argument("--json", metavar="OUT", help="write everything (metrics, per-query outcomes, WER) here")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = ap.parse_args(argv)
    log = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    print(run(args.qrels, args.json, log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
