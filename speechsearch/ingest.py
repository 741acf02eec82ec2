"""Index files: decode -> VAD -> transcribe -> windows -> embed -> store, one file at a time.

`process_file` does the heavy work and touches nothing on disk; `commit_file` writes one file's
windows to the catalogue and the vector store (see catalog.py for why an interrupted add is safe);
`ingest` runs a batch, keeps going past bad files and reports them at the end.
"""

from __future__ import annotations

import collections
import hashlib
import json
import math
import os
import queue
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np

from ._log import logger
from ._paths import name_clash, os_path, stored_path, to_path
from .audio import AUDIO_EXTENSIONS, SAMPLE_RATE, AudioInfo, file_hash, iter_audio_files, iter_blocks, probe
from .catalog import Catalog
from .embed.text import TextEmbedder
from .filters import ISO_SUFFIX, encode_metadata, field_types_of, merge_field_types
from .errors import (
    AudioError,
    InvalidInputError,
    MissingDependencyError,
    MissingToolError,
    ModelError,
    SpeechSearchError,
    StoreError,
)
from .options import VadOptions, WindowOptions
from .segment import iter_speech
from .store import RESERVED_KEYS, ChromaStore
from .transcribe import Transcriber, detect_language, transcribe_chunks
from .types import AddReport, FileFailure, FileResult, Segment, Window, Word
from .windows import make_contexts, make_windows, sentences

__all__ = ["Pipeline", "Processed", "collect_paths", "process_file", "commit_file", "ingest",
           "RESERVED_KEYS", "check_metadata"]

# Errors that are not about one file: stop the batch instead of failing every file the same way.
_FATAL = (MissingToolError, MissingDependencyError, ModelError, StoreError)

Progress = Callable[[float], None]
MIN_UNIT_SAMPLES = SAMPLE_RATE  # acoustic units shorter than 1 s are widened to 1 s


@dataclass
class Pipeline:
    """The stages one Library uses; models inside load on first use."""

    transcriber: Transcriber
    embedder: TextEmbedder
    vad: VadOptions = field(default_factory=VadOptions)
    windows: WindowOptions = field(default_factory=WindowOptions)
    decoder: str = "auto"
    acoustic: Optional[Any] = None  # an AcousticEmbedder, or None: no acoustic vectors
    voice: Optional[Any] = None  # a VoiceEmbedder, or None: no voice vectors
    channels: Dict[int, str] = field(default_factory=dict)  # channel -> role for multi-channel files
    diarizer: Optional[Any] = None  # a VoiceEmbedder whose vectors label speakers in mono files
    diarize_options: Optional[Any] = None
    redact: bool = False  # replace PII in transcripts before anything is stored or embedded

    @property
    def models(self) -> Dict[str, str]:
        models = {"asr_engine": self.transcriber.engine, "asr_model": self.transcriber.model_name,
                  "text_model": self.embedder.model_name}
        if self.acoustic is not None:
            models["acoustic_model"] = getattr(self.acoustic, "model_id", self.acoustic.name)
        if self.voice is not None:
            models["voice_model"] = self.voice.name
        return models


@dataclass
class Processed:
    duration: float
    segments: List[Segment]
    windows: List[Window]
    vectors: np.ndarray
    language: Optional[str]
    warnings: List[str]
    units: List[Tuple[float, float, int]] = field(default_factory=list)  # acoustic: start, end, window
    unit_vectors: Optional[np.ndarray] = None
    voice_vectors: Optional[np.ndarray] = None
    redactions: List[Any] = field(default_factory=list)  # redact.Redaction spans
    contexts: List[Window] = field(default_factory=list)  # the longer units (windows.make_contexts)
    context_vectors: Optional[np.ndarray] = None


