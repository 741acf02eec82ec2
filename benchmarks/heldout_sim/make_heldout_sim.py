#!/usr/bin/env python3
"""Generate the speechsearch similar-calls HELD-OUT set (12 intents, reasons worded differently).

    python benchmarks/heldout_sim/make_heldout_sim.py [OUTDIR] [--only NAME,NAME] [--jobs N]
    python benchmarks/heldout_sim/make_heldout_sim.py --check-wording
    python benchmarks/heldout_sim/make_heldout_sim.py --check-intelligibility [--only NAME,NAME]

HELD-OUT: never used to choose a default (see README.md). Writes OUTDIR/audio/<intent>-0N.<mp3|ogg|flac>
and OUTDIR/qrels.json (OUTDIR defaults to this script's folder). The renderer is
benchmarks/simset/make_simset.py, imported as it is (its voices, levels, pauses, noise, bands,
codecs and bit-exact ffmpeg flags); this wrapper points it at the scripts in this folder's
``calls_data.py`` and its own SEED, and rewrites the set's name and policy in qrels.json.
``--check-wording`` renders nothing: per intent it prints the content words that all four calls
share (the stop list and crude word-form fold of benchmarks/simset2/make_simset2.py), those of
them that no call of the paired intent uses, and how many calls use each of the intent's keywords.
``--check-intelligibility`` transcribes the rendered calls with the library's transcriber
(faster-whisper tiny.en, CPU) and prints, per call, the share of the script's words (number words
and spelled-out letters left out) found in the transcript, over the whole call and over the key
turns. It is a check of the audio only: no similarity or clustering is run.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import multiprocessing
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True  # no __pycache__ next to the sets' scripts
sys.path.insert(0, str(HERE.parent / "simset2"))
import make_simset2 as S2  # noqa: E402  (its wording helpers; it imports simset's renderer)

M = S2.M  # benchmarks/simset/make_simset.py, the renderer
_spec = importlib.util.spec_from_file_location("heldout_sim_calls_data", HERE / "calls_data.py")
D = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(D)

SEED = 20261205
M.D, M.SEED = D, SEED  # the renderer reads both at call time
# worker processes must inherit the swapped module globals: fork, whatever the platform default
M.ProcessPoolExecutor = functools.partial(ProcessPoolExecutor, mp_context=multiprocessing.get_context("fork"))


def check_wording() -> int:
    """simset2's check on this folder's data, with a one-line summary per point at the end."""
    by_intent = {i: [c for c in D.CALLS if c["intent"] == i] for i in D.INTENTS}
    partner = {a: b for pair in D.PAIRS for a, b in (pair, pair[::-1])}
    bad, own_all, own3_n = 0, {}, {}
    for intent, calls in by_intent.items():
        sets = [S2.words(c) for c in calls]
        shared = set.intersection(*(set(s) for s in sets))
        other = set().union(*(S2.words(c) for c in by_intent[partner[intent]]))
        own3 = {w for w in set().union(*sets) if sum(w in s for s in sets) >= 3} - other
        form = {w: next(s[w] for s in sets if w in s) for w in set().union(*sets)}
        own_all[intent] = sorted(form[w] for w in shared - other)
        own3_n[intent] = len(own3)
        print(f"{intent} ({len(calls)} calls)")
        print(f"  shared by all {len(calls)}: {', '.join(sorted(form[w] for w in shared)) or '-'}")
        print(f"  ... and in no {partner[intent]} call: {', '.join(own_all[intent]) or '-'}")
        print(f"  in 3+ calls, in no {partner[intent]} call: {', '.join(sorted(form[w] for w in own3)) or '-'}")
        counts = {k: sum(S2.uses(c, k) for c in calls) for k in D.KEYWORDS[intent]}
        over = [k for k, n in counts.items() if n > 1]
        bad += len(over)
        print("  keywords (calls using them): " + ", ".join(f"{k.strip()} {n}" for k, n in counts.items())
              + (f"   OVER ONE: {', '.join(over)}" if over else ""))
    print(f"{bad} keyword(s) in more than one call of their intent")
    print("shared by all four calls and in no partner call: "
          + ("; ".join(f"{i}: {', '.join(w)}" for i, w in own_all.items() if w) or "nothing"))
    print(f"words in 3+ calls and in no partner call: {min(own3_n.values())}-{max(own3_n.values())} per intent")
    return 1 if bad else 0


NUMBER_WORDS = S2.STOP & set("""zero one two three four five six seven eight nine ten eleven twelve
thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty
seventy eighty ninety hundred thousand first second third fourth fifth sixth seventh eighth ninth
tenth eleventh twelfth thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth
twentieth thirtieth""".split()) | {"one", "hundred", "thousand"}


def _tokens(text: str) -> list:
    text = text.lower().replace("'", "")
    return re.findall(r"[a-z]+", text)


def _ref_words(text: str) -> list:
    """The script's words that a transcript can be held to: no number words, no spelled letters."""
    return [w for w in _tokens(text) if w not in NUMBER_WORDS and (len(w) > 1 or w in ("a", "i"))]


