"""Index files: the orchestration of one `Library.add` batch.

`ingest` expands the paths (`collect_paths`), skips files indexed with the same content, lays
the manifest and the metadata over each file, runs the rest through the indexing threads
(process.py: decode -> VAD -> transcribe -> assemble windows and vectors) and commits each file
as it comes out (commit.py: catalogue and vector collections; catalog.py tells why an interrupted
add is safe). A bad file is reported and the batch goes on; an error that is not about one file
(a missing tool or model, a store that is down) stops it.

The stages live in their own modules; the names other code imported from here before they moved
are re-exported:

    pipeline.py     Pipeline, Processed, FileJob, build_pipeline, pipeline_spec
    process.py      process_files, process_file (the threads and their messages), release_heap
    assemble.py     per-file assembly: windows, contexts, text vectors, sentence clips, redaction
    commit.py       commit_file, update_metadata, window_ids, window_metadata, store_units, store_contexts
    reindex.py      reembed, backfill_acoustic
    transcripts.py  export_records, import_records, record_segments
    metadata.py     check_metadata, field_types, record_field_types
    channels.py     parse_channels
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from ._log import logger
from ._paths import name_clash, stored_path, to_path
from .audio import AUDIO_EXTENSIONS, AudioInfo, file_hash, iter_audio_files, probe
from .catalog import Catalog
from .channels import parse_channels
from .commit import commit_file, update_metadata
from .errors import AudioError, SpeechSearchError
from .metadata import check_metadata
from .pipeline import FATAL, FileJob, Pipeline, Processed
from .process import process_files
from .store import RESERVED_KEYS, ChromaStore
from .types import AddReport, FileFailure, FileResult

# re-exported: the names other code imported from here before the stages moved to their modules
from .assemble import (  # noqa: F401
    MIN_UNIT_SAMPLES,
    build_contexts,
    build_windows,
    embed_units,
    redact,
    sentence_clips,
)
from .commit import store_contexts, store_units, window_ids, window_metadata  # noqa: F401
from .metadata import field_types, record_field_types  # noqa: F401
from .pipeline import Progress, build_pipeline, pipeline_spec  # noqa: F401
from .process import process_file, release_heap  # noqa: F401
from .reindex import backfill_acoustic, reembed  # noqa: F401
from .transcripts import export_records, import_records, record_segments  # noqa: F401

__all__ = ["Pipeline", "Processed", "collect_paths", "process_file", "commit_file", "ingest",
           "RESERVED_KEYS", "check_metadata"]

_FATAL = FATAL  # the old private names, still imported by older code
_File = FileJob
_record_segments = record_segments


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
        except FATAL:
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

    states = [FileJob(f, h, info, channels) for f, h, info, _, channels in todo]
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
            except FATAL:
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
