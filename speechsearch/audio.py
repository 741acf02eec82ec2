"""Decode any common audio file to 16 kHz mono float32, streamed in bounded blocks.

Two decoders: the ``ffmpeg`` program (a separate process, so decoding runs beside
transcription on another core) and PyAV (in-process, ships with faster-whisper).
``decoder="auto"`` uses ffmpeg when it is on PATH and PyAV otherwise.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, List, Optional

import numpy as np

from ._log import logger
from .options import SAMPLE_RATE, VadOptions
from .errors import (
    AudioError,
    AudioNotFoundError,
    DecodeError,
    EmptyAudioError,
    InvalidInputError,
    MissingToolError,
)

__all__ = [
    "SAMPLE_RATE",
    "AUDIO_EXTENSIONS",
    "AudioInfo",
    "probe",
    "iter_blocks",
    "decode",
    "file_hash",
    "check_readable",
    "check_decoder",
]

DECODERS = ("auto", "ffmpeg", "pyav")
AUDIO_EXTENSIONS = frozenset(
    ".wav .wave .mp3 .flac .ogg .oga .opus .m4a .mp4 .aac .webm .mka .wma .aif .aiff .amr .3gp .caf"
    .split()
)

_FFMPEG_HINT = (
    "ffmpeg is not installed or not on PATH; install it (Debian/Ubuntu: `apt-get install -y ffmpeg`, "
    "macOS: `brew install ffmpeg`) or pass decoder='pyav'"
)


@dataclass(frozen=True)
class AudioInfo:
    """What the container says about a file, before decoding."""

    duration: float  # seconds; 0.0 when the container does not say
    channels: int
    sample_rate: int
    codec: str


def check_readable(path: str) -> None:
    """Raise a clear AudioError when `path` is missing, a folder, or empty."""
    p = Path(path)
    if not p.exists():
        raise AudioNotFoundError(path, "no such file; check the path")
    if p.is_dir():
        raise InvalidInputError(f"{path}: is a folder; pass it to Library.add to index every file in it")
    if p.stat().st_size == 0:
        raise EmptyAudioError(path, "the file is empty (0 bytes); re-export or re-copy the recording")


def probe(path: str) -> AudioInfo:
    """Read duration, channels and sample rate from the container (fast, no decoding)."""
    import av

    check_readable(path)
    try:
        with _quiet_av(), av.open(str(path)) as container:
            streams = container.streams.audio
            if not streams:
                raise DecodeError(path, "the file has no audio stream; is it a video without sound?")
            stream = streams[0]
            duration = 0.0
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1_000_000
            layout = stream.layout
            channels = len(layout.channels) if layout is not None else 1
            return AudioInfo(duration, channels, stream.sample_rate or 0, stream.codec_context.name)
    except DecodeError:
        raise
    except Exception as e:  # av.error.InvalidDataError and friends
        raise DecodeError(path, f"not a readable audio file ({_short(e)}); check that it is audio "
                          "in a common format (wav, mp3, flac, ogg, m4a, webm)") from e


@contextlib.contextmanager
def _quiet_av() -> Iterator[None]:
    """Keep FFmpeg's own console messages (e.g. about a damaged frame) off the user's terminal;
    what matters reaches the user as an AudioError or a warning in the add report."""
    import av.logging

    before = av.logging.get_level()
    av.logging.set_level(None)
    try:
        yield
    finally:
        av.logging.set_level(before)


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[-1][:200] if text else type(e).__name__


def check_decoder(decoder: str) -> None:
    """Fail on a decoder name that is not one of :data:`DECODERS`."""
    if decoder not in DECODERS:
        raise InvalidInputError(f"unknown decoder {decoder!r}; choose one of {DECODERS}")


def _resolve_decoder(decoder: str) -> str:
    check_decoder(decoder)
    if decoder == "auto":
        return "ffmpeg" if shutil.which("ffmpeg") else "pyav"
    if decoder == "ffmpeg" and not shutil.which("ffmpeg"):
        raise MissingToolError(_FFMPEG_HINT)
    return decoder


def iter_blocks(
    path: str,
    block_seconds: float = 30.0,
    decoder: str = "auto",
    warnings: Optional[List[str]] = None,
    channel: Optional[int] = None,
) -> Iterator[np.ndarray]:
    """Yield the file as 16 kHz mono float32 blocks of `block_seconds` (the last may be shorter).

    All channels are mixed down, or only `channel` (0-based) is taken. Memory stays bounded by
    one block whatever the file length.
    Damage after some audio was decoded (a truncated file) is appended to `warnings`
    rather than raised; damage before any audio is a DecodeError.
    """
    check_readable(path)
    which = _resolve_decoder(decoder)
    block = max(1, int(block_seconds * SAMPLE_RATE))
    gen = _iter_ffmpeg(path, block, channel) if which == "ffmpeg" else _iter_pyav(path, block, channel)
    produced = 0
    try:
        for chunk in gen:
            produced += len(chunk)
            yield chunk
    except _Damaged as e:
        if produced == 0:
            raise DecodeError(path, f"could not decode audio ({e}); check that it is audio in a "
                              "common format and not damaged") from None
        msg = f"decoding stopped early after {produced / SAMPLE_RATE:.1f} s ({e}); the file looks truncated"
        logger.warning("%s: %s", path, msg)
        if warnings is not None:
            warnings.append(msg)
    if produced == 0:
        raise EmptyAudioError(path, "the file holds no audio samples")


class _Damaged(Exception):
    pass


FFMPEG = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error"]


def ffmpeg_decode(path: str, channel: Optional[int] = None, start: Optional[float] = None,
                  duration: Optional[float] = None) -> List[str]:
    """The ffmpeg command that decodes `path` (from `start`, for `duration` seconds) to 16 kHz
    16-bit PCM on stdout: all channels mixed, or only `channel`."""
    mono = ["-ac", "1"] if channel is None else ["-af", f"pan=mono|c0=c{int(channel)}"]
    span = ([] if start is None else ["-ss", f"{start:.3f}"]) + ([] if duration is None else ["-t", f"{duration:.3f}"])
    return [*FFMPEG, *span, "-i", str(path), "-vn", *mono, "-ar", str(SAMPLE_RATE), "-f", "s16le", "-"]


def run_ffmpeg(cmd: List[str], input: Optional[bytes] = None) -> "subprocess.CompletedProcess[bytes]":
    """Run one ffmpeg command to the end, output and errors captured."""
    try:
        return subprocess.run(cmd, input=input, capture_output=True, stdin=None if input is not None
                              else subprocess.DEVNULL)
    except FileNotFoundError:  # not installed, or raced away from PATH
        raise MissingToolError(_FFMPEG_HINT) from None


def _iter_ffmpeg(path: str, block: int, channel: Optional[int] = None) -> Iterator[np.ndarray]:
    cmd = ffmpeg_decode(path, channel)
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        except FileNotFoundError:  # raced away from PATH
            raise MissingToolError(_FFMPEG_HINT) from None
        try:
            nbytes = block * 2
            pending = b""
            assert proc.stdout is not None
            while True:
                data = proc.stdout.read(nbytes - len(pending))
                if not data:
                    break
                pending += data
                if len(pending) >= nbytes:
                    yield np.frombuffer(pending, np.int16).astype(np.float32) / 32768.0
                    pending = b""
            if len(pending) >= 2:
                pending = pending[: len(pending) // 2 * 2]
                yield np.frombuffer(pending, np.int16).astype(np.float32) / 32768.0
            rc = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err.seek(0)
        message = err.read().decode("utf-8", "replace").strip()
    if rc != 0 or message:
        lines = [ln for ln in message.splitlines() if ln.strip()]
        detail = lines[-1][:200] if lines else f"ffmpeg exited with status {rc}"
        if rc != 0 or _serious(message):
            raise _Damaged(detail)
        logger.debug("%s: ffmpeg said: %s", path, detail)


def _serious(message: str) -> bool:
    m = message.lower()
    return any(s in m for s in ("invalid data", "truncat", "error while decoding", "corrupt", "end of file"))


def _iter_pyav(path: str, block: int, channel: Optional[int] = None) -> Iterator[np.ndarray]:
    import av

    try:
        container = av.open(str(path))
    except Exception as e:
        raise _Damaged(_short(e)) from None
    with _quiet_av(), container:
        if not container.streams.audio:
            raise _Damaged("no audio stream")
        stream = container.streams.audio[0]
        if channel is None:
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        else:  # planar: one row per channel
            resampler = av.AudioResampler(format="s16p", layout=stream.layout.name, rate=SAMPLE_RATE)

        def take(out: Any) -> np.ndarray:
            arr = out.to_ndarray()
            return arr.reshape(-1) if channel is None else arr[int(channel)]

        parts: List[np.ndarray] = []
        size = 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    arr = take(out)
                    parts.append(arr)
                    size += len(arr)
                    while size >= block:
                        joined = np.concatenate(parts)
                        yield joined[:block].astype(np.float32) / 32768.0
                        rest = joined[block:]
                        parts, size = [rest], len(rest)
            for out in resampler.resample(None):
                arr = take(out)
                parts.append(arr)
                size += len(arr)
        except av.error.FFmpegError as e:  # damage part-way
            if size:
                yield np.concatenate(parts).astype(np.float32) / 32768.0
            raise _Damaged(_short(e)) from None
        if size:
            yield np.concatenate(parts).astype(np.float32) / 32768.0


def decode(path: str, decoder: str = "auto", max_seconds: Optional[float] = None) -> np.ndarray:
    """Decode a whole (short) file to one 16 kHz mono float32 array."""
    parts = []
    total = 0
    for b in iter_blocks(path, 30.0, decoder):
        parts.append(b)
        total += len(b)
        if max_seconds is not None and total >= max_seconds * SAMPLE_RATE:
            break
    return np.concatenate(parts)


def file_hash(path: str, chunk: int = 1 << 20) -> str:
    """Content hash of a file (BLAKE2b, 128 bits, hex): decides whether a file changed."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while True:
            data = f.read(chunk)
            if not data:
                break
            h.update(data)
    return h.hexdigest()


