"""Speaker turns for mono recordings: how well does clustering the sentences' voice vectors
(speechsearch.diarize.assign_speakers) find who spoke when?

Inputs are exactly what indexing computes: decode -> Silero VAD -> faster-whisper tiny.en (word
times) -> sentences -> one resemblyzer vector per sentence clip (ingest.sentence_clips; sentences
under 1 s widened to 1 s), each with its span in file time.

Recordings (the issue's three "core" files first):
  human-2    examples/phone-call-human.flac, the pyannote sample call: real telephone speech, two
             people, 30 s, 10 reference turns (tests/data/pyannote-sample.rttm)
  tts-2      tests/data/cancel-subscription-call.mp3 (core), the 3 other calls of
             tests/data/calls.json and the 30 dev-set calls (benchmarks/devset; 9 telephone band):
             two TTS voices each, AGENT and CUSTOMER turns with exact times
  one-voice  tests/data/librivox-short.flac (core, 1 sentence); real human speech spliced from
             repo files with 0.6 s pauses: the 5 dev-set LibriVox sentences (one reader) and each
             pyannote speaker's solo stretches (telephone); the dev-set codec2 recordings vk5qi
             and cq-ref (radio); and, when Debian's codec2-examples is installed, its 112 s
             ve9qrp.raw (one radio amateur; not in the repo)

Scores, under the best one-to-one map from hypothesis labels to reference speakers:
  turn acc   share of reference speech time (10 ms frames) covered by sentence spans that gets
             the right label (where two people talk, either is right; where spans overlap, the
             span whose middle is nearer); "cover" is the share of reference speech under a span
  DER        (missed + false alarm + confusion) / reference speech, 0.25 s collar around each
             reference turn boundary; hypothesis speech = the sentence spans
  sent acc   share of sentences labelled as the reference speaker they overlap most
  single     share of one-voice recordings given one label
Baselines: everyone "S1"; alternate the label at every pause > 0.5 s; alternate every sentence.
"oracle-k" is average linkage stopped at the true number of speakers: the ceiling for these
vectors with this clustering, not a usable method. The sweep picks threshold and
min_cluster_seconds on all recordings (objective: mean of the pyannote turn acc, the mean turn
acc of the synthetic calls and the one-voice share) and, for comparison, on the core files only.

    python benchmarks/diarization.py [--no-devset] [--json OUT]     # about 3 min on 2 busy cores
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from speechsearch.audio import SAMPLE_RATE, decode, iter_blocks, probe  # noqa: E402
from speechsearch.diarize import DiarizeOptions, assign_speakers  # noqa: E402

Turn = Tuple[float, float, str]
FRAME = 0.01


# ------------------------------------------------------------------ inputs --------------------
class SentenceVoices:
    """Spans and voice vectors of a recording's transcript sentences, as the pipeline makes them."""

    def __init__(self, model: str = "tiny.en"):
        from speechsearch.embed.voice import get_voice_embedder
        from speechsearch.ingest import Pipeline
        from speechsearch.transcribe import get_transcriber

        self.pipeline = Pipeline(transcriber=get_transcriber("faster-whisper", model=model), embedder=None,
                                 voice=get_voice_embedder("resemblyzer"))

    def __call__(self, source) -> Tuple[List[Tuple[float, float]], np.ndarray, List[str]]:
        """`source`: a path, or 16 kHz mono float32 audio. Returns (spans, vectors [n, 256], texts)."""
        from speechsearch.ingest import sentence_clips
        from speechsearch.segment import iter_speech
        from speechsearch.transcribe import transcribe_chunks
        from speechsearch.windows import sentences

        p = self.pipeline
        blocks = iter_blocks(str(source), 30.0) if isinstance(source, (str, Path)) else [source]
        spans: List[Tuple[float, float]] = []
        vectors, texts = [], []
        for chunk in iter_speech(blocks, p.vad):
            segs = transcribe_chunks(p.transcriber, [chunk.audio], "en")[0]
            if not segs:
                continue
            # chunk-relative segments, as assemble.take_chunk takes them
            s, clips = sentence_clips(chunk, segs, p)
            spans += s
            vectors.append(p.voice.embed_many(clips))
            texts += [x.text for x in sentences(segs, p.windows)]
        return spans, (np.concatenate(vectors) if vectors else np.zeros((0, 256), np.float32)), texts


