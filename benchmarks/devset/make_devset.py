#!/usr/bin/env python3
"""Generate the speechsearch public evaluation dev set.

    python benchmarks/devset/make_devset.py [OUTDIR]

writes OUTDIR/audio/*, OUTDIR/clips/* and OUTDIR/qrels.json (OUTDIR defaults to
this script's folder). The call scripts, queries and clip choices are data in
``calls_data.py`` next to this file.

What it makes (see README.md):

* synthetic customer-service calls, spoken turn by turn by offline TTS voices
  (CMU Flite, Festival, eSpeak NG) and assembled sample by sample here, so every
  turn's start/end is exact; some at 16 kHz (mp3/opus), some band-limited to the
  8 kHz telephone band (flac, mp3, opus, mu-law wav);
* human recordings as distractors: LibriVox sentences from Debian's
  pocketsphinx-testdata and original recordings from Debian's codec2-examples;
* query-by-example clips: a call sentence re-spoken by another TTS voice with
  seeded noise, and Codec 2 coded versions of the codec2-examples originals;
* qrels.json: files (with turn timings) and text/audio queries with their
  relevant files and spans.

Deterministic: all randomness comes from fixed seeds, the TTS engines and Codec 2
are deterministic, and ffmpeg runs with bit-exact flags, so the output is
byte-for-byte identical given the same tool versions (Debian 12: flite 2.2,
festival 2.5.0, espeak-ng 1.51, codec2 1.0.5, ffmpeg 5.1).

Options: ``--check-wording`` only prints the content words that intent queries
share with their relevant calls (there should be none) and exits.

Requirements (Debian): ffmpeg flite festival festvox-us-slt-hts espeak-ng codec2
codec2-examples pocketsphinx-testdata; numpy.
The audio helpers are copied from examples/make_calls.py (same approach).
"""

from __future__ import annotations

import argparse
import json
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
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # no __pycache__ next to the data
import calls_data as D  # noqa: E402

sys.path.insert(0, str(HERE.parent.parent / "examples"))
from make_calls import fade, normalise, trim  # noqa: E402  (the same audio helpers as the example calls)

SEED = 20250301
SR = 16000  # internal sample rate of the synthetic audio

CODEC2_RAW = Path("/usr/share/codec2/raw")
LIBRIVOX_DIR = Path("/usr/share/pocketsphinx/test/data/librivox")

# --------------------------------------------------------------------------
# Voices: key -> (engine, voice, rate parameter, description)
# (Festival's diphone voices kal_diphone/ked_diphone were tried and dropped: their
# output differs slightly from run to run, so the audio would not be reproducible.)
#   flite: rate = duration_stretch; festival: Duration_Stretch;
#   espeak-ng: (words per minute, extra gap between words in 10 ms units)
# --------------------------------------------------------------------------
VOICES = {
    "slt_hts": ("festival", "voice_cmu_us_slt_arctic_hts", 1.05, "Festival HTS cmu_us_slt_arctic_hts, US female"),
    "fl_slt": ("flite", "slt", 1.05, "Flite slt, US female"),
    "fl_rms": ("flite", "rms", 1.05, "Flite rms, US male"),
    "fl_awb": ("flite", "awb", 1.10, "Flite awb, Scottish male"),
    "fl_kal": ("flite", "kal16", 1.12, "Flite kal16, US male (diphone)"),
    "es_usf": ("espeak-ng", "en-us+f3", (135, 4), "eSpeak NG en-us+f3, US female (formant)"),
    "es_gbf": ("espeak-ng", "en-gb-x-rp+f2", (135, 4), "eSpeak NG en-gb-x-rp+f2, British female (formant)"),
    "es_usm": ("espeak-ng", "en-us", (135, 0), "eSpeak NG en-us, US male (formant)"),
}
SPEAKERS = {"A": "AGENT", "C": "CUSTOMER"}
HOLD_SECONDS = 6.0
PAUSE_RANGE = (0.3, 0.8)  # silence between turns (s)
LEAD_IN = 0.5
TAIL = 0.6
CALL_DURATION = (25.0, 50.0)

