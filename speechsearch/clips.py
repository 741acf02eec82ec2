"""Cut the audio of a hit out of its file, bleep redacted words, and save it.

``hit.clip()`` and ``hit.save("x.mp3")`` call these. A clip is 16 kHz mono float32 (the mix
of all channels, so a call is heard as it was). ffmpeg seeks straight to the span; without
ffmpeg, PyAV decodes up to it.
"""

from __future__ import annotations

import io
import os
import shutil
import wave
from pathlib import Path
from typing import Iterable, Optional, Sequence, Tuple, Union

import numpy as np

from .audio import FFMPEG, SAMPLE_RATE, check_readable, ffmpeg_decode, iter_blocks, run_ffmpeg
from .errors import AudioError, InvalidInputError, MissingToolError

__all__ = ["read_span", "bleep", "write_audio"]

BLEEP_HZ = 1000.0
BLEEP_LEVEL = 0.25


def read_span(path: str, start: float, end: float, channel: Optional[int] = None) -> np.ndarray:
    """The audio of ``[start, end]`` seconds of `path` (clamped to the file)."""
    if not end > start:
        raise InvalidInputError(f"clip end ({end}) must be after its start ({start})")
    check_readable(path)
    start = max(0.0, start)
    if shutil.which("ffmpeg"):
        out = run_ffmpeg(ffmpeg_decode(path, channel, start, end - start))
        if out.returncode != 0:
            raise AudioError(path, f"could not cut {start:.1f}-{end:.1f} s from the file "
                             f"({out.stderr.decode('utf-8', 'replace').strip()[-200:]})")
        return np.frombuffer(out.stdout, np.int16).astype(np.float32) / 32768.0
    a, b = int(start * SAMPLE_RATE), int(end * SAMPLE_RATE)
    parts, offset = [], 0
    for block in iter_blocks(path, 30.0, "pyav", None, channel):
        lo, hi = max(a - offset, 0), min(b - offset, len(block))
        if hi > lo:
            parts.append(block[lo:hi])
        offset += len(block)
        if offset >= b:
            break
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def bleep(audio: np.ndarray, spans: Iterable[Tuple[float, float]], offset: float = 0.0) -> np.ndarray:
    """`audio` (starting at `offset` seconds of its file) with each span replaced by a tone."""
    out = np.array(audio, dtype=np.float32, copy=True)
    for s, e in spans:
        a = max(0, int((s - offset) * SAMPLE_RATE))
        b = min(len(out), int(np.ceil((e - offset) * SAMPLE_RATE)))
        if b > a:
            t = np.arange(b - a) / SAMPLE_RATE
            out[a:b] = BLEEP_LEVEL * np.sin(2 * np.pi * BLEEP_HZ * t)
    return out


def pcm16(audio: np.ndarray) -> bytes:
    """Mono float audio as 16-bit little-endian PCM samples."""
    return (np.clip(np.asarray(audio, np.float32), -1, 1) * 32767).astype("<i2").tobytes()


def wav_bytes(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Mono float audio as a 16-bit PCM WAV file, in memory (the one WAV writer)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm16(audio))
    return buf.getvalue()


def write_audio(path: Union[str, os.PathLike], audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Save mono float audio; the extension picks the format (.wav natively; mp3, ogg, flac,
    m4a... through ffmpeg)."""
    out = Path(path).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".wav":
        out.write_bytes(wav_bytes(audio, sample_rate))
        return out
    pcm = pcm16(audio)
    if not shutil.which("ffmpeg"):
        raise MissingToolError(f"writing {out.suffix} needs ffmpeg (apt-get install ffmpeg); "
                               "or save as .wav")
    r = run_ffmpeg([*FFMPEG, "-y", "-f", "s16le", "-ar", str(sample_rate), "-ac", "1", "-i", "-", str(out)], input=pcm)
    if r.returncode != 0:
        raise InvalidInputError(f"{out}: ffmpeg could not write this format "
                                f"({r.stderr.decode('utf-8', 'replace').strip()[-200:]}); try .wav or .mp3")
    return out


def clip_of(path: str, start: float, end: float, padding: float = 0.0,
            redactions: Sequence[Tuple[float, float]] = (), channel: Optional[int] = None) -> np.ndarray:
    """A hit's audio with `padding` seconds either side and its redacted words bleeped."""
    if padding < 0:
        raise InvalidInputError(f"padding must be >= 0 seconds, got {padding}")
    if not os.path.exists(path):
        raise AudioError(path, "the file is no longer there; the clip cannot be cut (re-add it, or "
                         "restore the file)")
    lo = max(0.0, start - padding)
    audio = read_span(path, lo, end + padding, channel)
    return bleep(audio, redactions, lo) if redactions else audio