def check_intelligibility(outdir: Path, only: set) -> int:
    from speechsearch.audio import decode
    from speechsearch.options import TranscribeOptions
    from speechsearch.transcribe import get_transcriber

    qrels = json.loads((outdir / "qrels.json").read_text(encoding="utf-8"))
    tr = get_transcriber("faster-whisper", "tiny.en", options=TranscribeOptions(cpu_threads=2, workers=1),
                         device="cpu")
    rows = []
    for f in qrels["files"]:
        name = Path(f["file"]).stem
        if only and name not in only:
            continue
        segs, _ = tr.transcribe(decode(str(outdir / f["file"])))
        heard = set(_tokens(" ".join(s.text for s in segs)))
        ref = _ref_words(" ".join(t["text"] for t in f["turns"]))
        span = f["key_span"]
        key = _ref_words(" ".join(t["text"] for t in f["turns"] if span[0] <= t["start"] and t["end"] <= span[1]))
        share = sum(w in heard for w in ref) / max(1, len(ref))
        kshare = sum(w in heard for w in key) / max(1, len(key))
        rows.append((name, share, kshare))
        print(f"{name:30s} {share:6.1%}  key {kshare:6.1%}   {f['band']}, "
              f"{f['voices']['AGENT'].split(',')[0]} / {f['voices']['CUSTOMER'].split(',')[0]}", flush=True)
    if rows:
        s, k = [r[1] for r in rows], [r[2] for r in rows]
        print(f"{len(rows)} calls: words heard {min(s):.0%}-{max(s):.0%} (mean {sum(s) / len(s):.0%}); "
              f"key turns {min(k):.0%}-{max(k):.0%} (mean {sum(k) / len(k):.0%})")
        low = [r[0] for r in rows if r[1] < 0.80]
        print("under 80 %: " + (", ".join(low) or "none"))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir", nargs="?", type=Path, default=HERE)
    ap.add_argument("--only", default="", help="comma-separated call names (debugging; no qrels.json)")
    ap.add_argument("--jobs", type=int, default=2, help="calls rendered at once (default 2)")
    ap.add_argument("--check-wording", action="store_true", help="print the words the calls of an intent share; render nothing")
    ap.add_argument("--check-intelligibility", action="store_true",
                    help="transcribe the rendered calls (tiny.en) and print the share of script words heard")
    args = ap.parse_args(argv)
    if args.check_wording:
        return check_wording()
    if args.check_intelligibility:
        return check_intelligibility(args.outdir, set(filter(None, args.only.split(","))))
    rc = M.main([str(args.outdir), "--only", args.only, "--jobs", str(args.jobs)])
    qrels_path = args.outdir / "qrels.json"
    if rc or args.only or not qrels_path.exists():
        return rc
    qrels = json.loads(qrels_path.read_text(encoding="utf-8"))
    qrels.update({
        "name": "heldout_sim",
        "title": "speechsearch similar-calls HELD-OUT set (12 intents, reasons worded differently)",
        "generator": "benchmarks/heldout_sim/make_heldout_sim.py (renderer: benchmarks/simset/make_simset.py)",
        "policy": "HELD-OUT: never used to choose a default; made 2026-12-05 for the issue-15 report "
                  "(similar/topics); report on it once, after the settings are chosen on the dev sets",
        "note": qrels["note"].replace("40 synthetic calls, 10 intents in 5", "48 synthetic calls, 12 intents in 6")
                + "; the four calls of an intent tell their reason in different words "
                "(an intent's obvious keyword in at most one of them)",
    })
    qrels_path.write_text(json.dumps(qrels, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
