"""HTTP errors as JSON: ``{"error": type, "detail": message}`` with a status that fits, never a
traceback. Library errors map by class; anything unexpected is logged and answered with 500."""

from __future__ import annotations

from typing import Any, Dict, Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from .._log import logger
from ..errors import (AudioError, IndexLockedError, InvalidInputError, MissingDependencyError, MissingToolError,
                      ModelMismatchError, ModelNotFoundError, NotIndexedError, SpeechSearchError, StoreError)

__all__ = ["ApiError", "error_response", "install_error_handlers", "LIBRARY_STATUS"]

# first match wins: NotIndexedError is an InvalidInputError, IndexLockedError a StoreError
LIBRARY_STATUS = ((NotIndexedError, 404), (InvalidInputError, 400), (AudioError, 422), (ModelMismatchError, 409),
                  (IndexLockedError, 409),
                  (ModelNotFoundError, 503), (MissingToolError, 503), (MissingDependencyError, 503),
                  (StoreError, 503))
_HTTP_NAMES = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
               413: "PayloadTooLarge", 415: "UnsupportedMediaType", 416: "RangeNotSatisfiable",
               429: "TooManyRequests", 503: "ServiceUnavailable"}


class ApiError(HTTPException):
    """An HTTP error with a JSON body ``{"error": name, "detail": message}``."""

    def __init__(self, status: int, error: str, detail: str, headers: Optional[Dict[str, str]] = None):
        super().__init__(status, detail, headers)
        self.error = error


def error_response(status: int, error: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail, **extra}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SpeechSearchError)
    async def library_error(request: Request, e: SpeechSearchError) -> JSONResponse:
        status = next((code for cls, code in LIBRARY_STATUS if isinstance(e, cls)), 500)
        return error_response(status, type(e).__name__, str(e))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> JSONResponse:
        name = getattr(e, "error", None) or _HTTP_NAMES.get(e.status_code, "HTTPError")
        response = error_response(e.status_code, name, str(e.detail))
        response.headers.update(e.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, e: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body", "form")),
                   "message": err.get("msg", "")} for err in e.errors()]
        detail = "; ".join(f"{x['field']}: {x['message']}" if x["field"] else x["message"] for x in errors)
        return error_response(422, "ValidationError", detail, errors=errors)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, e: Exception) -> JSONResponse:
        logger.exception("unexpected error in %s %s", request.method, request.url.path)
        return error_response(500, "InternalError", "unexpected server error; the server log has the details")
