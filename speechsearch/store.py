"""The vector store: Chroma, embedded (``PersistentClient`` inside the index directory) or a
Chroma server (``HttpClient``, `chroma_url`).

Vectors are our own (``embedding_function=None``), cosine space, telemetry off. Each row's
metadata carries the file path, content hash, start, end, channel, the models that made it, and
the user's metadata; the window text is the row's document.

Embedded Chroma is not process-safe: a process keeps an in-memory snapshot of each collection's
HNSW graph, and the writer rewrites the HNSW files in place. So every Chroma call on an embedded
store holds the store lock (lock.py: shared for reads, exclusive for writes, across processes),
and a process whose snapshot is older than the store's generation (another process wrote since)
re-opens its client before the call. docs/scaling.md has the measurements behind this.

On a server, collection names carry the index's id (``ss-<id8>-windows``) so that several indexes
can share one server; the server serialises writes and no lock is needed.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple
from urllib.parse import parse_qsl, urlencode, urlsplit

import numpy as np

from ._log import logger
from .errors import InvalidInputError, SpeechSearchError, StoreError
from .filters import RESERVED_KEYS
from .lock import StoreLock

__all__ = ["ChromaStore", "ChromaServer", "StoredHit", "HNSW", "RESERVED_KEYS", "ENV_CHROMA_URL",
           "ENV_CHROMA_TOKEN", "EMBEDDED", "collection_prefix", "choose_store", "collection_names",
           "vacuum_embedded"]

ENV_CHROMA_URL = "SPEECHSEARCH_CHROMA_URL"
ENV_CHROMA_TOKEN = "SPEECHSEARCH_CHROMA_TOKEN"  # sent as X-Chroma-Token to a server that wants one
EMBEDDED = "embedded"  # what the catalogue records as `store_url` for an embedded store


# Chroma's defaults gave ~0.83 recall@10 on random 384-d vectors here; these gave ~0.998
# (shared/PERF-NOTES.md). benchmarks/query.py measures recall and latency on our vectors.
HNSW: Dict[str, Any] = {"space": "cosine", "ef_construction": 200, "ef_search": 128, "max_neighbors": 32}

_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


@dataclass(frozen=True)
class StoredHit:
    id: str
    distance: float
    text: str
    metadata: Dict[str, Any]


@dataclass(frozen=True)
class ChromaServer:
    """Where a Chroma server is: ``http(s)://host[:port][/?tenant=T&database=D]``."""

    host: str
    port: int
    ssl: bool = False
    tenant: str = "default_tenant"
    database: str = "default_database"

    @classmethod
    def parse(cls, url: str) -> "ChromaServer":
        if not isinstance(url, str) or not url.strip():
            raise InvalidInputError(f"chroma_url must be a URL like http://127.0.0.1:8000, got {url!r}")
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInputError(f"chroma_url {url!r}: expected http://HOST:PORT (or https://), "
                                    "e.g. http://127.0.0.1:8000")
        if parts.path not in ("", "/") or parts.fragment or parts.username or parts.password:
            raise InvalidInputError(f"chroma_url {url!r}: give only scheme, host, port and optionally "
                                    "?tenant=...&database=...; a token goes in $" + ENV_CHROMA_TOKEN)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 8000)
        except ValueError:
            raise InvalidInputError(f"chroma_url {url!r}: the port is not a number from 1 to 65535") from None
        query = dict(parse_qsl(parts.query))
        unknown = set(query) - {"tenant", "database"}
        if unknown:
            raise InvalidInputError(f"chroma_url {url!r}: unknown parameter(s) {sorted(unknown)}; "
                                    "only tenant and database are understood")
        return cls(parts.hostname.lower(), port, parts.scheme == "https",
                   query.get("tenant") or "default_tenant", query.get("database") or "default_database")

    @property
    def url(self) -> str:
        """The normalised URL (what the catalogue records; never a secret)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = {k: v for k, v in (("tenant", self.tenant), ("database", self.database))
                 if v != f"default_{k}"}
        return f"{'https' if self.ssl else 'http'}://{host}:{self.port}" + (f"/?{urlencode(query)}" if query else "")

    def same_server(self, other: "ChromaServer") -> bool:
        """The same server and database (localhost, 127.0.0.1 and ::1 are one host)."""
        def host(h: str) -> str:
            return "localhost" if h in _LOOPBACK else h
        return (host(self.host), self.port, self.ssl, self.tenant, self.database) == \
            (host(other.host), other.port, other.ssl, other.tenant, other.database)

    def down_message(self, reason: Any) -> str:
        return (f"cannot reach the Chroma server at {self.url} ({reason}); start it with: chroma run --path DIR "
                f"--host {self.host} --port {self.port} (DIR is where the server keeps the vectors), "
                "or pass the URL of a running one with --chroma-url / chroma_url")


def collection_prefix(index_id: str) -> str:
    """The prefix of an index's collections on a shared server: ``ss-<first 8 of its id>-``."""
    return f"ss-{index_id.replace('-', '')[:8]}-"


