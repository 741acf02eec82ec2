"""Speech-to-text engines behind one small protocol, chosen by name.

``get_transcriber("faster-whisper", model="tiny.en")`` returns an engine; ``"openai-whisper"``,
a dotted path (``"package.module:Class"``) or a ready instance with a ``transcribe`` method work
too. The engine module is imported only when it is chosen.

An engine needs only ``transcribe(audio)``. Two optional methods make it faster or smarter, and
the pipeline uses them when they exist: ``transcribe_batch(chunks, language)`` decodes several
chunks at once, and ``language_probs(audio)`` lets the pipeline detect each file's language from
several stretches of its speech. Every engine's output goes through the same finishing step
(`finish_segments`): guards against hallucinated text and a time for every word.
"""

from __future__ import annotations

import importlib
import re
import zlib
from collections import defaultdict
from typing import Any, Dict, List, Optional, Protocol, Sequence, Tuple, runtime_checkable

import numpy as np

from ..errors import InvalidInputError, MissingDependencyError
from ..options import TranscribeOptions
from ..types import Segment, Word

__all__ = ["Transcriber", "get_transcriber", "ENGINES", "transcribe_chunks", "detect_language",
           "finish_segments", "keep_segment", "needs_fallback", "compression_ratio", "unheard_seconds"]

