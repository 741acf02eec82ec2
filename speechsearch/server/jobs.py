"""Background adds: one worker thread runs the jobs in order, each reporting files done, seconds
of audio added and, at the end, its add report. Jobs live in memory, not across restarts. At
most MAX_QUEUED_JOBS wait or run at once; another is refused with 429 and Retry-After."""

from __future__ import annotations

import dataclasses
import os
import threading
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .._log import logger
from ..errors import SpeechSearchError
from ..library import Library
from ..types import AddReport
from .errors import ApiError

__all__ = ["Job", "Jobs", "delete_upload", "MAX_QUEUED_JOBS", "RETRY_AFTER"]

STEPS = 20  # a big job adds its files in about this many Library.add calls (its progress steps)
CHUNK_MAX = 8  # files per call at most; short calls in one call still share Whisper batches
KEEP = 200  # finished jobs remembered
MAX_QUEUED_JOBS = 100  # jobs queued or running at once (create_app(max_jobs=...)); more get 429
RETRY_AFTER = 30  # seconds, in the Retry-After header of a 429 or 503


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclasses.dataclass
class Job:
    """One background add: its files, where it stands, and its report."""

    id: str
    paths: List[str]
    metadata: Optional[Dict[str, Any]] = None
    manifest: Optional[str] = None
    uploaded: Tuple[str, ...] = ()  # files the server saved from uploads; deleted again if they fail
    refused: Tuple[str, ...] = ()  # files under a folder that lead outside the roots
    status: str = "queued"  # queued, running, done, failed
    files_done: int = 0
    audio_seconds: float = 0.0
    report: AddReport = dataclasses.field(default_factory=AddReport)
    error: Optional[Dict[str, str]] = None
    created_at: str = dataclasses.field(default_factory=_now)
    finished_at: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        return {"id": self.id, "status": self.status,
                "progress": {"files_done": self.files_done, "files_total": len(self.paths),
                             "audio_seconds": round(self.audio_seconds, 3)},
                "report": self.report.to_dict(), "refused": list(self.refused), "error": self.error,
                "created_at": self.created_at, "finished_at": self.finished_at}


class Jobs:
    """Adds run one at a time on one worker thread, under the app's write lock. A job adds its
    files one per `Library.add` call (a few per call in a big job), so progress moves file by
    file; a bad file is in the report and the job goes on, as in `Library.add`."""

    def __init__(self, library: Library, write_lock: threading.Lock, max_queued: int = MAX_QUEUED_JOBS):
        self._library, self._write_lock, self.max_queued = library, write_lock, max_queued
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="speechsearch-job")
        self._jobs: "OrderedDict[str, Job]" = OrderedDict()
        self._lock = threading.Lock()

    def check_room(self) -> None:
        """Raise ApiError 429 (with Retry-After) when `max_queued` jobs already wait or run."""
        with self._lock:
            self._check_room()

    def _check_room(self) -> None:
        pending = sum(j.status in ("queued", "running") for j in self._jobs.values())
        if pending >= self.max_queued:
            raise ApiError(429, "TooManyRequests", f"{pending} add jobs are queued or running, this server's "
                           f"limit; try again in {RETRY_AFTER} s (GET /api/jobs shows them)",
                           {"Retry-After": str(RETRY_AFTER)})

    def submit(self, paths: Sequence[str], metadata: Optional[Dict[str, Any]] = None, manifest: Optional[str] = None,
               uploaded: Sequence[str] = (), refused: Sequence[str] = ()) -> Dict[str, Any]:
        """Queue a job and return its state; ApiError 429 when the queue is full."""
        job = Job(uuid.uuid4().hex, list(paths), metadata, manifest, tuple(uploaded), tuple(refused))
        with self._lock:
            self._check_room()
            self._jobs[job.id] = job
            finished = [j for j in self._jobs.values() if j.status in ("done", "failed")]
            for old in finished[: max(0, len(self._jobs) - KEEP)]:
                del self._jobs[old.id]
            state = job.to_dict()
        self._pool.submit(self._run, job)
        return state

    def get(self, job_id: str) -> Optional[Dict[str, Any]]:
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else job.to_dict()

    def recent(self) -> List[Dict[str, Any]]:
        with self._lock:
            return [j.to_dict() for j in reversed(self._jobs.values())]

    def _run(self, job: Job) -> None:
        with self._lock:
            job.status = "running"
        try:
            size = max(1, min(CHUNK_MAX, len(job.paths) // STEPS))
            for i in range(0, len(job.paths), size):
                chunk = job.paths[i:i + size]
                with self._write_lock:
                    part = self._library.add(chunk, metadata=job.metadata, manifest=job.manifest)
                with self._lock:
                    job.report.added += part.added
                    job.report.skipped += part.skipped
                    job.report.failed += part.failed
                    job.report.seconds += part.seconds
                    job.files_done += len(chunk)
                    job.audio_seconds += part.audio_seconds
            status, error = "done", None
        except Exception as e:  # the library stopped the batch (a model that cannot load, ...)
            if not isinstance(e, SpeechSearchError):
                logger.exception("add job %s failed", job.id)
            status, error = "failed", {"error": type(e).__name__, "detail": str(e)}
        failed = {f.path for f in job.report.failed}
        for path in job.uploaded:
            if status == "failed" or path in failed:
                delete_upload(path)
        with self._lock:
            job.status, job.error, job.finished_at = status, error, _now()

    def close(self) -> None:
        """Stop taking jobs; a running add is cut off with the process, and the next add of the
        same files finishes it (interrupted adds are safe, see docs/architecture.md)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def delete_upload(path: str) -> None:
    """Delete a file the server saved from an upload, and its per-content folder when empty."""
    try:
        os.remove(path)
        os.rmdir(os.path.dirname(path))
    except OSError:
        pass
