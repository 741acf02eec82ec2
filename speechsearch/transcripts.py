"""Transcripts in and out: `export_records` / `write_records` give one JSON record per indexed
file (segments with word times, channels, speakers, language, metadata, models, redacted spans);
`import_records` indexes such records without transcribing (windows and text vectors are built
here); `record_segments` reads the segments of a record, or of a transcript the catalogue holds."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

from ._log import logger
from ._paths import os_path, stored_path, to_path
from .assemble import build_contexts, build_windows, embed_units, redact
from .audio import file_hash
from .catalog import Catalog
from .commit import commit_file
from .errors import InvalidInputError, SpeechSearchError
from .metadata import check_metadata
from .pipeline import FATAL, Pipeline, Processed
from .store import ChromaStore
from .types import AddReport, FileFailure, FileResult, Segment, Word

__all__ = ["export_records", "write_records", "import_records", "record_segments"]


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


def write_records(catalog: Catalog, out: Any, paths: Optional[Iterable[Any]] = None) -> int:
    """Write `export_records` to the file `out` as JSON Lines (through a temporary file beside
    it, so a reader never sees half of it). Returns the number of records."""
    target = Path(os.fspath(out)).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        for rec in export_records(catalog, None if paths is None else list(paths)):
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
    os.replace(tmp, target)
    return n


def record_segments(rec: Dict[str, Any], where: str) -> List[Segment]:
    """The segments of a transcript record (``rec["segments"]``), checked; `where` names the
    record in the error a malformed one raises."""
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
    windows, are deleted with them (`reindex.backfill_acoustic` makes acoustic ones again)."""
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
            segments = record_segments(rec, where)
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
        except FATAL:
            raise
        except (SpeechSearchError, ValueError, OSError) as e:
            report.failed.append(FileFailure(where, f"{where}: {e}", type(e).__name__))
        except Exception as e:  # one bad record must not stop the rest
            logger.error("%s: unexpected error", where, exc_info=e)
            report.failed.append(FileFailure(where, f"{where}: unexpected {type(e).__name__}: {e}",
                                             type(e).__name__))
    report.seconds = time.perf_counter() - t0
    return report