def rttm_turns(path: Path) -> List[Turn]:
    out = []
    for line in path.read_text().splitlines():
        p = line.split()
        if p and p[0] == "SPEAKER":
            out.append((float(p[3]), float(p[3]) + float(p[4]), p[7]))
    return out


def splice(parts: Sequence[np.ndarray], pause: float = 0.6) -> np.ndarray:
    gap = np.zeros(int(pause * SAMPLE_RATE), np.float32)
    out = [gap]
    for a in parts:
        out += [np.asarray(a, np.float32), gap]
    return np.concatenate(out)


def solo_speech(audio: np.ndarray, turns: List[Turn], speaker: str) -> List[np.ndarray]:
    """The stretches where only `speaker` talks."""
    n = int(len(audio) / SAMPLE_RATE / FRAME) + 1
    mine, others = np.zeros(n, bool), np.zeros(n, bool)
    for s, e, spk in turns:
        (mine if spk == speaker else others)[round(s / FRAME):round(e / FRAME)] = True
    alone = np.flatnonzero(mine & ~others)
    runs = np.split(alone, np.flatnonzero(np.diff(alone) != 1) + 1)
    hop = int(FRAME * SAMPLE_RATE)
    return [audio[r[0] * hop:(r[-1] + 1) * hop] for r in runs if len(r) >= 30]


VE9QRP = Path("/usr/share/codec2/raw/ve9qrp.raw")  # Debian codec2-examples; used when installed


def load_raw(path: Path, rate: int = 8000) -> np.ndarray:
    import subprocess

    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-f", "s16le", "-ar", str(rate), "-ac", "1", "-i", str(path),
           "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le", "-"]
    pcm = subprocess.run(cmd, capture_output=True, check=True).stdout
    return np.frombuffer(pcm, np.int16).astype(np.float32) / 32768


def recordings(devset: bool = True) -> List[Dict]:
    """Every recording: name, group ("human-2", "tts-2", "one-voice"), core (one of the three
    files the issue names), kind, source (path or audio), turns (reference; None: one speaker)."""
    recs = []
    human_rttm = rttm_turns(ROOT / "tests/data/pyannote-sample.rttm")
    recs.append(dict(name="pyannote", group="human-2", core=True, kind="human, telephone",
                     source=ROOT / "examples/phone-call-human.flac", turns=human_rttm))
    calls = json.loads((ROOT / "tests/data/calls.json").read_text())["calls"]
    for c in sorted(calls, key=lambda c: c["name"] != "cancel_subscription"):
        recs.append(dict(name=c["name"], group="tts-2", core=c["name"] == "cancel_subscription", kind="TTS",
                         source=ROOT / c["file"], turns=[(t["start"], t["end"], t["speaker"]) for t in c["turns"]]))
    q = json.loads((ROOT / "benchmarks/devset/qrels.json").read_text())
    dev = ROOT / "benchmarks/devset"
    if devset:
        for f in q["files"]:
            if f["kind"] == "call":
                recs.append(dict(name=Path(f["file"]).stem, group="tts-2", core=False,
                                 kind="TTS, telephone" if "telephone" in f["codec"] else "TTS",
                                 source=dev / f["file"], turns=[(t["start"], t["end"], t["speaker"]) for t in f["turns"]]))
    recs.append(dict(name="librivox-short", group="one-voice", core=True, kind="human, read",
                     source=ROOT / "tests/data/librivox-short.flac", turns=None))
    libri = [decode(str(dev / f["file"])) for f in q["files"] if "librivox" in f["file"]]
    recs.append(dict(name="librivox-5-sentences", group="one-voice", core=False, kind="human, read",
                     source=splice(libri), turns=None))
    human = decode(str(ROOT / "examples/phone-call-human.flac"))
    for spk in sorted({t[2] for t in human_rttm}):
        recs.append(dict(name=f"pyannote-{spk}-alone", group="one-voice", core=False, kind="human, telephone",
                         source=splice(solo_speech(human, human_rttm, spk)), turns=None))
    for name in ("codec2-vk5qi.ogg", "codec2-cq-ref.ogg"):
        recs.append(dict(name=Path(name).stem, group="one-voice", core=False, kind="human, radio",
                         source=dev / "audio" / name, turns=None))
    if VE9QRP.exists():
        recs.append(dict(name="codec2-ve9qrp-112s", group="one-voice", core=False, kind="human, radio",
                         source=load_raw(VE9QRP), turns=None))
    return recs


