"""Ingestion past one machine, on Ray.

The heavy part of indexing (decode, VAD, Whisper, text and acoustic vectors) runs in Ray actors,
each of which builds the index's pipeline once, loads its models once and then takes file after
file. The driver (the process that calls :func:`ingest`) plans the batch exactly as
``Library.add`` does (unchanged files skipped, manifest and metadata, bad files reported) and
commits each result as it arrives: vectors to the index's Chroma store (a Chroma server when the
library was opened with ``chroma_url``) and the transcript to the catalogue, so an interrupted run
keeps every file already committed and a failed file never leaves half an entry.

    from speechsearch.distributed import ingest
    report = ingest(["/mnt/calls/2026-11"], "calls.idx", ray_address="auto",
                    chroma_url="http://chroma.internal:8000")

Every node must see the audio files under the same paths (a shared mount) and have speechsearch
installed with the same models. Ray itself is not a dependency of the core package:
``pip install 'speechsearch[ray]'``.
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from ._log import logger
from .errors import InvalidInputError, MissingDependencyError, SpeechSearchError
from .pipeline import FATAL, FileJob, Processed, build_pipeline
from .process import process_files
from .types import AddReport

__all__ = ["ingest", "pipeline_spec", "WorkerLostError"]

PathLike = Union[str, "os.PathLike[str]"]


class WorkerLostError(SpeechSearchError):
    """A Ray worker died (out of memory, node lost) while it held this file; add it again."""


def _ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise MissingDependencyError(
            "distributed ingestion needs Ray: pip install 'speechsearch[ray]' (or pip install ray)") from e
    return ray


def _check_reachable(address: str) -> None:
    """Fail at once, not after Ray's minutes of retries, when a ``host:port`` or ``ray://host:port``
    address has nothing listening."""
    import socket
    from urllib.parse import urlsplit

    if address == "auto":
        return
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    if not parts.hostname or not parts.port:
        raise InvalidInputError(f"Ray address {address!r}: expected auto, local, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=5).close()
    except OSError as e:
        raise SpeechSearchError(
            f"cannot reach the Ray cluster at {address} ({e}); start it with `ray start --head` on that "
            "machine (its GCS port is 6379, the client port 10001), or use --ray local for one here") from None


def pipeline_spec(library: Any, cpus_per_worker: int = 1) -> Dict[str, Any]:
    """The keyword arguments that rebuild `library`'s indexing pipeline in another process
    (:meth:`Library.pipeline_spec <speechsearch.library.Library.pipeline_spec>`), with Whisper set
    to use `cpus_per_worker` cores. Models travel by name: a transcriber or embedder given as an
    instance cannot be sent to a worker."""
    return library.pipeline_spec(cpus_per_worker)


def _portable(e: BaseException, path: str) -> BaseException:
    """`e` if it survives pickling (Ray sends it to the driver), else a SpeechSearchError
    carrying its type and message."""
    import pickle

    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:
        text = str(e)
        return SpeechSearchError(text if path in text else f"{path}: {type(e).__name__}: {text}")


class _Worker:
    """A Ray actor body: one pipeline, models loaded once, files processed one after another."""

    def __init__(self, spec: Dict[str, Any], cpus: int):
        t0 = time.perf_counter()
        try:
            import torch

            torch.set_num_threads(max(1, cpus))
        except ImportError:  # pragma: no cover - torch comes with sentence-transformers
            pass
        self.pipeline = build_pipeline(**spec)  # the driver's Library checked it against the index
        for model in (self.pipeline.transcriber, self.pipeline.embedder):
            load = getattr(model, "load", None)
            if callable(load):
                load()
        self.loaded_in = time.perf_counter() - t0
        self.files = 0

    def ready(self) -> Dict[str, Any]:
        import socket

        return {"pid": os.getpid(), "host": socket.gethostname(), "load_seconds": round(self.loaded_in, 2)}

    def process(self, path: str, hash: str, info: Any, channels: Dict[int, str]) -> Tuple[Any, Dict[str, Any]]:
        """(Processed or the exception, worker facts) for one file."""
        t0 = time.perf_counter()
        f = FileJob(path, hash, info, channels)
        result: Any = RuntimeError(f"{path}: the pipeline ended without a result")
        try:
            for _, result in process_files([f], self.pipeline):
                break
        except BaseException as e:  # sent back: the driver decides what stops the batch
            result = e
        if isinstance(result, BaseException):
            result = _portable(result, path)
        self.files += 1
        return result, {"pid": os.getpid(), "seconds": round(time.perf_counter() - t0, 3), "files": self.files}


def _processor(ray: Any, actors: List[Any], stats: Dict[str, Any]) -> Any:
    """A replacement for process.process_files that hands files to `actors` (two queued per actor,
    so none waits for the driver) and yields results as they finish."""

    def run(states: List[FileJob], pipeline: Any, progress: Any) -> Iterator[Tuple[FileJob, Any]]:
        todo = list(range(len(states)))[::-1]
        free = [a for a in actors for _ in range(2)]
        running: Dict[Any, Tuple[int, Any]] = {}
        while todo or running:
            while todo and free:
                actor, i = free.pop(), todo.pop()
                f = states[i]
                running[actor.process.remote(f.path, f.hash, f.info, f.channels)] = (i, actor)
            if not running:  # every worker is gone
                for i in todo[::-1]:
                    yield states[i], WorkerLostError(f"{states[i].path}: no Ray worker left to process it")
                return
            (ref,), _ = ray.wait(list(running), num_returns=1)
            i, actor = running.pop(ref)
            f = states[i]
            try:
                result, facts = ray.get(ref)
                free.append(actor)
                stats.setdefault("files_per_worker", {}).setdefault(facts["pid"], 0)
                stats["files_per_worker"][facts["pid"]] += 1
            except ray.exceptions.RayActorError as e:
                free = [a for a in free if a is not actor]  # dead: its other queued file fails too
                logger.error("Ray worker lost while processing %s: %s", f.path, e)
                result = WorkerLostError(f"{f.path}: the Ray worker processing it died ({type(e).__name__}); "
                                         "add the file again")
            except ray.exceptions.RayError as e:
                result = WorkerLostError(f"{f.path}: Ray could not run it: {e}")
                free.append(actor)
            if isinstance(result, FATAL):
                raise result
            if isinstance(result, (KeyboardInterrupt, SystemExit)):
                raise result
            if progress is not None and isinstance(result, Processed):
                progress(result.duration)
            yield f, result

    return run


def ingest(paths: Union[PathLike, Iterable[PathLike]], index: Any = "speechsearch.idx", *,
           ray_address: Optional[str] = None, chroma_url: Optional[str] = None,
           workers: Optional[int] = None, cpus_per_worker: int = 1,
           metadata: Optional[Dict[str, Any]] = None, manifest: Optional[PathLike] = None,
           **library_options: Any) -> AddReport:
    """Index `paths` (files or folders) into `index` with the heavy work on Ray.

    `index` is an index directory or an open :class:`~speechsearch.Library`. `ray_address` is
    passed to ``ray.init``: ``"auto"`` joins the cluster this machine belongs to, ``"ray://host:
    10001"`` a remote one, None starts a local one with every core (or joins the Ray session
    already initialised in this process). `workers` actors of `cpus_per_worker` cores each
    (default: as many as the cluster's CPUs allow). `chroma_url` and `library_options` open the
    index as ``Library(index, chroma_url=..., **library_options)`` would. Returns the same
    :class:`~speechsearch.types.AddReport` as ``Library.add``, with ``report.options["ray"]``
    telling which workers did what."""
    from .library import Library

    ray = _ray()
    if isinstance(index, Library):
        if chroma_url is not None or library_options:
            raise InvalidInputError("pass chroma_url and library options when opening the Library, not here")
        library, own_library = index, False
    else:
        if chroma_url is not None:
            library_options["chroma_url"] = chroma_url
        library, own_library = Library(index, **library_options), True
    started = False
    try:
        spec = pipeline_spec(library, cpus_per_worker)
        if not ray.is_initialized():
            kwargs: Dict[str, Any] = {"include_dashboard": False, "logging_level": "WARNING"}
            if ray_address in (None, "local"):
                kwargs["num_cpus"] = os.cpu_count() or 1
            else:
                _check_reachable(ray_address)
                kwargs["address"] = ray_address
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise SpeechSearchError(
                    f"cannot reach the Ray cluster at {ray_address!r}: {e}. Start one with `ray start "
                    "--head`, or leave the address out to run a local cluster") from e
            started = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        n = workers or max(1, cpus // max(1, cpus_per_worker))
        actor_cls = ray.remote(num_cpus=cpus_per_worker)(_Worker)
        actors = [actor_cls.remote(spec, cpus_per_worker) for _ in range(n)]
        try:
            facts = ray.get([a.ready.remote() for a in actors])
        except ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            raise (cause if isinstance(cause, BaseException) else SpeechSearchError(f"Ray workers failed to start: {e}"))
        except ray.exceptions.RayActorError as e:
            cause = getattr(e, "cause", None) or e
            raise SpeechSearchError(f"Ray workers failed to start: {cause}") from e
        logger.info("%d Ray workers ready (model load %s s)", n, [f["load_seconds"] for f in facts])
        stats: Dict[str, Any] = {"workers": facts}
        try:
            report = library.add(paths, metadata=metadata, manifest=manifest,
                                 processor=_processor(ray, actors, stats))
        finally:
            for a in actors:
                ray.kill(a)
        report.options = dict(report.options, ray=stats)
        return report
    finally:
        if started:
            ray.shutdown()
        if own_library:
            library.close()
