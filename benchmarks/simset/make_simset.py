#!/usr/bin/env python3
"""Generate the speechsearch similar-calls DEV set (choosing `similar` / `topics` settings).

    python benchmarks/simset/make_simset.py [OUTDIR] [--only NAME,NAME] [--jobs N]

writes OUTDIR/audio/<intent>-0N.<mp3|ogg|flac> and OUTDIR/qrels.json (OUTDIR defaults to this
script's folder). The scripts, voices, levels, bands and codecs are data in ``calls_data.py``.

Each turn is spoken by an offline synthesiser (speechsearch.synth.speak: Festival HTS, Flite,
eSpeak NG), trimmed, set to its RMS level (-24..-18 dBFS) and placed after a seeded pause of
0.3-0.9 s, so every turn's start and end in the file is exact. A few calls get a light coloured
background noise; the telephone-band calls are filtered to 300-3400 Hz and stored at 8 kHz. All
draws come from SEED, and ffmpeg runs with bit-exact flags: the same tool versions give the same
files.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import wave
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # no __pycache__ next to the data
import calls_data as D  # noqa: E402
from speechsearch.synth import Voice, speak  # noqa: E402

SEED = 20250611
SR = 16000
PAUSE = (0.3, 0.9)      # silence between turns, seconds
LEAD, TAIL = 0.5, 0.6   # silence before the first and after the last turn
LEVEL_RANGE = (-24.0, -18.0)
DURATION = (50.0, 90.0)
SPEAKERS = {"A": "AGENT", "C": "CUSTOMER"}

# voice key -> (engine, voice, pitch shift in semitones, tempo, description)
VOICES = {
    "hts_slt": ("festival", "voice_cmu_us_slt_arctic_hts", 0.0, 1.0, "Festival HTS cmu_us_slt_arctic_hts, US female"),
    "fl_slt": ("flite", "slt", 1.0, 1.0, "Flite slt, US female, +1 semitone"),
    "fl_rms": ("flite", "rms", 0.0, 0.97, "Flite rms, US male"),
    "fl_awb": ("flite", "awb", 0.0, 0.95, "Flite awb, Scottish male"),
    "fl_kal": ("flite", "kal16", -1.0, 0.92, "Flite kal16, US male (diphone), -1 semitone"),
    "es_us": ("espeak-ng", "en-us", 0.0, 0.9, "eSpeak NG en-us, US male"),
    "es_usf": ("espeak-ng", "en-us+f3", 0.0, 0.9, "eSpeak NG en-us+f3, US female"),
    "es_rp": ("espeak-ng", "en-gb-x-rp", 0.0, 0.88, "eSpeak NG en-gb-x-rp, British male"),
    "es_rpf": ("espeak-ng", "en-gb-x-rp+f2", 0.0, 0.9, "eSpeak NG en-gb-x-rp+f2, British female"),
    "es_gb": ("espeak-ng", "en-gb", 0.0, 0.9, "eSpeak NG en-gb, British male"),
    "es_scot": ("espeak-ng", "en-gb-scotland", 0.0, 0.9, "eSpeak NG en-gb-scotland, Scottish male"),
}

_EXACT = ["-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact"]
_PHONE = ["-af", "highpass=f=300,lowpass=f=3400", "-ar", "8000"]
# (codec, band) -> (extension, ffmpeg output options, description)
ENCODINGS = {
    ("mp3", "wide"): ("mp3", ["-ar", "16000", "-c:a", "libmp3lame", "-b:a", "32k"], "MP3 32 kbit/s, 16 kHz"),
    ("mp3", "telephone"): ("mp3", _PHONE + ["-c:a", "libmp3lame", "-b:a", "24k"],
                           "MP3 24 kbit/s, 8 kHz, 300-3400 Hz"),
    ("opus", "wide"): ("ogg", ["-ar", "16000", "-c:a", "libopus", "-b:a", "24k", "-application", "voip"],
                       "Ogg Opus 24 kbit/s from 16 kHz"),
    ("opus", "telephone"): ("ogg", _PHONE + ["-c:a", "libopus", "-b:a", "16k", "-application", "voip"],
                            "Ogg Opus 16 kbit/s from 8 kHz, 300-3400 Hz"),
    ("flac", "wide"): ("flac", ["-ar", "16000", "-sample_fmt", "s16", "-c:a", "flac",
                                "-compression_level", "8"], "FLAC 16 kHz"),
    ("flac", "telephone"): ("flac", _PHONE + ["-sample_fmt", "s16", "-c:a", "flac", "-compression_level", "8"],
                            "FLAC 8 kHz, 300-3400 Hz"),
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def say(key: str, text: str) -> np.ndarray:
    engine, name, pitch, tempo, _ = VOICES[key]
    return speak(text, Voice(engine, name), pitch, tempo).astype(np.float64)


def db(x: np.ndarray) -> float:
    return float(10.0 * np.log10(np.mean(np.square(x)) + 1e-20))


def at_level(x: np.ndarray, level: float) -> np.ndarray:
    """`x` scaled to an RMS of `level` dBFS; a turn whose peaks would pass 0.97 is lowered."""
    y = x * 10.0 ** ((level - db(x)) / 20.0)
    top = float(np.max(np.abs(y)))
    return y * (0.97 / top) if top > 0.97 else y


def ramp(x: np.ndarray, seconds: float = 0.012) -> np.ndarray:
    n = min(int(seconds * SR), len(x) // 2)
    if n:
        w = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n))
        x = x.copy()
        x[:n] *= w
        x[-n:] *= w[::-1]
    return x


def background(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise: white, pink (power ~ 1/f) or brown (~ 1/f^2)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    freq = np.maximum(np.fft.rfftfreq(n, 1.0 / SR), 20.0)  # flat below 20 Hz
    spec *= {"white": 1.0, "pink": freq ** -0.5, "brown": 1.0 / freq}[colour]
    y = np.fft.irfft(spec, n)
    return y / (np.sqrt(np.mean(y ** 2)) + 1e-20)


def render(call: dict) -> tuple[np.ndarray, list[dict]]:
    """The call's mono 16 kHz signal and its turns with exact times."""
    index = D.CALLS.index(call)
    rng = np.random.default_rng([SEED, index])
    parts, turns, pos = [np.zeros(int(LEAD * SR))], [], int(LEAD * SR)
    for i, turn in enumerate(call["turns"]):
        spk, text = turn[0], turn[1]
        if i:
            gap = np.zeros(int(round(rng.uniform(*PAUSE) * SR)))
            parts.append(gap)
            pos += len(gap)
        level = float(np.clip(call["levels"][spk] + rng.uniform(-1.0, 1.0), *LEVEL_RANGE))
        x = ramp(at_level(say(call["voices"][spk], text), level))
        turns.append({"speaker": SPEAKERS[spk], "text": text, "start": round(pos / SR, 3),
                      "end": round((pos + len(x)) / SR, 3), "level_db": round(db(x), 1),
                      "key": len(turn) > 2 and turn[2] == "key"})
        parts.append(x)
        pos += len(x)
    parts.append(np.zeros(int(TAIL * SR)))
    sig = np.concatenate(parts)
    if call["noise"]:
        colour, snr = call["noise"]
        speech = np.concatenate(parts[1:-1])
        sig = sig + background(len(sig), colour, rng) * 10.0 ** ((db(speech) - snr) / 20.0)
    return np.clip(sig, -1.0, 32767 / 32768), turns