# ------------------------------------------------------------------ scoring -------------------
def frame_labels(spans: Sequence[Tuple[float, float]], labels: Sequence[str], n: int) -> List[Optional[str]]:
    """One hypothesis label per frame: where spans overlap, the span whose middle is nearest."""
    best = np.full(n, np.inf)
    out: List[Optional[str]] = [None] * n
    for (s, e), lab in zip(spans, labels):
        a, b = max(0, round(s / FRAME)), min(n, round(e / FRAME))
        mid = (s + e) / 2 / FRAME
        for k in range(a, b):
            d = abs(k - mid)
            if d < best[k]:
                best[k], out[k] = d, lab
    return out


def _mapping(pairs: Dict[Tuple[str, str], float]) -> Dict[str, str]:
    """Best one-to-one map hypothesis label -> reference speaker, maximising the paired weight."""
    from scipy.optimize import linear_sum_assignment

    hyp = sorted({h for h, _ in pairs})
    ref = sorted({r for _, r in pairs})
    if not hyp or not ref:
        return {}
    m = np.array([[pairs.get((h, r), 0.0) for r in ref] for h in hyp])
    rows, cols = linear_sum_assignment(-m)
    return {hyp[i]: ref[j] for i, j in zip(rows, cols)}


def score(spans, labels, turns: List[Turn], collar: float = 0.25) -> Dict[str, float]:
    """Turn accuracy, coverage, DER (with its parts) and sentence accuracy against reference turns."""
    n = int(max([e for _, e, _ in turns] + [e for _, e in spans] + [0]) / FRAME) + 2
    ref: List[set] = [set() for _ in range(n)]
    near_boundary = np.zeros(n, bool)
    c = round(collar / FRAME)
    for s, e, spk in turns:
        a, b = round(s / FRAME), round(e / FRAME)
        for k in range(a, b):
            ref[k].add(spk)
        for x in (a, b):
            near_boundary[max(0, x - c):x + c] = True
    hyp = frame_labels(spans, labels, n)
    pairs: Dict[Tuple[str, str], float] = {}
    for r, h in zip(ref, hyp):
        for spk in r:
            if h is not None:
                pairs[(h, spk)] = pairs.get((h, spk), 0.0) + 1
    to_ref = _mapping(pairs)
    speech = [k for k in range(n) if ref[k]]
    covered = [k for k in speech if hyp[k] is not None]
    right = sum(1 for k in covered if to_ref.get(hyp[k]) in ref[k])
    missed = fa = conf = total = 0
    for k in range(n):
        if near_boundary[k]:
            continue
        nr, nh = len(ref[k]), int(hyp[k] is not None)
        total += nr
        missed += max(0, nr - nh)
        fa += max(0, nh - nr)
        conf += min(nr, nh) - int(nh == 1 and to_ref.get(hyp[k]) in ref[k])
    # sentences: the reference speaker each overlaps most
    sent_ref = []
    for s, e in spans:
        ov: Dict[str, float] = {}
        for a, b, spk in turns:
            ov[spk] = ov.get(spk, 0.0) + max(0.0, min(e, b) - max(s, a))
        best = max(ov, key=ov.__getitem__) if ov else None
        sent_ref.append(best if best is not None and ov[best] > 0 else None)
    spairs: Dict[Tuple[str, str], float] = {}
    for h, r in zip(labels, sent_ref):
        if r is not None:
            spairs[(h, r)] = spairs.get((h, r), 0.0) + 1
    smap = _mapping(spairs)
    scored = [(h, r) for h, r in zip(labels, sent_ref) if r is not None]
    return dict(turn_acc=right / len(covered) if covered else 0.0, cover=len(covered) / len(speech),
                der=(missed + fa + conf) / total, missed=missed / total, false_alarm=fa / total,
                confusion=conf / total, sent_acc=sum(smap.get(h) == r for h, r in scored) / len(scored),
                sentences=len(scored), labels=len(set(labels)), speakers=len({t[2] for t in turns}))


