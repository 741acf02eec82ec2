"""The index's catalogue (SQLite, inside the index directory): which models built the index,
which files it holds with their content hash and status, and every window's text and times.

A file is written in two steps. ``register_file`` marks a new file ``indexing`` before any
vector is stored; ``finish_file`` writes its windows and marks it ``ready`` in one transaction. A
process killed in between leaves a new file ``indexing``: searches ignore it and the next ``add``
redoes it, replacing whatever vectors were stored under its deterministic ids. A file the index
already holds stays ``ready`` with its old windows until ``finish_file`` switches it (ingest.py
``commit_file``): a failed re-add never costs the good copy.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from . import lexical
from .errors import StoreError
from .types import FileInfo, Window

__all__ = ["Catalog", "SCHEMA_VERSION"]

SCHEMA_VERSION = 5  # 2: FTS5 lexical index over windows; 3: files.acoustic; 4: speakers, redactions;
# 5: window_codes (numbers and codes said in each window, lexical.py)

_BIND = 10000  # values bound per statement (SQLite allows at most 32,766)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    status TEXT NOT NULL,
    duration REAL NOT NULL DEFAULT 0,
    segments INTEGER NOT NULL DEFAULT 0,
    added_at TEXT NOT NULL,
    language TEXT,
    models TEXT NOT NULL DEFAULT '{}',
    metadata TEXT NOT NULL DEFAULT '{}',
    warnings TEXT NOT NULL DEFAULT '[]',
    transcript TEXT NOT NULL DEFAULT '[]',
    acoustic INTEGER NOT NULL DEFAULT 0,
    redactions TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS windows (
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL REFERENCES files(path) ON DELETE CASCADE,
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    text TEXT NOT NULL,
    channel INTEGER NOT NULL DEFAULT 0,
    speaker TEXT
);
CREATE INDEX IF NOT EXISTS windows_path ON windows(path);
CREATE TABLE IF NOT EXISTS unit_vectors (
    model TEXT NOT NULL,
    id TEXT NOT NULL,
    path TEXT NOT NULL REFERENCES files(path) ON DELETE CASCADE,
    vector BLOB NOT NULL,
    PRIMARY KEY (model, id)
);
CREATE INDEX IF NOT EXISTS unit_vectors_path ON unit_vectors(path);
"""


