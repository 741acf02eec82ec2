"""Options for each stage, as frozen dataclasses with defaults.

Every option object can also be given as a plain dict of its fields; `coerce` turns either into
the dataclass and names the valid fields when a key is wrong.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping, Optional, Tuple, Type, TypeVar, Union

from .errors import InvalidInputError

__all__ = ["TranscribeOptions", "VadOptions", "WindowOptions", "coerce"]

T = TypeVar("T")

SAMPLE_RATE = 16000  # every stage works on 16 kHz mono float32 (what Whisper and the VAD expect)


@dataclass(frozen=True)
class TranscribeOptions:
    """How Whisper decodes speech.

    The defaults favour speed on a CPU with the hallucination guards on: greedy-then-fallback
    decoding, no conditioning on previous text (stops repetition loops), and segments dropped
    when Whisper itself judges them not to be speech.
    """

    language: Optional[str] = None  # None: "en" for English-only models, detected per file otherwise
    beam_size: int = 1
    best_of: int = 1
    temperature: Tuple[float, ...] = (0.0, 0.4, 0.8)
    condition_on_previous_text: bool = False
    compression_ratio_threshold: float = 2.4
    log_prob_threshold: float = -1.0
    no_speech_threshold: float = 0.6
    doubtful_word_probability: float = 0.4  # with no_speech_threshold: drops text invented in silence
    hallucination_silence_threshold: Optional[float] = 2.0
    word_timestamps: bool = True
    compute_type: str = "auto"  # "auto": int8 on CPU, float16 on CUDA (faster-whisper)
    batch_size: int = 2  # speech chunks decoded together by each worker (faster-whisper); 1: one at a time
    language_chunks: int = 4  # speech chunks sampled per file to detect its language
    cpu_threads: int = 0  # threads per worker; 0: cores / workers (CPU)
    workers: int = 0  # batches transcribed at once (faster-whisper); 0: one per core on CPU, 1 on GPU


@dataclass(frozen=True)
class VadOptions:
    """How voice activity detection (Silero VAD) finds the speech worth transcribing."""

    threshold: float = 0.5
    min_speech_ms: int = 250
    min_silence_ms: int = 700
    speech_pad_ms: int = 200
    normalize: bool = False  # level the copy the VAD sees (quiet turns, phone lines); Whisper's is untouched
    max_chunk_seconds: float = 30.0  # speech is packed into chunks of at most this length
    block_seconds: float = 120.0  # audio is decoded and scanned this much at a time


@dataclass(frozen=True)
class WindowOptions:
    """How transcript sentences are grouped into search windows."""

    min_seconds: float = 10.0
    max_seconds: float = 30.0
    overlap_sentences: int = 1
    max_gap_seconds: float = 8.0  # a longer pause always starts a new window
    sentence_pause_seconds: float = 1.2  # a pause this long ends a sentence without punctuation
    # context units: longer spans of the same channel, embedded beside the windows, so that a
    # reason for calling stated across several turns is found (docs/evaluation.md); 0 turns them off
    context_min_seconds: float = 30.0
    context_max_seconds: float = 60.0
    context_overlap_sentences: int = 2


def coerce(cls: Type[T], value: Union[T, Mapping[str, Any], None]) -> T:
    """Return `value` as an instance of the options class `cls`."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(value) - names)
        if unknown:
            raise InvalidInputError(
                f"unknown {cls.__name__} field(s) {unknown}; valid fields: {sorted(names)}"
            )
        data = dict(value)
        if "temperature" in data and not isinstance(data["temperature"], tuple):
            t = data["temperature"]
            data["temperature"] = tuple(t) if isinstance(t, (list, tuple)) else (float(t),)
        return cls(**data)
    raise InvalidInputError(f"expected {cls.__name__} or a dict, got {type(value).__name__}")


def as_dict(options: Any) -> dict:
    return asdict(options)
