"""Turn stored rows into hits: drop rows of files that are not fully indexed, map distances
to scores, and collapse overlapping windows of the same moment. Pure functions."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional

import numpy as np

from .catalog import Catalog
from .store import RESERVED_KEYS, ChromaStore, StoredHit
from .types import Hit

__all__ = ["nearest", "to_hits", "collapse"]


def nearest(store: ChromaStore, catalog: Catalog, vector: np.ndarray, k: int,
            where: Optional[Dict[str, Any]] = None) -> List[Hit]:
    """The `k` best distinct moments near `vector`. Fetches a few more rows than `k` (collapsing
    and unfinished files remove some) and asks again for more only when that was not enough."""
    n = 2 * k + 4
    while True:
        stored = store.query(vector, n=n, where=where)
        ready = catalog.ready(s.metadata.get("path", "") for s in stored)
        hits = collapse(to_hits(stored, ready), k)
        if len(hits) >= k or len(stored) < n:
            return hits
        n *= 4


def to_hits(stored: Iterable[StoredHit], ready: Dict[str, str]) -> List[Hit]:
    """Keep rows whose file is ready with the same content hash; score = 1 - cosine distance."""
    hits = []
    for s in stored:
        m = s.metadata
        path = m.get("path")
        if path is None or ready.get(path) != m.get("file_hash"):
            continue
        score = 1.0 - s.distance
        hits.append(Hit(path=path, start=float(m["start"]), end=float(m["end"]), text=s.text,
                        score=score, metadata={k: v for k, v in m.items() if k not in RESERVED_KEYS},
                        channel=int(m.get("channel", 0)), id=s.id, scores={"text": score}))
    hits.sort(key=lambda h: -h.score)
    return hits


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
