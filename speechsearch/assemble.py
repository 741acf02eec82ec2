"""One file's transcript and vectors, put together from its transcribed speech chunks.

Chunk by chunk (`take_chunk`): segments move from chunk time to file time with their channel and
speaker, and each sentence's audio (cut from the chunk already in memory) gets its acoustic and
voice vectors. At the file's end (`assemble`): speaker labels for a diarized mono file,
redaction, windows and context units per channel and speaker, their text vectors, and each
sentence keyed to the window it falls in. Nothing here touches the disk.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ._log import logger
from .options import SAMPLE_RATE, WindowOptions
from .pipeline import FileJob, Pipeline, Processed
from .types import Segment, Window, Word
from .windows import make_contexts, make_windows, sentences

__all__ = ["take_chunk", "assemble", "embed_units", "redact", "build_windows", "build_contexts",
           "sentence_clips", "best_window", "MIN_UNIT_SAMPLES"]

MIN_UNIT_SAMPLES = SAMPLE_RATE  # acoustic units shorter than 1 s are widened to 1 s


def take_chunk(f: FileJob, chunk: Any, segs: List[Segment], pipeline: Pipeline) -> None:
    """Add one transcribed speech chunk to `f`: its segments in file time, and the acoustic and
    voice vectors of its sentences."""
    channel = getattr(chunk, "channel", None)
    speaker = f.channels.get(channel) if channel is not None else None
    f.segments.extend(_to_file_time(s, chunk, channel or 0, speaker) for s in segs)
    voice = pipeline.voice or (pipeline.diarizer if channel is None else None)
    if (pipeline.acoustic is not None or voice is not None) and segs:
        chunk_spans, clips = sentence_clips(chunk, segs, pipeline)
        f.spans.extend((a, b, channel or 0) for a, b in chunk_spans)
        if pipeline.acoustic is not None:
            f.unit_vectors.append(pipeline.acoustic.embed_many(clips))
        if voice is not None:
            f.voice_vectors.append(voice.embed_many(clips))


def assemble(f: FileJob, pipeline: Pipeline) -> Processed:
    """`f`'s result once every chunk is in: segments in time order (diarized, redacted), windows,
    context units and their vectors, and the sentence units keyed to windows."""
    info = f.info
    segments = sorted(f.segments, key=lambda s: (s.start, s.channel))
    mixed = f.streams == [(None, None)]
    voice_vectors = np.concatenate(f.voice_vectors) if f.voice_vectors else None
    if mixed and pipeline.diarizer is not None and voice_vectors is not None and len(f.spans):
        segments = _diarized(segments, f.spans, voice_vectors, pipeline)
    segments, redactions = redact(segments) if pipeline.redact else (segments, [])
    channels = info.channels if info is not None else 1
    windows = build_windows(segments, pipeline.windows, mixed_channels=mixed and channels > 1)
    contexts = build_contexts(segments, pipeline.windows, mixed_channels=mixed and channels > 1)
    # one thread: Whisper's workers hold the other cores
    vectors, context_vectors = embed_units(pipeline.embedder, windows, contexts, threads=1)
    if not windows:
        logger.info("%s: no speech found", f.path)
    units = [(a, b, best_window(a, b, windows, None if mixed else c)) for a, b, c in f.spans]
    return Processed(f.scanned, segments, windows, vectors, f.language if segments else None, f.warnings,
                     units, np.concatenate(f.unit_vectors) if f.unit_vectors else None,
                     voice_vectors if pipeline.voice is not None else None, redactions, contexts, context_vectors)


def embed_units(embedder: Any, windows: List[Window], contexts: List[Window],
                threads: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Text vectors of windows and contexts, in one batch."""
    texts = [w.text for w in windows] + [c.text for c in contexts]
    vectors = embedder.encode(texts, threads=threads) if threads else embedder.encode(texts)
    return vectors[:len(windows)], vectors[len(windows):]


def redact(segments: List[Segment]) -> Tuple[List[Segment], List[Any]]:
    """PII replaced by placeholders, channel by channel (see redact.py), and the spans replaced."""
    from .redact import redact_segments

    by_channel: Dict[int, List[Segment]] = {}
    for s in segments:
        by_channel.setdefault(s.channel, []).append(s)
    out, found = [], []
    for part in by_channel.values():
        done, spans = redact_segments(part)
        out += done
        found += spans
    out.sort(key=lambda s: (s.start, s.channel))
    found.sort(key=lambda r: r.start)
    return out, found