# -- the clients: one per embedded directory or server per process ------------------------------
class _Embedded:
    """A PersistentClient on one directory, re-opened when another process wrote since."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.key = str(directory.resolve())
        self.lock = StoreLock.for_path(directory.with_name(directory.name + ".lock"))
        self.epoch = 0
        self._client: Any = None
        self._generation: Optional[int] = None
        self._mu = threading.Lock()

    def _current(self) -> Tuple[Any, int]:
        """The client and its epoch, fresh for the store's generation (call with the lock held)."""
        with self._mu:
            generation = self.lock.generation()
            if self._client is None or generation != self._generation:
                if self._client is not None:
                    logger.debug("%s changed in another process (generation %s -> %s); re-opening Chroma",
                                 self.directory, self._generation, generation)
                self._client = self._open()
                self._generation = generation
                self.epoch += 1
            return self._client, self.epoch

    def _open(self) -> Any:
        import chromadb
        from chromadb.api.shared_system_client import SharedSystemClient
        from chromadb.config import Settings

        # chromadb keeps one System per directory per process; a stale one must go, or the new
        # client would get it back. Nothing uses it any more: every call re-checks the epoch, and
        # this runs while the store lock is held, before any call of this hold period. The
        # registry is private to chromadb: pyproject.toml pins the minor series this was tested on.
        old = SharedSystemClient._identifier_to_system.pop(self.key, None)
        SharedSystemClient._identifier_to_refcount.pop(self.key, None)
        if old is not None:
            try:
                old.stop()
            except Exception as e:  # pragma: no cover - best effort
                logger.debug("stopping the old Chroma system: %s", e)
        try:
            return chromadb.PersistentClient(path=self.key, settings=Settings(anonymized_telemetry=False,
                                                                              allow_reset=False))
        except Exception as e:
            raise StoreError(f"{self.directory}: cannot open the Chroma store ({e})") from e

    @contextmanager
    def reading(self) -> Iterator[Tuple[Any, int]]:
        with self.lock.shared():
            yield self._current()

    @contextmanager
    def writing(self) -> Iterator[Tuple[Any, int]]:
        with self.lock.exclusive():
            try:
                yield self._current()
            finally:  # even a failed call may have written part
                with self._mu:
                    self._generation = self.lock.bump()


class _Server:
    """An HttpClient on one server (thread-safe; the server serialises writes)."""

    def __init__(self, server: ChromaServer):
        self.server = server
        self.epoch = 1
        self._client: Any = None
        self._mu = threading.Lock()

    def _current(self) -> Tuple[Any, int]:
        with self._mu:
            if self._client is None:
                import chromadb
                from chromadb.config import Settings

                token = os.environ.get(ENV_CHROMA_TOKEN)
                try:
                    self._client = chromadb.HttpClient(
                        host=self.server.host, port=self.server.port, ssl=self.server.ssl,
                        headers={"X-Chroma-Token": token} if token else None,
                        settings=Settings(anonymized_telemetry=False), tenant=self.server.tenant,
                        database=self.server.database)
                except Exception as e:
                    raise StoreError(self.server.down_message(e)) from e
                logger.debug("connected to the Chroma server at %s", self.server.url)
            return self._client, self.epoch

    @contextmanager
    def reading(self) -> Iterator[Tuple[Any, int]]:
        yield self._current()

    writing = reading


_BACKENDS: Dict[Any, Any] = {}
_BACKENDS_LOCK = threading.Lock()


def _backend_for(directory: Path, server: Optional[ChromaServer]) -> Any:
    key: Any = server if server is not None else str(Path(directory).resolve())
    with _BACKENDS_LOCK:
        backend = _BACKENDS.get(key)
        if backend is None:
            backend = _BACKENDS[key] = _Server(server) if server is not None else _Embedded(Path(directory))
        return backend


