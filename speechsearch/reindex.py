"""Vectors made again from what the index holds, without transcribing: `reembed` writes every
window (and context unit) with another text model's vectors, `backfill_acoustic` adds acoustic
vectors to an indexed file by decoding its audio once more and cutting out each sentence."""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from ._paths import os_path
from .assemble import MIN_UNIT_SAMPLES, best_window, build_contexts, embed_units
from .audio import SAMPLE_RATE, file_hash, iter_blocks, probe
from .catalog import Catalog
from .commit import store_contexts, store_units, window_metadata
from .embed.text import TextEmbedder
from .errors import AudioError, InvalidInputError
from .filters import encode_metadata
from .metadata import field_types
from .options import WindowOptions
from .pipeline import Pipeline
from .store import ChromaStore
from .transcripts import record_segments
from .types import Window
from .windows import sentences

__all__ = ["reembed", "backfill_acoustic"]


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
            segments = record_segments({"segments": catalog.transcript(info.path)}, info.path)
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
    segments = record_segments({"segments": catalog.transcript(path)}, path)
    rows = catalog.window_rows(path)
    windows = [Window(start, end, "", channel, speaker) for _, start, end, channel, speaker in rows]
    mixed = not windows or any(w.channel == -1 for w in windows) or probe(audio).channels < 2
    streams: List[Optional[int]] = [None] if mixed else sorted({s.channel for s in segments})
    units: List[Tuple[float, float, int]] = []
    clips: List[np.ndarray] = []
    for channel in streams:
        part = segments if channel is None else [s for s in segments if s.channel == channel]
        for (a, b), clip in _sentence_audio(audio, sentences(part, pipeline.windows), pipeline.decoder, channel):
            units.append((a, b, best_window(a, b, windows, channel)))
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
