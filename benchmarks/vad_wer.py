"""Word error rate of the library's transcripts against the scripts, with old and new VAD settings,
beside plain faster-whisper on the whole file (no VAD).

For each recording of a qrels set that has scripted turns (the calls), the reference is the
turns' text joined in order. Hypotheses:

  lib-old    speechsearch.Library(tmp, acoustic=False, vad=<old defaults>).add(files), then
             lib.transcript(path): decode -> Silero VAD -> packed chunks -> faster-whisper
  lib-new    the same with the current VadOptions() defaults
  lib:JSON   the same with VadOptions fields over the current defaults, and TranscribeOptions
             fields under "transcribe": 'lib:{"threshold": 0.25, "transcribe": {"beam_size": 5}}'
  plain      faster_whisper.WhisperModel(<tiny.en folder>, compute_type="int8")
             .transcribe(path, vad_filter=False) with its own defaults (beam 5)

Text is normalised before scoring with openai-whisper's EnglishTextNormalizer when it is
installed (lower case, punctuation and hyphens to spaces, number words to digits, "Mr" ->
"mister", ...), else a plain fallback (lower case, hyphens to spaces, punctuation dropped,
number words to digits for 0-99). WER per file is (substitutions + deletions + insertions) /
reference words; a set's "mean" is the mean over files and "pooled" is all errors over all
reference words. *Turns lost*: scripted turns with at least half of their words deleted in the
word alignment of the whole call (text only, so plain faster-whisper gets it too); *turns
unheard* (library only): turns without one transcribed word whose middle falls inside them
(+-0.2 s). Also reported: seconds of audio sent to Whisper (the VAD's kept time) and the
wall time of each run.

    python benchmarks/vad_wer.py [--qrels benchmarks/devset/qrels.json] [--configs lib-old,lib-new,plain]
           [--json OUT] [--tag=-SUFFIX]
    python benchmarks/vad_wer.py --configs 'lib:{};lib:{"transcribe": {"beam_size": 5}};plain'

(Configs holding JSON are separated by ";"; write a tag that starts with "-" as --tag=-x.)
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from vad import DEVSET, OLD, RESULTS, band_of  # noqa: E402

import speechsearch  # noqa: E402
from speechsearch.options import VadOptions  # noqa: E402


# ------------------------------------------------------------------ text ---------------------
_SMALL = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
          "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()


def _fallback_normalise(text: str) -> str:
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^a-z0-9' ]+", " ", text).replace("'", "")
    words, out = text.split(), []
    i = 0
    while i < len(words):
        w = words[i]
        if w in _TENS:
            n = 20 + 10 * _TENS.index(w)
            if i + 1 < len(words) and words[i + 1] in _SMALL[1:10]:
                n += _SMALL.index(words[i + 1])
                i += 1
            out.append(str(n))
        elif w in _SMALL:
            out.append(str(_SMALL.index(w)))
        else:
            out.append(w)
        i += 1
    return " ".join(out)


def normaliser() -> Callable[[str], str]:
    try:
        from whisper.normalizers import EnglishTextNormalizer
    except ImportError:
        return _fallback_normalise
    n = EnglishTextNormalizer()
    return lambda t: n(t.replace("-", " "))


def edits(ref: List[str], hyp: List[str]) -> int:
    """Word-level Levenshtein distance."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def deleted(ref: List[str], hyp: List[str]) -> List[bool]:
    """For each reference word, whether a minimal word alignment deletes it (ties go to a match
    or substitution)."""
    d = [list(range(len(hyp) + 1))]
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(d[-1][j] + 1, cur[j - 1] + 1, d[-1][j - 1] + (r != h))
        d.append(cur)
    out, i, j = [False] * len(ref), len(ref), len(hyp)
    while i > 0:
        if j > 0 and d[i][j] == d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            i, j = i - 1, j - 1
        elif d[i][j] == d[i - 1][j] + 1:
            out[i - 1] = True
            i -= 1
        else:
            j -= 1
    return out