_BITEXACT = ["-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact"]
_TEL = ["-af", "highpass=f=300,lowpass=f=3400"]
# codec key -> (extension, ffmpeg args, description)
CODECS = {
    "mp3": ("mp3", ["-ar", "16000", "-c:a", "libmp3lame", "-b:a", "24k"],
            "MP3 24 kbit/s, 16 kHz"),
    "opus": ("ogg", ["-ar", "16000", "-c:a", "libopus", "-b:a", "24k", "-application", "voip"],
             "Ogg Opus 24 kbit/s from 16 kHz (decodes at 48 kHz)"),
    "flac_8k_tel": ("flac", _TEL + ["-ar", "8000", "-sample_fmt", "s16", "-c:a", "flac",
                                    "-compression_level", "8"],
                    "FLAC, 8 kHz telephone band (300-3400 Hz)"),
    "mp3_8k_tel": ("mp3", _TEL + ["-ar", "8000", "-c:a", "libmp3lame", "-b:a", "24k"],
                   "MP3 24 kbit/s, 8 kHz telephone band (300-3400 Hz)"),
    "opus_8k_tel": ("ogg", _TEL + ["-ar", "8000", "-c:a", "libopus", "-b:a", "24k",
                                   "-application", "voip"],
                    "Ogg Opus 24 kbit/s from 8 kHz telephone band (decodes at 48 kHz)"),
    "mulaw_8k_tel": ("wav", _TEL + ["-ar", "8000", "-c:a", "pcm_mulaw"],
                     "WAV G.711 mu-law, 8 kHz telephone band (300-3400 Hz)"),
    # non-call outputs
    "flac16": ("flac", ["-ar", "16000", "-sample_fmt", "s16", "-c:a", "flac",
                        "-compression_level", "8"], "FLAC, 16 kHz"),
    "flac8": ("flac", ["-ar", "8000", "-sample_fmt", "s16", "-c:a", "flac",
                       "-compression_level", "8"], "FLAC, 8 kHz"),
    "opus16": ("ogg", ["-ar", "16000", "-c:a", "libopus", "-b:a", "24k", "-application", "voip"],
               "Ogg Opus 24 kbit/s from 16 kHz (decodes at 48 kHz)"),
    "opus8": ("ogg", ["-ar", "8000", "-c:a", "libopus", "-b:a", "24k", "-application", "voip"],
              "Ogg Opus 24 kbit/s from 8 kHz (decodes at 48 kHz)"),
    "wav16": ("wav", ["-ar", "16000", "-c:a", "pcm_s16le"], "WAV PCM 16-bit, 16 kHz"),
    "wav8": ("wav", ["-ar", "8000", "-c:a", "pcm_s16le"], "WAV PCM 16-bit, 8 kHz"),
    "mp3_32": ("mp3", ["-ar", "16000", "-c:a", "libmp3lame", "-b:a", "32k"],
               "MP3 32 kbit/s, 16 kHz"),
}
# formats of the query-by-example TTS clips, cycled
TTS_CLIP_CODECS = ["wav16", "mp3_32", "opus16", "mp3_32"]


# --------------------------------------------------------------------------
# Audio helpers (after examples/make_calls.py)
# --------------------------------------------------------------------------
def _run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def read_wav(path: Path, sr: int = SR) -> np.ndarray:
    """Read a 16-bit mono WAV at ``sr``, converting through ffmpeg if needed."""
    with wave.open(str(path), "rb") as w:
        ok = w.getsampwidth() == 2 and w.getnchannels() == 1 and w.getframerate() == sr
        frames = w.readframes(w.getnframes()) if ok else None
    if not ok:
        conv = path.with_suffix(f".{sr}.wav")
        _run(["ffmpeg", "-nostdin", "-y", "-v", "error", "-i", str(path), "-ac", "1",
              "-ar", str(sr), "-c:a", "pcm_s16le", *_BITEXACT, str(conv)])
        return read_wav(conv, sr)
    return np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0


def read_raw(path: Path) -> np.ndarray:
    return np.fromfile(path, dtype="<i2").astype(np.float64) / 32768.0


def write_wav(path: Path, x: np.ndarray, sr: int = SR) -> None:
    pcm = np.round(np.clip(x, -1.0, 32767 / 32768) * 32768).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())


def synth(voice_key: str, text: str, tmp: Path, tag: str) -> np.ndarray:
    engine, voice, rate, _ = VOICES[voice_key]
    out = tmp / f"{tag}.wav"
    txt = tmp / f"{tag}.txt"
    txt.write_text(text + "\n", encoding="utf-8")
    if engine == "flite":
        _run(["flite", "-voice", voice, "--setf", f"duration_stretch={rate}",
              "-f", str(txt), "-o", str(out)])
    elif engine == "festival":
        _run(["text2wave", "-F", str(SR), "-eval", f"({voice})",
              "-eval", f"(Parameter.set 'Duration_Stretch {rate})", str(txt), "-o", str(out)])
    elif engine == "espeak-ng":
        _run(["espeak-ng", "-v", voice, "-s", str(rate[0]), "-g", str(rate[1]),
              "-f", str(txt), "-w", str(out)])
    else:  # pragma: no cover
        raise ValueError(engine)
    return read_wav(out)


