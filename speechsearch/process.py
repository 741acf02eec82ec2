"""The indexing threads: decode+VAD -> transcription in batches -> per-file assembly.

`process_files` runs a batch of files through three stages at once so that every core stays
busy: a decode thread (probe, ffmpeg, VAD) queues speech chunks, an ASR thread transcribes them in
batches (several at once with a multi-worker engine) and queues the results in arrival order,
and the calling thread assembles each file (assemble.py) and yields it. Nothing touches the
index: committing is commit.py's job. The threads talk in small typed messages:

    decode -> ASR    ChunkReady(file, chunk) ... FileDone(file) | FileFailed(file, error), ..., AllDone()
    ASR -> caller    Transcribed(file, chunk, segments) ... FileDone | FileFailed, ..., AllDone() | Fatal(error)
"""

from __future__ import annotations

import collections
import os
import queue
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional, Tuple, Union

from ._log import logger
from .assemble import assemble, take_chunk
from .audio import SAMPLE_RATE, AudioInfo, iter_blocks, probe
from .pipeline import FATAL, FileJob, Pipeline, Processed, Progress
from .segment import SpeechChunk, iter_speech
from .transcribe import detect_language, transcribe_chunks
from .types import Segment

__all__ = ["process_files", "process_file", "release_heap", "ChunkReady", "Transcribed", "FileDone", "FileFailed",
           "AllDone", "Fatal"]


# ------------------------------------------------------------- messages between the threads --
@dataclass(frozen=True, eq=False)
class ChunkReady:
    """Decode -> ASR: one speech chunk of `file`, to transcribe."""

    file: FileJob
    chunk: SpeechChunk


@dataclass(frozen=True, eq=False)
class Transcribed:
    """ASR -> caller: one speech chunk of `file` and its segments (in chunk time)."""

    file: FileJob
    chunk: SpeechChunk
    segments: List[Segment]


@dataclass(frozen=True, eq=False)
class FileDone:
    """Every chunk of `file` has been sent before this."""

    file: FileJob


@dataclass(frozen=True, eq=False)
class FileFailed:
    """`file` cannot be indexed; its other messages are dropped."""

    file: FileJob
    error: BaseException


@dataclass(frozen=True, eq=False)
class AllDone:
    """No more files."""


@dataclass(frozen=True, eq=False)
class Fatal:
    """ASR -> caller: the batch cannot go on (a model that cannot load)."""

    error: BaseException


ToASR = Union[ChunkReady, FileDone, FileFailed, AllDone]
FromASR = Union[Transcribed, FileDone, FileFailed, AllDone, Fatal]


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


# ------------------------------------------------------------- stage 1: decode and VAD -------
def _read(files: List[FileJob], pipeline: Pipeline, out: "queue.Queue[ToASR]", stop: threading.Event) -> None:
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
                        _put(out, ChunkReady(f, chunk), stop)
                _put(out, FileDone(f), stop)
            except _Stopped:
                raise
            except BaseException as e:
                _put(out, FileFailed(f, e), stop)
        _put(out, AllDone(), stop)
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


# ------------------------------------------------------------- stage 2: transcription --------
def _fixed_language(transcriber: Any) -> Optional[str]:
    """The language every file gets without detection, or None when each file is detected."""
    options = getattr(transcriber, "options", None)
    if getattr(options, "language", None):
        return options.language
    if not hasattr(transcriber, "language_probs") or not getattr(transcriber, "multilingual", False):
        return "en" if hasattr(transcriber, "language_probs") else None
    return None


def _transcribe(pipeline: Pipeline, inbox: "queue.Queue[ToASR]", out: "queue.Queue[FromASR]",
                stop: threading.Event) -> None:
    """Stage 2 (thread): transcribe speech chunks in batches. With one language for every file,
    a batch may span files; with per-file detection, batches stay within a file and the file's
    language is detected from the chunks of its first batch. An engine with ``workers`` > 1
    (faster-whisper on a multi-core CPU) decodes that many batches at once, each on its own
    thread. Messages leave in arrival order."""
    transcriber = pipeline.transcriber
    options = getattr(transcriber, "options", None)
    size = max(1, getattr(options, "batch_size", 1))
    pending: List[ToASR] = []
    inflight: "collections.deque[Tuple[List[ToASR], Any]]" = collections.deque()
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
            n = sum(1 for m in pending if isinstance(m, ChunkReady))
            last = isinstance(msg, AllDone)
            # a file whose language is still to be detected waits for `language_chunks` chunks
            need = size if fixed is not None or not isinstance(msg, ChunkReady) or msg.file.detected else first
            if n >= need or last or (fixed is None and isinstance(msg, (FileDone, FileFailed))):
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
            _put(out, Fatal(e), stop)
        except _Stopped:
            pass
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _start(pending: List[ToASR], transcriber: Any, fixed: Optional[str], options: Any,
           pool: Optional[ThreadPoolExecutor]) -> Tuple[List[ToASR], Any]:
    """Begin transcribing the chunks among `pending` messages: returns the messages and a
    future (or a finished result, or the exception) for the batch."""
    chunks = [m for m in pending if isinstance(m, ChunkReady)]
    if not chunks:
        return pending, None
    files = {id(m.file): m.file for m in chunks}
    try:
        for f in files.values():
            if fixed is None and not f.detected:
                f.detected = True
                found = detect_language(transcriber, [m.chunk.audio for m in chunks if m.file is f],
                                        getattr(options, "language_chunks", 4))
                f.language = found[0] if found else None
                if found:
                    logger.info("%s: language %s (p=%.2f)", f.path, *found)
            elif fixed is not None:
                f.language = fixed
        language = fixed if fixed is not None else next(iter(files.values())).language
        audio = [m.chunk.audio for m in chunks]
        if pool is None:
            return pending, transcribe_chunks(transcriber, audio, language)
        return pending, pool.submit(transcribe_chunks, transcriber, audio, language)
    except FATAL:
        raise
    except Exception as e:
        return pending, e


