"""Make the calls that tests/test_redact.py uses (run once; the outputs are committed).

    python tests/data/make_pii_calls.py

Two synthetic calls in which a customer reads out personal data, rendered with the same offline
TTS voices and helpers as examples/make_calls.py (needs flite, festival + festvox-us-slt-hts,
ffmpeg):

- pii-card-call.mp3 (mono): a card number read digit by digit in two turns with the agent's
  "Okay." between them, a US phone number, a spoken e-mail address; and harmless numbers (an
  amount, a five-digit order number, "two weeks", a time of day).
- pii-stereo-call.ogg (stereo): the agent on the left channel (0), the customer on the right (1).
  An SSN-like number, a UK mobile number with "oh" and "double", a card read in two turns with
  the agent's "Go on." between them (on the other channel), an e-mail with "underscore"; harmless
  numbers (an amount, a date, "two weeks", "number twelve").

pii-calls.json has the layout of calls.json (per call the file and its turns with speaker, start,
end, text; here also the channel of each turn) plus ``pii``: each item read out, its kind, its
value and the time from the start of its first turn to the end of its last.
"""
from __future__ import annotations

import importlib.util
import json
import random
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
_spec = importlib.util.spec_from_file_location("make_calls", ROOT / "examples" / "make_calls.py")
mc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mc)  # type: ignore[union-attr]
SR = mc.SR

# A turn: (speaker, text) or (speaker, text, pii) where pii is "KIND:value"; the turns of one
# value make one item (a card read in two turns).
CALLS = [
    {
        "name": "pii_card",
        "file": "tests/data/pii-card-call.mp3",
        "stereo": False,
        "voices": {"AGENT": "flite_awb", "CUSTOMER": "festival_slt_hts"},
        "turns": [
            ("AGENT", "Thanks for calling Northwind billing, this is Emma. How can I help?"),
            ("CUSTOMER", "Hi Emma. I'd like to pay my invoice of fifty nine dollars and ninety nine cents by card."),
            ("AGENT", "Sure. What is the card number?"),
            ("CUSTOMER", "four five three two, zero one five one,", "CARD:4532015112345670"),
            ("AGENT", "Okay."),
            ("CUSTOMER", "one two three four, five six seven zero.", "CARD:4532015112345670"),
            ("AGENT", "Thank you. And a phone number in case we need to reach you?"),
            ("CUSTOMER", "two zero two, five five five, zero one four three.", "PHONE:2025550143"),
            ("AGENT", "And an e-mail address for the receipt?"),
            ("CUSTOMER", "john dot smith at example dot com.", "EMAIL:john.smith@example.com"),
            ("AGENT", "All done. Order number four seven two nine one is paid, and it ships in two weeks."),
            ("CUSTOMER", "Great. Could you call me back tomorrow at ten thirty?"),
            ("AGENT", "Of course. Goodbye."),
        ],
    },
    {
        "name": "pii_stereo",
        "file": "tests/data/pii-stereo-call.ogg",
        "stereo": True,
        "channels": {"AGENT": 0, "CUSTOMER": 1},
        "voices": {"AGENT": "flite_kal16", "CUSTOMER": "flite_rms"},
        "turns": [
            ("AGENT", "Hello, this is James from the security team. I need to check a few details first."),
            ("CUSTOMER", "Sure, go ahead."),
            ("AGENT", "What is your social security number?"),
            ("CUSTOMER", "one two three, four five, six seven eight nine.", "NATIONAL_ID:123456789"),
            ("AGENT", "Thanks. And the best mobile number for you?"),
            ("CUSTOMER", "oh seven seven double oh, nine double oh, one two three.", "PHONE:07700900123"),
            ("AGENT", "Got it. Which card should we charge the fee of twelve pounds fifty to?"),
            ("CUSTOMER", "five four five four, five four five four,", "CARD:5454545454545454"),
            ("AGENT", "Go on."),
            ("CUSTOMER", "five four five four, five four five four.", "CARD:5454545454545454"),
            ("AGENT", "And an e-mail address for the confirmation?"),
            ("CUSTOMER", "sarah underscore lee at example dot co dot uk.", "EMAIL:sarah_lee@example.co.uk"),
            ("AGENT", "Thank you. Your new card arrives in two weeks, on the fourteenth of June."),
            ("CUSTOMER", "Perfect. I live at number twelve, so please post it there."),
            ("AGENT", "Will do. Goodbye."),
        ],
    },
]
CODECS = {
    ".mp3": ["-ac", "1", "-ar", "16000", "-c:a", "libmp3lame", "-b:a", "32k"],
    ".ogg": ["-ac", "2", "-ar", "16000", "-c:a", "libopus", "-b:a", "32k", "-application", "voip"],
}


