#!/usr/bin/env python3
"""Add spoken intent paraphrases (query-by-example clips, kind "qbe-intent") to the dev set.

    python benchmarks/devset/make_spoken_intents.py [DEVSET_DIR] [--check-wording]

For each of the dev set's 10 intents, two clips of a caller stating the reason for
the call in everyday words (with a greeting and filler, as callers do), spoken by
an offline TTS voice that is not a CUSTOMER voice in any call of that intent, with
seeded white or pink noise and a codec, like the ``qbe-tts`` clips. Relevant = every
call of the intent, with the same spans (the key turns) as the text ``intent``
queries of that intent, copied from them.

Writes ``clips/s01.*`` ... ``clips/s20.*`` and replaces the ``qbe-intent`` entries in
``qrels.json`` (appended after the other queries); everything else in ``qrels.json``
stays byte for byte as it was. Run it after ``make_devset.py`` (which rewrites
``qrels.json`` from scratch and deletes clips it did not make). Deterministic (fixed
seed; the TTS engines and ffmpeg with bit-exact flags are deterministic), and
idempotent: a rerun gives the same bytes.

The wording was written to share (almost) no content word with the scripts of the
calls of its intent, or with the text intent queries: ``--check-wording`` prints the
shared words (greetings, filler and common function words left out) and exits. The
voice of each clip was picked so that faster-whisper tiny.en gets its content words
(see README.md).

Requirements (Debian): ffmpeg flite festival festvox-us-slt-hts espeak-ng; numpy.

Audio helpers, voices and codecs come from ``make_devset.py`` (imported, not copied).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # no __pycache__ next to the data
import make_devset as M  # noqa: E402
from make_devset import D, SR, coloured_noise, encode, fade, normalise, synth, trim  # noqa: E402

SEED = M.SEED
KIND = "qbe-intent"
ID_PREFIX = "s"
# formats, cycled (the qbe-tts formats plus a telephone-band MP3, as a caller on a phone)
CLIP_CODECS = ["wav16", "mp3_32", "opus16", "mp3_8k_tel"]
SNR_RANGE = (15.0, 20.0)  # dB, like the qbe-tts clips

# intent -> [(what the caller says, voice key)]; voice: not a CUSTOMER voice of any
# call of the intent (checked). Written to avoid the content words of that intent's
# calls and text queries (see --check-wording).
SPOKEN = {
    "refund": [
        ("hi there, um, I bought some trainers off your website and it grabbed the cash "
         "off me two goes in a row, so I'd like the spare lot back", "fl_slt"),
        ("hello, yeah, uh, your shop has taken the price of my jumper off me double, can "
         "I get the difference back", "fl_kal"),
    ],
    "account_locked": [
        ("hiya, um, whenever I type my details into your site it just goes nope and "
         "refuses to let me through, it's frozen me out completely", "slt_hts"),
        ("good morning, uh, I can't get past the entry page of the members area, it "
         "won't take what I put in", "es_gbf"),
    ],
    "cancel_subscription": [
        ("hi, uh, I'd like to pack in my sign up with you, I never bother with it these "
         "days and I'm fed up forking out for it", "fl_rms"),
        ("hello there, um, I want to bow out please, I've had enough of being signed up "
         "with you, so no more fees from now on", "fl_slt"),
    ],
    "late_delivery": [
        ("hi, um, I'm ringing because the stuff I got off you a while back never made it "
         "to me, I've been sat in for ages and nothing's come", "es_usf"),
        ("hello, yeah, uh, my package was meant to be here ages ago and there's still no "
         "sign of it", "slt_hts"),
    ],
    "damaged_item": [
        ("hi there, um, the mirror you dispatched turned up in bits, it's totally "
         "shattered, so can I swap it for a good one", "fl_awb"),
        ("hello, uh, so I've unwrapped my parcel and the kettle inside is all dented and "
         "won't even switch on", "fl_kal"),
    ],
    "change_address": [
        ("hi, um, I've upped sticks to the other side of town, so anything you post me "
         "should come to where I am these days, not the previous one", "fl_slt"),
        ("hello, yeah, um, I'll be out when your van turns up, could it be left with "
         "my sister round the corner", "fl_awb"),
    ],
    "upgrade_plan": [
        ("hi there, um, I'm after something roomier than what I've got, so what's the "
         "damage if I step up to the fancier version", "slt_hts"),
        ("hello, uh, yeah, my current deal isn't enough for me anymore, how much would "
         "the next one up set me back", "es_usm"),
    ],
    "fraud": [
        ("hi, um, somebody nicked my handbag on the bus with my plastic in it, can you "
         "put a hold on everything before they go shopping", "fl_rms"),
        ("hello, uh, there's a load of stuff on my statement that I don't recognise, "
         "and I reckon a crook has got hold of my info", "fl_kal"),
    ],
    "internet_outage": [
        ("hi, um, nothing in the house will load, no websites, no videos, and the little "
         "gadget in the hall is just flashing at me", "es_gbf"),
        ("hello there, uh, we've got nothing coming through whatsoever, the TV won't "
         "stream and the computers all say offline", "fl_awb"),
    ],
    "invoice_copy": [
        ("hi, um, could you dig out the documentation for something I paid for in the "
         "spring, I've mislaid mine", "es_usf"),
        ("hello, yeah, uh, the lady who does our books is after a breakdown of everything "
         "we spent with you in the previous quarter, can you get that to me", "fl_rms"),
    ],
}

# greetings, filler, politeness and common function words: not counted as shared
# content words
FILLER = set("""hi hiya hello hey there um uh er erm yeah oh so well okay good morning
afternoon evening please thanks thank i'm i've i'd i'll it's that's what's there's
can can't won't don't isn't like now back through still never ago while next every
anything everything nothing something got get put take""".split())


def shared_words(intent: str, text: str, queries: list[str]) -> list[str]:
    words = set()
    for c in D.CALLS:
        if c["intent"] == intent:
            for t in c["turns"]:
                if t != D.HOLD:
                    words |= M.content_words(t[1])
    for q in queries:
        words |= M.content_words(q)
    mine = M.content_words(" ".join(w for w in re.findall(r"[A-Za-z']+", text)
                                    if w.lower() not in FILLER))
    return sorted(mine & words)


def check_wording() -> int:
    n = 0
    for intent, clips in SPOKEN.items():
        for text, _ in clips:
            shared = shared_words(intent, text, D.INTENT_QUERIES[intent])
            n += bool(shared)
            print(f"{intent:20s} {text!r}: shared {shared}")
    return n


def check_voices() -> None:
    for intent, clips in SPOKEN.items():
        customers = {c["voices"]["C"] for c in D.CALLS if c["intent"] == intent}
        for text, voice in clips:
            assert voice in M.VOICES, voice
            assert voice not in customers, (intent, voice)


def intent_spans(queries: list[dict]) -> dict[str, list[dict]]:
    """intent -> relevant list of its text intent queries (which must all agree)."""
    spans: dict[str, list[dict]] = {}
    for q in queries:
        if q.get("type") == "text" and q.get("kind") == "intent":
            rel = spans.setdefault(q["intent"], q["relevant"])
            assert rel == q["relevant"], f"text intent queries of {q['intent']} disagree"
    return spans


def make_clip(n: int, text: str, voice: str, tmp: Path, out: Path) -> dict:
    """Speak, pad, add noise, encode clips/sNN.*; return the query fields."""
    qid = f"{ID_PREFIX}{n:02d}"
    rng = np.random.default_rng([SEED, 11, n])
    speech = fade(normalise(trim(synth(voice, text, tmp, qid))))
    lead = int(rng.uniform(0.25, 0.5) * SR)
    tail = int(rng.uniform(0.25, 0.5) * SR)
    x = np.concatenate([np.zeros(lead), speech, np.zeros(tail)])
    kind = "pink" if n % 2 else "white"
    snr = round(float(rng.uniform(*SNR_RANGE)), 1)
    s_rms = np.sqrt(np.mean(speech ** 2))
    x = x + coloured_noise(len(x), kind, rng) * s_rms / 10 ** (snr / 20)
    if np.abs(x).max() > 0.95:
        x *= 0.95 / np.abs(x).max()
    dur = len(x) / SR
    if not 2.0 <= dur <= 13.0:
        M.log(f"WARNING: clip {qid} is {dur:.2f} s")
    codec = CLIP_CODECS[(n - 1) % len(CLIP_CODECS)]
    rel = f"clips/{qid}.{M.CODECS[codec][0]}"
    M.write_wav(tmp / f"{qid}.clip.wav", x)
    encode(tmp / f"{qid}.clip.wav", out / rel, codec)
    M.log(f"{rel}: {dur:.1f} s, {voice}, {kind} noise {snr} dB")
    return {"id": qid, "clip": rel, "clip_text": text, "clip_voice": M.voice_label(voice),
            "clip_duration": round(dur, 3), "clip_codec": M.CODECS[codec][2],
            "noise": kind, "snr_db": snr}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("devset", nargs="?", type=Path, default=HERE,
                    help="dev set folder with qrels.json (default: this folder)")
    ap.add_argument("--check-wording", action="store_true",
                    help="print content words the clips share with their intent's calls "
                         "and text queries, then exit")
    args = ap.parse_args(argv)
    if args.check_wording:
        return 1 if check_wording() else 0
    missing = [t for t in ("ffmpeg", "flite", "text2wave", "espeak-ng") if shutil.which(t) is None]
    if missing:
        sys.exit("make_spoken_intents.py: missing " + ", ".join(missing) + "\n(apt-get install "
                 "ffmpeg flite festival festvox-us-slt-hts espeak-ng)")
    check_voices()
    assert list(SPOKEN) == list(D.INTENT_QUERIES), "one entry per dev set intent, same order"

    out: Path = args.devset
    qpath = out / "qrels.json"
    qrels = json.loads(qpath.read_text(encoding="utf-8"))
    kept = [q for q in qrels["queries"] if q.get("kind") != KIND]
    spans = intent_spans(kept)
    new: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="make_spoken_intents_") as td:
        tmp = Path(td)
        n = 0
        for intent, clips in SPOKEN.items():
            for text, voice in clips:
                n += 1
                f = make_clip(n, text, voice, tmp, out)
                new.append({"id": f.pop("id"), "type": "audio", "kind": KIND, "intent": intent,
                            **f, "relevant": [dict(r) for r in spans[intent]]})
    qrels["queries"] = kept + new
    # same formatting as make_devset.py, so the rest of the file is unchanged
    qpath.write_text(json.dumps(qrels, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    made = {q["clip"] for q in new}
    for p in sorted((out / "clips").glob(f"{ID_PREFIX}[0-9][0-9].*")):
        if f"clips/{p.name}" not in made:
            p.unlink()
            M.log(f"deleted stale clips/{p.name}")
    M.log(f"wrote {qpath}: {len(new)} {KIND} queries ({len(qrels['queries'])} in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