def _emit(pending: List[ToASR], job: Any, out: "queue.Queue[FromASR]", stop: threading.Event) -> None:
    """Send a batch's messages on, in order, once its transcription is done. A failed batch
    blames the files in it; the others go on."""
    results: List[Any] = []
    if isinstance(job, Future):
        try:
            job = job.result()
        except FATAL:
            raise
        except Exception as e:
            job = e
    if isinstance(job, Exception):
        for f in {id(m.file): m.file for m in pending if isinstance(m, ChunkReady)}.values():
            _put(out, FileFailed(f, job), stop)
        pending = [m for m in pending if not isinstance(m, ChunkReady)]
    elif job is not None:
        results = job
    it = iter(results)
    for m in pending:
        _put(out, Transcribed(m.file, m.chunk, next(it)) if isinstance(m, ChunkReady) else m, stop)


# ------------------------------------------------------------- stage 3: each file, here ------
def process_files(files: List[FileJob], pipeline: Pipeline, progress: Optional[Progress] = None
                  ) -> Iterator[Tuple[FileJob, Any]]:
    """Run files through decode+VAD (thread), transcription (thread) and embedding (here), so
    that both cores stay busy: the next chunks are decoded while a batch is transcribed, and
    acoustic vectors of one batch are computed while the next is transcribed. Yields
    ``(file, Processed)`` or ``(file, exception)`` for each file in order. Memory stays bounded:
    the queues hold at most a few batches of 30 s chunks."""
    size = max(1, getattr(getattr(pipeline.transcriber, "options", None), "batch_size", 1))
    size *= max(1, int(getattr(pipeline.transcriber, "workers", 1) or 1))
    stop = threading.Event()
    chunks_q: "queue.Queue[ToASR]" = queue.Queue(maxsize=2 * size)
    results_q: "queue.Queue[FromASR]" = queue.Queue(maxsize=2 * size)
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
            if isinstance(msg, AllDone):
                return
            if isinstance(msg, Fatal):
                raise msg.error
            f = msg.file
            if f.failed:
                continue
            if isinstance(msg, FileFailed):
                if isinstance(msg.error, FATAL):
                    raise msg.error
                f.failed = True
                yield f, msg.error
            elif isinstance(msg, Transcribed):
                try:
                    take_chunk(f, msg.chunk, msg.segments, pipeline)
                    release_heap()
                    _advance(f, msg.chunk, progress)
                except FATAL:
                    raise
                except Exception as e:
                    f.failed = True
                    yield f, e
            else:  # FileDone
                try:
                    processed = _finish(f, pipeline, progress)
                except FATAL:
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


def _advance(f: FileJob, chunk: Any, progress: Optional[Progress]) -> None:
    """Report the seconds of `f` decoded up to the end of `chunk` (of its first stream)."""
    channel = getattr(chunk, "channel", None)
    if progress is not None and channel == f.streams[0][0]:
        off, start, length = chunk.pieces[-1]
        pos = (start + length) / SAMPLE_RATE
        if pos > f.reported:
            progress(pos - f.reported)
            f.reported = pos


def _finish(f: FileJob, pipeline: Pipeline, progress: Optional[Progress]) -> Processed:
    """`f` once its last chunk is in: a warning when less decoded than the file announces, the
    rest of its progress, then its assembly."""
    duration = f.scanned
    info = f.info
    if info is not None and info.duration and duration < info.duration - max(1.0, 0.02 * info.duration):
        msg = (f"decoded {duration:.1f} s of the {info.duration:.1f} s the file announces; it looks "
               "truncated (indexed what could be decoded; re-export or re-copy the file)")
        logger.warning("%s: %s", f.path, msg)
        f.warnings.append(msg)
    if progress is not None and duration > f.reported:
        progress(duration - f.reported)
    return assemble(f, pipeline)


def process_file(path: str, pipeline: Pipeline, progress: Optional[Progress] = None,
                 info: Optional[AudioInfo] = None) -> Processed:
    """Transcribe and embed one file (touching nothing on disk). Raises AudioError for a file
    that cannot be used."""
    for _, result in process_files([FileJob(path, "", info)], pipeline, progress):
        if isinstance(result, BaseException):
            raise result
        return result
    raise RuntimeError(f"{path}: the pipeline ended without a result")  # pragma: no cover


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