ENGINES = {
    "faster-whisper": "speechsearch.transcribe.faster_whisper:FasterWhisperTranscriber",
    "openai-whisper": "speechsearch.transcribe.openai_whisper:OpenAIWhisperTranscriber",
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


# ------------------------------------------------------------------ guards --------------------
def compression_ratio(text: str) -> float:
    """gzip-style compression ratio: high for text that repeats itself (a decoding loop)."""
    data = text.encode("utf-8")
    return len(data) / max(1, len(zlib.compress(data)))


def _silence(seg: Segment, o: TranscribeOptions) -> bool:
    """Whisper's rule (likely no speech and an unlikely text), plus one for the short phrases
    Whisper invents in silence and music ("you", "Thank you."): likely no speech, and words it
    doubts (on average, or one it all but ruled out, like the 0.02 "Thank" it wrote into hold music)."""
    if seg.no_speech_prob <= o.no_speech_threshold:
        return False
    if seg.avg_logprob < o.log_prob_threshold:
        return True
    probs = [w.probability for w in seg.words]
    return bool(probs) and (float(np.mean(probs)) < o.doubtful_word_probability
                            or min(probs) < o.doubtful_word_probability / 4)


def keep_segment(seg: Segment, o: TranscribeOptions) -> bool:
    """False for empty text, a repetition loop, or what Whisper itself judges not to be speech."""
    if not seg.text.strip() or _silence(seg, o):
        return False
    return not (o.compression_ratio_threshold and compression_ratio(seg.text) > o.compression_ratio_threshold)


def needs_fallback(seg: Segment, o: TranscribeOptions) -> bool:
    """Whisper's own rule for decoding again at a higher temperature: repetitive or unlikely text
    that is not simply silence."""
    if _silence(seg, o) or not seg.text.strip():
        return False
    return bool((o.compression_ratio_threshold and compression_ratio(seg.text) > o.compression_ratio_threshold)
                or (o.log_prob_threshold is not None and seg.avg_logprob < o.log_prob_threshold))


def unheard_seconds(segments: Sequence[Segment], duration: float) -> float:
    """The longest stretch of a chunk of `duration` seconds that no word covers (the start and
    end of the chunk count; a segment without words covers its own span). The pipeline's chunks
    are speech, so a long one is speech the decoder skipped."""
    spans = sorted((w.start, w.end) for s in segments for w in s.words)
    spans += [(s.start, s.end) for s in segments if not s.words]
    longest, heard = 0.0, 0.0
    for start, end in sorted(spans):
        longest = max(longest, start - heard)
        heard = max(heard, end)
    return max(longest, duration - heard)


# --------------------------------------------------------------- word times -------------------
_TOKEN = re.compile(r"\S+")


def _interpolated(start: float, end: float, texts: List[str]) -> List[Word]:
    """Spread words over [start, end] in proportion to their length."""
    weights = np.array([max(1, len(t.strip())) for t in texts], dtype=float)
    edges = start + (end - start) * np.concatenate([[0.0], np.cumsum(weights)]) / weights.sum()
    return [Word(float(edges[i]), float(edges[i + 1]), t, 0.0) for i, t in enumerate(texts)]


def fill_word_times(seg: Segment) -> Segment:
    """Give every word a usable time. A segment that came back without words (alignment can fail,
    often on numbers and symbols) gets its words from its text, interpolated over its span; a word
    whose alignment collapsed to zero length, or ran backwards, is spread between its neighbours."""
    if not seg.words:
        texts = [" " + t for t in _TOKEN.findall(seg.text)]
        if not texts:
            return seg
        return Segment(seg.start, seg.end, seg.text, tuple(_interpolated(seg.start, max(seg.end, seg.start), texts)),
                       seg.avg_logprob, seg.no_speech_prob, seg.channel)
    words = list(seg.words)
    i = 0
    while i < len(words):
        if words[i].end > words[i].start:
            i += 1
            continue
        j = i  # words[i:j] is a run of collapsed words; spread it from the previous word's end
        while j < len(words) and words[j].end <= words[j].start:
            j += 1
        lo = words[i - 1].end if i > 0 else min(seg.start, words[i].start)
        hi = words[j].start if j < len(words) else max(seg.end, words[j - 1].end)
        if hi <= lo:
            hi = lo + 0.02 * (j - i)
        words[i:j] = [Word(w.start, w.end, w.text, words[i + n].probability)
                      for n, w in enumerate(_interpolated(lo, hi, [w.text for w in words[i:j]]))]
        i = j
    return Segment(seg.start, seg.end, seg.text, tuple(words), seg.avg_logprob, seg.no_speech_prob, seg.channel)


def finish_segments(segments: Sequence[Segment], o: TranscribeOptions) -> List[Segment]:
    """The common last step of every engine: guards, then word times."""
    out = [s for s in segments if keep_segment(s, o)]
    return [fill_word_times(s) for s in out] if o.word_timestamps else out


# ------------------------------------------------------------------ pipeline ------------------
def transcribe_chunks(transcriber: Any, chunks: Sequence[np.ndarray], language: Optional[str] = None
                      ) -> List[List[Segment]]:
    """Segments for each chunk, batched when the engine can, with the common finishing step."""
    options = getattr(transcriber, "options", None)
    if hasattr(transcriber, "transcribe_batch"):
        results = transcriber.transcribe_batch(list(chunks), language)
    elif hasattr(transcriber, "language_probs"):
        results = [transcriber.transcribe(c, language)[0] for c in chunks]
    else:  # a minimal user engine: transcribe(audio) only
        results = [transcriber.transcribe(c)[0] for c in chunks]
    if isinstance(options, TranscribeOptions):
        return [finish_segments(r, options) for r in results]
    return [[fill_word_times(s) for s in r] for r in results]


def detect_language(transcriber: Any, chunks: Sequence[np.ndarray], max_chunks: int = 4
                    ) -> Optional[Tuple[str, float]]:
    """The language of a file from up to `max_chunks` of its speech chunks, spread over the ones
    given: per-chunk probabilities are summed, so one odd stretch (a name, a cough) does not
    decide it. None when the engine is English-only, cannot tell, or a language is fixed."""
    options = getattr(transcriber, "options", None)
    if getattr(options, "language", None) or not hasattr(transcriber, "language_probs"):
        return None
    if not getattr(transcriber, "multilingual", False) or not len(chunks):
        return None
    n = len(chunks)
    picks = sorted({round(i * (n - 1) / max(1, max_chunks - 1)) for i in range(min(n, max_chunks))})
    totals: Dict[str, float] = defaultdict(float)
    for i in picks:
        for lang, p in transcriber.language_probs(chunks[i]).items():
            totals[lang] += p / len(picks)
    if not totals:
        return None
    lang = max(totals, key=totals.__getitem__)
    return lang, totals[lang]


def missing_engine(engine: str, extra: str, package: str, exc: BaseException, hint: str = ""
                   ) -> MissingDependencyError:
    """The error for an engine whose package is not installed, naming the extra to install."""
    return MissingDependencyError(
        f"the {engine} engine needs the {package} package, which is not installed ({exc}); "
        f"install it with: pip install 'speechsearch[{extra}]'" + (f" ({hint})" if hint else "")
    )