# ------------------------------------------------------------------ baselines -----------------
def one_speaker(spans, vectors) -> List[str]:
    return ["S1"] * len(spans)


def alternate(spans, vectors, pause: float = 0.5) -> List[str]:
    out, cur = [], 1
    for i, (s, e) in enumerate(spans):
        if i and s - spans[i - 1][1] > pause:
            cur = 3 - cur
        out.append(f"S{cur}")
    return out


def oracle_k(spans, vectors, k: int) -> List[str]:
    """Average linkage stopped at the true number of speakers: what the vectors allow at best."""
    return assign_speakers(spans, vectors, DiarizeOptions(threshold=2.0, min_speakers=k, max_speakers=k))


def alternate_each(spans, vectors) -> List[str]:
    return [f"S{1 + i % 2}" for i in range(len(spans))]


def with_options(**kw):
    return lambda spans, vectors: assign_speakers(spans, vectors, replace(DiarizeOptions(), **kw))


# ------------------------------------------------------------------ summaries -----------------
def summarise(recs: List[Dict], labels: Dict[str, List[str]]) -> Dict[str, float]:
    """Per group: the real call's scores, the synthetic calls' means, the one-voice share."""
    out: Dict[str, float] = {}
    two = [r for r in recs if r["turns"]]
    scores = {r["name"]: score(r["spans"], labels[r["name"]], r["turns"]) for r in two}
    p = scores.get("pyannote")
    if p:
        out.update({f"human_{k}": v for k, v in p.items() if k not in ("sentences", "speakers")})
    tts = [r for r in two if r["group"] == "tts-2"]
    if tts:
        for k in ("turn_acc", "der", "confusion", "sent_acc"):
            out[f"tts_{k}"] = float(np.mean([scores[r["name"]][k] for r in tts]))
        out["tts_two_labels"] = float(np.mean([scores[r["name"]]["labels"] == 2 for r in tts]))
        tel = [r for r in tts if "telephone" in r["kind"]]
        out["tts_tel_sent_acc"] = float(np.mean([scores[r["name"]]["sent_acc"] for r in tel])) if tel else float("nan")
        c = scores.get("cancel_subscription")
        out["cancel_turn_acc"], out["cancel_sent_acc"] = c["turn_acc"], c["sent_acc"]
    one = [r for r in recs if r["group"] == "one-voice"]
    out["one_voice_single"] = float(np.mean([len(set(labels[r["name"]])) <= 1 for r in one]))
    out["one_voice_labels"] = float(np.mean([len(set(labels[r["name"]])) for r in one]))
    libri = [r for r in one if r["name"] == "librivox-short"]
    core = [p["turn_acc"] if p else 0.0, out.get("cancel_turn_acc", 0.0),
            float(len(set(labels[libri[0]["name"]])) <= 1) if libri else 1.0]
    out["core_objective"] = float(np.mean(core))
    out["objective"] = float(np.mean([p["turn_acc"] if p else 0.0, out.get("tts_turn_acc", 0.0),
                                      out["one_voice_single"]]))
    return out


