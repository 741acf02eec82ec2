"""`create_app`: the routes, each checking its input and calling one `Library` method; and
`serve`, which opens the index and runs uvicorn.

Every ``/api/`` route but ``/api/health`` needs the ``X-API-Key`` header; a hit's ``audio_url``
carries a short-lived signature instead. Reads run side by side in the threadpool; removes and
metadata edits take the write lock on a write thread of their own, so that waiting for a running
add job holds no thread that answers searches; adds are background jobs (``GET /api/jobs/{id}``),
at most `max_jobs` queued. Limits: MAX_QUERY_CHARS for ``q``, filters.MAX_WHERE_DEPTH and
MAX_WHERE_VALUES for ``where``, body sizes (BodyLimit).
"""

from __future__ import annotations

import dataclasses
import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Dict, List, Optional, Sequence, Tuple

from fastapi import APIRouter, Depends, FastAPI, File, Form, Query, Request, Security, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as FormFile

from .. import __version__
from .._log import logger
from ..errors import InvalidInputError
from ..filters import json_object
from ..metadata import check_metadata
from ..library import Library
from ..types import FileInfo, Hit
from .errors import ApiError, error_response, install_error_handlers
from .jobs import MAX_QUEUED_JOBS, delete_upload
from .media import byte_range
from .state import PathLike, State, is_loopback, within

__all__ = ["create_app", "serve", "ENV_API_KEY", "MAX_QUERY_CHARS"]

ENV_API_KEY = "SPEECHSEARCH_API_KEY"
MAX_CLIP_MB = 25  # search-audio uses only a clip's first 30 s
MAX_BODY_BYTES = 1 << 20  # any other request body
MAX_QUERY_CHARS = 2000  # longest text query (q); a longer one is 422
STATIC_DIR = Path(__file__).resolve().parent / "static"  # the web page: no data in it, so no key
# the page loads nothing from elsewhere and runs no inline script
_PAGE_CSP = ("default-src 'self'; img-src 'self' data:; media-src 'self' blob:; object-src 'none'; "
             "base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
_NO_KEY = (f"the server needs an API key: set --api-key or ${ENV_API_KEY} (or, on this machine only, run "
           "without one with --no-key-on-localhost)")


class BodyLimit:
    """ASGI middleware: refuse a body over its route's limit with 413, by Content-Length before
    reading, and by counting the bytes of a chunked upload as they arrive."""

    def __init__(self, app: Any, limits: Dict[str, int]):
        self.app, self.limits = app, limits

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"].rstrip("/")
        limit = next((n for suffix, n in self.limits.items() if path.endswith(suffix)), MAX_BODY_BYTES)
        message = f"the request body is larger than this route's limit of {limit / 2**20:.0f} MB"
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        if length.isdigit() and (len(length) > 18 or int(length) > limit):
            return await error_response(413, "PayloadTooLarge", message)(scope, receive, send)
        seen = 0

        async def counted() -> Dict[str, Any]:
            nonlocal seen
            msg = await receive()
            seen += len(msg.get("body", b""))
            if seen > limit:
                raise ApiError(413, "PayloadTooLarge", message)
            return msg

        await self.app(scope, counted, send)


_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False,
                           description=f"the server's API key (--api-key or ${ENV_API_KEY})")


def _state(request: Request) -> State:
    return request.app.state.speechsearch


def require_key(request: Request, key: Optional[str] = Security(_KEY_HEADER)) -> None:
    _state(request).check_key(request, key)


def require_key_or_signature(request: Request, key: Optional[str] = Security(_KEY_HEADER)) -> None:
    state = _state(request)
    if key or not request.query_params.get("sig") or state.api_key is None:
        return state.check_key(request, key)
    if not state.signed_ok(request):
        raise ApiError(403, "Forbidden", "this audio link has expired or was changed; search again for a "
                                         "fresh one, or send the X-API-Key header")