def turns_lost(turn_words: List[List[str]], hyp: List[str]) -> int:
    """Turns with at least half of their reference words deleted in the alignment of the whole
    call: speech that never made it into the transcript (works for any hypothesis, timed or not)."""
    gone = deleted([w for t in turn_words for w in t], hyp)
    lost, k = 0, 0
    for t in turn_words:
        lost += bool(t) and 2 * sum(gone[k:k + len(t)]) >= len(t)
        k += len(t)
    return lost


# ------------------------------------------------------------------ transcribers -------------
def library_texts(paths: List[str], vad: dict, transcribe: Optional[dict] = None) -> Dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        lib = speechsearch.Library(Path(tmp) / "idx", acoustic=False, vad=vad, transcribe_options=transcribe)
        t0 = time.time()
        report = lib.add(paths)
        wall = time.time() - t0
        texts, spans, sent = {}, {}, 0.0
        for p in paths:
            segs = lib.transcript(p)
            texts[p] = " ".join(s.text.strip() for s in segs)
            spans[p] = [(w.start, w.end) for s in segs for w in s.words] or [(s.start, s.end) for s in segs]
        failed = [str(f) for f in getattr(report, "failed", [])]
        del lib
    # seconds sent to Whisper: what the VAD keeps, measured by the same iter_speech path
    from speechsearch.audio import iter_blocks
    from speechsearch.segment import iter_speech

    opts = speechsearch.options.coerce(VadOptions, vad)
    for p in paths:
        sent += sum(c.duration for c in iter_speech(iter_blocks(p, 30.0), opts))
    return {"texts": texts, "spans": spans, "wall_s": round(wall, 1), "sent_s": round(sent, 1), "failed": failed}


def plain_texts(paths: List[str]) -> Dict[str, object]:
    from faster_whisper import WhisperModel

    from speechsearch.models import resolve_whisper

    model = WhisperModel(resolve_whisper("tiny.en").source, device="cpu", compute_type="int8")
    texts, audio = {}, 0.0
    t0 = time.time()
    for p in paths:
        segments, info = model.transcribe(p, vad_filter=False)
        texts[p] = " ".join(s.text.strip() for s in segments)
        audio += info.duration
    return {"texts": texts, "wall_s": round(time.time() - t0, 1), "sent_s": round(audio, 1), "failed": []}


def current_defaults() -> dict:
    d = VadOptions()
    return {"threshold": d.threshold, "speech_pad_ms": d.speech_pad_ms, "min_silence_ms": d.min_silence_ms,
            "normalize": d.normalize}