def build_windows(segments: List[Segment], options: WindowOptions, mixed_channels: bool = False) -> List[Window]:
    """Windows per channel and speaker (a window never mixes two speakers), in time order.
    Windows of a mixed-down multi-channel file get channel -1."""
    windows: List[Window] = []
    streams = sorted({(s.channel, s.speaker) for s in segments}, key=lambda k: (k[0], k[1] or ""))
    for channel, speaker in streams:
        part = [s for s in segments if s.channel == channel and s.speaker == speaker]
        windows += make_windows(part, options, channel=-1 if mixed_channels else channel, speaker=speaker)
    return sorted(windows, key=lambda w: (w.start, w.channel))


def build_contexts(segments: List[Segment], options: WindowOptions, mixed_channels: bool = False) -> List[Window]:
    """Context units per channel (windows.make_contexts), numbered like `build_windows`."""
    contexts = make_contexts(segments, options)
    if mixed_channels:
        contexts = [Window(c.start, c.end, c.text, -1, c.speaker) for c in contexts]
    return contexts


def _diarized(segments: List[Segment], spans: List[Tuple[float, float, int]], vectors: np.ndarray,
              pipeline: Pipeline) -> List[Segment]:
    """Split segments into sentences, each labelled S1, S2... from its voice vector."""
    from .diarize import DiarizeOptions, assign_speakers

    labels = assign_speakers([(a, b) for a, b, _ in spans], vectors, pipeline.diarize_options or DiarizeOptions())
    out = []
    for seg in segments:
        for sent in sentences([seg], pipeline.windows):
            best, overlap = None, 0.0
            for (a, b, _), label in zip(spans, labels):
                o = min(b, sent.end) - max(a, sent.start)
                if o > overlap:
                    best, overlap = label, o
            out.append(Segment(sent.start, sent.end, sent.text, sent.words, seg.avg_logprob, seg.no_speech_prob,
                               seg.channel, best))
    return out


def sentence_clips(chunk: Any, segs: List[Segment], pipeline: Pipeline
                   ) -> Tuple[List[Tuple[float, float]], List[np.ndarray]]:
    """The audio of each sentence of one speech chunk (cut from the chunk's own audio, so nothing
    is decoded twice) for the acoustic and voice embedders, with spans in file time."""
    spans, clips = [], []
    for sent in sentences(segs, pipeline.windows):
        a, b = int(sent.start * SAMPLE_RATE), int(sent.end * SAMPLE_RATE)
        if b - a < MIN_UNIT_SAMPLES:  # pad very short sentences with their surroundings
            mid = (a + b) // 2
            a, b = max(0, mid - MIN_UNIT_SAMPLES // 2), min(len(chunk.audio), mid + MIN_UNIT_SAMPLES // 2)
        clips.append(chunk.audio[a:b])
        spans.append((chunk.to_file_time(a / SAMPLE_RATE), chunk.to_file_time(b / SAMPLE_RATE, True)))
    return spans, clips


def best_window(start: float, end: float, windows: List[Window], channel: Optional[int] = None) -> int:
    """Index of the window (of `channel`, when given) that overlaps [start, end] most (-1 when none does)."""
    best, best_overlap = -1, 0.0
    for i, w in enumerate(windows):
        if channel is not None and w.channel != channel:
            continue
        overlap = min(end, w.end) - max(start, w.start)
        if overlap > best_overlap:
            best, best_overlap = i, overlap
    return best


def _to_file_time(seg: Segment, chunk: Any, channel: int = 0, speaker: Optional[str] = None) -> Segment:
    words = tuple(Word(chunk.to_file_time(w.start), chunk.to_file_time(w.end, True), w.text, w.probability)
                  for w in seg.words)
    start = words[0].start if words else chunk.to_file_time(seg.start)
    end = words[-1].end if words else chunk.to_file_time(seg.end, True)
    return Segment(start, max(end, start), seg.text, words, seg.avg_logprob, seg.no_speech_prob, channel, speaker)
