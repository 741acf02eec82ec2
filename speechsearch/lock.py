"""Cross-process locks of an index directory (``fcntl.flock``; the index must be on a local disk).

Two lock files live in the index directory:

``write.lock``  the **writer lock**. `Library` holds it for the duration of one write call (add,
                remove, reindex, update_metadata, import). With the embedded Chroma store it is
                exclusive: a second writing process fails at once with :class:`IndexLockedError`,
                which names the holder (pid, host, program, since when; written into the file).
                The program is its name and, for ``speechsearch``, the subcommand ("speechsearch
                serve"), never its arguments, which may hold secrets (``--api-key``); the file is
                created (and, if older, tightened to) mode 0600.
                With a Chroma server writers share it (the server serialises the vectors, SQLite
                the catalogue); only `reindex`, which swaps collections, takes it alone.
``chroma.lock`` the **store lock** of the embedded Chroma store (see store.py), held around each
                single Chroma call: shared for reads, exclusive for writes, both waited for (a call
                lasts milliseconds). It keeps a reader from loading the HNSW files while a writer
                rewrites them in place, which crashed or corrupted readers when measured without it
                (docs/scaling.md). It also holds the store's generation: a counter the writer bumps
                after every write, so another process knows its in-memory snapshot is stale.

flock locks belong to an open file, not a thread, so each lock file is opened once per process
(`writer_lock` and `StoreLock.for_path` hand out one object per path) and threads of one process
share its hold; a process that dies releases its locks with it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import socket
import sys
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

from ._log import logger
from .errors import IndexLockedError, StoreError

__all__ = ["WriterLock", "StoreLock", "writer_lock", "WRITE_LOCK", "STORE_LOCK_TIMEOUT"]

WRITE_LOCK = "write.lock"
STORE_LOCK_TIMEOUT = 300.0  # seconds to wait for another process's single Chroma call

_REGISTRY: Dict[str, Any] = {}
_REGISTRY_LOCK = threading.Lock()


def _registered(cls: Any, path: Path) -> Any:
    key = f"{cls.__name__}:{os.path.abspath(path)}"
    with _REGISTRY_LOCK:
        obj = _REGISTRY.get(key)
        if obj is None:
            obj = _REGISTRY[key] = cls(path)
        return obj


def _open(path: Path, mode: int = 0o644) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)
    except OSError as e:
        raise StoreError(f"{path}: cannot open the lock file ({e.strerror}); is the index directory writable?") from e


_SUBCOMMAND = re.compile(r"[a-z]+(?:-[a-z]+)*")  # add, search-audio: never an option or its value
_SAFE_COMMAND = re.compile(r"[\w.+-]{1,40}|speechsearch [a-z]+(?:-[a-z]+)*")


def _program() -> str:
    """The running program's name and, for speechsearch, its subcommand ("speechsearch serve"):
    never its arguments or option values, which may hold secrets (``--api-key K``)."""
    argv = sys.argv or [""]
    name = os.path.basename(argv[0])
    if name == "__main__.py":  # python -m package
        name = os.path.basename(os.path.dirname(argv[0]))
    elif name.endswith(".py"):
        name = name[:-3]
    if not name or name.startswith("-"):  # python -c ..., an interactive session
        name = os.path.basename(sys.executable) or "python"
    name = re.sub(r"[^\w.+-]", "_", name)[:40]
    if name == "speechsearch" and len(argv) > 1 and len(argv[1]) <= 20 and _SUBCOMMAND.fullmatch(argv[1]):
        name += " " + argv[1]
    return name


def _holder(what: str) -> Dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "command": _program(),
            "what": what, "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _shown(raw: Any) -> Optional[Dict[str, Any]]:
    """The holder as told to others, whatever the file held: pid, host, program, what and since.
    An older version wrote the whole command line; only its program's name is kept."""
    if not isinstance(raw, dict) or not isinstance(raw.get("pid"), int) or isinstance(raw.get("pid"), bool):
        return None
    command = str(raw.get("command") or "")
    if command and not _SAFE_COMMAND.fullmatch(command):
        first = command.split()[0] if command.split() else ""
        command = re.sub(r"[^\w.+-]", "_", os.path.basename(first.strip("'\"")))[:40]
    return {"pid": raw["pid"], "host": str(raw.get("host") or "")[:255], "command": command,
            "what": str(raw.get("what") or "")[:40], "since": str(raw.get("since") or "")[:40]}


