"""Index files: decode -> VAD -> transcribe -> windows -> embed -> store, one file at a time.

`process_file` does the heavy work and touches nothing on disk; `commit_file` writes one file's
windows to the catalogue and the vector store (see catalog.py for why an interrupted add is safe);
`ingest` runs a batch, keeps going past bad files and reports them at the end.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np

from ._log import logger
from .audio import SAMPLE_RATE, AudioInfo, file_hash, iter_audio_files, iter_blocks, probe
from .catalog import Catalog
from .embed.text import TextEmbedder
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
from .transcribe import Transcriber
from .types import AddReport, FileFailure, FileResult, Segment, Window, Word
from .windows import make_windows, sentences

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
        if v is None:
            continue
        if not isinstance(v, (str, int, float, bool)):
            raise InvalidInputError(f"metadata value for {k!r} must be a string, number or bool, "
                                    f"got {type(v).__name__}")
        out[k] = v
    return out


def collect_paths(paths: Iterable[str], report: AddReport) -> List[str]:
    """Expand folders (recursively, audio extensions only) into absolute file paths, in order,
    without duplicates. Missing paths become failures in `report`."""
    out: List[str] = []
    seen = set()
    for p in paths:
        p = os.path.abspath(os.path.expanduser(str(p)))
        if os.path.isdir(p):
            found = list(iter_audio_files(p))
            if not found:
                logger.warning("%s: no audio files found in this folder", p)
        elif os.path.exists(p):
            found = [p]
        else:
            report.failed.append(FileFailure(p, f"{p}: no such file or folder; check the path",
                                             "AudioNotFoundError"))
            continue
        for f in found:
            if f not in seen:
                seen.add(f)
                out.append(f)
    return out


def process_file(path: str, pipeline: Pipeline, progress: Optional[Progress] = None,
                 info: Optional[AudioInfo] = None) -> Processed:
    """Transcribe and embed one file. Raises AudioError for a file that cannot be used."""
    info = info or probe(path)  # the batch probes every file first for the progress total
    warnings: List[str] = []
    if info.channels > 2:
        warnings.append(f"{info.channels} channels mixed down to one")
    segments: List[Segment] = []
    language = None
    reported = 0.0
    total = 0.0

    def scanned(seconds: float) -> None:
        nonlocal total
        total += seconds

    spans: List[Tuple[float, float]] = []
    unit_vectors: List[np.ndarray] = []
    voice_vectors: List[np.ndarray] = []
    blocks = iter_blocks(path, 30.0, pipeline.decoder, warnings)
    for chunk in iter_speech(blocks, pipeline.vad, on_audio=scanned):
        segs, lang = pipeline.transcriber.transcribe(chunk.audio)
        language = language or lang
        segments.extend(_to_file_time(s, chunk) for s in segs)
        if (pipeline.acoustic is not None or pipeline.voice is not None) and segs:
            chunk_spans, clips = sentence_clips(chunk, segs, pipeline)
            spans.extend(chunk_spans)
            if pipeline.acoustic is not None:
                unit_vectors.append(pipeline.acoustic.embed_many(clips))
            if pipeline.voice is not None:
                voice_vectors.append(pipeline.voice.embed_many(clips))
        if progress is not None:
            pos = chunk.pieces[-1][1] / 16000 + chunk.pieces[-1][2] / 16000
            if pos > reported:
                progress(pos - reported)
                reported = pos
    duration = total
    if info.duration and duration < info.duration - max(1.0, 0.02 * info.duration):
        msg = (f"decoded {duration:.1f} s of the {info.duration:.1f} s the file announces; it looks "
               "truncated (indexed what could be decoded; re-export or re-copy the file)")
        logger.warning("%s: %s", path, msg)
        warnings.append(msg)
    if progress is not None and duration > reported:
        progress(duration - reported)
    segments.sort(key=lambda s: s.start)
    windows = make_windows(segments, pipeline.windows, channel=-1 if info.channels > 1 else 0)
    vectors = pipeline.embedder.encode([w.text for w in windows])
    if not windows:
        logger.info("%s: no speech found", path)
    units = [(a, b, _best_window(a, b, windows)) for a, b in spans]
    return Processed(duration, segments, windows, vectors, language if segments else None, warnings,
                     units, np.concatenate(unit_vectors) if unit_vectors else None,
                     np.concatenate(voice_vectors) if voice_vectors else None)


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


def _best_window(start: float, end: float, windows: List[Window]) -> int:
    """Index of the window that overlaps [start, end] most (-1 when none does)."""
    best, best_overlap = -1, 0.0
    for i, w in enumerate(windows):
        overlap = min(end, w.end) - max(start, w.start)
        if overlap > best_overlap:
            best, best_overlap = i, overlap
    return best


def _to_file_time(seg: Segment, chunk: Any) -> Segment:
    words = tuple(Word(chunk.to_file_time(w.start), chunk.to_file_time(w.end, True), w.text, w.probability)
                  for w in seg.words)
    start = words[0].start if words else chunk.to_file_time(seg.start)
    end = words[-1].end if words else chunk.to_file_time(seg.end, True)
    return Segment(start, max(end, start), seg.text, words, seg.avg_logprob, seg.no_speech_prob, seg.channel)


def store_units(acoustic_store: ChromaStore, path: str, hash: str, ids: List[str],
                units: List[Tuple[float, float, int]], vectors: np.ndarray, windows: List[Window]) -> None:
    """Write per-sentence (acoustic or voice) vectors, each keyed to the window it falls in."""
    keep = [n for n, u in enumerate(units) if u[2] >= 0]
    rows = [(f"{ids[units[n][2]]}-a{n:04d}", {"path": path, "file_hash": hash, "start": float(units[n][0]),
             "end": float(units[n][1]), "channel": windows[units[n][2]].channel, "window_id": ids[units[n][2]]})
            for n in keep]
    acoustic_store.upsert([r[0] for r in rows], vectors[keep], [""] * len(rows), [r[1] for r in rows])


def backfill_acoustic(catalog: Catalog, acoustic_store: ChromaStore, path: str, pipeline: Pipeline) -> None:
    """Add acoustic vectors to an indexed file from its stored transcript, decoding the audio
    once more (streamed) to cut each sentence out of it."""
    known = catalog.get_file(path)
    if known is None:
        raise InvalidInputError(f"{path}: not in the index")
    if not os.path.exists(path) or file_hash(path) != known.hash:
        raise AudioError(path, "the file is missing or changed since it was indexed; add it again")
    segs = [Segment(s["start"], s["end"], s["text"], tuple(Word(*w) for w in s["words"]))
            for s in catalog.transcript(path)]
    sents = sentences(segs, pipeline.windows)
    rows = catalog.window_rows(path)
    windows = [Window(start, end, "", channel) for _, start, end, channel in rows]
    spans, clips = [], []
    buffer, offset, i = np.zeros(0, np.float32), 0, 0
    for block in iter_blocks(path, 30.0, pipeline.decoder):
        buffer = np.concatenate([buffer, block])
        while i < len(sents) and int(sents[i].end * SAMPLE_RATE) <= offset + len(buffer):
            a = int(sents[i].start * SAMPLE_RATE) - offset
            b = int(sents[i].end * SAMPLE_RATE) - offset
            if b - a < MIN_UNIT_SAMPLES:
                mid = (a + b) // 2
                a, b = mid - MIN_UNIT_SAMPLES // 2, mid + MIN_UNIT_SAMPLES // 2
            clips.append(buffer[max(0, a):max(0, b)])
            spans.append((sents[i].start, sents[i].end))
            i += 1
        keep = int(sents[i].start * SAMPLE_RATE) - offset - SAMPLE_RATE if i < len(sents) else len(buffer)
        keep = min(max(keep, 0), len(buffer))
        buffer, offset = buffer[keep:], offset + keep
    if clips:
        vectors = pipeline.acoustic.embed_many(clips)
        units = [(a, b, _best_window(a, b, windows)) for a, b in spans]
        acoustic_store.delete_path(path)
        store_units(acoustic_store, path, known.hash, [r[0] for r in rows], units, vectors, windows)
    catalog.set_acoustic(path)


def window_ids(path: str, hash: str, n: int) -> List[str]:
    key = hashlib.blake2b(path.encode("utf-8"), digest_size=8).hexdigest()
    return [f"{key}-{hash[:12]}-{i:05d}" for i in range(n)]


def commit_file(catalog: Catalog, store: ChromaStore, path: str, hash: str, processed: Processed,
                metadata: Dict[str, Any], models: Dict[str, str],
                acoustic_store: Optional[ChromaStore] = None, voice_store: Optional[ChromaStore] = None) -> None:
    """Replace whatever the index holds for `path` with `processed`."""
    catalog.begin_file(path, hash)
    for s in (store, acoustic_store, voice_store):
        if s is not None:
            s.delete_path(path)
    ids = window_ids(path, hash, len(processed.windows))
    metas = [dict(metadata, path=path, file_hash=hash, start=float(w.start), end=float(w.end),
                  channel=w.channel, asr_model=models["asr_model"], text_model=models["text_model"])
             for w in processed.windows]
    store.upsert(ids, processed.vectors, [w.text for w in processed.windows], metas)
    if acoustic_store is not None and processed.unit_vectors is not None:
        store_units(acoustic_store, path, hash, ids, processed.units, processed.unit_vectors, processed.windows)
    if voice_store is not None and processed.voice_vectors is not None:
        store_units(voice_store, path, hash, ids, processed.units, processed.voice_vectors, processed.windows)
    transcript = [{"start": round(s.start, 3), "end": round(s.end, 3), "text": s.text,
                   "channel": s.channel,
                   "words": [[round(w.start, 3), round(w.end, 3), w.text, round(w.probability, 3)]
                             for w in s.words]} for s in processed.segments]
    catalog.finish_file(path, hash, duration=processed.duration, ids=ids, windows=processed.windows,
                        language=processed.language, models=models, metadata=metadata,
                        warnings=processed.warnings, transcript=transcript,
                        acoustic="acoustic_model" in models)


def update_metadata(catalog: Catalog, store: ChromaStore, path: str, metadata: Dict[str, Any]) -> None:
    """Replace the user metadata of an indexed file without transcribing it again."""
    known = catalog.get_file(path)
    if known is None:
        raise InvalidInputError(f"{path}: not in the index")
    rows = catalog.window_rows(path)
    dropped = {k: None for k in known.metadata if k not in metadata}  # None deletes a key in Chroma
    metas = [dict(dropped, **metadata, path=path, file_hash=known.hash, start=float(start), end=float(end),
                  channel=channel, asr_model=known.models.get("asr_model", ""),
                  text_model=known.models.get("text_model", ""))
             for _, start, end, channel in rows]
    store.update_metadata([r[0] for r in rows], metas)
    catalog.set_file_metadata(path, metadata)


def ingest(paths: Iterable[str], catalog: Catalog, store: ChromaStore, pipeline: Pipeline,
           metadata: Optional[Dict[str, Any]] = None, progress: Optional[Any] = None,
           acoustic_store: Optional[ChromaStore] = None, voice_store: Optional[ChromaStore] = None
           ) -> AddReport:
    """Index every audio file under `paths`. `progress` is a tqdm-like bar counted in seconds of
    audio (``total``, ``update``, ``set_postfix_str``), or None."""
    t0 = time.perf_counter()
    report = AddReport()
    meta = check_metadata(metadata)
    files = collect_paths(paths, report)
    todo: List[Tuple[str, str, Optional[AudioInfo]]] = []
    for f in files:
        try:
            h = file_hash(f)
            known = catalog.get_file(f)
            if known is not None and known.status == "ready" and known.hash == h:
                reason = "unchanged"
                if meta and meta != known.metadata:
                    update_metadata(catalog, store, f, meta)
                    reason = "unchanged; metadata updated"
                report.skipped.append(FileResult(f, known.duration, known.segments, reason))
                continue
            try:
                info: Optional[AudioInfo] = probe(f)
            except AudioError:
                info = None  # probed again, and reported, when processed
            todo.append((f, h, info))
        except OSError as e:
            report.failed.append(FileFailure(f, f"{f}: cannot read the file ({e})", type(e).__name__))
    if progress is not None:
        progress.total = round(sum(i.duration for _, _, i in todo if i is not None), 1)
        progress.refresh()

    def advance(seconds: float) -> None:  # the container's duration can be a little short
        if progress.n + seconds > progress.total:
            progress.total = progress.n + seconds
        progress.update(seconds)

    for f, h, info in todo:
        if progress is not None:
            progress.set_postfix_str(os.path.basename(f))
        try:
            processed = process_file(f, pipeline, advance if progress is not None else None, info)
            commit_file(catalog, store, f, h, processed, meta, pipeline.models, acoustic_store, voice_store)
        except _FATAL:
            raise
        except SpeechSearchError as e:
            logger.warning("%s", e)
            report.failed.append(FileFailure(f, str(e) if f in str(e) else f"{f}: {e}", type(e).__name__))
            continue
        except Exception as e:  # one bad file must not stop the batch
            logger.exception("%s: unexpected error", f)
            report.failed.append(FileFailure(f, f"{f}: unexpected {type(e).__name__}: {e}", type(e).__name__))
            continue
        report.added.append(FileResult(f, processed.duration, len(processed.windows),
                                       "" if processed.windows else "no speech found",
                                       tuple(processed.warnings)))
    report.seconds = time.perf_counter() - t0
    return report
