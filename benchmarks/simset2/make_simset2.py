#!/usr/bin/env python3
"""Generate the speechsearch similar-calls dev set 2 (calls of an intent worded differently).

    python benchmarks/simset2/make_simset2.py [OUTDIR] [--only NAME,NAME] [--jobs N]
    python benchmarks/simset2/make_simset2.py --check-wording

writes OUTDIR/audio/<intent>-0N.<mp3|ogg|flac> and OUTDIR/qrels.json (OUTDIR defaults to this
script's folder). The renderer is benchmarks/simset/make_simset.py, imported as it is (its voices,
levels, pauses, noise, bands, codecs and bit-exact ffmpeg flags); this wrapper points it at the
scripts in this folder's ``calls_data.py`` and its own SEED, and rewrites the set's name in
qrels.json. ``--check-wording`` renders nothing: per intent it prints the content words that all
four calls share (after a small stop list; word forms folded by a crude suffix strip), those of
them that no call of the paired intent uses, and how many calls use each of the intent's keywords.
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
sys.dont_write_bytecode = True  # no __pycache__ next to either set's scripts
sys.path.insert(0, str(HERE.parent / "simset"))
import make_simset as M  # noqa: E402  (simset's renderer; it imports simset's own calls_data)

_spec = importlib.util.spec_from_file_location("simset2_calls_data", HERE / "calls_data.py")
D = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(D)

SEED = 20250707
M.D, M.SEED = D, SEED  # the renderer reads both at call time
# worker processes must inherit the swapped module globals: fork, whatever the platform default
M.ProcessPoolExecutor = functools.partial(ProcessPoolExecutor, mp_context=multiprocessing.get_context("fork"))

STOP = set("""
a about after again all also am an and any are as at away back be because been before being both
but by can can't could did didn't do does doesn't don't done down each even every for from get
go going got had has have he her here him his how i i'd i'll i'm i've if in into is isn't it it's
its just let let's me more most much my no not now of off on one only or other our out over own
please right same she should so some still such than that that's the their them then there
they this those through to too under up us very was we we'll we're we've well were what what's
when where which while who will with won't would yes you you'll you're your yeah okay oh hi hello
thank thanks bye goodbye morning afternoon evening good great lovely fine sure course alright
zero two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen
seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand
first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth
thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth thirtieth
""".split())


def stem(word: str) -> str:
    """A crude fold of word forms (leaks/leaking/leaked -> leak; charge/charged -> charg)."""
    for suffix in ("ing", "ed", "es", "s", "e"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: -len(suffix)]
    return word


def words(call: dict) -> dict:
    """The call's content-word stems -> the first surface form met."""
    out: dict = {}
    for turn in call["turns"]:
        for w in re.findall(r"[a-z]+(?:'[a-z]+)?", turn[1].lower()):
            if w not in STOP and len(w) > 2 and w.split("'")[0] not in STOP:
                out.setdefault(stem(w.split("'")[0]), w)
    return out


def uses(call: dict, keyword: str) -> bool:
    text = " " + " ".join(re.findall(r"[a-z]+", " ".join(t[1] for t in call["turns"]).lower())) + " "
    return f" {keyword}" in text  # a stem: any word starting with it


def check_wording() -> int:
    by_intent = {i: [c for c in D.CALLS if c["intent"] == i] for i in D.INTENTS}
    partner = {a: b for pair in D.PAIRS for a, b in (pair, pair[::-1])}
    bad = 0
    for intent, calls in by_intent.items():
        sets = [words(c) for c in calls]
        shared = set.intersection(*(set(s) for s in sets))
        other = set().union(*(words(c) for c in by_intent[partner[intent]]))
        own3 = {w for w in set().union(*sets) if sum(w in s for s in sets) >= 3} - other
        form = {w: next(s[w] for s in sets if w in s) for w in set().union(*sets)}
        print(f"{intent} ({len(calls)} calls)")
        print(f"  shared by all {len(calls)}: {', '.join(sorted(form[w] for w in shared)) or '-'}")
        print(f"  ... and in no {partner[intent]} call: {', '.join(sorted(form[w] for w in shared - other)) or '-'}")
        print(f"  in 3+ calls, in no {partner[intent]} call: {', '.join(sorted(form[w] for w in own3)) or '-'}")
        counts = {k: sum(uses(c, k) for c in calls) for k in D.KEYWORDS[intent]}
        over = [k for k, n in counts.items() if n > 1]
        bad += len(over)
        print("  keywords (calls using them): " + ", ".join(f"{k} {n}" for k, n in counts.items())
              + (f"   OVER ONE: {', '.join(over)}" if over else ""))
    print(f"{bad} keyword(s) in more than one call of their intent")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir", nargs="?", type=Path, default=HERE)
    ap.add_argument("--only", default="", help="comma-separated call names (debugging; no qrels.json)")
    ap.add_argument("--jobs", type=int, default=2, help="calls rendered at once (default 2)")
    ap.add_argument("--check-wording", action="store_true", help="print the words the calls of an intent share; render nothing")
    args = ap.parse_args(argv)
    if args.check_wording:
        return check_wording()
    rc = M.main([str(args.outdir), "--only", args.only, "--jobs", str(args.jobs)])
    qrels_path = args.outdir / "qrels.json"
    if rc or args.only or not qrels_path.exists():
        return rc
    qrels = json.loads(qrels_path.read_text(encoding="utf-8"))
    qrels.update({
        "name": "speechsearch similar-calls dev set 2 (reasons worded differently)",
        "generator": "benchmarks/simset2/make_simset2.py (renderer: benchmarks/simset/make_simset.py)",
        "note": qrels["note"] + "; the four calls of an intent tell their reason in different words "
                "(an intent's obvious keyword in at most one of them)",
    })
    qrels_path.write_text(json.dumps(qrels, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