def _valid_text(value: Any, what: str) -> Any:
    """`value` (parsed JSON), refused if any text in it is not valid Unicode: a JSON escape such
    as \\ud800 gives a lone surrogate, which SQLite, Chroma and the file system cannot take."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidInputError(f"{what} holds text that is not valid Unicode (a lone surrogate "
                                        "such as \\ud800); send UTF-8 text") from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return value


def _file_dict(info: FileInfo) -> Dict[str, Any]:
    return dataclasses.asdict(info) | {"warnings": list(info.warnings)}


def _hits(request: Request, hits: List[Hit]) -> List[Dict[str, Any]]:
    state = _state(request)
    return [h.to_dict() | {"audio_url": state.audio_url(request, h.path, h.start, h.end)} for h in hits]


_WHERE_DOC = 'metadata filter as JSON, e.g. {"agent": "A12", "started_at": {"$gte": "2026-01-01"}} (docs/filters.md)'
_ADD_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "an audio file"},
        "metadata": {"type": "string", "description": "JSON object attached to every segment"}}}},
    "application/json": {"schema": {"type": "object", "required": ["path"], "properties": {
        "path": {"type": "string", "description": "a file or folder on the server, inside a --root folder "
                                                  "(relative paths are relative to the first root)"},
        "metadata": {"type": "object"},
        "manifest": {"type": "string", "description": "a CSV/JSONL manifest on the server, inside a root"}}}}}}}


def create_app(library: Library, *, api_key: Optional[str], allow_no_key_on_localhost: bool = False,
               roots: Sequence[PathLike] = (), upload_dir: Optional[PathLike] = None,
               max_upload_mb: float = 200, max_jobs: int = MAX_QUEUED_JOBS) -> FastAPI:
    """The FastAPI app serving `library`.

    `api_key` must be sent in the ``X-API-Key`` header to every ``/api/`` route but health.
    ``api_key=None`` is refused unless `allow_no_key_on_localhost`; such an app answers loopback
    clients only (and `serve` binds it to a loopback address only). Server-side paths may be
    added only from inside `roots` (symlinks and ``..`` resolved first); uploads are saved in
    `upload_dir` (default ``<index>/uploads``) and may be at most `max_upload_mb`. At most
    `max_jobs` add jobs wait or run at once; another add is refused with 429 and Retry-After.
    """
    if not api_key and not allow_no_key_on_localhost:
        raise InvalidInputError(_NO_KEY)
    if max_upload_mb <= 0:
        raise InvalidInputError(f"max_upload_mb must be positive, got {max_upload_mb}")
    if isinstance(max_jobs, bool) or not isinstance(max_jobs, int) or max_jobs < 1:
        raise InvalidInputError(f"max_jobs must be a positive integer, got {max_jobs!r}")
    state = State(library, api_key or None, roots, upload_dir, max_upload_mb, max_jobs)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = FastAPI(title="speechsearch", version=__version__, lifespan=lifespan,
                  description="Search spoken audio by meaning. Every /api/ route but /api/health needs the "
                              "X-API-Key header. Errors are JSON: {\"error\": type, \"detail\": message}.")
    app.state.speechsearch = state
    app.add_middleware(BodyLimit, limits={"/api/files": state.max_upload,
                                          "/api/search-audio": min(state.max_upload, MAX_CLIP_MB << 20)})
    install_error_handlers(app)
    api = APIRouter(prefix="/api", dependencies=[Depends(require_key)])

    @app.get("/api/health", tags=["server"], summary="Liveness check (no key needed)")
    def health() -> Dict[str, Any]:
        return {"status": "ok", "version": __version__}

    @api.get("/search", tags=["search"], summary="Search by text",
             description="The k best moments for a natural-language query, best first. Each hit has an "
                         "audio_url that plays its span (signed: it works without the key for an hour).")
    def search(request: Request, q: str = Query(..., max_length=MAX_QUERY_CHARS,
                                                description=f"what to look for, in words (at most "
                                                            f"{MAX_QUERY_CHARS} characters)"),
               k: int = Query(10, ge=1, le=100, description="number of hits"),
               speaker: Optional[str] = Query(None, description="only what this speaker said: a channel "
                                                                "role (customer) or S1, S2..."),
               where: Optional[str] = Query(None, description=_WHERE_DOC)) -> Dict[str, Any]:
        hits = state.library.search(q, k=k, where=json_object(where, "where"), speaker=speaker)
        return {"query": q, "hits": _hits(request, hits)}

    @api.post("/search-audio", tags=["search"], summary="Search by example (upload a clip)",
              description=f"The k moments most like the uploaded clip (0.3-30 s of speech; at most "
                          f"{MAX_CLIP_MB} MB).")
    def search_audio(request: Request, file: UploadFile = File(..., description="the example clip"),
                     k: int = Form(10, ge=1, le=100), where: Optional[str] = Form(None, description=_WHERE_DOC),
                     mode: str = Form("content", description="content (what is said) or voice (who says it)")
                     ) -> Dict[str, Any]:
        data = file.file.read()
        if not data:
            raise InvalidInputError("the uploaded clip is empty (0 bytes)")
        hits = state.library.search_audio(data, k=k, where=json_object(where, "where"), mode=mode)
        return {"hits": _hits(request, hits)}

    @api.get("/similar", tags=["recommend"], summary="Calls like an indexed file, or moments like a hit",
             description="Give `path` (an indexed file: the calls most like it, each with its moment most like "
                         "one of the file's key moments and that moment in `query`) or `hit` (a hit's id: "
                         "moments like it in other calls, one per call). Never the query's own file.")
    def similar(request: Request,
                path: Optional[str] = Query(None, description="an indexed file's path, as the index holds it"),
                hit: Optional[str] = Query(None, description="a hit's id (from /api/search)"),
                k: int = Query(10, ge=1, le=100, description="number of results"),
                speaker: Optional[str] = Query(None, description="compare what this speaker said (e.g. customer)"),
                where: Optional[str] = Query(None, description=_WHERE_DOC)) -> Dict[str, Any]:
        if bool(path) == bool(hit):
            raise InvalidInputError("give path (an indexed file) or hit (a hit's id from /api/search)")
        query: Any = state.library.moment(hit) if hit else state.indexed(str(path)).path
        hits = state.library.similar(query, k=k, where=json_object(where, "where"), speaker=speaker)
        return {"query": {"path": path, "hit": hit}, "hits": _hits(request, hits)}

    @api.get("/topics", tags=["recommend"], summary="What the calls are about: topics, labelled, over time",
             description="Topics of the indexed calls (those matching `where`), largest first: label, size, "
                         "terms, files, example moments with playable links, and with `by` (a metadata field "
                         "holding a date) calls per `period`.")
    def topics(request: Request,
               n: Optional[int] = Query(None, ge=1, le=100, description="number of topics (default: chosen)"),
               by: Optional[str] = Query(None, description="a metadata field holding a date, to count calls over time"),
               period: str = Query("week", description="day, week or month"),
               speaker: Optional[str] = Query(None, description="topics of what this speaker said"),
               where: Optional[str] = Query(None, description=_WHERE_DOC)) -> Dict[str, Any]:
        found = state.library.topics(where=json_object(where, "where"), n=n, by=by, period=period, speaker=speaker)
        return {"topics": [t.to_dict() | {"examples": _hits(request, t.examples)} for t in found]}

    @api.post("/files", tags=["files"], status_code=202, openapi_extra=_ADD_BODY,
              summary="Add audio: upload a file, or name a file or folder on the server",
              description="Starts a background job and answers 202 with its id; GET /api/jobs/{id} "
                          "reports progress and the add report. Server-side paths must lie inside a "
                          "--root folder (after resolving symlinks and ..).")
    async def add_files(request: Request) -> JSONResponse:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            form = await request.form(max_files=1, max_fields=8)
            try:
                upload = form.get("file")
                if not isinstance(upload, FormFile):
                    raise InvalidInputError("a multipart add needs the audio in a field named 'file'")
                meta = form.get("metadata")
                metadata = _valid_text(json_object(meta if isinstance(meta, str) else None, "metadata"), "metadata")
                check_metadata(metadata)
                state.jobs.check_room()  # before saving the upload
                path = await run_in_threadpool(state.save_upload, upload)
            finally:
                await form.close()
            try:
                job = state.jobs.submit([path], metadata, uploaded=[path])
            except ApiError:  # the queue filled up meanwhile
                delete_upload(path)
                raise
        elif ctype.startswith("application/json"):
            example = '{"path": "/data/calls"}'
            body = _valid_text(json_object((await request.body()).decode("utf-8", "replace"), "the body", example),
                               "the body")
            if body is None:
                raise InvalidInputError(f"the body must be a JSON object like {example}")
            metadata = body.get("metadata")
            if metadata is not None and not isinstance(metadata, dict):
                raise InvalidInputError("metadata must be a JSON object")
            check_metadata(metadata)
            manifest = state.resolve(body["manifest"], "manifest") if body.get("manifest") is not None else None
            files, outside = state.expand(state.resolve(body.get("path")))
            job = state.jobs.submit(files, metadata, manifest, refused=outside)
        else:
            raise ApiError(415, "UnsupportedMediaType", "send multipart/form-data with a 'file' field, or JSON "
                                                        'like {"path": "/data/calls"}')
        url = f"{request.scope.get('root_path', '')}/api/jobs/{job['id']}"
        return JSONResponse({"job": job["id"], "status": job["status"], "url": url}, status_code=202,
                            headers={"Location": url})

    def get_job(job_id: str) -> Dict[str, Any]:
        job = state.jobs.get(job_id)
        if job is None:
            raise ApiError(404, "NotFound", f"no job {job_id!r} (jobs are kept in memory, not across restarts)")
        return job

    api.get("/jobs/{job_id}", tags=["jobs"], summary="A background add: status, progress and report",
            description="status is queued, running, done or failed; progress counts files and seconds of "
                        "audio added; report is the add report (added, skipped, failed).")(get_job)
    app.get("/jobs/{job_id}", tags=["jobs"], summary="Same as /api/jobs/{job_id}",
            dependencies=[Depends(require_key)])(get_job)

    @api.get("/jobs", tags=["jobs"], summary="Recent background adds, newest first")
    def list_jobs() -> Dict[str, Any]:
        return {"jobs": state.jobs.recent()}

    @api.get("/files", tags=["files"], summary="Every indexed file")
    def list_files() -> Dict[str, Any]:
        return {"files": [_file_dict(f) for f in state.library.files()]}

    @api.get("/files/info", tags=["files"], summary="One indexed file: status, duration, models, metadata")
    def file_info(path: str = Query(..., description="the file's path as the index holds it")) -> Dict[str, Any]:
        return _file_dict(state.indexed(path))

    @api.delete("/files", tags=["files"], summary="Remove a file, or every file under a folder",
                description="Files this server saved from uploads are deleted from disk too.")
    async def remove_files(path: str = Query(..., description="a file or folder path as the index holds it")
                           ) -> Dict[str, Any]:
        target = os.path.abspath(path)

        def remove() -> Tuple[int, List[str]]:
            gone = [f.path for f in state.library.files() if within(f.path, target)]
            n = state.library.remove(target)
            for p in gone:
                if within(p, str(state.upload_dir)):
                    delete_upload(p)
            return n, gone

        n, gone = await state.write(remove)  # waits for a running job's step without holding a thread
        return {"removed": n, "paths": gone}

    @api.post("/files/remove", tags=["files"], summary="Remove every file whose metadata matches a filter",
              description="Right to erasure: `{\"where\": {\"customer_id\": \"C-1042\"}}` removes every "
                          "matching file from the catalogue, the BM25 index, the stored transcripts and every "
                          "vector collection, and reports what it removed. The bytes stay on disk until "
                          "POST /api/compact (docs/privacy.md). Files this server saved from uploads are "
                          "deleted from disk too.")
    async def remove_where(body: Dict[str, Any]) -> Dict[str, Any]:
        where = body.get("where") if isinstance(body, dict) else None
        if not isinstance(where, dict) or not where:
            raise InvalidInputError('the body must be {"where": {...}}, a filter on file metadata')
        _valid_text(body, "the body")

        def remove() -> Dict[str, Any]:
            report = state.library.remove(where=where)
            for p in report.files:
                if within(p, str(state.upload_dir)):
                    delete_upload(p)
            return report.to_dict()

        return await state.write(remove)

    @api.post("/compact", tags=["files"], summary="Give the space of removed data back to the disk",
              description="Rebuilds each vector collection and vacuums the catalogue (one pass; for a strict "
                          "erasure stop the server and run `speechsearch compact`, docs/privacy.md).")
    async def compact() -> Dict[str, Any]:
        return await state.write(lambda: state.library.compact().to_dict())

    @api.patch("/files/metadata", tags=["files"], summary="Replace a file's metadata (no re-transcription)")
    async def update_metadata(body: Dict[str, Any]) -> Dict[str, Any]:
        path, metadata = body.get("path"), body.get("metadata")
        if not isinstance(path, str) or not isinstance(metadata, dict):
            raise InvalidInputError('the body must be {"path": "...", "metadata": {...}}')
        _valid_text(body, "the body")

        def update() -> Dict[str, Any]:
            state.library.update_metadata(path, metadata)
            return _file_dict(state.indexed(path))

        return await state.write(update)

    @api.get("/info", tags=["server"], summary="The index: models, files, segments, seconds of audio")
    def info() -> Dict[str, Any]:
        return state.library.info()

    @app.get("/api/audio", tags=["audio"], dependencies=[Depends(require_key_or_signature)],
             response_class=Response, summary="Play a span of an indexed file (WAV, seekable)",
             description="16 kHz mono WAV of [start-padding, end+padding] s of an indexed file, redacted "
                         "words bleeped. Honours Range requests (206 + Content-Range) so <audio> can seek. "
                         "Needs the X-API-Key header, or the exp and sig of a hit's audio_url.",
             responses={200: {"content": {"audio/wav": {}}}, 206: {"content": {"audio/wav": {}}}})
    def audio(request: Request, path: str = Query(..., description="an indexed file"),
              start: float = Query(0.0, ge=0, description="seconds"),
              end: Optional[float] = Query(None, gt=0, description="seconds (default: the file's end)"),
              padding: float = Query(0.0, ge=0, le=30, description="seconds added either side"),
              exp: Optional[int] = Query(None, description="signed links: expiry (unix time)"),
              sig: Optional[str] = Query(None, description="signed links: signature")) -> Response:
        if end is not None and end <= start:
            raise InvalidInputError(f"end ({end}) must be after start ({start})")
        info = state.indexed(path)
        data = state.render(info, start, end, padding)
        etag = f'"{info.hash[:16]}-{start:g}-{end if end is not None else "end"}-{padding:g}"'
        headers = {"Accept-Ranges": "bytes", "ETag": etag, "Cache-Control": "private, max-age=3600"}
        if_range = request.headers.get("if-range")
        span = byte_range(request.headers.get("range"), len(data)) if if_range in (None, etag) else None
        if span is None:
            return Response(data, media_type="audio/wav", headers=headers)
        first, last = span
        headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
        return Response(data[first:last + 1], status_code=206, media_type="audio/wav", headers=headers)

    app.include_router(api)

    @app.get("/", include_in_schema=False)
    def web_page() -> Response:
        page = STATIC_DIR / "index.html"
        if not page.is_file():
            raise ApiError(404, "NotFound", f"the web page is not installed ({page} is missing); the API is "
                                            "at /api/ and its docs at /docs")
        return FileResponse(page, headers={"Content-Security-Policy": _PAGE_CSP, "Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")
    return app


def serve(index: PathLike, *, host: str = "127.0.0.1", port: int = 8000, api_key: Optional[str] = None,
          roots: Sequence[PathLike] = (), upload_dir: Optional[PathLike] = None, max_upload_mb: float = 200,
          allow_no_key_on_localhost: bool = False, log_level: str = "info",
          chroma_url: Optional[str] = None, max_jobs: int = MAX_QUEUED_JOBS) -> None:
    """Open the index at `index` (its vectors on the Chroma server at `chroma_url`, if it was
    built there) and serve it until interrupted. `api_key` defaults to
    ``$SPEECHSEARCH_API_KEY``; without one the server starts only with
    `allow_no_key_on_localhost` and a loopback `host` (127.0.0.1, ::1, localhost)."""
    import uvicorn

    api_key = api_key or os.environ.get(ENV_API_KEY) or None
    if api_key is None and not allow_no_key_on_localhost:
        raise InvalidInputError(_NO_KEY)
    if api_key is None and not is_loopback(host):
        raise InvalidInputError(f"--host {host} is reachable from other machines, so the server needs an API "
                                f"key there: set --api-key or ${ENV_API_KEY}, or serve on 127.0.0.1 without one")
    with Library(index, chroma_url=chroma_url) as library:
        app = create_app(library, api_key=api_key, allow_no_key_on_localhost=allow_no_key_on_localhost,
                         roots=roots, upload_dir=upload_dir, max_upload_mb=max_upload_mb, max_jobs=max_jobs)
        logger.info("serving %s on http://%s:%d (API docs at /docs)", library.path, host, port)
        uvicorn.run(app, host=host, port=port, log_level=log_level)
