"""speechsearch: search spoken audio by meaning.

>>> from speechsearch import Library
>>> lib = Library("calls.idx")
>>> lib.add("recordings/")
>>> for hit in lib.search("customer asks for a refund"):
...     print(hit.path, hit.start, hit.end, hit.text)
"""

from .errors import (
    AudioError,
    IndexingError,
    IndexLockedError,
    InvalidInputError,
    ModelMismatchError,
    NotIndexedError,
    SpeechSearchError,
    StoreError,
)
from .fusion import FusionOptions
from .library import Library
from .options import TranscribeOptions, VadOptions, WindowOptions
from .types import AddReport, CompactReport, FileInfo, Hit, RemoveReport

__version__ = "0.1.0"

__all__ = [
    "Library",
    "Hit",
    "AddReport",
    "RemoveReport",
    "CompactReport",
    "FileInfo",
    "TranscribeOptions",
    "VadOptions",
    "WindowOptions",
    "FusionOptions",
    "SpeechSearchError",
    "InvalidInputError",
    "NotIndexedError",
    "AudioError",
    "ModelMismatchError",
    "StoreError",
    "IndexLockedError",
    "IndexingError",
    "__version__",
]