def hold_music(seconds: float) -> np.ndarray:
    """Quiet two-voice sine melody (no speech)."""
    midi = lambda m: 440.0 * 2 ** ((m - 69) / 12)  # noqa: E731
    melody = [72, 74, 76, 79, 76, 74, 72, 69, 72, 74, 76, 74, 72, 69, 67, 69]
    bass = [48, 55, 45, 52]
    out = np.zeros(int(round(seconds * SR)))
    for notes, amp, decay in ((melody, 0.5, 2.5), (bass, 0.3, 0.8)):
        n_len = seconds / len(notes)
        t = np.arange(int(n_len * SR)) / SR
        env = np.minimum(1.0, t / 0.02) * np.exp(-decay * t)
        for i, m in enumerate(notes):
            a = int(round(i * n_len * SR))
            seg = amp * np.sin(2 * np.pi * midi(m) * t) * env
            b = min(len(out), a + len(seg))
            out[a:b] += seg[: b - a]
    out *= 0.12 / np.abs(out).max()
    return fade(out, 0.25)


def coloured_noise(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    w = rng.standard_normal(n)
    if kind == "white":
        return w
    spec = np.fft.rfft(w)
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    p = np.fft.irfft(spec / np.sqrt(f), n)  # 1/f power: pink
    return p / p.std()


def encode(src_wav: Path, dst: Path, codec: str) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    _run(["ffmpeg", "-nostdin", "-y", "-v", "error", "-i", str(src_wav), "-ac", "1",
          *CODECS[codec][1], *_BITEXACT, str(dst)])


def probe(path: Path) -> tuple[int, float]:
    """(sample rate the decoder reports, duration in s) of a written file."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0",
                          "-show_entries", "stream=sample_rate:format=duration",
                          "-of", "json", str(path)],
                         check=True, capture_output=True, text=True).stdout
    j = json.loads(out)
    return int(j["streams"][0]["sample_rate"]), float(j["format"]["duration"])


# --------------------------------------------------------------------------
# Calls
# --------------------------------------------------------------------------
def render_call(call: dict, tmp: Path):
    rng = random.Random(f"{SEED}:{call['name']}")
    pieces, turns, non_speech, pos = [], [], [], 0

    def add(x):
        nonlocal pos
        pieces.append(x)
        pos += len(x)

    add(np.zeros(int(LEAD_IN * SR)))
    for i, turn in enumerate(call["turns"]):
        if i > 0:
            add(np.zeros(int(round(rng.uniform(*PAUSE_RANGE) * SR))))
        if turn == D.HOLD:
            x = hold_music(HOLD_SECONDS)
            non_speech.append({"kind": "hold_music", "start": round(pos / SR, 3),
                               "end": round((pos + len(x)) / SR, 3)})
            add(x)
            continue
        spk, text = turn[0], turn[1]
        x = fade(normalise(trim(synth(call["voices"][spk], text, tmp, f"t{i:02d}"))))
        turns.append({"speaker": SPEAKERS[spk], "text": text, "start": round(pos / SR, 3),
                      "end": round((pos + len(x)) / SR, 3),
                      "key": len(turn) > 2 and turn[2] == "key"})
        add(x)
    add(np.zeros(int(TAIL * SR)))
    sig = np.concatenate(pieces)
    noise_rng = np.random.default_rng(rng.randrange(2 ** 32))
    sig = sig + noise_rng.normal(0.0, 0.00003, len(sig))  # faint line noise, ~1 LSB
    return np.clip(sig, -1.0, 1.0), turns, non_speech


def key_span(turns: list[dict]) -> tuple[float, float]:
    idx = [i for i, t in enumerate(turns) if t["key"]]
    assert idx and idx == list(range(idx[0], idx[-1] + 1)), "key turns must be consecutive"
    return turns[idx[0]]["start"], turns[idx[-1]]["end"]


def find_turn(turns: list[dict], needle: str) -> dict:
    hits = [t for t in turns if needle in t["text"]]
    assert len(hits) == 1, (needle, len(hits))
    return hits[0]


def voice_label(key: str) -> str:
    engine, voice = VOICES[key][:2]
    return f"{engine}:{voice}"


# --------------------------------------------------------------------------
# Wording check
# --------------------------------------------------------------------------
STOP = set("""a an the and or but of to for in on at by with from as is are was were be been
being it its this that these those their they them there here i me my you your we our us he
she his her him do does did not no can could would should will just so if than then very too
about after before over into out up down off only any some all one two per more most much
many what which who how when where why been get got has have had let lets wants want
someone something customer customers""".split())


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


def check_wording() -> int:
    bad = 0
    for intent, queries in D.INTENT_QUERIES.items():
        calls = [c for c in D.CALLS if c["intent"] == intent]
        words = set()
        for c in calls:
            for t in c["turns"]:
                if t != D.HOLD:
                    words |= content_words(t[1])
        for q in queries:
            shared = sorted(content_words(q) & words)
            if shared:
                bad += 1
            print(f"{intent:20s} {q!r}: shared {shared}")
    return bad


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------
def check_tools() -> None:
    need = ["ffmpeg", "ffprobe", "flite", "text2wave", "espeak-ng", "c2enc", "c2dec"]
    missing = [t for t in need if shutil.which(t) is None]
    paths = [CODEC2_RAW / "forig.raw", LIBRIVOX_DIR / "transcription"]
    missing += [str(p) for p in paths if not p.exists()]
    if missing:
        sys.exit("make_devset.py: missing " + ", ".join(missing) + "\n(apt-get install ffmpeg flite "
                 "festival festvox-us-slt-hts espeak-ng codec2 codec2-examples "
                 "pocketsphinx-testdata)")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir", nargs="?", type=Path, default=HERE)
    ap.add_argument("--check-wording", action="store_true",
                    help="print words shared by intent queries and their calls, then exit")
    args = ap.parse_args(argv)
    if args.check_wording:
        return 1 if check_wording() else 0
    check_tools()

    out: Path = args.outdir
    for sub in ("audio", "clips"):
        (out / sub).mkdir(parents=True, exist_ok=True)

    files: list[dict] = []
    queries: list[dict] = []
    call_by_name: dict[str, dict] = {}
    call_voices: dict[str, set] = {}

    with tempfile.TemporaryDirectory(prefix="make_devset_") as td:
        tdir = Path(td)
        # ---------------- calls
        for call in D.CALLS:
            tmp = tdir / call["name"]
            tmp.mkdir()
            sig, turns, non_speech = render_call(call, tmp)
            dur = len(sig) / SR
            if not CALL_DURATION[0] <= dur <= CALL_DURATION[1]:
                log(f"WARNING: {call['name']} is {dur:.1f} s")
            ext, _, desc = CODECS[call["codec"]]
            rel = f"audio/{call['name']}.{ext}"
            write_wav(tmp / "mix.wav", sig)
            encode(tmp / "mix.wav", out / rel, call["codec"])
            rate, _ = probe(out / rel)
            entry = {
                "file": rel, "intent": call["intent"], "kind": "call",
                "duration": round(dur, 3), "sample_rate": rate, "codec": desc,
                "voices": {SPEAKERS[s]: voice_label(v) for s, v in call["voices"].items()},
                "key_span": list(key_span(turns)),
                "turns": [{k: t[k] for k in ("speaker", "text", "start", "end")} for t in turns],
            }
            if non_speech:
                entry["non_speech"] = non_speech
            files.append(entry)
            call_by_name[call["name"]] = {"entry": entry, "turns": turns}
            call_voices[call["name"]] = set(call["voices"].values())
            log(f"{rel}: {dur:.1f} s, {len(turns)} turns")

        # ---------------- human distractors: LibriVox (16 kHz)
        lines = (LIBRIVOX_DIR / "transcription").read_text().splitlines()
        trans = {}
        for ln in lines:
            m = re.match(r"<s>\s*(.*?)\s*</s>\s*\((\S+)\)", ln)
            if m:
                trans[m.group(2)] = m.group(1)
        for num, codec in D.LIBRIVOX:
            stem_ = f"sense_and_sensibility_01_austen_64kb-{num}"
            rel = f"audio/librivox-{num}.{CODECS[codec][0]}"
            encode(LIBRIVOX_DIR / f"{stem_}.wav", out / rel, codec)
            rate, dur = probe(out / rel)
            with wave.open(str(LIBRIVOX_DIR / f"{stem_}.wav")) as w:
                dur = w.getnframes() / w.getframerate()
            files.append({
                "file": rel, "intent": None, "kind": "distractor", "duration": round(dur, 3),
                "sample_rate": rate, "codec": CODECS[codec][2],
                "voices": {"READER": "human (LibriVox volunteer)"}, "turns": [],
                "transcript": trans[stem_],
                "source": f"Debian pocketsphinx-testdata: {LIBRIVOX_DIR}/{stem_}.wav "
                          "(LibriVox, Jane Austen, Sense and Sensibility)",
                "licence": "public domain (LibriVox recording of a public-domain text)",
            })
            log(f"{rel}: {dur:.1f} s")

        # ---------------- codec2-examples originals (8 kHz), distractors + QbE targets
        targets = {name for name, _, _ in D.QBE_CODEC}
        orig_rel = {}
        for name, transcript in D.CODEC_ORIGINALS.items():
            x = read_raw(CODEC2_RAW / f"{name}.raw")
            wav = tdir / f"orig_{name}.wav"
            write_wav(wav, x, 8000)
            codec = "flac8" if len(x) / 8000 <= 6.0 else "opus8"
            rel = f"audio/codec2-{name.replace('_', '-')}.{CODECS[codec][0]}"
            encode(wav, out / rel, codec)
            rate, _ = probe(out / rel)
            orig_rel[name] = rel
            files.append({
                "file": rel, "intent": None,
                "kind": "codec-original" if name in targets else "distractor",
                "duration": round(len(x) / 8000, 3), "sample_rate": rate,
                "codec": CODECS[codec][2], "voices": {"SPEAKER": "human"}, "turns": [],
                "transcript": transcript + " (approximate)",
                "source": f"Debian codec2-examples: {CODEC2_RAW}/{name}.raw (8 kHz s16le)",
                "licence": "LGPL-2.1 (codec2, (c) David Rowe)",
            })
            log(f"{rel}: {len(x) / 8000:.1f} s")

        # ---------------- text queries
        qn = 0
        for intent, qs in D.INTENT_QUERIES.items():
            rel_calls = [c for c in D.CALLS if c["intent"] == intent]
            for q in qs:
                qn += 1
                queries.append({
                    "id": f"t{qn:02d}", "type": "text", "kind": "intent", "intent": intent,
                    "query": q,
                    "relevant": [{"file": call_by_name[c["name"]]["entry"]["file"],
                                  "start": call_by_name[c["name"]]["entry"]["key_span"][0],
                                  "end": call_by_name[c["name"]]["entry"]["key_span"][1]}
                                 for c in rel_calls],
                })
        for call in D.CALLS:
            for q, needle, ident in call.get("lexical", []):
                qn += 1
                t = find_turn(call_by_name[call["name"]]["turns"], needle)
                queries.append({
                    "id": f"t{qn:02d}", "type": "text", "kind": "lexical",
                    "intent": call["intent"], "query": q, "identifier": ident,
                    "relevant": [{"file": call_by_name[call["name"]]["entry"]["file"],
                                  "start": t["start"], "end": t["end"]}],
                })

        # ---------------- QbE: TTS re-spoken sentence + noise
        an = 0
        for name, needle, voice in D.QBE_TTS:
            an += 1
            qid = f"a{an:02d}"
            rng = np.random.default_rng([SEED, 7, an])
            t = find_turn(call_by_name[name]["turns"], needle)
            assert voice not in call_voices[name], (qid, voice)
            tmp = tdir / qid
            tmp.mkdir()
            speech = fade(normalise(trim(synth(voice, t["text"], tmp, "s"))))
            lead = int(rng.uniform(0.25, 0.5) * SR)
            tail = int(rng.uniform(0.25, 0.5) * SR)
            short = int(2.05 * SR) - (lead + len(speech) + tail)
            if short > 0:  # pad to at least 2 s
                lead += short // 2
                tail += short - short // 2
            extra = (lead + len(speech) + tail) - int(5.9 * SR)
            if extra > 0:  # keep under 6 s: shorten the padding (never below 0.1 s)
                lead = max(int(0.1 * SR), lead - extra // 2)
                tail = max(int(0.1 * SR), tail - (extra - extra // 2))
            x = np.concatenate([np.zeros(lead), speech, np.zeros(tail)])
            kind = "pink" if an % 2 else "white"
            snr = round(float(rng.uniform(15.0, 20.0)), 1)
            noise = coloured_noise(len(x), kind, rng)
            s_rms = np.sqrt(np.mean(speech ** 2))
            x = x + noise * s_rms / 10 ** (snr / 20)
            if np.abs(x).max() > 0.95:
                x *= 0.95 / np.abs(x).max()
            dur = len(x) / SR
            if not 2.0 <= dur <= 6.0:
                log(f"WARNING: clip {qid} is {dur:.2f} s")
            codec = TTS_CLIP_CODECS[(an - 1) % len(TTS_CLIP_CODECS)]
            rel = f"clips/{qid}.{CODECS[codec][0]}"
            write_wav(tmp / "clip.wav", x)
            encode(tmp / "clip.wav", out / rel, codec)
            queries.append({
                "id": qid, "type": "audio", "kind": "qbe-tts", "clip": rel,
                "clip_text": t["text"], "clip_voice": voice_label(voice),
                "clip_duration": round(dur, 3), "clip_codec": CODECS[codec][2],
                "noise": kind, "snr_db": snr,
                "relevant": [{"file": call_by_name[name]["entry"]["file"],
                              "start": t["start"], "end": t["end"]}],
            })
            log(f"{rel}: {dur:.1f} s, {voice}, {kind} noise {snr} dB")

        # ---------------- QbE: codec2 coded clip -> original recording
        for name, (how, what), span in D.QBE_CODEC:
            an += 1
            qid = f"a{an:02d}"
            if how == "file":
                coded = read_raw(CODEC2_RAW / f"{what}.raw")
                desc = f"{what}.raw as shipped in Debian codec2-examples (coded version of {name}.raw)"
            else:
                bit, dec = tdir / f"{qid}.bit", tdir / f"{qid}.raw"
                _run(["c2enc", what, str(CODEC2_RAW / f"{name}.raw"), str(bit)])
                _run(["c2dec", what, str(bit), str(dec)])
                coded = read_raw(dec)
                desc = f"Codec 2 mode {what}: c2enc {what} {name}.raw | c2dec {what} (codec2 1.0.5)"
            if span:
                coded = coded[int(span[0] * 8000): int(span[1] * 8000)]
            short = int(2.05 * 8000) - len(coded)
            if short > 0:
                coded = np.concatenate([np.zeros(short // 2), coded, np.zeros(short - short // 2)])
            dur = len(coded) / 8000
            assert 2.0 <= dur <= 6.0, (qid, dur)
            if how == "file":  # the coded files shipped with codec2: WAV, as they are
                rel, ccodec = f"clips/{qid}.wav", "wav8"
                write_wav(out / rel, coded, 8000)
            else:  # c2dec output (lossless FLAC keeps the decoded samples exactly)
                rel, ccodec = f"clips/{qid}.flac", "flac8"
                write_wav(tdir / f"{qid}.wav", coded, 8000)
                encode(tdir / f"{qid}.wav", out / rel, ccodec)
            r = {"file": orig_rel[name]}
            if span:
                r.update(start=span[0], end=span[1])
            queries.append({
                "id": qid, "type": "audio", "kind": "qbe-codec", "clip": rel,
                "clip_duration": round(dur, 3), "clip_codec": CODECS[ccodec][2],
                "codec2": desc, "relevant": [r],
            })
            log(f"{rel}: {dur:.1f} s, {desc}")

    qrels = {
        "name": "speechsearch-devset",
        "version": 1,
        "generator": "benchmarks/devset/make_devset.py",
        "seed": SEED,
        "note": "paths are relative to this file; times are seconds from the start of the "
                "file; turn text is exactly what the TTS voice was given; an intent query's "
                "span is the call's key turn (where the intent is stated), a lexical query's "
                "span is the turn that says the name/number/code, an audio query's span is "
                "the re-spoken turn (qbe-tts) or the coded part of the original (qbe-codec)",
        "files": files,
        "queries": queries,
    }
    (out / "qrels.json").write_text(json.dumps(qrels, indent=1, ensure_ascii=False) + "\n",
                                    encoding="utf-8")
    # files left over from an older version of the set: delete them in this folder,
    # only warn elsewhere
    made = {f["file"] for f in files} | {q["clip"] for q in queries if "clip" in q}
    for sub in ("audio", "clips"):
        for p in sorted((out / sub).iterdir()):
            if f"{sub}/{p.name}" not in made:
                if out.resolve() == HERE:
                    p.unlink()
                    log(f"deleted stale {sub}/{p.name}")
                else:
                    log(f"WARNING: {sub}/{p.name} is not part of the dev set")
    log(f"wrote {out / 'qrels.json'}: {len(files)} files, {len(queries)} queries")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
