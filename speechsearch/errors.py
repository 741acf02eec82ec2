"""The one exception tree of speechsearch.

Every error the library raises on purpose derives from :class:`SpeechSearchError`,
so ``except SpeechSearchError`` catches them all::

    SpeechSearchError
    ├── InvalidInputError (ValueError)      a bad argument: empty query, k < 1, bad metadata
    │   └── NotIndexedError (KeyError)      remove() of a path the index does not hold
    ├── AudioError                          one file could not be used; names the file
    │   ├── AudioNotFoundError (FileNotFoundError)
    │   ├── EmptyAudioError                 a 0-byte file or a stream with no samples
    │   └── DecodeError                     not audio, or too damaged to decode
    ├── MissingToolError                    a system tool (ffmpeg) is not installed
    ├── MissingDependencyError (ImportError)  an optional extra is not installed
    ├── ModelError
    │   ├── ModelNotFoundError              a model name or path that cannot be loaded
    │   └── ModelMismatchError              the index was built with other models
    ├── StoreError                          the index directory is unusable
    │   └── IndexLockedError                another process is writing to the index
    └── IndexingError                       an add or import stopped for a reason that is not
                                            about one file (an unexpected error, kept as __cause__)

Messages say what went wrong and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "SpeechSearchError",
    "InvalidInputError",
    "NotIndexedError",
    "AudioError",
    "AudioNotFoundError",
    "EmptyAudioError",
    "DecodeError",
    "MissingToolError",
    "MissingDependencyError",
    "ModelError",
    "ModelNotFoundError",
    "ModelMismatchError",
    "StoreError",
    "IndexLockedError",
    "IndexingError",
]


class SpeechSearchError(Exception):
    """Base class of every error raised by speechsearch."""


class InvalidInputError(SpeechSearchError, ValueError):
    """An argument has a value the library cannot use."""


class NotIndexedError(InvalidInputError, KeyError):
    """A path was named that the index does not hold."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class AudioError(SpeechSearchError):
    """A file could not be turned into audio. ``path`` names the file."""

    def __init__(self, path: str, message: str):
        self.path = str(path)
        self.reason = message
        super().__init__(f"{self.path}: {message}")

    def __reduce__(self):  # type: ignore[no-untyped-def]  # pickles (Ray workers, processes)
        return type(self), (self.path, self.reason)


class AudioNotFoundError(AudioError, FileNotFoundError):
    """The path does not exist."""


class EmptyAudioError(AudioError):
    """The file is empty or holds no audio samples."""


class DecodeError(AudioError):
    """The file is not audio, or is too damaged to decode."""


class MissingToolError(SpeechSearchError):
    """A system program the library needs (ffmpeg) is not installed."""


class MissingDependencyError(SpeechSearchError, ImportError):
    """An optional Python package is not installed; the message names the extra."""


class ModelError(SpeechSearchError):
    """A model could not be found or does not fit the index."""


class ModelNotFoundError(ModelError):
    """A model name or path that cannot be loaded here."""


class ModelMismatchError(ModelError):
    """The index was built with other models than the ones asked for."""


class StoreError(SpeechSearchError):
    """The index directory is unusable (wrong format, newer schema, not writable)."""


class IndexLockedError(StoreError):
    """Another process holds the index's writer lock. ``holder`` is what it wrote into the lock
    file (pid, host, command, what, since), or None when there is nothing to tell."""

    HINT = ("Wait for it to finish, or, for several writers at once, run a Chroma server (chroma run "
            "--path DIR --port 8001) and index with --chroma-url http://127.0.0.1:8001 "
            "(Library(..., chroma_url=...)); see docs/scaling.md")

    def __init__(self, index: object, holder: "dict | None" = None, what: str = "write",
                 hint: "str | None" = None):
        self.index = str(index)
        self.holder = holder or None
        h = self.holder or {}
        who = (f"pid {h.get('pid')} on {h.get('host')} ({h.get('command')}), {h.get('what') or 'writing'} "
               f"since {h.get('since')}") if h.get("pid") else "another process"
        super().__init__(f"{self.index}: cannot {what}: the index is locked by a writer: {who}. "
                         f"{hint or self.HINT}")


class IndexingError(SpeechSearchError):
    """A batch (`add`, `import_transcripts`, `reindex_acoustic`) stopped for a reason that is not
    about one file and that the library did not foresee. The original exception is the
    ``__cause__``; the files committed before it stay indexed."""