def _transport_error(e: BaseException) -> bool:
    try:
        import httpx
    except ImportError:  # pragma: no cover
        return isinstance(e, ConnectionError)
    return isinstance(e, (httpx.TransportError, ConnectionError))


class ChromaStore:
    """One Chroma collection of vectors ("windows" for text, "acoustic" for sound, "voice").

    `collection` is the name the catalogue knows; on a server it is stored as `prefix` +
    `collection`. Clients connect on first use and are shared by the collections of one index
    directory (embedded) or one server, per process."""

    def __init__(self, directory: Path, collection: str = "windows", hnsw: Optional[Dict[str, Any]] = None, *,
                 server: Optional[ChromaServer] = None, prefix: str = ""):
        self.directory = Path(directory)
        self.collection_name = collection
        self.server = server
        self.prefix = prefix
        self.hnsw = dict(hnsw or HNSW)
        self._collection: Any = None
        self._epoch = -1
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The collection's name in Chroma."""
        return self.prefix + self.collection_name

    @property
    def where(self) -> str:
        return self.server.url if self.server is not None else str(self.directory)

    @contextmanager
    def _use(self, write: bool = False) -> Iterator[Any]:
        """The collection, for one call, with the store lock held (embedded) and the client fresh."""
        backend = _backend_for(self.directory, self.server)
        try:
            with (backend.writing() if write else backend.reading()) as (client, epoch):
                yield self._open(client, epoch)
        except SpeechSearchError:
            raise
        except Exception as e:
            if self.server is not None and _transport_error(e):
                raise StoreError(self.server.down_message(e)) from e
            from chromadb.errors import NotFoundError

            if isinstance(e, NotFoundError):
                with self._lock:
                    self._collection = None
                raise StoreError(f"{self.where}: the Chroma collection {self.name!r} is gone ({e}); another "
                                 "process may have reindexed; try again") from e
            raise

    def _open(self, client: Any, epoch: int) -> Any:
        with self._lock:
            if self._collection is None or self._epoch != epoch:
                try:
                    self._collection = client.get_or_create_collection(
                        self.name, embedding_function=None, configuration={"hnsw": self.hnsw})
                except Exception as e:
                    if self.server is not None and _transport_error(e):
                        raise StoreError(self.server.down_message(e)) from e
                    try:  # another process may have created it at the same moment
                        self._collection = client.get_collection(self.name, embedding_function=None)
                    except Exception:
                        raise StoreError(f"{self.where}: cannot open the Chroma collection {self.name!r} ({e})") from e
                self._epoch = epoch
                logger.debug("opened Chroma collection %s in %s", self.name, self.where)
            return self._collection

    @property
    def collection(self) -> Any:
        """The chromadb collection itself (for inspection; calls on it take no lock)."""
        with self._use() as col:
            return col

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, texts: Sequence[str],
               metadatas: Sequence[Dict[str, Any]]) -> None:
        if not ids:
            return
        step = 5000
        for i in range(0, len(ids), step):
            with self._use(write=True) as col:
                col.upsert(ids=list(ids[i:i + step]), embeddings=vectors[i:i + step],
                           documents=list(texts[i:i + step]), metadatas=list(metadatas[i:i + step]))

    def update_metadata(self, ids: Sequence[str], metadatas: Sequence[Dict[str, Any]]) -> None:
        if ids:
            with self._use(write=True) as col:
                col.update(ids=list(ids), metadatas=list(metadatas))

    def delete_path(self, path: str) -> None:
        with self._use(write=True) as col:
            col.delete(where={"path": path})

    def ids_where(self, where: Dict[str, Any]) -> List[str]:
        """The ids of every row matching `where` (nothing else is read)."""
        with self._use() as col:
            return list(col.get(where=where, include=[])["ids"])

    def delete_ids(self, ids: Sequence[str]) -> None:
        """Delete the rows `ids` (ids that are not there are ignored)."""
        ids = list(ids)
        for i in range(0, len(ids), 5000):
            with self._use(write=True) as col:
                col.delete(ids=ids[i:i + 5000])

    def count(self) -> int:
        with self._use() as col:
            return int(col.count())

    def iter_rows(self, batch: int = 2000, embeddings: bool = True) -> Iterator[Dict[str, Any]]:
        """Every row, a page of `batch` at a time: Chroma's get result (ids, documents,
        metadatas and, when asked, embeddings)."""
        offset = 0
        include = ["documents", "metadatas"] + (["embeddings"] if embeddings else [])
        while True:
            with self._use() as col:
                res = col.get(limit=batch, offset=offset, include=include)
            if not res["ids"]:
                return
            yield res
            offset += len(res["ids"])

    def copy_to(self, target: "ChromaStore", batch: int = 2000) -> int:
        """Write every row (vector, document, metadata) into `target`; returns the count."""
        n = 0
        for res in self.iter_rows(batch):
            target.upsert(res["ids"], np.asarray(res["embeddings"], np.float32),
                          [d or "" for d in res["documents"]], [dict(m or {}) for m in res["metadatas"]])
            n += len(res["ids"])
        return n

    def query(self, vector: np.ndarray, n: int, where: Optional[Dict[str, Any]] = None,
              documents: bool = True, metadatas: bool = True) -> List[StoredHit]:
        """The `n` nearest rows; without `documents` or `metadatas` their text or metadata is left
        empty (reading them is most of a query's cost when only ids and distances are needed)."""
        include = ["distances"] + (["documents"] if documents else []) + (["metadatas"] if metadatas else [])
        with self._use() as col:
            res = col.query(query_embeddings=[np.asarray(vector, np.float32)], n_results=n, where=where,
                            include=include)
        texts = res["documents"][0] if documents else [""] * len(res["ids"][0])
        metas = res["metadatas"][0] if metadatas else [{}] * len(res["ids"][0])
        return [StoredHit(i, float(d), t or "", dict(m or {}))
                for i, d, t, m in zip(res["ids"][0], res["distances"][0], texts, metas)]

    def get(self, ids: Sequence[str], where: Optional[Dict[str, Any]] = None,
            embeddings: bool = False) -> Dict[str, Tuple[StoredHit, Optional[np.ndarray]]]:
        """Rows by id (those matching `where`, if given): id -> (row, embedding or None)."""
        if not ids:
            return {}
        include = ["documents", "metadatas"] + (["embeddings"] if embeddings else [])
        with self._use() as col:
            res = col.get(ids=list(dict.fromkeys(ids)), where=where, include=include)
        embs = res.get("embeddings") if embeddings else None
        out = {}
        for n, i in enumerate(res["ids"]):
            row = StoredHit(i, 0.0, res["documents"][n] or "", dict(res["metadatas"][n] or {}))
            out[i] = (row, None if embs is None else np.asarray(embs[n], np.float32))
        return out

    def vectors(self, ids: Sequence[str], where: Optional[Dict[str, Any]] = None) -> Dict[str, np.ndarray]:
        """The embeddings of the rows `ids` (those matching `where`, if given), without their
        documents and metadata (which cost most of a get)."""
        if not ids:
            return {}
        with self._use() as col:
            res = col.get(ids=list(dict.fromkeys(ids)), where=where, include=["embeddings"])
        return {i: np.asarray(res["embeddings"][n], np.float32) for n, i in enumerate(res["ids"])}

    def matching(self, ids: Sequence[str], where: Dict[str, Any]) -> set:
        """Those of `ids` whose rows match `where`."""
        if not ids:
            return set()
        with self._use() as col:  # Chroma refuses an id asked twice (BM25 and the code lookup share ids)
            return set(col.get(ids=list(dict.fromkeys(ids)), where=where, include=[])["ids"])

    def get_where(self, where: Dict[str, Any], embeddings: bool = False
                  ) -> List[Tuple[StoredHit, Optional[np.ndarray]]]:
        """Every row matching `where`, with its embedding when asked."""
        include = ["metadatas"] + (["embeddings"] if embeddings else [])
        with self._use() as col:
            res = col.get(where=where, include=include)
        embs = res.get("embeddings") if embeddings else None
        return [(StoredHit(i, 0.0, "", dict(res["metadatas"][n] or {})),
                 None if embs is None else np.asarray(embs[n], np.float32))
                for n, i in enumerate(res["ids"])]

    def drop(self) -> None:
        """Delete this collection and its vectors."""
        backend = _backend_for(self.directory, self.server)
        try:
            with backend.writing() as (client, _):
                try:
                    client.delete_collection(self.name)
                except Exception as e:  # already gone
                    if self.server is not None and _transport_error(e):
                        raise
                    logger.debug("could not delete collection %s: %s", self.name, e)
        except SpeechSearchError:
            raise
        except Exception as e:
            if self.server is not None and _transport_error(e):
                raise StoreError(self.server.down_message(e)) from e
            raise
        finally:
            with self._lock:
                self._collection = None

    def close(self) -> None:
        """Forget the collection; the process's client stays for the other stores."""
        with self._lock:
            self._collection = None


