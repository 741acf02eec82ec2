"""The HTTP API behind `speechsearch serve` (FastAPI + uvicorn). See docs/server.md.

    from speechsearch import Library
    from speechsearch.server import create_app, serve

    serve("calls.idx", api_key="...", roots=["/data/calls"])     # or: speechsearch serve
    app = create_app(Library("calls.idx"), api_key="...")        # to mount or test it yourself

Each route checks its input, calls one `Library` method and turns library errors into a JSON
error with a fitting status (``{"error": "NotIndexedError", "detail": "..."}``). One `Library`
serves the app: reads run side by side, writes take one lock, and adds run as background jobs.

    app.py      create_app (the routes), serve, the body-size limit
    state.py    what the routes share: auth and signed audio links, roots, uploads, audio spans
    jobs.py     background adds with progress
    media.py    WAV bytes, the span cache, HTTP Range parsing
    errors.py   ApiError and the JSON error handlers
"""

from ..errors import MissingDependencyError

try:
    import fastapi  # noqa: F401
    import uvicorn  # noqa: F401
    try:  # python-multipart: FastAPI parses uploads with it (module renamed in 0.0.13)
        import python_multipart  # noqa: F401
    except ImportError:
        import multipart  # noqa: F401
except ImportError as _e:  # pragma: no cover - depends on the install
    raise MissingDependencyError(f"the HTTP server needs FastAPI, python-multipart and uvicorn ({_e}); "
                                 "pip install 'speechsearch[server]'") from None

from .app import ENV_API_KEY, create_app, serve
from .errors import ApiError

__all__ = ["create_app", "serve", "ApiError", "ENV_API_KEY"]
