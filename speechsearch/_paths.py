"""File names as the index keeps them.

SQLite and Chroma hold valid UTF-8 text only, but a POSIX file name is any bytes: a file copied
from a Windows share may be named ``b"caf\\xe9.wav"`` (latin-1), which Python gives as
``"caf\\udce9.wav"`` (PEP 383 surrogate escapes). The index keeps such a name with each byte that
is not UTF-8 written as a backslash escape, ``"caf\\\\xe9.wav"``: readable, valid UTF-8, and turned
back into the same bytes to open the file. Names that are valid UTF-8 are kept as they are.
"""

from __future__ import annotations

import os
import re
from typing import Any, Optional

__all__ = ["to_path", "stored_path", "os_path", "name_clash"]

_ESCAPE = re.compile(r"\\x([89a-f][0-9a-f])")  # what backslashreplace writes for bytes 0x80-0xff


def to_path(p: Any) -> str:
    """A path argument (str, bytes or os.PathLike) as a str; bytes that are not UTF-8 become
    surrogate escapes, as os.listdir gives them."""
    try:
        return os.fsdecode(p)
    except TypeError:
        from .errors import InvalidInputError

        raise InvalidInputError(f"expected a file or folder path (str, bytes or os.PathLike), "
                                f"got {type(p).__name__}") from None


def stored_path(path: str) -> str:
    """The form of `path` the index stores, returns on hits and prints: `path` itself when it
    is valid UTF-8, else with each undecodable byte written as ``\\xNN``."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        pass
    try:
        raw = os.fsencode(path)
    except UnicodeEncodeError:  # a lone surrogate that is no escaped byte: no file can have it
        return path.encode("utf-8", "backslashreplace").decode("ascii")
    return raw.decode("utf-8", "backslashreplace")


def _unescape(stored: str) -> str:
    return _ESCAPE.sub(lambda m: chr(0xDC00 + int(m.group(1), 16)), stored)


def os_path(stored: str) -> str:
    """The path to open for a stored path: the escaped bytes put back, unless a file is named
    with the backslashes themselves."""
    if "\\x" not in stored:
        return stored
    raw = _unescape(stored)
    if raw == stored or os.path.lexists(stored):
        return stored
    return raw


def name_clash(path: str) -> Optional[str]:
    """The file that already owns `path`'s stored name, when `path` is not UTF-8 and a file is
    named with the escape's backslashes themselves (``caf\\xe9.wav`` beside a ``café`` whose é
    is the latin-1 byte): that file keeps the name and `path` must be renamed. None nearly always."""
    stored = stored_path(path)
    return stored if stored != path and os.path.lexists(stored) else None
