#!/usr/bin/env python3
"""Render the synthetic customer-service phone calls used as examples and test data.

Each call is a scripted dialogue between an AGENT and a CUSTOMER, spoken by two
different offline TTS voices (CMU Flite and Festival HTS), assembled here
sample-by-sample so the start/end of every turn is known exactly.

Usage::

    python examples/make_calls.py OUTDIR
        Write every call into OUTDIR (flat) plus OUTDIR/calls.json.

    python examples/make_calls.py --layout repo --json tests/data/calls.json .
        Regenerate the files shipped in this repository in place
        (examples/*.mp3|ogg, tests/data/*.mp3|flac, tests/data/calls.json);
        file names in the JSON are then relative to the repository root.

Options: ``--format wav`` writes uncompressed 16 kHz WAV instead of the
per-call codec; ``--only NAME`` renders a subset (repeatable).

Requirements (Debian): flite, festival + festvox-us-slt-hts, ffmpeg, numpy.
Output is deterministic: pauses/noise come from a fixed seed, TTS engines
are deterministic, and ffmpeg is run with bit-exact flags.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

SEED = 20240611
SR = 16000  # internal sample rate (Hz); all voices are rendered/resampled to it

# --------------------------------------------------------------------------
# Voices
# --------------------------------------------------------------------------
# "flite:<voice>" -> `flite -voice <voice>` (built-in CMU voices, 16 kHz)
# "festival:<voice fn>" -> `text2wave -eval (<voice fn>)`
# Each entry: engine spec, duration stretch (>1 = slower).
VOICES = {
    "festival_slt_hts": ("festival", "voice_cmu_us_slt_arctic_hts", 1.05),
    "flite_rms": ("flite", "rms", 1.05),
    "flite_awb": ("flite", "awb", 1.10),
    "flite_kal16": ("flite", "kal16", 1.12),
}

HOLD = object()  # marker in a script for a hold-music section

# --------------------------------------------------------------------------
# Call scripts (data). Numbers are spelled out exactly as spoken.
# Key wording is deliberately varied so that a paraphrased query (e.g.
# "customer wants their money back") does not share the call's own words.
# --------------------------------------------------------------------------
CALLS = [
    {
        "name": "refund",
        "intent": "refund",
        "summary": "Customer was billed twice for one order; agent reverses the duplicate charge.",
        "example_queries": [
            "customer wants their money back",
            "paid two times for a single purchase",
            "billing mistake on a credit card statement",
        ],
        "repo_path": "examples/refund-call.mp3",
        "flat_name": "refund-call.mp3",
        "codec": "mp3_16k",
        "voices": {"AGENT": "festival_slt_hts", "CUSTOMER": "flite_rms"},
        "turns": [
            ("AGENT", "Thanks for calling Northwind, this is Emma. How can I help?"),
            ("CUSTOMER", "Hi Emma. My bank statement shows I was charged twice for the same order."),
            ("AGENT", "Sorry about that. Can I have your name and the order number?"),
            ("CUSTOMER", "David Miller, order number four seven two nine one."),
            ("AGENT", "Thanks, Mister Miller. I can see two identical payments of eighty nine dollars."),
            ("CUSTOMER", "Right, I only bought one coffee machine. I'd like the second payment returned to my card."),
            ("AGENT", "Of course. I've reversed the duplicate charge, it will be back on your card within five business days."),
            ("CUSTOMER", "Great, thanks so much."),
            ("AGENT", "You're welcome. Have a lovely day."),
        ],
    },
    {
        "name": "account_locked",
        "intent": "account_locked",
        "summary": "Customer cannot sign in; reset e-mail never arrives; account blocked after failed attempts.",
        "example_queries": [
            "user can't log in to the website",
            "forgot my password and the reset link was not received",
            "access blocked after too many wrong tries",
        ],
        "repo_path": "examples/account-locked-call.ogg",
        "flat_name": "account-locked-call.ogg",
        "codec": "opus",
        "voices": {"AGENT": "flite_awb", "CUSTOMER": "festival_slt_hts"},
        "turns": [
            ("AGENT", "Good afternoon, help desk, James speaking."),
            ("CUSTOMER", "Hi James. I can't sign in to my account since yesterday."),
            ("AGENT", "Let's take a look. Can I have your name and e-mail address?"),
            ("CUSTOMER", "Sarah Collins, sarah dot collins at example dot com."),
            ("AGENT", "Thanks, Sarah. What happens when you try?"),
            ("CUSTOMER", "I clicked forgot password three times, but the e-mail with the link never arrives. And after five wrong tries, it froze everything."),
            ("AGENT", "I see, the account was locked after too many attempts. I've unlocked it and sent a fresh reset link."),
            ("CUSTOMER", "Oh, it just came in. It was in my spam folder. Thank you!"),
            ("AGENT", "Glad I could help. Take care."),
        ],
    },
    {
        "name": "cancel_subscription",
        "intent": "cancel_subscription",
        "summary": "Customer ends their monthly plan because they are relocating abroad; declines a discount offer.",
        "example_queries": [
            "customer leaving because they relocate to another country",
            "stop paying every month for the service",
            "retention offer turned down",
        ],
        "repo_path": "tests/data/cancel-subscription-call.mp3",
        "flat_name": "cancel-subscription-call.mp3",
        "codec": "mp3_22k",
        "voices": {"AGENT": "flite_kal16", "CUSTOMER": "festival_slt_hts"},
        "turns": [
            ("AGENT", "Hello, thanks for calling Streamline, this is Alex. What can I do for you?"),
            ("CUSTOMER", "Hi Alex. I'd like to cancel my monthly plan, please."),
            ("AGENT", "Sure. May I have your name and account number?"),
            ("CUSTOMER", "It's Rachel Bennett, account number three three eight one five."),
            ("AGENT", "Thank you, Rachel. May I ask why you're leaving?"),
            ("CUSTOMER", "I'm moving to Portugal next month for a new job, so I won't need it anymore."),
            ("AGENT", "I understand. Before you go, I could offer you half price for the next three months."),
            ("CUSTOMER", "That's kind, but no thank you. Please just close it at the end of this billing period."),
            ("AGENT", "Okay, you're all set. Your plan ends on the thirtieth, and you won't be charged again. Good luck with the move."),
        ],
    },
    {
        "name": "late_delivery",
        "intent": "late_delivery",
        "summary": "Parcel is a week overdue with stale tracking; agent opens a courier investigation and ships a replacement.",
        "example_queries": [
            "package never showed up",
            "shipment missing so they are sending a new one",
            "order stuck in transit for days",
        ],
        "repo_path": "tests/data/late-delivery-call.flac",
        "flat_name": "late-delivery-call.flac",
        "codec": "flac_8k",
        "voices": {"AGENT": "festival_slt_hts", "CUSTOMER": "flite_awb"},
        "turns": [
            ("AGENT", "Good morning, Olivia from customer support. How may I help?"),
            ("CUSTOMER", "Hi Olivia. My parcel should have arrived last Tuesday. It's a week late, and the tracking page hasn't changed for days."),
            ("AGENT", "Sorry to hear that. Can I take your name and order number?"),
            ("CUSTOMER", "Michael Turner, order number five five zero two eight."),
            ("AGENT", "Thank you. Let me put you on hold while I contact the courier."),
            HOLD,
            ("AGENT", "Thanks for holding, Michael. The courier can't locate the box, so I've opened an investigation with them."),
            ("AGENT", "Meanwhile, I'm sending you a replacement today by express shipping, at no extra cost."),
            ("CUSTOMER", "That's brilliant, thank you."),
            ("AGENT", "My pleasure. You'll get a new tracking number by e-mail. Goodbye."),
        ],
    },
]

HOLD_SECONDS = 8.0
PAUSE_RANGE = (0.3, 0.8)  # seconds of silence between turns
LEAD_IN = 0.5  # seconds of line noise before first turn
TAIL = 0.6  # seconds after last turn

# ffmpeg output settings per codec (all mono)
CODECS = {
    "mp3_16k": ["-ar", "16000", "-c:a", "libmp3lame", "-b:a", "32k"],
    "mp3_22k": ["-ar", "22050", "-c:a", "libmp3lame", "-b:a", "32k"],
    "opus": ["-ar", "16000", "-c:a", "libopus", "-b:a", "24k", "-application", "voip"],
    "flac_8k": ["-ar", "8000", "-sample_fmt", "s16", "-c:a", "flac", "-compression_level", "8"],
    "wav": ["-ar", "16000", "-c:a", "pcm_s16le"],
}


# --------------------------------------------------------------------------
# Audio helpers
# --------------------------------------------------------------------------
def _run(cmd: list[str], **kw) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def read_wav(path: Path) -> np.ndarray:
    """Read a 16-bit mono WAV at SR, resampling through ffmpeg if needed."""
    with wave.open(str(path), "rb") as w:
        ok = w.getsampwidth() == 2 and w.getnchannels() == 1 and w.getframerate() == SR
        frames = w.readframes(w.getnframes()) if ok else None
    if not ok:
        conv = path.with_suffix(".16k.wav")
        _run(["ffmpeg", "-nostdin", "-y", "-v", "error", "-i", str(path),
              "-ac", "1", "-ar", str(SR), "-c:a", "pcm_s16le", str(conv)])
        return read_wav(conv)
    return np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0


def synth(voice_key: str, text: str, tmp: Path, idx: int) -> np.ndarray:
    engine, voice, stretch = VOICES[voice_key]
    out = tmp / f"turn{idx:03d}.wav"
    if engine == "flite":
        _run(["flite", "-voice", voice, "--setf", f"duration_stretch={stretch}",
              "-t", text, "-o", str(out)])
    elif engine == "festival":
        txt = tmp / f"turn{idx:03d}.txt"
        txt.write_text(text + "\n", encoding="utf-8")
        _run(["text2wave", "-F", str(SR),
              "-eval", f"({voice})",
              "-eval", f"(Parameter.set 'Duration_Stretch {stretch})",
              str(txt), "-o", str(out)])
    else:  # pragma: no cover
        raise ValueError(engine)
    return read_wav(out)


def trim(x: np.ndarray, rel_db: float = -40.0, margin_s: float = 0.03) -> np.ndarray:
    """Cut leading/trailing silence (10 ms frames below rel_db of the loudest frame)."""
    hop = SR // 100
    n = len(x) // hop
    if n == 0:
        return x
    rms = np.sqrt(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    thr = rms.max() * 10 ** (rel_db / 20)
    on = np.nonzero(rms > thr)[0]
    m = int(margin_s * SR)
    a = max(0, on[0] * hop - m)
    b = min(len(x), (on[-1] + 1) * hop + m)
    return x[a:b]


def normalise(x: np.ndarray, target_rms_db: float = -20.0, peak: float = 0.89) -> np.ndarray:
    """Bring each turn to a common loudness so the two voices sound balanced."""
    rms = np.sqrt(np.mean(x ** 2)) + 1e-12
    y = x * (10 ** (target_rms_db / 20) / rms)
    p = np.abs(y).max()
    if p > peak:
        y *= peak / p
    return y


def fade(x: np.ndarray, s: float = 0.01) -> np.ndarray:
    n = min(int(s * SR), len(x) // 2)
    if n:
        ramp = np.linspace(0.0, 1.0, n)
        x = x.copy()
        x[:n] *= ramp
        x[-n:] *= ramp[::-1]
    return x


def hold_music(seconds: float) -> np.ndarray:
    """A quiet, simple two-voice sine-tone melody (no speech), C major pentatonic."""
    midi = lambda m: 440.0 * 2 ** ((m - 69) / 12)
    melody = [72, 74, 76, 79, 76, 74, 72, 69, 72, 74, 76, 74, 72, 69, 67, 69,
              72, 76, 79, 81, 79, 76, 74, 72]
    bass = [48, 48, 55, 55, 45, 45, 52, 52]  # C G A E, two beats each
    note_len = seconds / len(melody)
    out = np.zeros(int(round(seconds * SR)))
    t_note = np.arange(int(note_len * SR)) / SR
    env = np.minimum(1.0, t_note / 0.02) * np.exp(-2.5 * t_note)
    for i, m in enumerate(melody):
        a = int(round(i * note_len * SR))
        seg = 0.5 * np.sin(2 * np.pi * midi(m) * t_note) * env
        b = min(len(out), a + len(seg))
        out[a:b] += seg[: b - a]
    bass_len = seconds / len(bass)
    t_b = np.arange(int(bass_len * SR)) / SR
    env_b = np.minimum(1.0, t_b / 0.03) * np.minimum(1.0, (bass_len - t_b) / 0.05)
    for i, m in enumerate(bass):
        a = int(round(i * bass_len * SR))
        seg = 0.3 * np.sin(2 * np.pi * midi(m) * t_b) * env_b
        b = min(len(out), a + len(seg))
        out[a:b] += seg[: b - a]
    out *= 0.12 / np.abs(out).max()  # quiet-ish: peak about -18 dBFS
    return fade(out, 0.25)


def render_call(call: dict, rng: random.Random, tmp: Path):
    """Return (signal, turns, non_speech) with times in seconds."""
    pieces: list[np.ndarray] = []
    turns: list[dict] = []
    non_speech: list[dict] = []
    pos = 0

    def add(x: np.ndarray) -> None:
        nonlocal pos
        pieces.append(x)
        pos += len(x)

    add(np.zeros(int(LEAD_IN * SR)))
    for i, turn in enumerate(call["turns"]):
        if i > 0:
            add(np.zeros(int(round(rng.uniform(*PAUSE_RANGE) * SR))))
        if turn is HOLD:
            x = hold_music(HOLD_SECONDS)
            non_speech.append({"kind": "hold_music", "start": round(pos / SR, 3),
                               "end": round((pos + len(x)) / SR, 3)})
            add(x)
            continue
        speaker, text = turn
        x = fade(normalise(trim(synth(call["voices"][speaker], text, tmp, i))))
        turns.append({"speaker": speaker, "text": text, "start": round(pos / SR, 3),
                      "end": round((pos + len(x)) / SR, 3)})
        add(x)
    add(np.zeros(int(TAIL * SR)))
    sig = np.concatenate(pieces)
    # faint line noise so silences are not digital zero (seeded, about 1 LSB, -90 dBFS RMS)
    noise_rng = np.random.default_rng(rng.randrange(2 ** 32))
    sig = sig + noise_rng.normal(0.0, 0.00003, len(sig))
    return np.clip(sig, -1.0, 1.0), turns, non_speech


def write_wav16(path: Path, x: np.ndarray) -> None:
    pcm = np.round(x * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(pcm.tobytes())


def encode(src_wav: Path, dst: Path, codec: str) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    _run(["ffmpeg", "-nostdin", "-y", "-v", "error", "-i", str(src_wav),
          "-ac", "1", *CODECS[codec],
          "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact",
          str(dst)])


def probe_rate(path: Path) -> int:
    """Sample rate a decoder reports for the written file (Opus decodes at 48 kHz)."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0",
                          "-show_entries", "stream=sample_rate", "-of", "csv=p=0", str(path)],
                         check=True, capture_output=True, text=True).stdout
    return int(out.strip())