# ------------------------------------------------------------------ main ---------------------
def main(argv: Optional[Sequence[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--qrels", type=Path, default=DEVSET)
    ap.add_argument("--configs", default="lib-old,lib-new,plain",
                    help="comma list of lib-old, lib-new, plain, or lib:<json VadOptions dict>")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--tag", default="", help="suffix for the result file names")
    args = ap.parse_args(argv)

    data = json.loads(args.qrels.read_text())
    entries = [e for e in data["files"] if e.get("turns")]
    paths = [str((args.qrels.parent / e["file"]).resolve()) for e in entries]
    refs = {p: " ".join(t["text"] for t in e["turns"]) for p, e in zip(paths, entries)}
    turns = {p: e["turns"] for p, e in zip(paths, entries)}
    bands = {p: band_of(e) for p, e in zip(paths, entries)}
    norm = normaliser()

    configs: Dict[str, dict] = {}
    for c in (args.configs.split(";") if "{" in args.configs else args.configs.split(",")):
        if c == "lib-old":
            configs[c] = {"kind": "lib", "vad": dict(OLD)}
        elif c == "lib-new":
            configs[c] = {"kind": "lib", "vad": current_defaults()}
        elif c == "plain":
            configs[c] = {"kind": "plain"}
        elif c.startswith("lib:"):  # lib:{"threshold": 0.35, ..., "transcribe": {"beam_size": 5}}
            vad = {**current_defaults(), **json.loads(c[4:])}
            configs[c] = {"kind": "lib", "transcribe": vad.pop("transcribe", None), "vad": vad}
        else:
            raise SystemExit(f"unknown config {c!r}")

    results: Dict[str, dict] = {}
    for name, cfg in configs.items():
        run = (library_texts(paths, cfg["vad"], cfg.get("transcribe")) if cfg["kind"] == "lib"
               else plain_texts(paths))
        per_file = {}
        for p in paths:
            r, h = norm(refs[p]).split(), norm(run["texts"][p]).split()
            per_file[p] = {"wer": edits(r, h) / max(len(r), 1), "errors": edits(r, h), "words": len(r),
                           "band": bands[p], "hyp": run["texts"][p],
                           "turns_lost": turns_lost([norm(t["text"]).split() for t in turns[p]], h)}
            if "spans" in run:  # turns without one transcribed word in them: never heard
                mids = [(a + b) / 2 for a, b in run["spans"][p]]
                per_file[p]["turns_unheard"] = sum(
                    not any(t["start"] - 0.2 <= m <= t["end"] + 0.2 for m in mids) for t in turns[p])
        summary = {}
        for group in ("all", "tel", "wide"):
            fs = [v for v in per_file.values() if group == "all" or v["band"] == group]
            if fs:
                summary[group] = {"mean": round(sum(f["wer"] for f in fs) / len(fs), 4),
                                  "pooled": round(sum(f["errors"] for f in fs) / sum(f["words"] for f in fs), 4),
                                  "files": len(fs)}
                summary[group]["turns_lost"] = sum(f["turns_lost"] for f in fs)
                if fs and "turns_unheard" in fs[0]:
                    summary[group]["turns_unheard"] = sum(f["turns_unheard"] for f in fs)
        results[name] = {"config": cfg, "wer": summary, "wall_s": run["wall_s"], "sent_s": run["sent_s"],
                         "failed": run["failed"],
                         "per_file": {Path(p).name: {k: v for k, v in f.items()} for p, f in per_file.items()}}
        print(f"{name}: WER mean {summary['all']['mean']:.3f} pooled {summary['all']['pooled']:.3f} "
              + " ".join(f"{g} {summary[g]['mean']:.3f}" for g in ("tel", "wide") if g in summary)
              + f"; turns lost {summary['all']['turns_lost']}; sent {run['sent_s']:.0f} s; wall {run['wall_s']:.0f} s",
              flush=True)

    audio = sum(e.get("duration", 0) for e in entries)
    lines = [f"WER on {args.qrels} ({len(paths)} recordings, {audio:.0f} s)", "",
             "| run | VAD | WER mean | WER pooled | tel | wide | turns lost | turns unheard | s sent to Whisper | wall s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        v = r["config"].get("vad")
        vad = "none" if v is None else (f"th {v['threshold']}, pad {v['speech_pad_ms']}, sil {v['min_silence_ms']}, "
                                        f"{'norm' if v.get('normalize') else 'raw'}")
        if r["config"].get("transcribe"):
            vad += "; " + ", ".join(f"{k} {x}" for k, x in r["config"]["transcribe"].items())
        w = r["wer"]
        lines.append(f"| {name} | {vad} | {w['all']['mean']:.3f} | {w['all']['pooled']:.3f} | "
                     f"{w['tel']['mean'] if 'tel' in w else float('nan'):.3f} | "
                     f"{w['wide']['mean'] if 'wide' in w else float('nan'):.3f} | "
                     f"{w['all']['turns_lost']} | {w['all'].get('turns_unheard', '')} | {r['sent_s']:.0f} | "
                     f"{r['wall_s']:.0f} |")
    print("\n".join(lines))
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = f"vad-wer-{args.qrels.parent.name}{args.tag}"
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    (args.json or RESULTS / f"{stem}.json").write_text(json.dumps(
        {"qrels": str(args.qrels), "normaliser": "whisper EnglishTextNormalizer" if norm is not _fallback_normalise
         else "fallback", "results": results}, indent=1))


if __name__ == "__main__":
    main()
