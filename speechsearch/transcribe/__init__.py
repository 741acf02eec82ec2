"""Speech-to-text engines behind one small protocol, chosen by name.

``get_transcriber("faster-whisper", model="tiny.en")`` returns an engine; a dotted path
(``"package.module:Class"``) or a ready instance with a ``transcribe`` method works too. The
engine module is imported only when it is chosen.
"""

from __future__ import annotations

import importlib
from typing import Any, List, Optional, Protocol, Tuple, runtime_checkable

import numpy as np

from ..errors import InvalidInputError
from ..options import TranscribeOptions
from ..types import Segment

__all__ = ["Transcriber", "get_transcriber", "ENGINES"]

ENGINES = {
    "faster-whisper": "speechsearch.transcribe.faster_whisper:FasterWhisperTranscriber",
}


@runtime_checkable
class Transcriber(Protocol):
    """Turns 16 kHz mono float32 audio into segments timed from the start of that audio."""

    engine: str  # e.g. "faster-whisper"
    model_name: str  # what the index records, e.g. "tiny.en"

    def transcribe(self, audio: np.ndarray) -> Tuple[List[Segment], Optional[str]]:
        """Return the segments (with words) and the language, or None when unknown."""
        ...


def _import(path: str) -> Any:
    module, _, attr = path.partition(":")
    if not attr:
        module, _, attr = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise InvalidInputError(f"cannot import transcriber {path!r}: {e}") from e


def get_transcriber(
    spec: Any = "faster-whisper",
    model: str = "tiny.en",
    options: Optional[TranscribeOptions] = None,
    device: str = "auto",
) -> Transcriber:
    """Build the engine named by `spec`: an engine name, a dotted class path, or an instance."""
    if not isinstance(spec, str):
        if isinstance(spec, Transcriber):
            return spec
        raise InvalidInputError(
            f"transcriber must be one of {sorted(ENGINES)}, a dotted class path, or an object with "
            f"engine, model_name and transcribe(); got {type(spec).__name__}"
        )
    if spec in ENGINES:
        cls = _import(ENGINES[spec])
    elif "." in spec or ":" in spec:
        cls = _import(spec)
    else:
        raise InvalidInputError(
            f"unknown transcriber {spec!r}; choose one of {sorted(ENGINES)} or a dotted class path"
        )
    return cls(model=model, options=options or TranscribeOptions(), device=device)
