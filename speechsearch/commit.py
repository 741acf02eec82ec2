"""Writing one file to the index: its windows, context units and sentence vectors to the vector
collections and its transcript to the catalogue (`commit_file`), or new metadata for a file
already there (`update_metadata`). Row ids are deterministic (`window_ids`) and carry the file's
content hash, so a file indexed again never loses its old copy before the new one is ready
(catalog.py tells why an interrupted add is safe)."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ._log import logger
from .catalog import Catalog
from .errors import InvalidInputError
from .filters import ISO_SUFFIX, encode_metadata, field_types_of, merge_field_types
from .metadata import field_types, record_field_types
from .pipeline import Pipeline, Processed
from .store import ChromaStore
from .types import Window

__all__ = ["commit_file", "update_metadata", "record_models", "window_ids", "window_metadata", "store_units",
           "store_contexts"]


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


def record_models(catalog: Catalog, pipeline: Pipeline) -> None:
    """Record in the catalogue, before a write, what `pipeline` indexes with: redaction and
    diarization, context units for a new index, and the models (those of a new index; an
    acoustic or voice model when the index has none yet)."""
    catalog.set_meta({"redact": "1" if pipeline.redact else "0",
                      "diarize": "1" if pipeline.diarizer is not None else "0"})
    if not catalog.has_files() and pipeline.windows.context_min_seconds > 0:
        catalog.set_meta({"contexts": "1"})  # a new index gets context units
    models = pipeline.models
    if catalog.get_meta("text_model") is None:
        catalog.set_meta(models)
    for key in ("acoustic_model", "voice_model"):
        if key in models and catalog.get_meta(key) is None:
            catalog.set_meta({key: models[key]})