def _when_unlocked(fn: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Run `fn`, again while another process holds a lock SQLite does not wait for: changing the
    journal mode, or creating the schema of a new catalogue, at the same moment."""
    deadline = time.monotonic() + timeout
    pause = 0.01
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as e:
            if ("locked" not in str(e) and "busy" not in str(e)) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Catalog:
    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30,
                                       isolation_level=None)
            # several processes may open it (a Chroma-server index has several writers): WAL lets
            # readers go on beside a writer, and writers wait up to 30 s for each other (timeout)
            _when_unlocked(lambda: self._db.execute("PRAGMA journal_mode=WAL"))
            self._db.execute("PRAGMA foreign_keys=ON")
            _when_unlocked(lambda: self._db.executescript(_SCHEMA))
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: not a speechsearch index catalogue ({e}); "
                             "point Library at another directory") from e
        self._lock = threading.RLock()
        self._local = threading.local()  # per thread: depth of its writes, its read connection
        self._readers: List[sqlite3.Connection] = []
        version = self.get_meta("schema_version")
        if version is not None and int(version) > SCHEMA_VERSION:
            raise StoreError(f"{self.path.parent}: index format {version} is newer than this "
                             f"speechsearch understands ({SCHEMA_VERSION}); upgrade speechsearch")
        with self._write():
            _when_unlocked(self._migrate)
        if version is None:
            self.set_meta({"schema_version": str(SCHEMA_VERSION), "created_at": _now()})
        elif int(version) < SCHEMA_VERSION:
            self.set_meta({"schema_version": str(SCHEMA_VERSION)})

    @contextmanager
    def _write(self) -> Iterator[None]:
        """Hold the catalogue for a write (one writer thread at a time); reads this thread makes
        meanwhile go through the writer's connection and see its uncommitted changes."""
        with self._lock:
            self._local.depth = getattr(self._local, "depth", 0) + 1
            try:
                yield
            finally:
                self._local.depth -= 1

    def _read(self) -> sqlite3.Connection:
        """The connection for a read. Each thread reads through its own, which sees committed
        data only (WAL), never a transaction another thread has open on the writer's; a thread
        inside a write reads through the writer's."""
        if getattr(self._local, "depth", 0):
            return self._db
        reader = getattr(self._local, "reader", None)
        if reader is None:
            reader = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30, isolation_level=None)
            reader.execute("PRAGMA query_only=ON")
            with self._lock:
                self._readers.append(reader)
            self._local.reader = reader
        return reader

    def _migrate(self) -> None:
        lexical.ensure_schema(self._db)  # also builds it for indexes made before it existed
        lexical.ensure_codes(self._db)
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(files)")}
        if "acoustic" not in columns:
            self._db.execute("ALTER TABLE files ADD COLUMN acoustic INTEGER NOT NULL DEFAULT 0")
        if "redactions" not in columns:
            self._db.execute("ALTER TABLE files ADD COLUMN redactions TEXT NOT NULL DEFAULT '[]'")
        if "speaker" not in {r[1] for r in self._db.execute("PRAGMA table_info(windows)")}:
            self._db.execute("ALTER TABLE windows ADD COLUMN speaker TEXT")

    # -- meta ---------------------------------------------------------------------------------
    def get_meta(self, key: str) -> Optional[str]:
        row = self._read().execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, values: Dict[str, str]) -> None:
        with self._write():
            self._db.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                                 list(values.items()))

    def update_meta_json(self, key: str, change: Callable[[Any], Any], default: Any = None) -> Any:
        """Read the JSON value of `key` (`default` when unset), apply `change`, write the result
        back if it differs, and return it: one transaction, so concurrent updates from other
        threads and processes are never lost."""
        with self._write(), self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
            old = json.loads(row[0]) if row else default
            new = change(old)
            if new != old:
                self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                                 (key, json.dumps(new, sort_keys=True)))
        return new

    def setdefault_meta(self, key: str, value: str) -> str:
        """The value of `key`, set to `value` first if it has none (atomic across processes)."""
        with self._write():
            self._db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", (key, value))
        return self.get_meta(key) or value

    # -- files --------------------------------------------------------------------------------
    def get_file(self, path: str) -> Optional[FileInfo]:
        row = self._read().execute(f"SELECT {_FILE_COLS} FROM files WHERE path=?", (path,)).fetchone()
        return _file_info(row) if row else None

    def files(self, under: Optional[str] = None) -> List[FileInfo]:
        if under is None:
            rows = self._read().execute(f"SELECT {_FILE_COLS} FROM files ORDER BY path").fetchall()
        else:
            prefix = under.rstrip("/") + "/"
            rows = self._read().execute(
                f"SELECT {_FILE_COLS} FROM files WHERE path=? OR substr(path, 1, ?)=? ORDER BY path",
                (under, len(prefix), prefix)).fetchall()
        return [_file_info(r) for r in rows]

    def begin_file(self, path: str, hash: str) -> None:
        """Mark `path` as being (re)indexed; its old windows no longer count."""
        with self._write(), self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM windows WHERE path=?", (path,))
            self._db.execute("DELETE FROM unit_vectors WHERE path=?", (path,))  # made from the old windows
            self._db.execute(
                "INSERT INTO files(path, hash, status, added_at) VALUES (?, ?, 'indexing', ?) "
                "ON CONFLICT(path) DO UPDATE SET hash=excluded.hash, status='indexing', segments=0",
                (path, hash, _now()))

    def register_file(self, path: str, hash: str) -> None:
        """Mark `path` ``indexing`` when the catalogue does not hold it yet; a file it holds stays
        as it is, and searchable, until `finish_file` switches it to its new windows."""
        with self._write():
            self._db.execute("INSERT INTO files(path, hash, status, added_at) VALUES (?, ?, 'indexing', ?) "
                             "ON CONFLICT(path) DO NOTHING", (path, hash, _now()))

    def finish_file(self, path: str, hash: str, *, duration: float, ids: Sequence[str],
                    windows: Sequence[Window], language: Optional[str], models: Dict[str, str],
                    metadata: Dict[str, Any], warnings: Sequence[str], transcript: List[dict],
                    acoustic: bool = False, redactions: Sequence[Any] = ()) -> None:
        with self._write(), self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM windows WHERE path=?", (path,))
            self._db.execute("DELETE FROM unit_vectors WHERE path=?", (path,))  # made from the old windows
            self._db.executemany(
                'INSERT INTO windows(id, path, start, "end", text, channel, speaker) VALUES (?, ?, ?, ?, ?, ?, ?)',
                [(i, path, w.start, w.end, w.text, w.channel, w.speaker) for i, w in zip(ids, windows)])
            lexical.store_codes(self._db, [(i, w.text) for i, w in zip(ids, windows)])
            self._db.execute(
                "INSERT INTO files(path, hash, status, duration, segments, added_at, language, models, metadata, "
                "warnings, transcript, acoustic, redactions) VALUES (?, ?, 'ready', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(path) DO UPDATE SET hash=excluded.hash, status='ready', duration=excluded.duration, "
                "segments=excluded.segments, added_at=excluded.added_at, language=excluded.language, "
                "models=excluded.models, metadata=excluded.metadata, warnings=excluded.warnings, "
                "transcript=excluded.transcript, acoustic=excluded.acoustic, redactions=excluded.redactions",
                (path, hash, duration, len(windows), _now(), language, json.dumps(models),
                 json.dumps(metadata), json.dumps(list(warnings)), json.dumps(transcript), int(acoustic),
                 json.dumps([list(r) for r in redactions])))

    def window_rows(self, path: str) -> List[tuple]:
        """(id, start, end, channel, speaker) of each window of `path`, in time order."""
        return self._read().execute('SELECT id, start, "end", channel, speaker FROM windows WHERE path=? '
                                "ORDER BY start", (path,)).fetchall()

    def windows_within(self, path: str, channel: int, start: float, end: float) -> List[str]:
        """Ids of the windows of `path` and `channel` that overlap start..end (a context unit's)."""
        rows = self._read().execute('SELECT id FROM windows WHERE path=? AND channel=? AND start<? AND "end">?',
                                (path, channel, end, start))
        return [r[0] for r in rows]

    def places(self, ids: Sequence[str]) -> Dict[str, tuple]:
        """id -> (path, start, end, channel, speaker) of each of `ids` the catalogue holds."""
        out: Dict[str, tuple] = {}
        for at in range(0, len(ids), 500):
            part = list(ids[at:at + 500])
            rows = self._read().execute('SELECT id, path, start, "end", channel, speaker FROM windows WHERE id IN '
                                    f"({','.join('?' * len(part))})", part)
            out.update((r[0], tuple(r[1:])) for r in rows)
        return out

    def windows(self, path: str) -> List[tuple]:
        """(id, Window) of each window of `path`, in time order."""
        rows = self._read().execute('SELECT id, start, "end", text, channel, speaker FROM windows WHERE path=? '
                                "ORDER BY start", (path,)).fetchall()
        return [(r[0], Window(r[1], r[2], r[3], r[4], r[5])) for r in rows]

    def redactions(self, path: str) -> List[tuple]:
        """(start, end, kind, channel) of each redacted span of `path`."""
        row = self._read().execute("SELECT redactions FROM files WHERE path=?", (path,)).fetchone()
        return [tuple(r) for r in json.loads(row[0])] if row else []

    def set_file_metadata(self, path: str, metadata: Dict[str, Any]) -> None:
        with self._write():
            self._db.execute("UPDATE files SET metadata=? WHERE path=?", (json.dumps(metadata), path))

    def remove_file(self, path: str) -> None:
        with self._write(), self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM windows WHERE path=?", (path,))
            self._db.execute("DELETE FROM unit_vectors WHERE path=?", (path,))  # made from the old windows
            self._db.execute("DELETE FROM files WHERE path=?", (path,))

    def unit_vectors(self, model: str, ids: Sequence[str]) -> Dict[str, np.ndarray]:
        """Vectors another text model gave these window or context ids (`put_unit_vectors`):
        id -> float32 vector, for the ids that have one."""
        out: Dict[str, np.ndarray] = {}
        ids = list(ids)
        for at in range(0, len(ids), _BIND):
            part = ids[at:at + _BIND]
            rows = self._read().execute(
                f"SELECT id, vector FROM unit_vectors WHERE model=? AND id IN ({','.join('?' * len(part))})",
                [model, *part]).fetchall()
            out.update((i, np.frombuffer(v, np.float16).astype(np.float32)) for i, v in rows)
        return out

    def put_unit_vectors(self, model: str, rows: Sequence[Tuple[str, str, np.ndarray]]) -> int:
        """Keep (id, path, vector) rows of `model`, as float16 (the rows of a file that is no
        longer in the index are skipped; a removed file's rows go with it). Returns how many
        were written."""
        with self._write(), self._db:
            self._db.execute("BEGIN IMMEDIATE")
            known = {r[0] for r in self._db.execute("SELECT path FROM files")}
            keep = [(model, i, p, np.asarray(v, np.float16).tobytes()) for i, p, v in rows if p in known]
            self._db.executemany("INSERT OR REPLACE INTO unit_vectors (model, id, path, vector) VALUES (?, ?, ?, ?)",
                                 keep)
        return len(keep)

    def ready(self, paths: Iterable[str]) -> Dict[str, str]:
        """Map each of `paths` that is fully indexed to its content hash."""
        paths = list(set(paths))
        out: Dict[str, str] = {}
        for at in range(0, len(paths), _BIND):
            part = paths[at:at + _BIND]
            rows = self._read().execute(
                f"SELECT path, hash FROM files WHERE status='ready' AND path IN ({','.join('?' * len(part))})", part)
            out.update(rows.fetchall())
        return out

    def without_acoustic(self) -> List[str]:
        """Ready files that have no acoustic vectors yet (indexed before they existed)."""
        return [r[0] for r in self._read().execute(
            "SELECT path FROM files WHERE status='ready' AND acoustic=0 ORDER BY path")]

    def set_acoustic(self, path: str, done: bool = True) -> None:
        with self._write():
            self._db.execute("UPDATE files SET acoustic=? WHERE path=?", (int(done), path))

    def transcript(self, path: str) -> List[dict]:
        row = self._read().execute("SELECT transcript FROM files WHERE path=?", (path,)).fetchone()
        return json.loads(row[0]) if row else []

    def has_acoustic(self) -> bool:
        return self._read().execute("SELECT EXISTS (SELECT 1 FROM files WHERE acoustic=1 AND segments>0)"
                                ).fetchone()[0] == 1

    def has_files(self) -> bool:
        return self._read().execute("SELECT EXISTS (SELECT 1 FROM files)").fetchone()[0] == 1

    def has_windows(self) -> bool:
        return self._read().execute("SELECT EXISTS (SELECT 1 FROM windows)").fetchone()[0] == 1

    def lexical(self, query: str, n: int) -> List[tuple]:
        """BM25 matches over window texts: (id, score), best first."""
        return lexical.bm25_search(self._read(), query, n)

    def codes(self, query: str, n: int) -> Dict[str, float]:
        """Windows that say a number or code the query names: id -> share of its codes found."""
        return lexical.code_search(self._read(), query, n)

    def compact(self) -> None:
        """Give deleted data back to the file system: merge the BM25 index's segments (they keep
        the terms of deleted windows until merged), rebuild the file (VACUUM: free pages still
        hold deleted text) and empty the write-ahead log."""
        with self._write():
            self._db.execute("INSERT INTO windows_fts(windows_fts) VALUES ('optimize')")
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def state(self) -> tuple:
        """Changes whenever a file is added, re-indexed or removed (what caches key on)."""
        return tuple(self._read().execute("SELECT COUNT(*), MAX(added_at), COALESCE(SUM(segments), 0) FROM files "
                                          "WHERE status='ready'").fetchone())

    def count_windows(self) -> int:
        return int(self._read().execute("SELECT COUNT(*) FROM windows").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            for reader in self._readers:
                reader.close()
            self._readers.clear()
            self._db.close()


_FILE_COLS = "path, hash, status, duration, segments, added_at, language, models, metadata, warnings"


def _file_info(row: Sequence[Any]) -> FileInfo:
    return FileInfo(path=row[0], hash=row[1], status=row[2], duration=row[3], segments=row[4],
                    added_at=row[5], language=row[6], models=json.loads(row[7]),
                    metadata=json.loads(row[8]), warnings=tuple(json.loads(row[9])))
