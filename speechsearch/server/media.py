"""Audio for HTTP: a span as WAV bytes, a cache of rendered spans, and ``Range`` parsing so a
browser's ``<audio>`` element can seek."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import Optional, Tuple

from ..clips import wav_bytes
from .errors import ApiError

__all__ = ["AudioCache", "wav_bytes", "byte_range"]


class AudioCache:
    """Rendered WAV spans, least recently used dropped first: a browser fetches one span in
    several range requests, and each should not decode it again."""

    def __init__(self, max_bytes: int = 128 << 20):
        self._items: "OrderedDict[tuple, bytes]" = OrderedDict()
        self._size, self._max, self._lock = 0, max_bytes, threading.Lock()

    def get(self, key: tuple) -> Optional[bytes]:
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
            return data

    def put(self, key: tuple, data: bytes) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = data
            self._size += len(data)
            while self._size > self._max and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self._size -= len(old)


def byte_range(header: Optional[str], size: int) -> Optional[Tuple[int, int]]:
    """The inclusive (first, last) bytes asked for by a ``Range: bytes=...`` header, or None to
    send the whole body (no header, another unit, several ranges, a malformed one). Raises a
    416 ApiError for a range that starts past the end (RFC 9110, 14.1.2)."""
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header or "")
    if not m or not (m[1] or m[2]):
        return None
    unsatisfiable = ApiError(416, "RangeNotSatisfiable", f"the range {header!r} lies outside the {size} bytes "
                                                         "of this audio", {"Content-Range": f"bytes */{size}"})
    if m[1]:
        first, last = int(m[1]), int(m[2]) if m[2] else size - 1
        if m[2] and last < first:  # not a valid range: ignored, the whole body is sent
            return None
        if first >= size:
            raise unsatisfiable
        return first, min(last, size - 1)
    n = int(m[2])
    if n == 0 or size == 0:
        raise unsatisfiable
    return max(0, size - n), size - 1