def iter_audio_files(root: str) -> Iterator[str]:
    """Every file under `root` whose extension is a known audio format, sorted, recursively."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS:
                yield os.path.join(dirpath, name)


def check_clip(audio: object) -> np.ndarray:
    """One mono clip as float32 samples in [-1, 1] (int16 is scaled); a clear error for 2-D,
    empty or non-finite input. The embedders call this on everything they are given."""
    a = np.asarray(audio)
    if a.ndim != 1:
        raise InvalidInputError(f"expected one mono clip (1-D array of samples), got shape {a.shape}")
    if a.size == 0:
        raise InvalidInputError("the clip is empty (0 samples)")
    if np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float32) / 32768.0
    a = a.astype(np.float32, copy=False)
    if not np.all(np.isfinite(a)):
        raise InvalidInputError("the clip holds NaN or infinite samples")
    return a


MIN_CLIP_SECONDS = 0.3
MAX_CLIP_SECONDS = 30.0


def load_clip(clip: object, sample_rate: Optional[int] = None, decoder: str = "auto") -> np.ndarray:
    """A query clip as 16 kHz mono float32: from a path, the bytes of an audio file, a float array
    with `sample_rate`, or an ``(array, sample_rate)`` tuple. Only the first 30 s are kept.

    Raises AudioError for a file that cannot be decoded and InvalidInputError for a clip that is
    shorter than 0.3 s or silent."""
    name = "clip"
    if isinstance(clip, tuple) and len(clip) == 2:
        clip, sample_rate = clip
    if isinstance(clip, (bytes, bytearray, memoryview)):
        name = "the clip's bytes"
        with tempfile.NamedTemporaryFile(suffix=".audio") as tmp:
            tmp.write(bytes(clip))
            tmp.flush()
            try:
                audio = decode(tmp.name, decoder, MAX_CLIP_SECONDS)
            except AudioError as e:
                raise type(e)(name, e.reason.replace(tmp.name + ": ", "")) from None
    elif isinstance(clip, (str, os.PathLike)):
        name = os.fspath(clip)
        audio = decode(name, decoder, MAX_CLIP_SECONDS)
    elif isinstance(clip, np.ndarray):
        if not sample_rate or sample_rate <= 0:
            raise InvalidInputError("an audio array needs its sample_rate, e.g. search_audio(a, sample_rate=16000)")
        a = np.asarray(clip, np.float32)
        if a.ndim == 2:  # (samples, channels) or (channels, samples): mix down
            a = a.mean(axis=1 if a.shape[1] < a.shape[0] else 0)
        if a.ndim != 1:
            raise InvalidInputError(f"an audio array must be 1-D or 2-D, got shape {clip.shape}")
        if np.issubdtype(clip.dtype, np.integer):
            a = a / float(np.iinfo(clip.dtype).max)
        if sample_rate != SAMPLE_RATE:
            from math import gcd

            from scipy.signal import resample_poly

            g = gcd(int(sample_rate), SAMPLE_RATE)
            a = resample_poly(a, SAMPLE_RATE // g, int(sample_rate) // g).astype(np.float32)
        audio = a
    else:
        raise InvalidInputError(f"clip must be a path, bytes, or a numpy array, got {type(clip).__name__}")
    audio = audio[: int(MAX_CLIP_SECONDS * SAMPLE_RATE)]
    seconds = len(audio) / SAMPLE_RATE
    if seconds < MIN_CLIP_SECONDS:
        raise InvalidInputError(f"{name}: the clip lasts {seconds:.2f} s; query clips need at least "
                                f"{MIN_CLIP_SECONDS} s of speech")
    from .segment import speech_regions  # segment.py needs nothing from here: no import circle

    if float(np.abs(audio).max()) < 1e-4 or not speech_regions(audio, VadOptions(min_speech_ms=100)):
        raise InvalidInputError(f"{name}: no speech found in the clip; query-by-example needs a clip "
                                "of someone speaking")
    return audio
