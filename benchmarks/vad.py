"""Voice activity detection: how much of the spoken time reaches Whisper, and how much else does?

Ground truth is the scripted turn times in a qrels.json ("files", each with "file", "turns"
[{speaker, text, start, end}], "codec"; a held-out set may add per-turn "level_db" and per-file
"band"). Each recording is decoded to 16 kHz mono by the library (speechsearch.audio) and run
through the library's own VAD path, speechsearch.segment.iter_speech, in 30 s blocks as ingest
feeds it; the regions it keeps are what Whisper would see.

  recall      share of scripted turn time inside kept regions (10 ms frames)
  non-speech  kept seconds outside every turn / all seconds outside every turn
  sent        kept seconds / audio seconds (what transcription costs)
  missed      turns with less than half of their time kept (a turn Whisper never hears)

broken down by band (telephone: a "band" of "tel*", or a codec at 8 kHz or "telephone"; else
wide), by turn level (dBFS; the dev set brings every turn to -20) and by background noise.

--tuning builds the TUNING variant of the dev set in memory (nothing is written): every dev
call is re-mixed from its decoded audio with one side (AGENT on even calls, CUSTOMER on odd)
scaled by 0, -12 and -18 dB inside that speaker's turn spans; each wide-band call is also
passed through a telephone line (300-3400 Hz band-pass, 8 kHz and back); and half the variants,
alternating over calls and levels, get pink background noise at -50 dBFS (30 dB under a normal
turn). Settings are chosen on this variant only; other sets (the held-out one) are for reporting.

The grid: threshold {0.5, 0.35, 0.25, 0.2} x speech_pad_ms {200, 400} x min_silence_ms
{700, 1000, 1500} x normalize {off, on}. Silero's speech probabilities depend only on the audio
the VAD sees, so they are computed once per recording and normaliser and shared by the grid.

    python benchmarks/vad.py --tuning                      # the grid on the tuning variant (~3 min)
    python benchmarks/vad.py --qrels benchmarks/heldout/qrels.json --settings old,new
    options: --json OUT --md OUT (defaults under benchmarks/results/)
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import re
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from speechsearch.audio import SAMPLE_RATE, decode  # noqa: E402
from speechsearch.options import VadOptions  # noqa: E402
from speechsearch.segment import iter_speech  # noqa: E402

FRAME = 0.01  # s, the scoring grid
DEVSET = ROOT / "benchmarks" / "devset" / "qrels.json"
RESULTS = ROOT / "benchmarks" / "results"

OLD = {"threshold": 0.5, "speech_pad_ms": 200, "min_silence_ms": 700, "normalize": False}
GRID = {
    "threshold": [0.5, 0.35, 0.25, 0.2],
    "speech_pad_ms": [200, 400],
    "min_silence_ms": [700, 1000, 1500],
    "normalize": [False, True],
}


# ------------------------------------------------------------------ recordings ---------------
@dataclass
class Turn:
    start: float
    end: float
    speaker: str
    level: float  # dBFS


@dataclass
class Recording:
    name: str
    audio: np.ndarray  # 16 kHz mono float32
    turns: List[Turn]
    band: str  # "tel" or "wide"
    noise: str = "none"
    non_speech: List[Tuple[float, float]] = field(default_factory=list)  # known non-speech (music)


def band_of(entry: dict) -> str:
    band = str(entry.get("band") or "").lower()
    if band:
        return "tel" if band.startswith("tel") else "wide"
    codec = str(entry.get("codec") or "").lower()  # "from 8 kHz (decodes at 48 kHz)" is telephone
    return "tel" if (re.search(r"(?<!\d)8 khz", codec) or "tel" in codec) else "wide"


def level_bin(db: float) -> str:
    """Turn levels in three bins: normal (the dev set's -20 dBFS), 12 and 18 dB under it."""
    return "-20" if db > -26 else ("-32" if db > -35 else "-38")


def load_set(qrels: Path) -> Iterator[Recording]:
    """The recordings of a qrels file that have scripted turns, decoded one at a time."""
    data = json.loads(qrels.read_text())
    for entry in data["files"]:
        if not entry.get("turns"):
            continue
        path = (qrels.parent / entry["file"]).resolve()
        turns = [Turn(float(t["start"]), float(t["end"]), str(t.get("speaker", "")),
                      float(t.get("level_db", -20.0))) for t in entry["turns"]]
        yield Recording(entry["file"], decode(str(path)), turns, band_of(entry),
                        _noise_name(entry),
                        [(float(n["start"]), float(n["end"])) for n in entry.get("non_speech", [])])


def _noise_name(entry: dict) -> str:
    noise = entry.get("line_noise") or entry.get("noise")
    if isinstance(noise, dict):
        return f"{noise.get('kind', 'noise')}{float(noise.get('level_db', 0)):g}"
    return str(noise or "none")


def telephone(audio: np.ndarray) -> np.ndarray:
    """300-3400 Hz band-pass (4th-order Butterworth), down to 8 kHz and back up to 16 kHz."""
    from scipy.signal import butter, resample_poly, sosfilt

    sos = butter(4, [300, 3400], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    narrow = resample_poly(sosfilt(sos, audio), 1, 2)
    return resample_poly(narrow, 2, 1)[: len(audio)].astype(np.float32)


def pink(n: int, rms_db: float, seed: int) -> np.ndarray:
    w = np.random.default_rng(seed).standard_normal(n)
    spec = np.fft.rfft(w)
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    p = np.fft.irfft(spec / np.sqrt(f), n)
    return (p / p.std() * 10 ** (rms_db / 20)).astype(np.float32)


LEVELS = (0.0, -12.0, -18.0)
NOISE_DB = -50.0


def tuning_variants(qrels: Path = DEVSET) -> Iterator[Recording]:
    """The dev calls re-mixed with one side quieter, on a phone line and in noise (see above)."""
    calls = [r for r in load_set(qrels)]
    for ci, rec in enumerate(calls):
        side = "AGENT" if ci % 2 == 0 else "CUSTOMER"
        bands = [rec.band] if rec.band == "tel" else ["wide", "tel"]
        for li, gain_db in enumerate(LEVELS):
            base = rec.audio.copy()
            turns = []
            for t in rec.turns:
                quiet = t.speaker == side
                if quiet and gain_db:
                    a, b = int(round(t.start * SAMPLE_RATE)), int(round(t.end * SAMPLE_RATE))
                    base[a:b] *= np.float32(10 ** (gain_db / 20))
                turns.append(Turn(t.start, t.end, t.speaker, t.level + (gain_db if quiet else 0.0)))
            for band in bands:
                audio = telephone(base) if band == "tel" and rec.band == "wide" else base
                noisy = (ci + li) % 2 == 1
                if noisy:
                    audio = audio + pink(len(audio), NOISE_DB, ci * 10 + li)
                name = f"{rec.name}|{side.lower()}{int(gain_db):+d}dB|{band}|{'noise' if noisy else 'clean'}"
                yield Recording(name, np.clip(audio, -1, 1).astype(np.float32), turns, band,
                                "pink-50" if noisy else "none", rec.non_speech)


def write_variants(out: Path, recordings: Iterator[Recording], qrels: Path = DEVSET) -> Path:
    """Write recordings as 16-bit WAV files plus a qrels.json under `out` (outside the repository:
    for benchmarks/vad_wer.py on the tuning variant). Returns the qrels path."""
    import wave

    texts = {e["file"]: [t["text"] for t in e["turns"]]
             for e in json.loads(qrels.read_text())["files"] if e.get("turns")}
    (out / "audio").mkdir(parents=True, exist_ok=True)
    files = []
    for rec in recordings:
        name = "audio/" + re.sub(r"[^A-Za-z0-9+-]+", "_", rec.name.replace("audio/", "")) + ".wav"
        with wave.open(str(out / name), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(SAMPLE_RATE)
            w.writeframes((np.clip(rec.audio, -1, 1) * 32767).astype("<i2").tobytes())
        files.append({"file": name, "codec": "WAV PCM 16 kHz", "band": "telephone" if rec.band == "tel" else "wide",
                      "line_noise": rec.noise,
                      "duration": round(len(rec.audio) / SAMPLE_RATE, 3),
                      "turns": [{"speaker": t.speaker, "text": x, "start": t.start, "end": t.end, "level_db": t.level}
                                for t, x in zip(rec.turns, texts[rec.name.split("|")[0]])]})
    path = out / "qrels.json"
    path.write_text(json.dumps({"name": "devset tuning variant", "files": files}, indent=1))
    return path


# ------------------------------------------------------------------ the VAD ------------------
class _CachedVad:
    """Silero's probabilities for audio it has seen, so the grid shares one pass per recording."""

    def __init__(self, model):
        self.model = model
        self.cache: Dict[bytes, np.ndarray] = {}

    def __call__(self, audio, *args, **kwargs):
        key = hashlib.blake2b(np.ascontiguousarray(audio).tobytes(), digest_size=16).digest()
        if key not in self.cache:
            self.cache[key] = self.model(audio, *args, **kwargs)
        return self.cache[key]


def install_cache() -> _CachedVad:
    import faster_whisper.vad as fwvad

    cached = _CachedVad(fwvad.get_vad_model())
    fwvad.get_vad_model = lambda: cached
    return cached


def detect(audio: np.ndarray, options: VadOptions) -> List[Tuple[int, int]]:
    """Regions (file samples) the library would send to Whisper: iter_speech in 30 s blocks."""
    step = 30 * SAMPLE_RATE
    blocks = (audio[i: i + step] for i in range(0, len(audio), step))
    return [(start, start + length) for chunk in iter_speech(blocks, options)
            for _, start, length in chunk.pieces]


# ------------------------------------------------------------------ scoring ------------------
def frames_of(spans, n: int, scale: float) -> np.ndarray:
    mask = np.zeros(n, bool)
    for s, e in spans:
        a, b = int(round(s * scale)), int(round(e * scale))
        mask[max(a, 0): min(b, n)] = True
    return mask


@dataclass
class Tally:
    """Seconds of speech and non-speech, and how much of each was kept, for one group."""

    speech: float = 0.0
    speech_kept: float = 0.0
    other: float = 0.0
    other_kept: float = 0.0
    turns: int = 0
    missed: int = 0
    audio: float = 0.0
    sent: float = 0.0

    def add(self, o: "Tally") -> None:
        for k in asdict(self):
            setattr(self, k, getattr(self, k) + getattr(o, k))

    def summary(self) -> dict:
        return {"recall": round(self.speech_kept / self.speech, 4) if self.speech else None,
                "non_speech": round(self.other_kept / self.other, 4) if self.other else None,
                "sent": round(self.sent / self.audio, 4) if self.audio else None,
                "speech_s": round(self.speech, 1), "kept_speech_s": round(self.speech_kept, 1),
                "non_speech_s": round(self.other, 1), "kept_non_speech_s": round(self.other_kept, 1),
                "sent_s": round(self.sent, 1), "audio_s": round(self.audio, 1),
                "turns": self.turns, "missed_turns": self.missed}


def score(rec: Recording, regions: List[Tuple[int, int]]) -> Dict[str, Tally]:
    """Tallies for the groups this recording falls in: all, band, level, noise, band x level."""
    n = int(np.ceil(len(rec.audio) / SAMPLE_RATE / FRAME))
    kept = frames_of(regions, n, 1 / (SAMPLE_RATE * FRAME))
    speech = frames_of([(t.start, t.end) for t in rec.turns], n, 1 / FRAME)
    other = ~speech
    whole = Tally(other=other.sum() * FRAME, other_kept=(kept & other).sum() * FRAME,
                  audio=len(rec.audio) / SAMPLE_RATE, sent=sum(e - s for s, e in regions) / SAMPLE_RATE)
    groups: Dict[str, Tally] = {}

    def into(key: str, t: Tally) -> None:
        groups.setdefault(key, Tally()).add(t)

    for key in ("all", f"band={rec.band}", f"noise={rec.noise}"):
        into(key, whole)
    if rec.non_speech:
        music = frames_of(rec.non_speech, n, 1 / FRAME)
        into("music", Tally(other=music.sum() * FRAME, other_kept=(kept & music).sum() * FRAME))
    for t in rec.turns:
        m = frames_of([(t.start, t.end)], n, 1 / FRAME)
        total, got = m.sum() * FRAME, (kept & m).sum() * FRAME
        tt = Tally(speech=total, speech_kept=got, turns=1, missed=int(got < 0.5 * total))
        lv = level_bin(t.level)
        for key in ("all", f"band={rec.band}", f"level={lv}", f"noise={rec.noise}", f"band={rec.band},level={lv}"):
            into(key, tt)
    return groups


def setting_name(s: dict) -> str:
    return (f"th{s['threshold']:g}/pad{s['speech_pad_ms']}/sil{s['min_silence_ms']}"
            f"/{'norm' if s['normalize'] else 'raw'}")


def run(recordings: Iterator[Recording], settings: Sequence[dict]) -> Tuple[Dict[str, Dict[str, dict]], dict]:
    install_cache()
    totals: Dict[str, Dict[str, Tally]] = {setting_name(s): {} for s in settings}
    per_file: Dict[str, Dict[str, dict]] = {setting_name(s): {} for s in settings}
    count, seconds, t0 = 0, 0.0, time.time()
    for rec in recordings:
        count += 1
        seconds += len(rec.audio) / SAMPLE_RATE
        for s in settings:
            name = setting_name(s)
            groups = score(rec, detect(rec.audio, replace(VadOptions(), **s)))
            for key, t in groups.items():
                totals[name].setdefault(key, Tally()).add(t)
            per_file[name][rec.name] = groups["all"].summary()
    out = {name: {k: t.summary() for k, t in sorted(g.items())} for name, g in totals.items()}
    for name, files in per_file.items():
        out[name]["all"]["worst_file_recall"] = min(f["recall"] for f in files.values())
    meta = {"recordings": count, "audio_seconds": round(seconds, 1), "wall_seconds": round(time.time() - t0, 1)}
    return out, {"meta": meta, "per_file": per_file}


# ------------------------------------------------------------------ choosing -----------------
def choose(results: Dict[str, Dict[str, dict]], settings: Sequence[dict], min_recall: float = 0.98,
           min_cell: float = 0.95) -> Optional[dict]:
    """The setting with the least non-speech among those that keep >= `min_recall` of all spoken
    time and >= `min_cell` in every band x level cell, and lose no turn (none under half kept); ties: fewer seconds sent, then the smaller
    change from the old defaults (higher threshold, smaller pad, shorter silence, no normaliser)."""
    ok = []
    for s in settings:
        r = results[setting_name(s)]
        cells = [v["recall"] for k, v in r.items() if k.startswith("band=") and ",level=" in k]
        if r["all"]["recall"] >= min_recall and min(cells) >= min_cell and r["all"]["missed_turns"] == 0:
            ok.append(s)
    if not ok:
        return None
    return min(ok, key=lambda s: (round(results[setting_name(s)]["all"]["non_speech"], 3),
                                  results[setting_name(s)]["all"]["sent"], -s["threshold"],
                                  s["speech_pad_ms"], s["min_silence_ms"], s["normalize"]))


# ------------------------------------------------------------------ report -------------------
def table(results: Dict[str, Dict[str, dict]], settings: Sequence[dict]) -> str:
    cols = sorted({k for r in results.values() for k in r if k.startswith("band=") and ",level=" in k},
                  key=lambda k: (k.split(",")[0], -int(k.split("=")[-1])))
    noise = sorted({k for r in results.values() for k in r if k.startswith("noise=")})
    head = (["setting", "recall", "speech lost s", "worst file", "non-speech", "sent", "missed turns"]
            + [c.replace("band=", "").replace(",level=", " ") for c in cols]
            + [f"non-sp {k[6:]}" for k in noise] + (["music kept"] if any("music" in r for r in results.values()) else []))
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in settings:
        r = results[setting_name(s)]
        row = [setting_name(s), f"{r['all']['recall']:.4f}",
               f"{r['all']['speech_s'] - r['all']['kept_speech_s']:.1f}", f"{r['all']['worst_file_recall']:.3f}",
               f"{r['all']['non_speech']:.3f}",
               f"{r['all']['sent']:.3f}", f"{r['all']['missed_turns']}/{r['all']['turns']}"]
        row += [f"{r[c]['recall']:.3f}" if c in r else "" for c in cols]
        row += [f"{r[k]['non_speech']:.3f}" if k in r and r[k]["non_speech"] is not None else "" for k in noise]
        if "music kept" in head:
            row.append(f"{r['music']['non_speech']:.2f}" if "music" in r else "")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def parse_settings(spec: str) -> List[dict]:
    if spec == "grid":
        keys = list(GRID)
        return [dict(zip(keys, v)) for v in itertools.product(*(GRID[k] for k in keys))]
    out = []
    for item in spec.split(","):
        if item == "old":
            out.append(dict(OLD))
        elif item == "new":
            d = VadOptions()
            out.append({"threshold": d.threshold, "speech_pad_ms": d.speech_pad_ms,
                        "min_silence_ms": d.min_silence_ms, "normalize": d.normalize})
        else:  # th0.35/pad400/sil1000/norm
            try:
                th, pad, sil, norm = item.split("/")
                out.append({"threshold": float(th[2:]), "speech_pad_ms": int(pad[3:]),
                            "min_silence_ms": int(sil[3:]), "normalize": norm == "norm"})
            except ValueError:
                raise SystemExit(f"unknown setting {item!r}; use grid, old, new or e.g. "
                                 "th0.35/pad400/sil1000/norm") from None
    seen, unique = set(), []
    for s in out:
        if setting_name(s) not in seen:
            seen.add(setting_name(s))
            unique.append(s)
    return unique


def _gain_of(name: str) -> float:
    """The attenuation in a tuning variant's name, e.g. "audio/x.mp3|agent-18dB|tel|clean" -> -18."""
    return float(re.search(r"\|[a-z]+([+-]\d+)dB\|", name).group(1))


def main(argv: Optional[Sequence[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--qrels", type=Path, default=DEVSET)
    ap.add_argument("--tuning", action="store_true", help="the in-memory tuning variant of --qrels")
    ap.add_argument("--settings", default="grid",
                    help="grid, or a comma list of: old, new, th0.35/pad400/sil1000/norm")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--md", type=Path, default=None)
    ap.add_argument("--write", type=Path, default=None, metavar="DIR",
                    help="with --tuning: write the variants (WAV + qrels.json) to DIR and stop")
    ap.add_argument("--levels", default=None, help="with --write: only these attenuations, e.g. -18")
    args = ap.parse_args(argv)

    if args.write is not None:
        keep = None if args.levels is None else {float(x) for x in args.levels.split(",")}
        recs = (r for r in tuning_variants(args.qrels) if keep is None or _gain_of(r.name) in keep)
        print(write_variants(args.write, recs, args.qrels))
        return
    settings = parse_settings(args.settings)
    recs = tuning_variants(args.qrels) if args.tuning else load_set(args.qrels)
    results, extra = run(recs, settings)
    label = f"{args.qrels.relative_to(ROOT) if args.qrels.is_absolute() else args.qrels}" + (" (tuning variant)" if args.tuning else "")
    md = [f"VAD on {label}: {extra['meta']['recordings']} recordings, {extra['meta']['audio_seconds']:.0f} s of "
          f"audio, {extra['meta']['wall_seconds']:.0f} s wall", "", table(results, settings)]
    pick = choose(results, settings) if args.tuning else None
    if args.tuning:
        md += ["", "chosen (recall >= 0.98 overall and >= 0.95 in every band x level cell, no "
                   f"turn missed, least non-speech): {setting_name(pick) if pick else 'none qualifies'}"]
    text = "\n".join(md)
    print(text)
    stem = "vad-tuning" if args.tuning else f"vad-{args.qrels.parent.name}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (args.md or RESULTS / f"{stem}.md").write_text(text + "\n")
    (args.json or RESULTS / f"{stem}.json").write_text(json.dumps(
        {"qrels": str(args.qrels), "tuning": args.tuning, "settings": settings, "chosen": pick,
         "results": results, **extra}, indent=1))


if __name__ == "__main__":
    main()
