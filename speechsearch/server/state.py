"""What the routes share: the library, the API key (and the signed audio links made from it),
the roots that server-side paths must lie in, the upload folder, the jobs and the write lock.

Writes from requests (remove, metadata edits) run on one write thread of their own, not on the
threadpool that answers reads: while an add job holds the write lock for a step, they wait
there (at most WRITE_WAIT seconds, then 503) and searches go on."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import os
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Tuple, TypeVar, Union
from urllib.parse import urlencode, urlsplit

from fastapi import Request

from ..audio import AUDIO_EXTENSIONS, iter_audio_files
from ..errors import InvalidInputError, NotIndexedError
from ..library import Library
from ..types import FileInfo
from .errors import ApiError
from .jobs import MAX_QUEUED_JOBS, RETRY_AFTER, Jobs
from .media import AudioCache, wav_bytes

__all__ = ["State", "is_loopback", "within"]

PathLike = Union[str, "os.PathLike[str]"]
AUDIO_URL_TTL = 3600  # seconds a hit's signed audio_url stays valid
MAX_SPAN_SECONDS = 1800.0  # longest audio span served in one response
WRITE_WAIT = 300.0  # seconds a remove or metadata edit waits for a running add job's step, then 503
MAX_WAITING_WRITES = 32  # write requests waiting at once; more are refused with 429
T = TypeVar("T")


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class State:
    def __init__(self, library: Library, api_key: Optional[str], roots: Sequence[PathLike],
                 upload_dir: Optional[PathLike], max_upload_mb: float, max_jobs: int = MAX_QUEUED_JOBS):
        self.library = library
        self.api_key = api_key
        self._sign_key = hashlib.sha256(b"speechsearch audio url\0" + api_key.encode()).digest() if api_key else b""
        self.roots = [os.path.realpath(os.fspath(r)) for r in roots]
        for root in self.roots:
            if not os.path.isdir(root):
                raise InvalidInputError(f"root {root}: not a folder; give folders the server may add audio from")
        self.upload_dir = Path(os.path.abspath(os.fspath(upload_dir or library.path / "uploads")))
        self.max_upload = int(max_upload_mb * 2**20)
        self.write_lock = threading.Lock()
        self.jobs = Jobs(library, self.write_lock, max_jobs)
        self.audio = AudioCache()
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="speechsearch-write")
        self._waiting_writes = 0  # touched on the event loop only

    async def write(self, fn: Callable[[], T]) -> T:
        """Run `fn` under the write lock on the write thread, not on the threadpool that answers
        reads, and wait for it without holding a thread: a remove or metadata edit waits for a
        running add job's step while searches go on. 429 when MAX_WAITING_WRITES already wait;
        503 when the lock is not free within WRITE_WAIT seconds."""
        if self._waiting_writes >= MAX_WAITING_WRITES:
            raise ApiError(429, "TooManyRequests", f"{self._waiting_writes} changes to the index are already "
                           f"waiting; try again in {RETRY_AFTER} s", {"Retry-After": str(RETRY_AFTER)})
        self._waiting_writes += 1
        try:
            deadline = time.monotonic() + WRITE_WAIT
            return await asyncio.wrap_future(self._writer.submit(self._locked, fn, deadline))
        finally:
            self._waiting_writes -= 1

    def _locked(self, fn: Callable[[], T], deadline: float) -> T:
        if not self.write_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise ApiError(503, "ServiceUnavailable", f"the index stayed busy for {WRITE_WAIT:g} s (an add "
                           f"job, GET /api/jobs, or other changes); try again in {RETRY_AFTER} s",
                           {"Retry-After": str(RETRY_AFTER)})
        try:
            return fn()
        finally:
            self.write_lock.release()

    def close(self) -> None:
        """Stop the jobs and the write thread (see Jobs.close)."""
        self.jobs.close()
        self._writer.shutdown(wait=False, cancel_futures=True)

    # -- auth ---------------------------------------------------------------------------------
    def check_key(self, request: Request, key: Optional[str]) -> None:
        if self.api_key is None:  # started without a key: loopback clients only
            # Host and Origin too: a web page elsewhere must not reach it through the user's
            # browser (DNS rebinding, cross-site form posts)
            origin = request.headers.get("origin")
            if (request.client is None or not is_loopback(request.client.host)
                    or not is_loopback(request.url.hostname or "")
                    or (origin is not None and not is_loopback(urlsplit(origin).hostname or ""))):
                raise ApiError(403, "Forbidden", "this server has no API key and answers only local clients "
                                                 "(client, Host and Origin on this machine)")
            return
        if not key:
            raise ApiError(401, "Unauthorized", "send the API key in the X-API-Key header",
                           {"WWW-Authenticate": 'APIKey header="X-API-Key"'})
        # header values arrive as latin-1 text: compare their bytes (compare_digest refuses
        # non-ASCII str with a TypeError)
        if not hmac.compare_digest(key.encode("latin-1", "replace"), self.api_key.encode()):
            raise ApiError(403, "Forbidden", "the X-API-Key header does not hold this server's key")

    def _signature(self, params: Sequence[Tuple[str, str]]) -> str:
        return hmac.new(self._sign_key, urlencode(sorted(params)).encode(), hashlib.sha256).hexdigest()[:32]

    def signed_ok(self, request: Request) -> bool:
        """Whether the query carries a valid, unexpired signature over all its other parameters."""
        sig, exp = request.query_params.get("sig"), request.query_params.get("exp", "")
        # ASCII digits only ("²".isdigit() is true, int() of it fails; 5000 digits are too many)
        if not sig or not self.api_key or not re.fullmatch(r"[0-9]{1,12}", exp) or int(exp) < time.time():
            return False
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "sig"]
        # as bytes: compare_digest raises TypeError on a non-ASCII str
        return hmac.compare_digest(sig.encode("utf-8", "replace"), self._signature(params).encode())

    def audio_url(self, request: Request, path: str, start: float, end: float) -> str:
        """A link that plays ``[start, end]`` of `path`; signed (an hour) when the server has a key,
        since an ``<audio>`` element cannot send the key header."""
        params = [("path", path), ("start", f"{start:.3f}"), ("end", f"{end:.3f}")]
        if self.api_key:
            params.append(("exp", str(int(time.time()) + AUDIO_URL_TTL)))
            params.append(("sig", self._signature(params)))
        return f"{request.scope.get('root_path', '')}/api/audio?{urlencode(params)}"

    # -- server-side paths and uploads --------------------------------------------------------
    def resolve(self, raw: Any, what: str = "path") -> str:
        """A server-side path from a client, resolved (symlinks, ..) and kept only inside a root.
        A relative path is relative to the first root."""
        if not isinstance(raw, str) or not raw.strip() or "\0" in raw:
            raise InvalidInputError(f"{what} must be a non-empty string naming a file or folder on the server")
        if not self.roots:
            raise ApiError(403, "Forbidden", "this server adds no server-side paths; start it with --root DIR "
                                             "to allow the folders under DIR, or upload the file")
        real = os.path.realpath(raw if os.path.isabs(raw) else os.path.join(self.roots[0], raw))
        if not any(within(real, root) for root in self.roots):
            raise ApiError(403, "Forbidden", f"{raw}: outside the folders this server may read (its --root folders)")
        if not os.path.exists(real):
            raise ApiError(404, "NotFound", f"{raw}: no such file or folder on the server")
        return real

    def expand(self, real: str) -> Tuple[List[str], List[str]]:
        """The audio files of a resolved path, as real paths: (inside the roots, leading out)."""
        if not os.path.isdir(real):
            return [real], []
        inside: List[str] = []
        outside: List[str] = []
        for f in iter_audio_files(real):
            target = os.path.realpath(f)
            (inside if any(within(target, r) for r in self.roots) else outside).append(target)
        if not inside:
            raise InvalidInputError(f"{real}: no audio files in this folder (extensions: "
                                    f"{', '.join(sorted(AUDIO_EXTENSIONS))})")
        return inside, outside

    def save_upload(self, upload: Any) -> str:
        """Stream an upload to ``upload_dir/<content hash>/<its name>``: the same file sent twice
        lands on the same path, so the second add skips it as unchanged."""
        name = os.path.basename((upload.filename or "").replace("\\", "/"))
        stem, ext = os.path.splitext(name)
        if ext.lower() not in AUDIO_EXTENSIONS:
            raise ApiError(415, "UnsupportedMediaType", f"{name or 'the upload'}: not an audio file name; "
                           f"use one of the extensions {', '.join(sorted(AUDIO_EXTENSIONS))}")
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:80] or "upload"
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.upload_dir / f".part-{uuid.uuid4().hex}"
        digest, size = hashlib.blake2b(digest_size=8), 0
        try:
            with open(tmp, "wb") as out:
                for chunk in iter(lambda: upload.file.read(1 << 20), b""):
                    size += len(chunk)
                    if size > self.max_upload:
                        raise ApiError(413, "PayloadTooLarge", f"the upload is larger than this server's limit "
                                                               f"of {self.max_upload / 2**20:.0f} MB")
                    digest.update(chunk)
                    out.write(chunk)
            if size == 0:
                raise InvalidInputError(f"{name}: the upload is empty (0 bytes)")
            final = self.upload_dir / digest.hexdigest() / f"{safe}{ext.lower()}"
            final.parent.mkdir(exist_ok=True)
            os.replace(tmp, final)
            return str(final)
        finally:
            tmp.unlink(missing_ok=True)

    # -- indexed files and their audio --------------------------------------------------------
    def indexed(self, path: str) -> FileInfo:
        try:
            return self.library.file(path)
        except NotIndexedError:
            raise NotIndexedError(f"{path}: not in the index; GET /api/files lists what is") from None

    def render(self, info: FileInfo, start: float, end: Optional[float], padding: float) -> bytes:
        """``[start - padding, end + padding]`` of an indexed file as WAV, redacted words bleeped."""
        from .._paths import os_path
        from ..clips import clip_of

        if info.duration > 0:
            if start >= info.duration:
                raise InvalidInputError(f"start {start} s is past the end of {info.path} ({info.duration:.1f} s)")
            end = info.duration if end is None else min(end, info.duration)
        elif end is None:
            raise InvalidInputError(f"{info.path}: its length is unknown; give end")
        if end - start + 2 * padding > MAX_SPAN_SECONDS:
            raise InvalidInputError(f"the span {start}-{end} s is longer than {MAX_SPAN_SECONDS:.0f} s; "
                                    "ask for a shorter one")
        key = (info.path, info.hash, round(start, 3), round(end, 3), round(padding, 3))
        data = self.audio.get(key)
        if data is None:
            spans = [(a, b) for a, b, *_ in self.library.redactions(info.path)]
            data = wav_bytes(clip_of(os_path(info.path), start, end, padding, spans))
            self.audio.put(key, data)
        return data