def write_pcm(path: Path, x: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(np.round(x * 32768.0).astype("<i2").tobytes())


def make_call(call: dict, out: Path) -> dict:
    sig, turns = render(call)
    ext, opts, desc = ENCODINGS[(call["codec"], call["band"])]
    rel = f"audio/{call['name']}.{ext}"
    with tempfile.TemporaryDirectory(prefix="make_simset_") as tmp:
        src = Path(tmp) / "mix.wav"
        write_pcm(src, sig)
        subprocess.run(["ffmpeg", "-nostdin", "-y", "-v", "error", "-i", str(src), "-ac", "1", *opts,
                        *_EXACT, str(out / rel)], check=True)
    key = [t for t in turns if t["key"]]
    idx = [turns.index(t) for t in key]
    assert 2 <= len(idx) <= 3 and idx == list(range(idx[0], idx[-1] + 1)), call["name"]
    dur = len(sig) / SR
    if not DURATION[0] <= dur <= DURATION[1]:
        log(f"WARNING: {call['name']} lasts {dur:.1f} s")
    return {
        "file": rel, "intent": call["intent"], "kind": "call", "duration": round(dur, 3),
        "voices": {SPEAKERS[s]: VOICES[v][4] for s, v in call["voices"].items()},
        "band": call["band"], "codec": desc,
        "noise": {"colour": call["noise"][0], "snr_db": call["noise"][1]} if call["noise"] else None,
        "key_span": [key[0]["start"], key[-1]["end"]],
        "turns": [{k: t[k] for k in ("speaker", "text", "start", "end", "level_db")} for t in turns],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir", nargs="?", type=Path, default=HERE)
    ap.add_argument("--only", default="", help="comma-separated call names (debugging; no qrels.json)")
    ap.add_argument("--jobs", type=int, default=2, help="calls rendered at once (default 2)")
    args = ap.parse_args(argv)
    out: Path = args.outdir
    (out / "audio").mkdir(parents=True, exist_ok=True)
    only = set(filter(None, args.only.split(",")))
    calls = [c for c in D.CALLS if not only or c["name"] in only]
    with ProcessPoolExecutor(max(1, args.jobs)) as pool:
        files = list(pool.map(make_call, calls, [out] * len(calls)))
    for f in files:
        t = f["turns"]
        log(f"{f['file']}: {f['duration']:.1f} s, {len(t)} turns, {f['band']}, "
            f"levels {min(x['level_db'] for x in t):.1f}..{max(x['level_db'] for x in t):.1f} dBFS")
    if only:
        return 0
    qrels = {
        "name": "speechsearch similar-calls dev set",
        "version": 1,
        "generator": "benchmarks/simset/make_simset.py",
        "seed": SEED,
        "policy": "DEV set: choose similar/topics settings here; report on benchmarks/heldout",
        "note": "40 synthetic calls, 10 intents in 5 confusable pairs (same domain and words, a "
                "different reason for calling), 4 calls per intent; paths are relative to this file, "
                "times in seconds from the start of the file; turn text is exactly what the TTS voice "
                "said; level_db is the turn's RMS in dBFS before encoding; band 'telephone' is "
                "300-3400 Hz at 8 kHz; key_span runs over the two or three turns where the reason "
                "for the call comes out",
        "intents": D.INTENTS,
        "pairs": D.PAIRS,
        "files": files,
        "queries": [],
    }
    (out / "qrels.json").write_text(json.dumps(qrels, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    made = {f["file"] for f in files}
    for p in sorted((out / "audio").iterdir()):
        if f"audio/{p.name}" not in made:
            log(f"WARNING: audio/{p.name} is not part of the set")
    total = sum(f["duration"] for f in files)
    log(f"wrote {out / 'qrels.json'}: {len(files)} calls, {total / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