def render(call: dict, tmp: Path):
    """Return (samples x channels signal, turns): turns one after another, each on its speaker's
    channel (stereo) or all on the one channel (mono)."""
    rng = random.Random(f"{mc.SEED}:{call['name']}")
    channels = call.get("channels", {})
    pieces, turns, pos = [], [], int(mc.LEAD_IN * SR)
    for i, (speaker, text, *pii) in enumerate(call["turns"]):
        if i:
            pos += int(round(rng.uniform(*mc.PAUSE_RANGE) * SR))
        x = mc.fade(mc.normalise(mc.trim(mc.synth(call["voices"][speaker], text, tmp, i))))
        ch = channels.get(speaker, 0)
        pieces.append((pos, ch, x))
        turn = {"speaker": speaker, "channel": ch, "text": text,
                "start": round(pos / SR, 3), "end": round((pos + len(x)) / SR, 3)}
        turns.append((turn, pii[0] if pii else None))
        pos += len(x)
    n = pos + int(mc.TAIL * SR)
    sig = np.zeros((n, 2 if call["stereo"] else 1))
    for start, ch, x in pieces:
        sig[start:start + len(x), ch] += x
    noise = np.random.default_rng(rng.randrange(2 ** 32))
    sig += noise.normal(0.0, 0.00003, sig.shape)  # faint line noise, as in make_calls.py
    return np.clip(sig, -1.0, 1.0), turns


def pii_items(turns) -> list:
    items: dict = {}
    for turn, pii in turns:
        if pii:
            kind, value = pii.split(":", 1)
            item = items.setdefault(value, {"kind": kind, "value": value, "channel": turn["channel"],
                                            "start": turn["start"]})
            item["end"] = turn["end"]
    return list(items.values())


def write_wav(path: Path, sig: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(sig.shape[1])
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(np.round(sig * 32767).astype("<i2").tobytes())


def main() -> None:
    mc.check_tools()
    entries = []
    with tempfile.TemporaryDirectory(prefix="make_pii_calls_") as td:
        for call in CALLS:
            tmp = Path(td) / call["name"]
            tmp.mkdir()
            sig, turns = render(call, tmp)
            dst = ROOT / call["file"]
            write_wav(tmp / "mix.wav", sig)
            mc._run(["ffmpeg", "-nostdin", "-y", "-v", "error", "-i", str(tmp / "mix.wav"),
                     *CODECS[dst.suffix], "-map_metadata", "-1", "-fflags", "+bitexact",
                     "-flags:a", "+bitexact", str(dst)])
            entries.append({
                "file": call["file"],
                "name": call["name"],
                "duration": round(len(sig) / SR, 3),
                "sample_rate": mc.probe_rate(dst),
                "channels": sig.shape[1],
                "voices": {spk: "%s:%s" % mc.VOICES[v][:2] for spk, v in call["voices"].items()},
                "turns": [t for t, _ in turns],
                "pii": pii_items(turns),
            })
            print(f"wrote {dst} ({len(sig) / SR:.1f} s, {dst.stat().st_size / 1024:.0f} KiB)", file=sys.stderr)
    meta = {
        "generator": "tests/data/make_pii_calls.py",
        "seed": mc.SEED,
        "note": "times are in seconds from the start of the file; turn text is exactly what the TTS "
                "voice was given; in stereo files the agent is channel 0 (left), the customer 1 (right)",
        "calls": entries,
    }
    (HERE / "pii-calls.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