def check_tools() -> None:
    missing = [t for t in ("flite", "text2wave", "ffmpeg", "ffprobe") if shutil.which(t) is None]
    if missing:
        sys.exit(f"make_calls.py: missing tools: {', '.join(missing)} "
                 "(apt-get install flite festival festvox-us-slt-hts ffmpeg)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--layout", choices=["flat", "repo"], default="flat",
                    help="flat: OUTDIR/<name>; repo: OUTDIR/<repo path> (examples/, tests/data/)")
    ap.add_argument("--json", type=Path, default=None,
                    help="where to write calls.json (default OUTDIR/calls.json)")
    ap.add_argument("--format", choices=["native", "wav"], default="native",
                    help="native: per-call codec (mp3/ogg/flac); wav: 16 kHz PCM WAV")
    ap.add_argument("--only", action="append", default=None, help="render only this call name")
    args = ap.parse_args(argv)
    check_tools()

    outdir: Path = args.outdir
    json_path: Path = args.json or outdir / "calls.json"
    entries = []
    with tempfile.TemporaryDirectory(prefix="make_calls_") as td:
        for call in CALLS:
            if args.only and call["name"] not in args.only:
                continue
            rng = random.Random(f"{SEED}:{call['name']}")  # per-call seed: subsets stay identical
            tmp = Path(td) / call["name"]
            tmp.mkdir()
            sig, turns, non_speech = render_call(call, rng, tmp)
            rel = call["repo_path"] if args.layout == "repo" else call["flat_name"]
            codec = call["codec"]
            if args.format == "wav":
                rel, codec = str(Path(rel).with_suffix(".wav")), "wav"
            dst = outdir / rel
            mix = tmp / "mix.wav"
            write_wav16(mix, sig)
            encode(mix, dst, codec)
            entries.append({
                "file": Path(rel).as_posix(),
                "name": call["name"],
                "intent": call["intent"],
                "summary": call["summary"],
                "example_queries": call["example_queries"],
                "duration": round(len(sig) / SR, 3),
                "sample_rate": probe_rate(dst),
                "voices": {spk: "%s:%s" % VOICES[v][:2] for spk, v in call["voices"].items()},
                "turns": turns,
                "non_speech": non_speech,
            })
            print(f"wrote {dst} ({len(sig) / SR:.1f} s, {len(turns)} turns)", file=sys.stderr)

    json_path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "generator": "examples/make_calls.py",
        "seed": SEED,
        "note": "times are in seconds from the start of the file; turn text is exactly what the TTS voice was given",
        "calls": entries,
    }
    json_path.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {json_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