def collection_names(directory: Path, server: Optional[ChromaServer] = None, prefix: str = "") -> List[str]:
    """The names (without `prefix`) of the index's collections: every one in an embedded store,
    those that start with `prefix` on a server; leftovers of an interrupted reindex included."""
    backend = _backend_for(directory, server)
    try:
        with backend.reading() as (client, _):
            names = [getattr(c, "name", c) for c in client.list_collections()]
    except SpeechSearchError:
        raise
    except Exception as e:
        if server is not None and _transport_error(e):
            raise StoreError(server.down_message(e)) from e
        raise StoreError(f"{directory}: cannot list the Chroma collections ({e})") from e
    return sorted(n[len(prefix):] for n in names if n.startswith(prefix))


def vacuum_embedded(directory: Path) -> None:
    """Give an embedded store's deleted data back to the file system: its SQLite file (documents,
    metadata, full-text index and write-ahead log of rows since deleted) is rebuilt with VACUUM,
    and the HNSW folders of dropped collections, which Chroma leaves behind, are deleted. Holds
    the store lock alone; other processes re-open the store afterwards."""
    import shutil
    import sqlite3
    import uuid

    directory = Path(directory)
    backend = _backend_for(directory, None)
    with backend.writing():
        db_path = directory / "chroma.sqlite3"
        if not db_path.exists():
            return
        try:
            db = sqlite3.connect(str(db_path), timeout=30, isolation_level=None)
            try:
                live = {r[0] for r in db.execute("SELECT id FROM segments")}
                if db.execute("SELECT 1 FROM sqlite_master WHERE name='embedding_fulltext_search'").fetchone():
                    # FTS5 keeps the terms of deleted rows until its segments are merged
                    db.execute("INSERT INTO embedding_fulltext_search(embedding_fulltext_search) VALUES('optimize')")
                db.execute("VACUUM")
            finally:
                db.close()
        except sqlite3.Error as e:
            raise StoreError(f"{db_path}: cannot compact Chroma's database ({e}); stop the other processes "
                             "using this index and try again") from e
        for entry in directory.iterdir():
            try:
                uuid.UUID(entry.name)
            except ValueError:
                continue
            if entry.is_dir() and entry.name not in live:
                logger.debug("deleting %s: the HNSW files of a dropped collection", entry)
                shutil.rmtree(entry, ignore_errors=True)