def choose(grid: List[Dict], key: str) -> Dict:
    """The best `key`; among ties, the min_cluster_seconds with the widest run of tied thresholds
    and the upper-middle threshold of that run (a higher threshold keeps one voice together)."""
    best = max(g[key] for g in grid)
    tied = [g for g in grid if g[key] >= best - 1e-9]
    by_m: Dict[float, List[float]] = {}
    for g in tied:
        by_m.setdefault(g["min_cluster_seconds"], []).append(g["threshold"])
    m = max(by_m, key=lambda m: (len(by_m[m]), m))
    ths = sorted(by_m[m])
    th = ths[len(ths) // 2]
    return next(g for g in grid if g["min_cluster_seconds"] == m and g["threshold"] == th)


def speed() -> List[Dict]:
    """assign_speakers alone on synthetic vectors (3 voices + noise), n sentences of 1-8 s."""
    rng = np.random.default_rng(0)
    rows = []
    centres = rng.normal(size=(3, 256))
    for n in (100, 1000, 2000, 5000):
        V = np.abs(centres[rng.integers(0, 3, n)] + 0.5 * rng.normal(size=(n, 256)))
        V /= np.linalg.norm(V, axis=1, keepdims=True)
        starts = np.cumsum(rng.uniform(1, 9, n))
        spans = [(float(s), float(s + rng.uniform(1, 8))) for s in starts]
        t0 = time.perf_counter()
        labs = assign_speakers(spans, V)
        rows.append(dict(n=n, seconds=time.perf_counter() - t0, labels=len(set(labs))))
    return rows


def table(rows: List[List], head: List[str]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows]
    return "\n".join(lines)


def f3(x: float) -> str:
    return "-" if x != x else f"{x:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-devset", action="store_true", help="skip the 30 dev-set calls (about 1.5 min less)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    recs = recordings(devset=not args.no_devset)
    sv = SentenceVoices()
    audio_s = 0.0
    for r in recs:
        src = r.pop("source")
        r["spans"], r["vectors"], r["texts"] = sv(src)
        audio_s += len(src) / SAMPLE_RATE if isinstance(src, np.ndarray) else probe(str(src)).duration
    t_extract = time.perf_counter() - t0
    n_two = sum(1 for r in recs if r["turns"])
    print(f"{len(recs)} recordings ({n_two} with two speakers), {audio_s / 60:.1f} min of audio, "
          f"{sum(len(r['spans']) for r in recs)} sentences; "
          f"VAD + tiny.en + sentences + resemblyzer: {t_extract:.0f} s; load average {load0[0]:.2f} at start\n")

    # threshold x min_cluster_seconds sweep
    grid = []
    for m in (0.0, 2.0, 4.0, 6.0):
        for th in np.round(np.arange(0.20, 0.4501, 0.01), 2):
            o = replace(DiarizeOptions(), threshold=float(th), min_cluster_seconds=m)
            labels = {r["name"]: assign_speakers(r["spans"], r["vectors"], o) for r in recs}
            grid.append(dict(threshold=float(th), min_cluster_seconds=m, **summarise(recs, labels)))
    pick, pick_core = choose(grid, "objective"), choose(grid, "core_objective")
    d = DiarizeOptions()
    print("## Sweep: threshold x min_cluster_seconds (objective = mean of pyannote turn acc, synthetic-call "
          "turn acc, one-voice share; core = the same on the issue's three files only)\n")
    rows = [[g["min_cluster_seconds"], f"{g['threshold']:.2f}", f3(g["human_turn_acc"]), int(g["human_labels"]),
             f3(g["cancel_turn_acc"]), f3(g["tts_turn_acc"]), f3(g["tts_sent_acc"]), f3(g["tts_two_labels"]),
             f3(g["one_voice_single"]), f3(g["core_objective"]), f3(g["objective"])] for g in grid]
    print(table(rows, ["min cluster s", "threshold", "pyannote turn acc", "pyannote labels", "cancel turn acc",
                       "TTS calls turn acc", "TTS sent acc", "TTS 2 labels", "one-voice single", "core",
                       "objective"]))
    print(f"\nchosen on all data: threshold {pick['threshold']:.2f}, min_cluster_seconds {pick['min_cluster_seconds']:g} "
          f"(objective {pick['objective']:.3f}); on the three core files only: threshold {pick_core['threshold']:.2f}, "
          f"min_cluster_seconds {pick_core['min_cluster_seconds']:g}; shipped DiarizeOptions(): threshold "
          f"{d.threshold:.2f}, min_cluster_seconds {d.min_cluster_seconds:g}"
          + ("" if (pick["threshold"], pick["min_cluster_seconds"]) == (d.threshold, d.min_cluster_seconds)
             else "  <-- DIFFERS from the sweep's pick"))

    methods = {
        "default": assign_speakers,
        "no duration weights": with_options(duration_weights=False),
        "no min-cluster rule": with_options(min_cluster_seconds=0.0),
        "smooth 1.5 s": with_options(smooth_seconds=1.5),
        "smooth 2.5 s": with_options(smooth_seconds=2.5),
        "oracle-k": None,
        "one speaker": one_speaker,
        "alternate at pauses > 0.5 s": alternate,
        "alternate every sentence": alternate_each,
    }
    results = {}
    for name, fn in methods.items():
        labels = {}
        for r in recs:
            if fn is None:
                k = len({t[2] for t in r["turns"]}) if r["turns"] else 1
                labels[r["name"]] = oracle_k(r["spans"], r["vectors"], k)
            else:
                labels[r["name"]] = fn(r["spans"], r["vectors"])
        results[name] = dict(summary=summarise(recs, labels), labels=labels)
    n_tts = sum(1 for r in recs if r["group"] == "tts-2")
    n_tel = sum(1 for r in recs if r["group"] == "tts-2" and "telephone" in r["kind"])
    n_one = sum(1 for r in recs if r["group"] == "one-voice")
    print(f"\n## Methods (defaults: threshold {d.threshold:.2f}, min_cluster_seconds {d.min_cluster_seconds:g})\n")
    rows = []
    for name, res in results.items():
        s = res["summary"]
        rows.append([name, f3(s["human_turn_acc"]), f3(s["human_der"]), f3(s["human_confusion"]), f3(s["human_sent_acc"]),
                     int(s["human_labels"]), f3(s["tts_turn_acc"]), f3(s["tts_der"]), f3(s["tts_sent_acc"]),
                     f3(s["tts_tel_sent_acc"]), f3(s["tts_two_labels"]), f3(s["one_voice_single"])])
    print(table(rows, ["method", "pyannote turn acc", "pyannote DER", "(confusion)", "pyannote sent acc",
                       "pyannote labels", f"TTS calls ({n_tts}) turn acc", "TTS DER", "TTS sent acc",
                       f"TTS telephone ({n_tel}) sent acc", "TTS 2 labels", f"one-voice ({n_one}) single"]))
    p = results["default"]["summary"]
    print(f"\npyannote coverage {p['human_cover']:.3f}, missed {p['human_missed']:.3f}, false alarm "
          f"{p['human_false_alarm']:.3f} (the same for every method: hypothesis speech is the sentence spans)")

    print("\n## Every recording, default options\n")
    rows = []
    for r in recs:
        lab = results["default"]["labels"][r["name"]]
        seq = "".join(x[1:] if len(x) == 2 else "+" for x in lab)
        if r["turns"]:
            s = score(r["spans"], lab, r["turns"])
            rows.append([r["name"], r["kind"], len(r["spans"]), s["speakers"], s["labels"], f3(s["turn_acc"]),
                         f3(s["cover"]), f3(s["der"]), f3(s["sent_acc"]), seq])
        else:
            rows.append([r["name"], r["kind"], len(r["spans"]), 1, len(set(lab)), "-", "-", "-", "-", seq])
    print(table(rows, ["recording", "kind", "sentences", "speakers", "labels", "turn acc", "cover", "DER",
                       "sent acc", "labels in order"]))

    sp = speed()
    print("\n## Cost of assign_speakers alone (synthetic vectors, 3 voices)\n")
    print(table([[x["n"], f"{1000 * x['seconds']:.0f}", x["labels"]] for x in sp], ["sentences", "ms", "labels"]))
    load1 = os.getloadavg()
    print(f"\nload average {load0[0]:.2f} at start, {load1[0]:.2f} at end (2 shared cores); "
          f"total {time.perf_counter() - t0:.0f} s")
    if args.json:
        out = dict(options=dict(DiarizeOptions().__dict__), pick=pick, pick_core=pick_core, grid=grid,
                   methods={k: v["summary"] for k, v in results.items()},
                   recordings=[dict(name=r["name"], group=r["group"], kind=r["kind"],
                                    spans=[[round(a, 2), round(b, 2)] for a, b in r["spans"]],
                                    labels=" ".join(results["default"]["labels"][r["name"]]))
                               for r in recs],
                   speed=sp, extract_seconds=t_extract, load_average=[load0, load1])
        Path(args.json).write_text(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