class WriterLock:
    """The index's writer lock (``write.lock``). Use :func:`writer_lock` to get the process's one
    instance for an index directory."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: Optional[int] = None
        self._cond = threading.Condition()
        self._owner: Optional[int] = None  # thread holding it exclusively
        self._depth = 0  # re-entries of that thread
        self._shared = 0  # in-process holders in shared mode

    def _file(self) -> int:
        if self._fd is None:
            self._fd = fd = _open(self.path, 0o600)  # it names the holder: for this user only
            try:  # an older version made it readable by everyone: tighten it
                if os.fstat(fd).st_mode & 0o077:
                    os.fchmod(fd, 0o600)
            except OSError as e:  # another user's file (shared through its group): leave it
                logger.warning("%s: cannot make the lock file private (%s)", self.path, e.strerror)
        return self._fd

    @contextmanager
    def hold(self, what: str, *, shared: bool = False, hint: Optional[str] = None) -> Iterator[None]:
        """Hold the lock while the block runs. Exclusive by default; `shared` lets other shared
        holders in. Another process's conflicting hold raises IndexLockedError at once; threads of
        this process wait for each other (re-entry by the same thread is fine)."""
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:  # re-entry (add inside a job that holds it, ...)
                self._depth += 1
                reentered = True
            else:
                reentered = False
                while self._owner is not None or (not shared and self._shared):
                    self._cond.wait()
                if shared:
                    if self._shared == 0:
                        self._flock(fcntl.LOCK_SH, what, hint)
                    self._shared += 1
                else:
                    self._flock(fcntl.LOCK_EX, what, hint)
                    self._owner, self._depth = me, 1
                    self._write_holder(what)
        try:
            yield
        finally:
            with self._cond:
                if reentered:
                    self._depth -= 1
                elif shared:
                    self._shared -= 1
                    if self._shared == 0:
                        fcntl.flock(self._file(), fcntl.LOCK_UN)
                else:
                    self._owner, self._depth = None, 0
                    self._clear_holder()
                    fcntl.flock(self._file(), fcntl.LOCK_UN)
                self._cond.notify_all()

    def _flock(self, mode: int, what: str, hint: Optional[str]) -> None:
        fd = self._file()
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise StoreError(f"{self.path}: cannot lock the index ({e.strerror})") from e
            raise IndexLockedError(self.path.parent, self.holder(), what, hint) from None

    def _write_holder(self, what: str) -> None:
        fd = self._file()
        data = json.dumps(_holder(what)).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)

    def _clear_holder(self) -> None:
        try:
            os.ftruncate(self._file(), 0)
        except OSError:
            pass

    def holder(self) -> Optional[Dict[str, Any]]:
        """Who holds the lock exclusively (pid, host, program, what, since), as its holder wrote
        into the lock file; None if nothing is written."""
        try:
            with open(self.path, "rb") as f:
                return _shown(json.loads(f.read(4096) or b"null"))
        except (OSError, ValueError, RecursionError):
            return None


def writer_lock(index_dir: Path) -> WriterLock:
    """This process's writer lock of the index at `index_dir`."""
    return _registered(WriterLock, Path(index_dir) / WRITE_LOCK)


class StoreLock:
    """The embedded store's lock and generation counter (``chroma.lock``).

    Across processes it is a readers-writer lock: reads share it, a write has it alone. Within
    one process, reads go on beside the process's own write (Chroma is thread-safe in-process),
    so only other processes are kept out. The flock is never converted between shared and
    exclusive while anyone relies on it (a conversion drops the old lock first): the process's
    current holders finish, new ones wait a moment, the lock is let go and taken again."""

    def __init__(self, path: Path, timeout: float = STORE_LOCK_TIMEOUT):
        self.path = Path(path)
        self.timeout = timeout
        self._fd: Optional[int] = None
        self._cond = threading.Condition()
        self._readers = 0
        self._writer: Optional[int] = None
        self._writers_waiting = 0
        self._mode = fcntl.LOCK_UN

    @classmethod
    def for_path(cls, path: Path) -> "StoreLock":
        return _registered(cls, path)

    def _file(self) -> int:
        if self._fd is None:
            self._fd = _open(self.path)
        return self._fd

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            # join an exclusive hold of this process's writer, or a shared one nobody waits to change
            while not (self._mode == fcntl.LOCK_EX and self._writer is not None) and (
                    self._writers_waiting or self._mode == fcntl.LOCK_EX):
                self._cond.wait()
            if self._mode == fcntl.LOCK_UN:
                self._take(fcntl.LOCK_SH)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._release_if_idle()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:
                raise RuntimeError("StoreLock.exclusive is not re-entrant")
            self._writers_waiting += 1
            try:
                # this process's readers of a shared hold finish first; then take it alone
                while self._writer is not None or (self._mode != fcntl.LOCK_UN and self._readers):
                    self._cond.wait()
                if self._mode != fcntl.LOCK_EX:
                    self._release(fcntl.LOCK_UN)
                    self._take(fcntl.LOCK_EX)
                self._writer = me
            finally:
                self._writers_waiting -= 1
                self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self._writer = None
                self._release_if_idle()

    def _release_if_idle(self) -> None:
        if self._writer is None and self._readers == 0:
            self._release(fcntl.LOCK_UN)
        self._cond.notify_all()

    def _release(self, mode: int) -> None:
        if self._mode != fcntl.LOCK_UN:
            fcntl.flock(self._file(), fcntl.LOCK_UN)
            self._mode = fcntl.LOCK_UN

    def _take(self, mode: int) -> None:
        """Take the flock in `mode`, waiting for other processes (called with _cond held and
        no flock held by this process)."""
        fd = self._file()
        deadline = time.monotonic() + self.timeout
        pause = 0.001
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                self._mode = mode
                return
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise StoreError(f"{self.path}: cannot lock the Chroma store ({e.strerror})") from e
            if time.monotonic() > deadline:
                raise StoreError(f"{self.path.parent}: waited {self.timeout:.0f} s for another process's call "
                                 f"into the Chroma store; is a process stuck? (`fuser {self.path}` names it)")
            time.sleep(pause)
            pause = min(pause * 2, 0.01)

    def generation(self) -> int:
        """The store's write counter (read it with the lock held)."""
        raw = os.pread(self._file(), 32, 0)
        try:
            return int(raw.decode().strip() or 0)
        except ValueError:
            return 0

    def bump(self) -> int:
        """Count one more write (call it with the lock held exclusively)."""
        value = self.generation() + 1
        os.pwrite(self._file(), f"{value}\n".encode().ljust(32), 0)
        return value
