"""The openai-whisper (PyTorch) engine: OpenAI's reference implementation, float32 on CPU.

Offline, the packaged CTranslate2 weights are converted once into an openai-whisper checkpoint in
the model cache (see convert.py): ``tiny.en`` and ``base`` work with no download. A ``.pt`` path
or a CTranslate2 folder works too, and on a connected machine every name that
``whisper.available_models()`` lists downloads as usual.

Install without the CUDA-only triton (~1 GB)::

    pip install 'speechsearch[openai-whisper-cpu]' && pip install --no-deps openai-whisper==20250625

or simply ``pip install 'speechsearch[openai-whisper]'``.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .._log import logger
from ..errors import ModelNotFoundError
from ..models import (
    _PACKAGED_WHISPER,
    _looks_like_path,
    cache_dir,
    check_whisper_name,
    resolve_whisper,
    shared_model,
    whisper_model_id,
)
from ..options import TranscribeOptions
from ..types import Segment, Word
from . import keep_segment, missing_engine

__all__ = ["OpenAIWhisperTranscriber", "resolve_checkpoint"]

EXTRA_HINT = ("on a CPU-only machine, skip its CUDA-only triton dependency: pip install "
              "'speechsearch[openai-whisper-cpu]' && pip install --no-deps openai-whisper==20250625")


def _whisper() -> Any:
    try:
        import whisper
    except ImportError as e:
        raise missing_engine("openai-whisper", "openai-whisper", "openai-whisper", e, EXTRA_HINT) from e
    return whisper


def _converted(ct2_folder: Path, name: str) -> Path:
    """The openai-whisper checkpoint made from a CTranslate2 folder, converted on first use."""
    from .convert import convert_ct2

    model_bin = ct2_folder / "model.bin"
    stamp = f"{ct2_folder.resolve()}:{model_bin.stat().st_size}:{model_bin.stat().st_mtime_ns}"
    digest = hashlib.blake2b(stamp.encode(), digest_size=6).hexdigest()
    target = cache_dir() / "models" / f"openai-whisper-{name.replace('/', '_')}-{digest}.pt"
    if not target.exists():
        logger.info("converting CTranslate2 Whisper %s into an openai-whisper checkpoint at %s",
                    ct2_folder, target)
        convert_ct2(ct2_folder, target)
    return target


def resolve_checkpoint(model: str) -> str:
    """A checkpoint path, or an official name for openai-whisper to download."""
    whisper = _whisper()
    if not isinstance(model, str) or not model.strip():
        raise ModelNotFoundError(f"model must be a name or a path, got {model!r}")
    p = Path(model).expanduser()
    if p.exists() or _looks_like_path(model):
        if p.is_file():
            return str(p)
        if p.is_dir() and (p / "model.bin").exists():
            return str(_converted(p, p.name))
        raise ModelNotFoundError(
            f"{model}: not an openai-whisper checkpoint (.pt file) or a CTranslate2 Whisper folder; "
            f"pass one of those or a name from {sorted(set(whisper.available_models()) | set(_PACKAGED_WHISPER))}")
    if model in _PACKAGED_WHISPER:
        resolved = resolve_whisper(model)
        if resolved.local:
            return str(_converted(Path(resolved.source), model))
    if model not in whisper.available_models():
        raise ModelNotFoundError(
            f"unknown openai-whisper model {model!r}; use one of {whisper.available_models()}, a .pt "
            "checkpoint or a CTranslate2 Whisper folder")
    return model


def _load(checkpoint: str, device: str) -> Any:
    """Load like ``whisper.load_model``, and keep the alignment heads a converted checkpoint carries
    (word timing reads them)."""
    import torch

    whisper = _whisper()
    if not Path(checkpoint).is_file():  # an official name: openai-whisper downloads it
        try:
            return whisper.load_model(checkpoint, device=device)
        except Exception as e:
            raise ModelNotFoundError(
                f"could not load openai-whisper model {checkpoint!r}: {e}. Offline, use 'tiny.en' or "
                "'base' (converted from the packaged weights), a .pt file or a CTranslate2 folder") from e
    try:
        ckpt = torch.load(checkpoint, map_location=device, weights_only=True)
        model = whisper.model.Whisper(whisper.model.ModelDimensions(**ckpt["dims"]))
        model.load_state_dict(ckpt["model_state_dict"])
    except Exception as e:
        raise ModelNotFoundError(f"{checkpoint}: not a loadable openai-whisper checkpoint ({e})") from e
    heads = ckpt.get("alignment_heads")
    if heads:
        mask = torch.zeros(model.dims.n_text_layer, model.dims.n_text_head, dtype=torch.bool)
        for layer, head in heads:
            mask[layer, head] = True
        model.register_buffer("alignment_heads", mask.to_sparse(), persistent=False)
    return model.to(device)


class OpenAIWhisperTranscriber:
    """Whisper through openai-whisper. The model loads on the first call."""

    engine = "openai-whisper"

    def __init__(self, model: str = "tiny.en", options: Optional[TranscribeOptions] = None,
                 device: str = "auto"):
        self.model = model
        self.model_name = whisper_model_id(model)
        self.options = options or TranscribeOptions()
        self.device = device
        self._model: Any = None
        self._lock = threading.Lock()
        whisper = _whisper()  # fail at construction, naming the extra, when the package is missing
        check_whisper_name(model, sorted(set(whisper.available_models()) | set(_PACKAGED_WHISPER)))

    def _device(self) -> str:
        if self.device not in ("auto", "cpu", "cuda"):
            raise ModelNotFoundError(f"unknown device {self.device!r}; choose 'auto', 'cpu' or 'cuda'")
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def compute_type(self, device: Optional[str] = None) -> str:
        return "float16" if (device or self._device()) == "cuda" else "float32"

    def load(self) -> Any:
        with self._lock:
            if self._model is None:
                checkpoint = resolve_checkpoint(self.model)
                device = self._device()
                logger.info("loading openai-whisper %s from %s (%s)", self.model, checkpoint, device)
                self._model = shared_model(("openai-whisper", checkpoint, device), lambda: _load(checkpoint, device))
            return self._model

    @property
    def multilingual(self) -> bool:
        return bool(self.load().is_multilingual)

    def language_probs(self, audio: np.ndarray) -> Dict[str, float]:
        whisper = _whisper()
        model = self.load()
        mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(np.asarray(audio, np.float32)),
                                          model.dims.n_mels).to(model.device)
        _, probs = model.detect_language(mel)
        return dict(probs)

    def transcribe(self, audio: np.ndarray, language: Optional[str] = None
                   ) -> Tuple[List[Segment], Optional[str]]:
        model = self.load()
        o = self.options
        language = language or o.language
        if not model.is_multilingual:
            language = "en"
        decode: Dict[str, Any] = {"fp16": self._device() == "cuda"}
        if o.beam_size > 1:
            decode["beam_size"] = o.beam_size
        if o.best_of > 1:
            decode["best_of"] = o.best_of
        result = model.transcribe(
            np.asarray(audio, np.float32),
            verbose=None,
            language=language,
            temperature=tuple(o.temperature),
            compression_ratio_threshold=o.compression_ratio_threshold,
            logprob_threshold=o.log_prob_threshold,
            no_speech_threshold=o.no_speech_threshold,
            condition_on_previous_text=o.condition_on_previous_text,
            word_timestamps=o.word_timestamps,
            hallucination_silence_threshold=o.hallucination_silence_threshold if o.word_timestamps else None,
            **decode,
        )
        out = []
        for s in result["segments"]:
            words = tuple(Word(float(w["start"]), float(w["end"]), w["word"], float(w["probability"]))
                          for w in s.get("words", ()) if w["word"].strip())
            seg = Segment(float(s["start"]), float(s["end"]), s["text"].strip(), words,
                          float(s["avg_logprob"]), float(s["no_speech_prob"]))
            if keep_segment(seg, o):
                out.append(seg)
        return out, result.get("language")
