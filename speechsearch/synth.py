"""Offline speech synthesis and channel augmentation: other voices saying a call's sentences.

`tune` teaches the acoustic model that the same words said by another voice, over another line,
are the same: each sampled sentence of the index is spoken again by an offline synthesiser
(`engines`: espeak-ng, flite and festival, whichever are installed) with a drawn voice, pitch and
speed, and sent through a drawn channel (`augment`: noise at 10-20 dB SNR, the 8 kHz telephone
band, a lossy codec, speed +-7 %). Nothing here reaches a network, and every draw comes from the
`random.Random` it is given, so a seed gives the same voices and channels.

ffmpeg does the resampling, filtering and coding (it is already needed to decode audio); the
noise is added in numpy.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .audio import FFMPEG, SAMPLE_RATE, run_ffmpeg
from .errors import AudioError, MissingToolError

__all__ = ["Voice", "VOICES", "engines", "voices", "speak", "augment", "revoice", "Channel"]


@dataclass(frozen=True)
class Voice:
    """One synthesiser voice: `engine` (a program on PATH) and its voice `name`."""

    engine: str
    name: str

    def __str__(self) -> str:
        return f"{self.engine}:{self.name}"


# Voices of the Debian packages espeak-ng, flite and festival + festvox-us-slt-hts. An engine
# missing from PATH is skipped; a voice missing from an installed engine fails at `speak`.
VOICES: Tuple[Voice, ...] = (
    Voice("espeak-ng", "en-us"), Voice("espeak-ng", "en-us+f3"), Voice("espeak-ng", "en-us+m3"),
    Voice("espeak-ng", "en-gb-x-rp+f2"), Voice("espeak-ng", "en-gb-scotland"), Voice("espeak-ng", "en-029+m1"),
    Voice("espeak-ng", "en-us+klatt4"),
    Voice("flite", "slt"), Voice("flite", "rms"), Voice("flite", "awb"), Voice("flite", "kal16"),
    Voice("festival", "voice_cmu_us_slt_arctic_hts"),
)
_PROGRAM = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "text2wave"}
_TIMEOUT = 60.0


def engines() -> List[str]:
    """The synthesisers installed here, of "espeak-ng", "flite" and "festival"."""
    return [e for e, program in _PROGRAM.items() if shutil.which(program)]


def voices(only: Optional[Sequence[str]] = None) -> List[Voice]:
    """The voices of the installed engines (of those named in `only`, engine names or
    "engine:voice" strings, when given)."""
    have = set(engines())
    chosen = [v for v in VOICES if v.engine in have]
    if only is not None:
        wanted = {str(x) for x in only}
        chosen = [v for v in chosen if v.engine in wanted or str(v) in wanted]
    return chosen


def no_engine_message() -> str:
    return ("no offline speech synthesiser is installed, so the acoustic model cannot be tuned: "
            "install one of them, e.g. `apt-get install espeak-ng flite` (Debian)")


def _run(cmd: List[str], what: str) -> None:
    try:
        done = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL, timeout=_TIMEOUT)
    except FileNotFoundError:
        raise MissingToolError(f"{cmd[0]} is not installed; {no_engine_message()}") from None
    except subprocess.TimeoutExpired:
        raise AudioError(what, f"{cmd[0]} took over {_TIMEOUT:.0f} s") from None
    if done.returncode != 0:
        raise AudioError(what, f"{cmd[0]} failed: {done.stderr.decode(errors='replace').strip()[-300:]}")


def speak(text: str, voice: Voice, pitch: float = 0.0, tempo: float = 1.0) -> np.ndarray:
    """`text` said by `voice`, `pitch` semitones up (down when negative) and `tempo` times as fast:
    16 kHz mono float32."""
    what = f"{voice}: {text[:40]!r}"
    with tempfile.TemporaryDirectory(prefix="speechsearch-tts-") as tmp:
        txt, wav = os.path.join(tmp, "t.txt"), os.path.join(tmp, "t.wav")
        with open(txt, "w", encoding="utf-8") as f:
            f.write(text.strip() + "\n")
        if voice.engine == "espeak-ng":
            _run(["espeak-ng", "-v", voice.name, "-s", "155", "-w", wav, "-f", txt], what)
        elif voice.engine == "flite":
            _run(["flite", "-voice", voice.name, "-f", txt, "-o", wav], what)
        elif voice.engine == "festival":
            _run(["text2wave", "-F", str(SAMPLE_RATE), "-eval", f"({voice.name})", txt, "-o", wav], what)
        else:
            raise MissingToolError(f"unknown synthesiser {voice.engine!r}; choose one of {', '.join(_PROGRAM)}")
        filters = []
        if pitch:
            rate = 2.0 ** (pitch / 12.0)
            filters += [f"asetrate={SAMPLE_RATE}*{rate:.5f}", f"aresample={SAMPLE_RATE}", f"atempo={1 / rate:.5f}"]
        if tempo != 1.0:
            filters.append(f"atempo={tempo:.4f}")
        return trim(_pcm(wav, filters, what))


def trim(audio: np.ndarray, floor_db: float = -40.0, keep: float = 0.1) -> np.ndarray:
    """`audio` without the silence before and after the speech (20 ms frames more than
    `floor_db` below the loudest), `keep` seconds of margin left on each side."""
    hop = SAMPLE_RATE // 50
    n = len(audio) // hop
    if n < 3:
        return audio
    rms = np.sqrt(np.mean(audio[:n * hop].reshape(n, hop) ** 2, axis=1)) + 1e-9
    loud = np.flatnonzero(20 * np.log10(rms / rms.max()) > floor_db)
    margin = int(keep * SAMPLE_RATE)
    return audio[max(0, loud[0] * hop - margin):min(len(audio), (loud[-1] + 1) * hop + margin)]


def _pcm(src: str, filters: List[str], what: str, data: Optional[bytes] = None) -> np.ndarray:
    cmd = [*FFMPEG, "-i", "pipe:0" if data is not None else src, "-vn", "-ac", "1"]
    cmd += (["-af", ",".join(filters)] if filters else []) + ["-ar", str(SAMPLE_RATE), "-f", "s16le", "-"]
    done = run_ffmpeg(cmd, data)
    if done.returncode != 0:
        raise AudioError(what, f"ffmpeg failed: {done.stderr.decode(errors='replace').strip()[-300:]}")
    return np.frombuffer(done.stdout, np.int16).astype(np.float32) / 32768.0


def _pcm_bytes(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def _through(audio: np.ndarray, before: List[str], encode: List[str], what: str) -> np.ndarray:
    """`audio` filtered by `before` and coded with the ffmpeg output options `encode` (then
    decoded again), in one ffmpeg run each way."""
    raw = [*FFMPEG, "-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", "1", "-i", "pipe:0"]
    cmd = raw + (["-af", ",".join(before)] if before else []) + encode + ["-"]
    done = run_ffmpeg(cmd, _pcm_bytes(audio))
    if done.returncode != 0:
        raise AudioError(what, f"ffmpeg failed: {done.stderr.decode(errors='replace').strip()[-300:]}")
    return _pcm("", [], what, done.stdout)


@dataclass(frozen=True)
class Channel:
    """One drawn channel: noise `colour` at `snr_db` (None: no noise), `band` "wide" or
    "telephone", `codec` (None, "mp3", "opus", "gsm") and `speed`."""

    snr_db: Optional[float]
    colour: str
    band: str
    codec: Optional[str]
    speed: float

    def __str__(self) -> str:
        noise = f"{self.colour} {self.snr_db:.0f} dB" if self.snr_db is not None else "clean"
        return f"{noise}, {self.band}, {self.codec or 'pcm'}, x{self.speed:.2f}"


def draw_channel(rng: random.Random) -> Channel:
    """A channel as `tune` draws them: noise at 10-20 dB SNR on 3 in 4, the telephone band on 1 in
    2, a lossy codec on 1 in 2, speed 0.93-1.07."""
    snr = rng.uniform(10.0, 20.0) if rng.random() < 0.75 else None
    band = "telephone" if rng.random() < 0.5 else "wide"
    codec = rng.choice(("gsm", "mp3") if band == "telephone" else ("mp3", "opus")) if rng.random() < 0.5 else None
    return Channel(snr, rng.choice(("white", "pink", "brown")), band, codec, rng.uniform(0.93, 1.07))


def _noise(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n).astype(np.float32)
    if colour == "white" or n < 2:
        return white
    spectrum = np.fft.rfft(white)
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    spectrum /= np.sqrt(f) if colour == "pink" else f  # 1/f power, or 1/f^2 (brown)
    return np.fft.irfft(spectrum, n).astype(np.float32)


def augment(audio: np.ndarray, channel: Channel, seed: int = 0, what: str = "clip") -> np.ndarray:
    """`audio` (16 kHz mono float32) sent through `channel`; 16 kHz mono float32 again."""
    audio = np.asarray(audio, np.float32)
    filters = [f"atempo={channel.speed:.4f}"] if abs(channel.speed - 1.0) > 1e-3 else []
    if channel.band == "telephone":
        filters += ["highpass=f=300", "lowpass=f=3400", "aresample=8000"]
    if channel.codec == "mp3":
        encode = ["-c:a", "libmp3lame", "-b:a", "32k", "-f", "mp3"]
    elif channel.codec == "opus":
        encode = ["-c:a", "libopus", "-b:a", "16k", "-f", "ogg"]
    elif channel.codec == "gsm":
        encode = ["-c:a", "libgsm", "-ar", "8000", "-f", "gsm"]
    else:
        encode = ["-f", "wav"]
    if channel.band == "telephone" and channel.codec != "gsm":
        encode = ["-ar", "8000", *encode]
    out = _through(audio, filters, encode, what) if (filters or channel.codec) else audio.copy()
    if channel.snr_db is not None and len(out):
        rng = np.random.default_rng(seed)
        noise = _noise(len(out), channel.colour, rng)
        power = float(np.mean(out ** 2)) or 1e-10
        scale = math.sqrt(power / (float(np.mean(noise ** 2)) or 1e-10) / 10.0 ** (channel.snr_db / 10.0))
        out = out + scale * noise
    peak = float(np.max(np.abs(out))) if len(out) else 0.0
    return out / peak * 0.9 if peak > 1.0 else out


def revoice(text: str, rng: random.Random, pool: Sequence[Voice]) -> Tuple[np.ndarray, str]:
    """`text` said by a voice drawn from `pool` with a drawn pitch (-3..+3 semitones) and sent
    through a drawn channel: (audio, a description of the draw)."""
    voice = rng.choice(list(pool))
    pitch = rng.choice((-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0))
    channel = draw_channel(rng)
    audio = speak(text, voice, pitch)
    seed = rng.randrange(2 ** 31)
    return augment(audio, channel, seed, f"{voice}: {text[:40]!r}"), f"{voice} {pitch:+.0f} st; {channel}"