def check_metadata(metadata: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Validate user metadata: string keys, scalar values, no reserved names."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidInputError(f"metadata must be a dict, got {type(metadata).__name__}")
    out: Dict[str, Any] = {}
    for k, v in metadata.items():
        if not isinstance(k, str) or not k or k.startswith("$"):
            raise InvalidInputError(f"metadata key {k!r} must be a non-empty string not starting with '$'")
        if k in RESERVED_KEYS:
            raise InvalidInputError(f"metadata key {k!r} is reserved; reserved keys: {sorted(RESERVED_KEYS)}")
        if k.endswith(ISO_SUFFIX):
            raise InvalidInputError(f"metadata key {k!r}: the suffix {ISO_SUFFIX!r} is reserved for stored "
                                    "dates; rename the field")
        if v is None:
            continue
        if not isinstance(v, (str, int, float, bool)):
            raise InvalidInputError(f"metadata value for {k!r} must be a string, number or bool, "
                                    f"got {type(v).__name__}")
        if isinstance(v, float) and not math.isfinite(v):
            raise InvalidInputError(f"metadata value for {k!r} must be a finite number, got {v!r}")
        if isinstance(v, int) and not isinstance(v, bool) and not -2**63 <= v < 2**63:
            raise InvalidInputError(f"metadata value for {k!r} is too large for the store (64-bit "
                                    "integers); give it as a string")
        out[k] = v
    return out


# named when a folder holds no audio file: the common ones, then a count of the others
_COMMON = [e for e in (".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".webm") if e in AUDIO_EXTENSIONS]
_EXTENSIONS = ", ".join(_COMMON) + f" and {len(AUDIO_EXTENSIONS) - len(_COMMON)} more"


def collect_paths(paths: Iterable[Any], report: AddReport) -> List[str]:
    """Expand folders (recursively, audio extensions only) into absolute file paths, in order,
    without duplicates. Paths are OS paths (a name that is not UTF-8 holds surrogate escapes;
    `stored_path` gives the form the index keeps). Missing paths, folders without audio files,
    and a name that would clash with another file's once stored, become failures in `report`."""
    out: List[str] = []
    seen = set()
    for p in paths:
        p = os.path.abspath(os.path.expanduser(to_path(p)))
        if os.path.isdir(p):
            found = list(iter_audio_files(p))
            if not found:
                shown = stored_path(p)
                logger.warning("%s: no audio files found in this folder", shown)
                report.failed.append(FileFailure(shown, (
                    f"{shown}: no audio files in this folder or below (looked for {_EXTENSIONS}; hidden "
                    "files and folders are skipped); check the path, or convert the recordings to one of "
                    "these formats"), "InvalidInputError"))
                continue
        elif os.path.exists(p):
            found = [p]
        else:
            shown = stored_path(p)
            report.failed.append(FileFailure(shown, f"{shown}: no such file or folder; check the path",
                                             "AudioNotFoundError"))
            continue
        for f in found:
            if f in seen:
                continue
            seen.add(f)
            twin = name_clash(f)
            if twin is not None:
                shown = stored_path(f)
                report.failed.append(FileFailure(shown, (
                    f"{shown}: this name holds bytes that are not UTF-8 (shown as \\xNN) and another file "
                    "is named with those very characters, so the index cannot tell the two apart; rename it "
                    "(e.g. convmv -f latin1 -t utf8 --notest FILE)"), "InvalidInputError"))
                continue
            out.append(f)
    return out


class _File:
    """One file on its way through the stages. The reader thread fills `info`, `warnings` and
    `scanned` before it queues the file's "end"; the main thread reads them after that."""

    def __init__(self, path: str, hash: str = "", info: Optional[AudioInfo] = None,
                 channels: Optional[Dict[int, str]] = None):
        self.path, self.hash, self.info = path, hash, info
        self.key = stored_path(path)  # the name the index keeps (valid UTF-8; _paths.py)
        self.channels = channels or {}  # channel -> role; empty: mix all channels down
        self.streams: List[Tuple[Optional[int], Optional[str]]] = [(None, None)]
        self.warnings: List[str] = []
        self.scanned = 0.0  # seconds of audio decoded
        self.language: Optional[str] = None
        self.detected = False
        self.segments: List[Segment] = []
        self.spans: List[Tuple[float, float, int]] = []  # sentence spans: start, end, channel
        self.unit_vectors: List[np.ndarray] = []
        self.voice_vectors: List[np.ndarray] = []
        self.reported = 0.0  # seconds of progress reported
        self.failed = False

    def add_scanned(self, seconds: float) -> None:
        self.scanned += seconds

    def plan_streams(self) -> None:
        """Which audio streams to transcribe: each labelled channel on its own, or the mix."""
        n = self.info.channels if self.info is not None else 1
        if self.channels and n > 1:
            missing = sorted(c for c in self.channels if c >= n)
            if missing:
                raise InvalidInputError(f"{self.path}: channel(s) {missing} are labelled but the file has only "
                                        f"{n} channel(s); fix the channels mapping for this file")
            self.streams = sorted(self.channels.items())
        else:
            if self.channels:
                self.warnings.append("a channels mapping was given but the file is mono; channels mixed")
            self.streams = [(None, None)]


class _Stopped(Exception):
    pass


def _put(q: "queue.Queue[Any]", item: Any, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise _Stopped
        try:
            q.put(item, timeout=0.2)
            return
        except queue.Full:
            continue


def _read(files: List[_File], pipeline: Pipeline, out: "queue.Queue[Any]", stop: threading.Event) -> None:
    """Stage 1 (thread): decode and VAD each file in turn into speech chunks."""
    try:
        for f in files:
            try:
                if f.info is None:
                    f.info = probe(f.path)
                f.plan_streams()
                if f.info.channels > 2 and f.streams == [(None, None)]:
                    f.warnings.append(f"{f.info.channels} channels mixed down to one")
                for n, (channel, _) in enumerate(f.streams):
                    blocks = iter_blocks(f.path, 30.0, pipeline.decoder, f.warnings, channel)
                    count = f.add_scanned if n == 0 else None  # duration counts once
                    for chunk in iter_speech(blocks, pipeline.vad, on_audio=count):
                        chunk.channel = channel
                        _put(out, ("chunk", f, chunk), stop)
                _put(out, ("end", f), stop)
            except _Stopped:
                raise
            except BaseException as e:
                _put(out, ("error", f, e), stop)
        _put(out, ("done",), stop)
    except _Stopped:
        pass


def _preload(pipeline: Pipeline) -> None:
    """Load the embedding models while Whisper loads and decodes the first batch, instead of
    on the main thread once the first file is transcribed. A model that fails to load here
    fails again, and is reported, where it is used."""
    for model in (pipeline.embedder, pipeline.voice, pipeline.diarizer):
        load = getattr(model, "load", None)
        if callable(load):
            try:
                load()
            except Exception as e:  # reported by the stage that uses it
                logger.debug("preloading %r failed: %s", model, e)


def _fixed_language(transcriber: Any) -> Optional[str]:
    """The language every file gets without detection, or None when each file is detected."""
    options = getattr(transcriber, "options", None)
    if getattr(options, "language", None):
        return options.language
    if not hasattr(transcriber, "language_probs") or not getattr(transcriber, "multilingual", False):
        return "en" if hasattr(transcriber, "language_probs") else None
    return None


def _transcribe(pipeline: Pipeline, inbox: "queue.Queue[Any]", out: "queue.Queue[Any]",
                stop: threading.Event) -> None:
    """Stage 2 (thread): transcribe speech chunks in batches. With one language for every file,
    a batch may span files; with per-file detection, batches stay within a file and the file's
    language is detected from the chunks of its first batch. An engine with ``workers`` > 1
    (faster-whisper on a multi-core CPU) decodes that many batches at once, each on its own
    thread. Messages leave in arrival order."""
    transcriber = pipeline.transcriber
    options = getattr(transcriber, "options", None)
    size = max(1, getattr(options, "batch_size", 1))
    pending: List[Any] = []
    inflight: "collections.deque[Tuple[List[Any], Any]]" = collections.deque()
    pool: Optional[ThreadPoolExecutor] = None
    try:
        workers = max(1, int(getattr(transcriber, "workers", 1) or 1))
        if workers > 1:
            pool = ThreadPoolExecutor(workers, thread_name_prefix="speechsearch-asr")
        fixed = _fixed_language(transcriber)
        first = max(size, getattr(options, "language_chunks", 4))
        while True:
            msg = inbox.get()
            pending.append(msg)
            n = sum(1 for m in pending if m[0] == "chunk")
            last = msg[0] == "done"
            # a file whose language is still to be detected waits for `language_chunks` chunks
            need = size if fixed is not None or msg[0] != "chunk" or msg[1].detected else first
            if n >= need or last or (fixed is None and msg[0] in ("end", "error")):
                while len(inflight) >= workers:  # keep at most `workers` batches decoding
                    _emit(*inflight.popleft(), out, stop)
                inflight.append(_start(pending, transcriber, fixed, options, pool))
                pending = []
            if last:
                while inflight:
                    _emit(*inflight.popleft(), out, stop)
                return
    except _Stopped:
        pass
    except BaseException as e:  # a model that cannot load: nothing else can go on
        try:
            _put(out, ("fatal", e), stop)
        except _Stopped:
            pass
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _start(pending: List[Any], transcriber: Any, fixed: Optional[str], options: Any,
           pool: Optional[ThreadPoolExecutor]) -> Tuple[List[Any], Any]:
    """Begin transcribing the chunks among `pending` messages: returns the messages and a
    future (or a finished result, or the exception) for the batch."""
    chunks = [m for m in pending if m[0] == "chunk"]
    if not chunks:
        return pending, None
    files = {id(m[1]): m[1] for m in chunks}
    try:
        for f in files.values():
            if fixed is None and not f.detected:
                f.detected = True
                found = detect_language(transcriber, [m[2].audio for m in chunks if m[1] is f],
                                        getattr(options, "language_chunks", 4))
                f.language = found[0] if found else None
                if found:
                    logger.info("%s: language %s (p=%.2f)", f.path, *found)
            elif fixed is not None:
                f.language = fixed
        language = fixed if fixed is not None else next(iter(files.values())).language
        audio = [m[2].audio for m in chunks]
        if pool is None:
            return pending, transcribe_chunks(transcriber, audio, language)
        return pending, pool.submit(transcribe_chunks, transcriber, audio, language)
    except _FATAL:
        raise
    except Exception as e:
        return pending, e


def _emit(pending: List[Any], job: Any, out: "queue.Queue[Any]", stop: threading.Event) -> None:
    """Send a batch's messages on, in order, once its transcription is done. A failed batch
    blames the files in it; the others go on."""
    results: List[Any] = []
    if isinstance(job, Future):
        try:
            job = job.result()
        except _FATAL:
            raise
        except Exception as e:
            job = e
    if isinstance(job, Exception):
        for f in {id(m[1]): m[1] for m in pending if m[0] == "chunk"}.values():
            _put(out, ("error", f, job), stop)
        pending = [m for m in pending if m[0] != "chunk"]
    elif job is not None:
        results = job
    it = iter(results)
    for m in pending:
        _put(out, ("chunk", m[1], m[2], next(it)) if m[0] == "chunk" else m, stop)


def process_files(files: List[_File], pipeline: Pipeline, progress: Optional[Progress] = None
                  ) -> Iterator[Tuple[_File, Any]]:
    """Run files through decode+VAD (thread), transcription (thread) and embedding (here), so
    that both cores stay busy: the next chunks are decoded while a batch is transcribed, and
    acoustic vectors of one batch are computed while the next is transcribed. Yields
    ``(file, Processed)`` or ``(file, exception)`` for each file in order. Memory stays bounded:
    the queues hold at most a few batches of 30 s chunks."""
    size = max(1, getattr(getattr(pipeline.transcriber, "options", None), "batch_size", 1))
    size *= max(1, int(getattr(pipeline.transcriber, "workers", 1) or 1))
    stop = threading.Event()
    chunks_q: "queue.Queue[Any]" = queue.Queue(maxsize=2 * size)
    results_q: "queue.Queue[Any]" = queue.Queue(maxsize=2 * size)
    threads = [threading.Thread(target=_preload, args=(pipeline,), name="speechsearch-preload", daemon=True),
               threading.Thread(target=_read, args=(files, pipeline, chunks_q, stop),
                                name="speechsearch-decode", daemon=True),
               threading.Thread(target=_transcribe, args=(pipeline, chunks_q, results_q, stop),
                                name="speechsearch-asr", daemon=True)]
    for t in threads:
        t.start()
    try:
        while True:
            msg = results_q.get()
            kind = msg[0]
            if kind == "done":
                return
            if kind == "fatal":
                raise msg[1]
            f = msg[1]
            if f.failed:
                continue
            if kind == "error":
                if isinstance(msg[2], _FATAL):
                    raise msg[2]
                f.failed = True
                yield f, msg[2]
            elif kind == "chunk":
                try:
                    _take_chunk(f, msg[2], msg[3], pipeline, progress)
                except _FATAL:
                    raise
                except Exception as e:
                    f.failed = True
                    yield f, e
            else:  # "end"
                try:
                    processed = _finish(f, pipeline, progress)
                except _FATAL:
                    raise
                except Exception as e:
                    f.failed = True
                    yield f, e
                    continue
                yield f, processed
    finally:
        stop.set()
        for q in (chunks_q, results_q):  # unblock a thread waiting to put
            while True:
                try:
                    q.get_nowait()
                except queue.Empty:
                    break
        for t in threads:
            t.join(timeout=5)


def _take_chunk(f: _File, chunk: Any, segs: List[Segment], pipeline: Pipeline,
                progress: Optional[Progress]) -> None:
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
    release_heap()
    if progress is not None and channel == f.streams[0][0]:
        off, start, length = chunk.pieces[-1]
        pos = (start + length) / SAMPLE_RATE
        if pos > f.reported:
            progress(pos - f.reported)
            f.reported = pos


def _finish(f: _File, pipeline: Pipeline, progress: Optional[Progress]) -> Processed:
    duration = f.scanned
    info = f.info
    if info is not None and info.duration and duration < info.duration - max(1.0, 0.02 * info.duration):
        msg = (f"decoded {duration:.1f} s of the {info.duration:.1f} s the file announces; it looks "
               "truncated (indexed what could be decoded; re-export or re-copy the file)")
        logger.warning("%s: %s", f.path, msg)
        f.warnings.append(msg)
    if progress is not None and duration > f.reported:
        progress(duration - f.reported)
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
    units = [(a, b, _best_window(a, b, windows, None if mixed else c)) for a, b, c in f.spans]
    return Processed(duration, segments, windows, vectors, f.language if segments else None, f.warnings,
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


def process_file(path: str, pipeline: Pipeline, progress: Optional[Progress] = None,
                 info: Optional[AudioInfo] = None) -> Processed:
    """Transcribe and embed one file (touching nothing on disk). Raises AudioError for a file
    that cannot be used."""
    for _, result in process_files([_File(path, "", info)], pipeline, progress):
        if isinstance(result, BaseException):
            raise result
        return result
    raise RuntimeError(f"{path}: the pipeline ended without a result")  # pragma: no cover


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


def _best_window(start: float, end: float, windows: List[Window], channel: Optional[int] = None) -> int:
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


def store_units(acoustic_store: ChromaStore, path: str, hash: str, ids: List[str],
                units: List[Tuple[float, float, int]], vectors: np.ndarray, windows: List[Window]) -> List[str]:
    """Write per-sentence (acoustic or voice) vectors, each keyed to the window it falls in;
    returns their ids."""
    keep = [n for n, u in enumerate(units) if u[2] >= 0]
    rows = [(f"{ids[units[n][2]]}-a{n:04d}", {"path": path, "file_hash": hash, "start": float(units[n][0]),
             "end": float(units[n][1]), "channel": windows[units[n][2]].channel, "window_id": ids[units[n][2]]})
            for n in keep]
    acoustic_store.upsert([r[0] for r in rows], vectors[keep], [""] * len(rows), [r[1] for r in rows])
    return [r[0] for r in rows]


def backfill_acoustic(catalog: Catalog, acoustic_store: ChromaStore, path: str, pipeline: Pipeline) -> None:
    """Add acoustic vectors to an indexed file from its stored transcript, decoding the audio
    once more (streamed) to cut each sentence out of it. As in indexing, a file whose channels
    were transcribed one by one has each sentence cut from its own channel and keyed to a
    window of that channel; a mono or mixed-down file uses the mix."""
    known = catalog.get_file(path)
    if known is None:
        raise InvalidInputError(f"{path}: not in the index")
    audio = os_path(path)
    if not os.path.exists(audio) or file_hash(audio) != known.hash:
        raise AudioError(path, "the file is missing or changed since it was indexed; add it again")
    segments = _record_segments({"segments": catalog.transcript(path)}, path)
    rows = catalog.window_rows(path)
    windows = [Window(start, end, "", channel, speaker) for _, start, end, channel, speaker in rows]
    mixed = not windows or any(w.channel == -1 for w in windows) or probe(audio).channels < 2
    streams: List[Optional[int]] = [None] if mixed else sorted({s.channel for s in segments})
    units: List[Tuple[float, float, int]] = []
    clips: List[np.ndarray] = []
    for channel in streams:
        part = segments if channel is None else [s for s in segments if s.channel == channel]
        for (a, b), clip in _sentence_audio(audio, sentences(part, pipeline.windows), pipeline.decoder, channel):
            units.append((a, b, _best_window(a, b, windows, channel)))
            clips.append(clip)
    old = set(acoustic_store.ids_where({"path": path}))
    new: List[str] = []
    if clips:
        vectors = pipeline.acoustic.embed_many(clips)
        new = store_units(acoustic_store, path, known.hash, [r[0] for r in rows], units, vectors, windows)
    acoustic_store.delete_ids(sorted(old - set(new)))
    catalog.set_acoustic(path)


def _sentence_audio(path: str, sents: List[Any], decoder: str, channel: Optional[int]
                    ) -> Iterator[Tuple[Tuple[float, float], np.ndarray]]:
    """((start, end), audio) of each sentence (in time order), from one streamed decode of the
    file's mix or of one `channel`; sentences under 1 s are widened to 1 s."""
    sents = sorted(sents, key=lambda s: s.start)
    buffer, offset, i = np.zeros(0, np.float32), 0, 0

    def cut(sent: Any) -> np.ndarray:
        a, b = int(sent.start * SAMPLE_RATE) - offset, int(sent.end * SAMPLE_RATE) - offset
        if b - a < MIN_UNIT_SAMPLES:
            mid = (a + b) // 2
            a, b = mid - MIN_UNIT_SAMPLES // 2, mid + MIN_UNIT_SAMPLES // 2
        return buffer[max(0, a):max(0, b)]

    for block in iter_blocks(path, 30.0, decoder, None, channel):
        buffer = np.concatenate([buffer, block])
        while i < len(sents) and int(sents[i].end * SAMPLE_RATE) + MIN_UNIT_SAMPLES // 2 <= offset + len(buffer):
            yield (sents[i].start, sents[i].end), cut(sents[i])
            i += 1
        keep = int(sents[i].start * SAMPLE_RATE) - offset - SAMPLE_RATE if i < len(sents) else len(buffer)
        keep = min(max(keep, 0), len(buffer))
        buffer, offset = buffer[keep:], offset + keep
    for sent in sents[i:]:  # the last sentences, at the very end of the audio
        clip = cut(sent)
        if len(clip):
            yield (sent.start, sent.end), clip


def window_ids(path: str, hash: str, n: int, kind: str = "") -> List[str]:
    """Deterministic row ids of a file's windows (`kind` "") or contexts ("c")."""
    key = hashlib.blake2b(path.encode("utf-8"), digest_size=8).hexdigest()
    return [f"{key}-{hash[:12]}-{kind}{i:05d}" for i in range(n)]


def window_metadata(stored: Dict[str, Any], path: str, hash: str, w: Window, models: Dict[str, str],
                    language: Optional[str]) -> Dict[str, Any]:
    """What Chroma holds for one window: the file's (encoded) user metadata and the built-ins."""
    meta = dict(stored, path=path, file_hash=hash, start=float(w.start), end=float(w.end), channel=w.channel,
                asr_model=models.get("asr_model", ""), text_model=models.get("text_model", ""))
    if language:
        meta["language"] = language
    if w.speaker:
        meta["speaker"] = w.speaker
    return meta


def reembed(catalog: Catalog, target: ChromaStore, embedder: TextEmbedder, models: Dict[str, str],
            progress: Optional[Callable[[int], None]] = None, context_target: Optional[ChromaStore] = None,
            options: Optional[WindowOptions] = None) -> int:
    """Write every ready file's windows into `target` with `embedder`'s vectors, from the texts the
    catalogue holds (nothing is transcribed again), and, with `context_target`, its context units
    cut anew from the stored transcript with `options`. Returns the number of windows."""
    types, n = field_types(catalog), 0
    for info in catalog.files():
        if info.status != "ready":
            continue
        rows = catalog.windows(info.path)
        if not rows:
            continue
        stored = encode_metadata(info.metadata, types)
        windows = [w for _, w in rows]
        contexts: List[Window] = []
        if context_target is not None:
            segments = _record_segments({"segments": catalog.transcript(info.path)}, info.path)
            contexts = build_contexts(segments, options or WindowOptions(),
                                      mixed_channels=any(w.channel == -1 for w in windows))
        vectors, context_vectors = embed_units(embedder, windows, contexts)
        file_models = dict(info.models, **models)
        metas = [window_metadata(stored, info.path, info.hash, w, file_models, info.language) for w in windows]
        target.upsert([i for i, _ in rows], vectors, [w.text for w in windows], metas)
        if contexts and context_target is not None:
            store_contexts(context_target, info.path, info.hash, contexts, context_vectors, stored,
                           file_models, info.language)
        n += len(rows)
        if progress is not None:
            progress(len(rows))
    return n


def store_contexts(context_store: ChromaStore, path: str, hash: str, contexts: List[Window], vectors: np.ndarray,
                   stored: Dict[str, Any], models: Dict[str, str], language: Optional[str]) -> List[str]:
    """Write a file's context units; they carry the same metadata as its windows (for filters).
    Returns their ids."""
    metas = [window_metadata(stored, path, hash, c, models, language) for c in contexts]
    ids = window_ids(path, hash, len(contexts), "c")
    context_store.upsert(ids, vectors, [c.text for c in contexts], metas)
    return ids


def commit_file(catalog: Catalog, store: ChromaStore, path: str, hash: str, processed: Processed,
                metadata: Dict[str, Any], models: Dict[str, str],
                acoustic_store: Optional[ChromaStore] = None, voice_store: Optional[ChromaStore] = None,
                context_store: Optional[ChromaStore] = None) -> None:
    """Replace whatever the index holds for `path` with `processed`, never losing the old copy
    before the new one is ready. The metadata is checked before anything is written; the new rows
    go in beside the old ones (their ids carry the content hash, and searches serve only rows of
    the hash the catalogue names); the catalogue switches to them in one transaction; only then
    are the old rows deleted. A failure before the switch leaves the file as it was, searchable."""
    types = merge_field_types(field_types(catalog), field_types_of(metadata))
    stored = encode_metadata(metadata, types)  # a bad value fails here, before any write
    stores = [s for s in (store, context_store, acoustic_store, voice_store) if s is not None]
    old = {s: set(s.ids_where({"path": path})) for s in stores}
    catalog.register_file(path, hash)
    ids = window_ids(path, hash, len(processed.windows))
    new: Dict[ChromaStore, List[str]] = {}
    try:
        metas = [window_metadata(stored, path, hash, w, models, processed.language) for w in processed.windows]
        store.upsert(ids, processed.vectors, [w.text for w in processed.windows], metas)
        new[store] = ids
        if context_store is not None and processed.contexts and processed.context_vectors is not None:
            new[context_store] = store_contexts(context_store, path, hash, processed.contexts,
                                                processed.context_vectors, stored, models, processed.language)
        if acoustic_store is not None and processed.unit_vectors is not None:
            new[acoustic_store] = store_units(acoustic_store, path, hash, ids, processed.units,
                                              processed.unit_vectors, processed.windows)
        if voice_store is not None and processed.voice_vectors is not None:
            new[voice_store] = store_units(voice_store, path, hash, ids, processed.units, processed.voice_vectors,
                                           processed.windows)
    except BaseException:
        _forget(new, old)
        raise
    transcript = [{"start": round(s.start, 3), "end": round(s.end, 3), "text": s.text,
                   "channel": s.channel, "speaker": s.speaker, "language": processed.language,
                   "words": [[round(w.start, 3), round(w.end, 3), w.text, round(w.probability, 3)]
                             for w in s.words]} for s in processed.segments]
    if types != field_types(catalog):
        catalog.set_meta({"fields": json.dumps(types, sort_keys=True)})
    catalog.finish_file(path, hash, duration=processed.duration, ids=ids, windows=processed.windows,
                        language=processed.language, models=models, metadata=metadata,
                        warnings=processed.warnings, transcript=transcript,
                        acoustic="acoustic_model" in models and acoustic_store is not None,
                        redactions=[(round(r.start, 3), round(r.end, 3), r.kind, r.channel)
                                    for r in processed.redactions])
    for s, before in old.items():  # the switch is done: the old rows go
        s.delete_ids(sorted(before - set(new.get(s, ()))))


def _forget(new: Dict[ChromaStore, List[str]], old: Dict[ChromaStore, set]) -> None:
    """After a failed commit, delete the new rows written so far (never one that was there before:
    a file indexed again with the same content rewrites its own ids). Best effort: rows left
    behind carry a hash the catalogue does not name, so searches never serve them."""
    for s, written in new.items():
        try:
            s.delete_ids(sorted(set(written) - old.get(s, set())))
        except Exception as e:
            logger.debug("could not delete the rows of a failed commit from %s: %s", s.name, e)


def field_types(catalog: Catalog) -> Dict[str, str]:
    """The type of every user metadata field seen in this index (see filters.py)."""
    return json.loads(catalog.get_meta("fields") or "{}")


def record_field_types(catalog: Catalog, metadata: Dict[str, Any]) -> Dict[str, str]:
    """Merge the types of `metadata`'s fields into the index's record, and return the record."""
    new = field_types_of(metadata)
    return catalog.update_meta_json("fields", lambda known: merge_field_types(known, new), {})


def update_metadata(catalog: Catalog, store: ChromaStore, path: str, metadata: Dict[str, Any],
                    context_store: Optional[ChromaStore] = None) -> None:
    """Replace the user metadata of an indexed file without transcribing it again."""
    known = catalog.get_file(path)
    if known is None:
        raise InvalidInputError(f"{path}: not in the index")
    rows = catalog.window_rows(path)
    types = merge_field_types(field_types(catalog), field_types_of(metadata))
    stored = encode_metadata(metadata, types)  # a bad value fails here, before any write
    record_field_types(catalog, metadata)
    dropped = {k: None for old in known.metadata if old not in metadata  # None deletes a key in Chroma
               for k in (old, old + ISO_SUFFIX)}
    models = dict(known.models, text_model=catalog.get_meta("text_model") or known.models.get("text_model", ""))
    metas = [dict(dropped, **window_metadata(stored, path, known.hash, Window(start, end, "", channel, speaker),
                                             models, known.language))
             for _, start, end, channel, speaker in rows]
    store.update_metadata([r[0] for r in rows], metas)
    if context_store is not None:
        contexts = context_store.get_where({"path": path})
        context_store.update_metadata(
            [r.id for r, _ in contexts],
            [dict(dropped, **window_metadata(stored, path, known.hash, Window(float(r.metadata["start"]),
                  float(r.metadata["end"]), "", int(r.metadata.get("channel", 0)), r.metadata.get("speaker")),
                  models, known.language)) for r, _ in contexts])
    catalog.set_file_metadata(path, metadata)


_LIBC: Any = None


def release_heap() -> None:
    """Hand freed heap memory back to the OS (glibc ``malloc_trim``), once per speech chunk.

    Decoded chunks are 1-2 MB arrays; freed, glibc keeps them in a fragmented heap and RSS creeps
    up over a long file. Fixing glibc's mmap threshold at 128 KiB (what this replaced) kept a
    30-minute file's peak at 1193 MB but made every large CTranslate2 buffer an mmap/munmap pair:
    ingest ran 46.2 s instead of 34.4 s. Trimming once per chunk kept most of the saving (1299
    MB against 1568 MB untouched) at the untouched speed (36.4 s), same run. Linux/glibc only;
    SPEECHSEARCH_KEEP_MALLOC=1 leaves malloc alone."""
    global _LIBC
    if _LIBC is False or os.environ.get("SPEECHSEARCH_KEEP_MALLOC") or not sys.platform.startswith("linux"):
        return
    try:
        if _LIBC is None:
            import ctypes

            _LIBC = ctypes.CDLL("libc.so.6")
        _LIBC.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        _LIBC = False


def parse_channels(value: Any, where: str = "channels") -> Dict[int, str]:
    """A channel -> role mapping from ``{"0": "agent", "1": "customer"}``, ``"agent,customer"``
    (roles in channel order) or ``"0=agent,1=customer"``."""
    if value is None or value == "" or value == {}:
        return {}
    items: List[Tuple[Any, Any]]
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",")]
        items = [tuple(p.split("=", 1)) if "=" in p else (i, p) for i, p in enumerate(parts)]  # type: ignore[misc]
    elif isinstance(value, dict):
        items = list(value.items())
    else:
        raise InvalidInputError(f"{where}: expected a dict like {{0: 'agent', 1: 'customer'}} or a string "
                                f"like 'agent,customer', got {type(value).__name__}")
    out: Dict[int, str] = {}
    for k, v in items:
        try:
            ch = int(str(k).strip())
        except ValueError:
            raise InvalidInputError(f"{where}: channel {k!r} is not a channel number (0, 1, ...)") from None
        if ch < 0 or not isinstance(v, str) or not v.strip():
            raise InvalidInputError(f"{where}: channel {k!r} needs a non-empty role name, like 'agent'")
        out[ch] = v.strip()
    return out


def ingest(paths: Iterable[str], catalog: Catalog, store: ChromaStore, pipeline: Pipeline,
           metadata: Optional[Dict[str, Any]] = None, progress: Optional[Any] = None,
           acoustic_store: Optional[ChromaStore] = None, voice_store: Optional[ChromaStore] = None,
           manifest: Optional[Dict[str, Dict[str, Any]]] = None,
           processor: Optional[Callable[..., Iterator[Tuple[Any, Any]]]] = None,
           context_store: Optional[ChromaStore] = None) -> AddReport:
    """Index every audio file under `paths`. `progress` is a tqdm-like bar counted in seconds of
    audio (``total``, ``update``, ``set_postfix_str``), or None. `manifest` maps absolute paths
    to per-file metadata, laid over `metadata`; a ``channels`` entry in either labels channels.
    With `metadata` None (not given), a file the index holds keeps its metadata, the manifest's
    row laid over it; a dict (even empty) replaces it.
    `processor` replaces :func:`process_files` (same arguments, same ``(file, result)`` pairs,
    in any order): :mod:`speechsearch.distributed` runs the files on Ray workers with it."""
    t0 = time.perf_counter()
    report = AddReport()
    base = dict(metadata or {})
    base_channels = parse_channels(base.pop("channels", None)) or pipeline.channels
    check_metadata(base)
    files = collect_paths(paths, report)
    rows = manifest or {}
    named = set(files) | {stored_path(f) for f in files}
    unused = sorted(set(rows) - named)
    if unused:
        logger.warning("%d manifest row(s) name files not among the paths added, e.g. %s",
                       len(unused), ", ".join(unused[:3]))
    todo: List[Tuple[str, str, Optional[AudioInfo], Dict[str, Any], Dict[int, str]]] = []
    for f in files:
        key = stored_path(f)  # what the catalogue, the store and the report name it by
        try:
            known = catalog.get_file(key)
            # without `metadata`, a file indexed before keeps its metadata (a manifest row on top)
            kept = base if metadata is not None or known is None else known.metadata
            row = dict(kept, **rows.get(f, rows.get(key, {})))
            channels = parse_channels(row.pop("channels", None), f"{key}: channels") or base_channels
            meta = check_metadata(row)
            h = file_hash(f)
            if known is not None and known.status == "ready" and known.hash == h:
                reason = "unchanged"
                if meta and meta != known.metadata:
                    update_metadata(catalog, store, key, meta, context_store)
                    reason = "unchanged; metadata updated"
                report.skipped.append(FileResult(key, known.duration, known.segments, reason))
                continue
            try:
                info: Optional[AudioInfo] = probe(f)
            except AudioError:
                info = None  # probed again, and reported, when processed
            todo.append((f, h, info, meta, channels))
        except _FATAL:
            raise
        except Exception as e:  # one bad file must not stop the batch
            report.failed.append(_failure(f, e, "cannot read the file" if isinstance(e, OSError) else ""))
    if progress is not None:
        progress.total = round(sum(t[2].duration for t in todo if t[2] is not None), 1)
        progress.refresh()

    def advance(seconds: float) -> None:  # the container's duration can be a little short
        if progress.n + seconds > progress.total:
            progress.total = progress.n + seconds
        progress.update(seconds)

    states = [_File(f, h, info, channels) for f, h, info, _, channels in todo]
    metas = {t[0]: t[3] for t in todo}
    results = (processor or process_files)(states, pipeline, advance if progress is not None else None) \
        if states else iter(())  # nothing to transcribe: no model is loaded
    for f, result in results:
        if progress is not None:
            progress.set_postfix_str(os.path.basename(f.key))
        if not isinstance(result, BaseException):
            try:
                commit_file(catalog, store, f.key, f.hash, result, metas[f.path], pipeline.models,
                            acoustic_store, voice_store, context_store)
            except _FATAL:
                raise
            except Exception as e:
                result = e
        if isinstance(result, BaseException):  # one bad file must not stop the batch
            report.failed.append(_failure(f.path, result))
        else:
            report.added.append(FileResult(f.key, result.duration, len(result.windows),
                                           "" if result.windows else "no speech found",
                                           tuple(result.warnings)))
    report.seconds = time.perf_counter() - t0
    return report


def _failure(path: str, e: BaseException, what: str = "") -> FileFailure:
    """A report entry for one file that failed: the library's own errors as they are, anything
    else as unexpected (logged with its traceback), named by the file's stored name."""
    key = stored_path(path)
    msg = str(e).replace(path, key)
    if isinstance(e, SpeechSearchError):
        logger.warning("%s", msg)
    elif what:
        logger.warning("%s: %s (%s)", key, what, msg)
        msg = f"{what} ({msg})"
    else:
        logger.error("%s: unexpected error", key, exc_info=e)
        msg = f"unexpected {type(e).__name__}: {msg}"
    return FileFailure(key, msg if key in msg else f"{key}: {msg}", type(e).__name__)


# ------------------------------------------------------------- transcripts in and out ---------
def export_records(catalog: Catalog, paths: Optional[Iterable[str]] = None) -> Iterator[Dict[str, Any]]:
    """One JSON-able record per ready file: its transcript (segments, words, channels, speakers),
    language, metadata, models and redacted spans."""
    wanted = None if paths is None else {stored_path(os.path.abspath(to_path(p))) for p in paths}
    for info in catalog.files():
        if info.status != "ready" or (wanted is not None and info.path not in wanted):
            continue
        yield {"path": info.path, "hash": info.hash, "duration": info.duration, "language": info.language,
               "metadata": info.metadata, "models": info.models, "added_at": info.added_at,
               "segments": catalog.transcript(info.path),
               "redactions": [list(r) for r in catalog.redactions(info.path)]}


def _record_segments(rec: Dict[str, Any], where: str) -> List[Segment]:
    try:
        return [Segment(float(s["start"]), float(s["end"]), str(s["text"]),
                        tuple(Word(float(w[0]), float(w[1]), str(w[2]), float(w[3]) if len(w) > 3 else 1.0)
                              for w in s.get("words", [])),
                        channel=int(s.get("channel") or 0), speaker=s.get("speaker"))
                for s in rec["segments"]]
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise InvalidInputError(f"{where}: a segment is malformed ({type(e).__name__}: {e}); each needs "
                                "start, end, text and words as [start, end, word, probability]") from None


def import_records(lines: Iterable[Tuple[str, str]], catalog: Catalog, store: ChromaStore, pipeline: Pipeline,
                   context_store: Optional[ChromaStore] = None, acoustic_store: Optional[ChromaStore] = None,
                   voice_store: Optional[ChromaStore] = None) -> AddReport:
    """Index transcripts exported by `export_records` (``(where, json line)`` pairs) without
    transcribing: windows and text vectors are built here. Bad lines are reported, not fatal.
    A file the index holds is replaced: its acoustic and voice vectors, made for its old
    windows, are deleted with them (`backfill_acoustic` makes acoustic ones again)."""
    t0 = time.perf_counter()
    report = AddReport()
    for where, line in lines:
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict) or "path" not in rec or "segments" not in rec:
                raise InvalidInputError(f"{where}: not a transcript record (needs at least path and segments)")
            path = stored_path(os.path.abspath(os.path.expanduser(str(rec["path"]))))
            segments = _record_segments(rec, where)
            warnings: List[str] = []
            hash = str(rec.get("hash") or "")
            if os.path.exists(os_path(path)):
                current = file_hash(os_path(path))
                if hash and current != hash:
                    warnings.append("the audio changed since this transcript was made")
                hash = current
            else:
                warnings.append("audio file not found: search works, clips do not")
                hash = hash or hashlib.blake2b(path.encode("utf-8"), digest_size=16).hexdigest()
            meta = check_metadata(rec.get("metadata") or {})
            redactions: List[Any] = []
            if pipeline.redact:
                segments, redactions = redact(segments)
            windows = build_windows(segments, pipeline.windows)
            contexts = build_contexts(segments, pipeline.windows) if context_store is not None else []
            vectors, context_vectors = embed_units(pipeline.embedder, windows, contexts)
            recorded = rec.get("models") or {}
            models = {k: v for k, v in pipeline.models.items() if k not in ("acoustic_model", "voice_model")}
            models.update({k: recorded[k] for k in ("asr_engine", "asr_model") if k in recorded})
            if acoustic_store is not None and acoustic_store.ids_where({"path": path}):
                warnings.append("its acoustic vectors were made for the old transcript and are deleted; "
                                "`speechsearch reindex --acoustic` (Library.reindex_acoustic) makes them again "
                                "from the audio")
            if voice_store is not None and voice_store.ids_where({"path": path}):
                warnings.append("its voice vectors were made for the old transcript and are deleted; remove and "
                                "add the audio again to search it by voice")
            processed = Processed(float(rec.get("duration") or (segments[-1].end if segments else 0.0)), segments,
                                  windows, vectors, rec.get("language"), warnings, redactions=redactions,
                                  contexts=contexts, context_vectors=context_vectors)
            commit_file(catalog, store, path, hash, processed, meta, models, acoustic_store, voice_store,
                        context_store)
            report.added.append(FileResult(path, processed.duration, len(windows),
                                           "imported transcript", tuple(warnings)))
        except _FATAL:
            raise
        except (SpeechSearchError, ValueError, OSError) as e:
            report.failed.append(FileFailure(where, f"{where}: {e}", type(e).__name__))
        except Exception as e:  # one bad record must not stop the rest
            logger.error("%s: unexpected error", where, exc_info=e)
            report.failed.append(FileFailure(where, f"{where}: unexpected {type(e).__name__}: {e}",
                                             type(e).__name__))
    report.seconds = time.perf_counter() - t0
    return report
