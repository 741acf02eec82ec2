"""Voice activity detection: find the speech in a stream of audio blocks.

Silero VAD (the ONNX model that ships inside faster-whisper) scans the audio a block at a time;
the speech it finds is packed, silence removed, into chunks of at most ``max_chunk_seconds`` so
that each chunk fills one 30-second Whisper window. Each chunk keeps a map from its own
time line back to the file's, so every transcript time points at the original recording.
Silence and hold music between utterances are never transcribed.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, List, Optional, Tuple

import numpy as np

from .options import SAMPLE_RATE, VadOptions

__all__ = ["SpeechChunk", "iter_speech", "level_for_vad", "speech_regions"]


@dataclass
class SpeechChunk:
    """Speech packed from one or more regions of a file.

    ``pieces`` holds ``(chunk_offset, file_start, length)`` in samples for each region.
    """

    audio: np.ndarray
    pieces: List[Tuple[int, int, int]] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    def to_file_time(self, t: float, is_end: bool = False) -> float:
        """Map a time in seconds on the chunk's time line to a time in the file."""
        sample = int(round(t * SAMPLE_RATE))
        offsets = [p[0] for p in self.pieces]
        i = bisect.bisect_right(offsets, sample) - 1
        if is_end and i > 0 and sample == offsets[i]:
            i -= 1  # an end exactly on a join belongs to the piece before it
        i = max(0, i)
        off, start, length = self.pieces[i]
        within = min(max(sample - off, 0), length)
        return (start + within) / SAMPLE_RATE


def speech_regions(audio: np.ndarray, options: VadOptions) -> List[Tuple[int, int]]:
    """Speech regions of `audio` as (start, end) sample indices."""
    from faster_whisper.vad import VadOptions as _FWVad
    from faster_whisper.vad import get_speech_timestamps

    if len(audio) < 512:
        return []
    if options.normalize:
        audio = level_for_vad(audio)
    opts = _FWVad(
        threshold=options.threshold,
        min_speech_duration_ms=options.min_speech_ms,
        max_speech_duration_s=options.max_chunk_seconds,
        min_silence_duration_ms=options.min_silence_ms,
        speech_pad_ms=options.speech_pad_ms,
    )
    return [(int(r["start"]), int(r["end"])) for r in get_speech_timestamps(audio, opts)]


# Level normalisation for the VAD's copy (docs/vad.md). Silero's speech probability falls with
# the level: a voice 12-18 dB below its partner, worse on a 300-3400 Hz phone line, drops under
# the threshold. A fast compressor that only boosts lifts each stretch of sound toward the level
# of normal speech; stretches not well above the block's noise floor are left alone, so silence
# and steady noise are not turned into "speech".
_FRAME = 512  # samples (32 ms), Silero's own window
_TARGET_DB = -14.0  # dBFS: the loudest frame near each point is lifted to this (speech at ~-20 dBFS RMS)
_MAX_GAIN_DB = 24.0
_GATE_DB = 12.0  # boost only where the local level stands this far above the noise floor
_FLOOR_PERCENTILE = 10.0  # the noise floor: this percentile of the block's frame levels
_HOLD_SECONDS = 0.25  # the local level is the loudest frame within this either side


def level_for_vad(audio: np.ndarray) -> np.ndarray:
    """A copy of `audio` with quiet sound lifted toward the level of normal speech (gain between
    0 and +24 dB, smooth from frame to frame), for the VAD to look at; never quieter."""
    n = len(audio) // _FRAME
    if n < 3:
        return audio
    frames = audio[: n * _FRAME].reshape(n, _FRAME).astype(np.float64)
    db = 10.0 * np.log10(np.mean(frames * frames, axis=1) + 1e-10)
    floor = float(np.percentile(db, _FLOOR_PERCENTILE))
    hold = max(1, int(round(_HOLD_SECONDS * SAMPLE_RATE / _FRAME)))
    padded = np.pad(db, hold, constant_values=-100.0)
    level = np.lib.stride_tricks.sliding_window_view(padded, 2 * hold + 1).max(axis=1)
    gain_db = np.clip(_TARGET_DB - level, 0.0, _MAX_GAIN_DB)
    gain_db[level < floor + _GATE_DB] = 0.0
    if not gain_db.any():
        return audio
    centres = np.arange(n) * _FRAME + _FRAME / 2
    gain = np.interp(np.arange(len(audio)), centres, 10.0 ** (gain_db / 20.0)).astype(np.float32)
    return np.clip(audio * gain, -1.0, 1.0)


def iter_speech(
    blocks: Iterable[np.ndarray],
    options: Optional[VadOptions] = None,
    on_audio: Optional[Callable[[float], None]] = None,
) -> Iterator[SpeechChunk]:
    """Yield packed speech chunks from a stream of 16 kHz mono blocks, in file order.

    Memory stays bounded: at most ``block_seconds`` of audio plus one chunk are held.
    `on_audio` is called with the seconds of audio scanned, as they are scanned.
    """
    options = options or VadOptions()
    scan = int(options.block_seconds * SAMPLE_RATE)
    # Speech near the end of a scanned buffer may continue into the next block; keep it back.
    guard = int((options.min_silence_ms + 2 * options.speech_pad_ms) / 1000 * SAMPLE_RATE) + SAMPLE_RATE
    limit = int(options.max_chunk_seconds * SAMPLE_RATE)

    packer = _Packer(limit)
    buffer = np.zeros(0, np.float32)
    buffer_start = 0  # file sample index of buffer[0]
    parts: List[np.ndarray] = []
    pending = 0
    exhausted = False
    it = iter(blocks)
    while not exhausted:
        try:
            block = next(it)
            parts.append(block)
            pending += len(block)
            if on_audio is not None:
                on_audio(len(block) / SAMPLE_RATE)
            if len(buffer) + pending < scan:
                continue
        except StopIteration:
            exhausted = True
        if parts:
            buffer = np.concatenate([buffer, *parts])
            parts, pending = [], 0
        regions = speech_regions(buffer, options)
        keep_from = len(buffer)
        if not exhausted:
            cut = max(len(buffer) - guard, 0)
            for i, (s, e) in enumerate(regions):
                if e > cut:
                    regions = regions[:i]
                    keep_from = min(s, cut)
                    break
            else:
                keep_from = cut
        for s, e in regions:
            yield from packer.add(buffer[s:e], buffer_start + s)
        buffer_start += keep_from
        buffer = buffer[keep_from:].copy()
    yield from packer.flush()


class _Packer:
    """Concatenates speech regions into chunks of at most `limit` samples."""

    def __init__(self, limit: int):
        self.limit = limit
        self.audio: List[np.ndarray] = []
        self.pieces: List[Tuple[int, int, int]] = []
        self.size = 0

    def add(self, audio: np.ndarray, file_start: int) -> Iterator[SpeechChunk]:
        while len(audio):
            if self.size and self.size + len(audio) > self.limit:
                yield from self.flush()
            take = audio[: self.limit]  # a region never exceeds the limit, but be safe
            self.pieces.append((self.size, file_start, len(take)))
            self.audio.append(take.copy())
            self.size += len(take)
            audio = audio[len(take):]
            file_start += len(take)

    def flush(self) -> Iterator[SpeechChunk]:
        if self.size:
            yield SpeechChunk(np.concatenate(self.audio), self.pieces)
        self.audio, self.pieces, self.size = [], [], 0
