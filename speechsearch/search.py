"""Ranking at query time: gather candidates per signal, fuse them, drop rows of files that are
not fully indexed, and collapse overlapping windows of the same moment."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Sequence

import numpy as np

from .catalog import Catalog
from .fusion import FusionOptions, fuse, restrict
from .store import RESERVED_KEYS, ChromaStore, StoredHit
from .types import Hit

__all__ = ["text_search", "to_hits", "collapse", "hit_from_row"]


def text_search(store: ChromaStore, catalog: Catalog, query: str, vector: np.ndarray, k: int,
                where: Optional[Dict[str, Any]] = None, fusion: Optional[FusionOptions] = None,
                signals: Sequence[str] = ("text", "lexical")) -> List[Hit]:
    """Dense (MiniLM cosine) and lexical (BM25) candidates for `query`, fused, best first."""
    options = restrict(fusion or FusionOptions(), signals)
    n = max(options.candidates, 3 * k + 10)
    rows: Dict[str, StoredHit] = {}
    dense: Dict[str, float] = {}
    if options.weights.get("text", 0) > 0 or options.weights.get("lexical", 0) > 0:
        for row in store.query(vector, n=n, where=where):
            rows[row.id] = row
            dense[row.id] = 1.0 - row.distance
    lexical: Dict[str, float] = {}
    if options.weights.get("lexical", 0) > 0:
        lexical = dict(catalog.lexical(query, n))
        missing = [i for i in lexical if i not in rows]
        fetched = store.get(missing, where=where, embeddings=True)
        for i in missing:
            if i not in fetched:  # filtered out by `where`
                del lexical[i]
                continue
            row, emb = fetched[i]
            rows[i] = row
            dense[i] = float(np.dot(vector, emb))
    ranked = fuse({"text": dense, "lexical": lexical}, options)
    raw = {"text": dense, "lexical": lexical}
    return finish(ranked, rows, raw, catalog, k, options)


def finish(ranked: Sequence[tuple], rows: Dict[str, StoredHit], raw: Dict[str, Dict[str, float]],
           catalog: Catalog, k: int, options: FusionOptions) -> List[Hit]:
    """Turn a fused ranking into hits: ready files only, overlaps collapsed, top `k`."""
    ready = catalog.ready(rows[i].metadata.get("path", "") for i, _ in ranked if i in rows)
    hits = []
    for i, score in ranked:
        row = rows.get(i)
        if row is None:
            continue
        scores = {s: v[i] for s, v in raw.items() if options.weights.get(s, 0) > 0 and i in v}
        hit = hit_from_row(row, score, scores, ready)
        if hit is not None:
            hits.append(hit)
    return collapse(hits, k)


def hit_from_row(row: StoredHit, score: float, scores: Dict[str, float],
                 ready: Dict[str, str]) -> Optional[Hit]:
    m = row.metadata
    path = m.get("path")
    if path is None or ready.get(path) != m.get("file_hash"):
        return None  # its file is being (re)indexed or was removed
    return Hit(path=path, start=float(m["start"]), end=float(m["end"]), text=row.text, score=score,
               metadata={k: v for k, v in m.items() if k not in RESERVED_KEYS},
               channel=int(m.get("channel", 0)), id=row.id, scores=scores)


def to_hits(stored: Iterable[StoredHit], ready: Dict[str, str]) -> List[Hit]:
    """Rows as hits scored by cosine similarity (1 - cosine distance), best first."""
    hits = [hit_from_row(s, 1.0 - s.distance, {"text": 1.0 - s.distance}, ready) for s in stored]
    return sorted((h for h in hits if h is not None), key=lambda h: -h.score)


def collapse(hits: List[Hit], k: int) -> List[Hit]:
    """Best-first; a hit whose span overlaps a better hit of the same file and channel is dropped."""
    kept: List[Hit] = []
    for h in hits:
        if any(o.path == h.path and o.channel == h.channel and h.start < o.end and o.start < h.end
               for o in kept):
            continue
        kept.append(h)
        if len(kept) == k:
            break
    return kept
