"""The vector store: Chroma, embedded (``PersistentClient`` inside the index directory).

Vectors are our own (``embedding_function=None``), cosine space, telemetry off. Each row's
metadata carries the file path, content hash, start, end, channel, the models that made it, and
the user's metadata; the window text is the row's document.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ._log import logger
from .errors import StoreError

__all__ = ["ChromaStore", "StoredHit", "HNSW", "RESERVED_KEYS"]

# Metadata keys the library writes on every row; user metadata may not use them.
RESERVED_KEYS = frozenset({"path", "file_hash", "start", "end", "channel", "asr_model", "text_model",
                           "window_id", "language", "speaker"})

# Chroma's defaults gave ~0.83 recall@10 on random 384-d vectors here; these gave ~0.998
# (shared/PERF-NOTES.md). benchmarks/query.py measures recall and latency on our vectors.
HNSW: Dict[str, Any] = {"space": "cosine", "ef_construction": 200, "ef_search": 128, "max_neighbors": 32}


@dataclass(frozen=True)
class StoredHit:
    id: str
    distance: float
    text: str
    metadata: Dict[str, Any]


_CLIENTS: Dict[str, Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _client_for(directory: Path) -> Any:
    """One embedded Chroma client per index directory per process (collections share it)."""
    import chromadb
    from chromadb.config import Settings

    key = str(directory.resolve())
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            client = _CLIENTS[key] = chromadb.PersistentClient(
                path=key, settings=Settings(anonymized_telemetry=False, allow_reset=False))
        return client


class ChromaStore:
    """One Chroma collection of vectors ("windows" for text, "acoustic" for sound). The client
    connects on first use and is shared by the collections of one index directory."""

    def __init__(self, directory: Path, collection: str = "windows", hnsw: Optional[Dict[str, Any]] = None):
        self.directory = Path(directory)
        self.collection_name = collection
        self.hnsw = dict(hnsw or HNSW)
        self._client: Any = None
        self._collection: Any = None
        self._lock = threading.Lock()

    @property
    def collection(self) -> Any:
        with self._lock:
            if self._collection is None:
                try:
                    self._client = _client_for(self.directory)
                    self._collection = self._client.get_or_create_collection(
                        self.collection_name, embedding_function=None,
                        configuration={"hnsw": self.hnsw},
                    )
                except Exception as e:
                    raise StoreError(f"{self.directory}: cannot open the Chroma store ({e})") from e
                logger.debug("opened Chroma collection %s in %s", self.collection_name, self.directory)
            return self._collection

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, texts: Sequence[str],
               metadatas: Sequence[Dict[str, Any]]) -> None:
        if not ids:
            return
        col = self.collection
        step = max(1, min(5000, self._client.get_max_batch_size()))
        for i in range(0, len(ids), step):
            col.upsert(ids=list(ids[i:i + step]), embeddings=vectors[i:i + step],
                       documents=list(texts[i:i + step]), metadatas=list(metadatas[i:i + step]))

    def update_metadata(self, ids: Sequence[str], metadatas: Sequence[Dict[str, Any]]) -> None:
        if ids:
            self.collection.update(ids=list(ids), metadatas=list(metadatas))

    def delete_path(self, path: str) -> None:
        self.collection.delete(where={"path": path})

    def count(self) -> int:
        return int(self.collection.count())

    def query(self, vector: np.ndarray, n: int, where: Optional[Dict[str, Any]] = None) -> List[StoredHit]:
        res = self.collection.query(query_embeddings=[np.asarray(vector, np.float32)], n_results=n, where=where,
                        include=["documents", "metadatas", "distances"])
        return [StoredHit(i, float(d), t or "", dict(m or {}))
                for i, d, t, m in zip(res["ids"][0], res["distances"][0], res["documents"][0],
                                      res["metadatas"][0])]

    def get(self, ids: Sequence[str], where: Optional[Dict[str, Any]] = None,
            embeddings: bool = False) -> Dict[str, Tuple[StoredHit, Optional[np.ndarray]]]:
        """Rows by id (those matching `where`, if given): id -> (row, embedding or None)."""
        if not ids:
            return {}
        include = ["documents", "metadatas"] + (["embeddings"] if embeddings else [])
        res = self.collection.get(ids=list(ids), where=where, include=include)
        embs = res.get("embeddings") if embeddings else None
        out = {}
        for n, i in enumerate(res["ids"]):
            row = StoredHit(i, 0.0, res["documents"][n] or "", dict(res["metadatas"][n] or {}))
            out[i] = (row, None if embs is None else np.asarray(embs[n], np.float32))
        return out

    def get_where(self, where: Dict[str, Any], embeddings: bool = False
                  ) -> List[Tuple[StoredHit, Optional[np.ndarray]]]:
        """Every row matching `where`, with its embedding when asked."""
        include = ["metadatas"] + (["embeddings"] if embeddings else [])
        res = self.collection.get(where=where, include=include)
        embs = res.get("embeddings") if embeddings else None
        return [(StoredHit(i, 0.0, "", dict(res["metadatas"][n] or {})),
                 None if embs is None else np.asarray(embs[n], np.float32))
                for n, i in enumerate(res["ids"])]

    def drop(self) -> None:
        """Delete this collection and its vectors."""
        with self._lock:
            client = self._client or _client_for(self.directory)
            try:
                client.delete_collection(self.collection_name)
            except Exception as e:  # already gone
                logger.debug("could not delete collection %s: %s", self.collection_name, e)
            self._collection = None

    def close(self) -> None:
        with self._lock:
            self._collection = None
            self._client = None