def choose_store(index: Path, chroma_url: Optional[str], recorded: Optional[str],
                 has_files: bool) -> Tuple[Optional[ChromaServer], Optional[str]]:
    """Which store to open for the index at `index`: (the server, or None for embedded; the
    `store_url` the catalogue should record now, or None to keep it).

    `chroma_url` None means ``$SPEECHSEARCH_CHROMA_URL``, else embedded ("" is embedded whatever the
    environment says). An index that holds files must be opened with the store it was built in
    (an index made before `store_url` was recorded is embedded); an empty one takes the new one.
    """
    if chroma_url is None:
        chroma_url = os.environ.get(ENV_CHROMA_URL) or None
    server = ChromaServer.parse(chroma_url) if chroma_url else None
    wanted = server.url if server is not None else EMBEDDED
    if recorded is None and has_files:
        recorded = EMBEDDED
    if recorded == wanted:
        return server, None
    if recorded is None or not has_files:
        return server, wanted
    if server is not None and recorded != EMBEDDED:
        try:
            if ChromaServer.parse(recorded).same_server(server):
                return server, None
        except InvalidInputError:
            pass
    if recorded == EMBEDDED:
        raise InvalidInputError(
            f"{index}: this index keeps its vectors in its own directory (embedded Chroma), not on the server "
            f"at {wanted}; open it without chroma_url / --chroma-url (and with ${ENV_CHROMA_URL} unset). To "
            "move it to a server, export its transcripts and import them into a new index made with "
            "--chroma-url")
    hint = (f"open it with chroma_url={recorded!r} (CLI: --chroma-url {recorded}, or set "
            f"${ENV_CHROMA_URL}={recorded})")
    if server is None:
        raise InvalidInputError(f"{index}: this index keeps its vectors on the Chroma server at {recorded}; {hint}")
    raise InvalidInputError(f"{index}: this index keeps its vectors on the Chroma server at {recorded}, not "
                            f"{wanted}; {hint}")
