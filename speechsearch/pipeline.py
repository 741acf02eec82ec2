"""What indexing runs: the stages one Library uses (`Pipeline`), how they are built from names
(`build_pipeline`, `pipeline_spec`) and checked against what built an index, one file on its way
through them (`FileJob`) and what comes out for it (`Processed`).

Models inside a pipeline load on first use. `build_pipeline` is what `Library` builds after
checking its arguments against the index, and what a Ray worker builds from the `pipeline_spec`
of the driver's Library (models travel by name).
"""

from __future__ import annotations

import os

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from ._log import logger
from ._paths import stored_path
from .audio import AudioInfo, check_decoder
from .catalog import Catalog
from .channels import Stream, parse_channels, plan_streams
from .embed.acoustic import DEFAULT as DEFAULT_ACOUSTIC, get_acoustic_embedder, model_id
from .embed.text import TextEmbedder, get_text_embedder
from .errors import (
    InvalidInputError,
    MissingDependencyError,
    MissingToolError,
    ModelError,
    ModelMismatchError,
    StoreError,
)
from .models import DEFAULT_TEXT_MODEL, DEFAULT_WHISPER
from .options import TranscribeOptions, VadOptions, WindowOptions, as_dict, coerce
from .transcribe import ENGINES, Transcriber, get_transcriber
from .types import Segment, Window

__all__ = ["Pipeline", "Processed", "FileJob", "FATAL", "build_pipeline", "pipeline_spec", "check_model",
           "choose_acoustic", "choose_voice"]

# Errors that are not about one file: stop the batch instead of failing every file the same way.
FATAL = (MissingToolError, MissingDependencyError, ModelError, StoreError)

Progress = Callable[[float], None]  # called with the seconds of audio done since the last call


@dataclass
class Pipeline:
    """The stages one Library uses; models inside load on first use."""

    transcriber: Transcriber
    embedder: TextEmbedder
    vad: VadOptions = field(default_factory=VadOptions)
    windows: WindowOptions = field(default_factory=WindowOptions)
    decoder: str = "auto"
    acoustic: Optional[Any] = None  # an AcousticEmbedder, or None: no acoustic vectors
    voice: Optional[Any] = None  # a VoiceEmbedder, or None: no voice vectors
    channels: Dict[int, str] = field(default_factory=dict)  # channel -> role for multi-channel files
    diarizer: Optional[Any] = None  # a VoiceEmbedder whose vectors label speakers in mono files
    diarize_options: Optional[Any] = None
    redact: bool = False  # replace PII in transcripts before anything is stored or embedded

    @property
    def models(self) -> Dict[str, str]:
        models = {"asr_engine": self.transcriber.engine, "asr_model": self.transcriber.model_name,
                  "text_model": self.embedder.model_name}
        if self.acoustic is not None:
            models["acoustic_model"] = model_id(self.acoustic)
        if self.voice is not None:
            models["voice_model"] = self.voice.name
        return models


@dataclass
class Processed:
    """One file transcribed and embedded, not yet stored (`commit.commit_file` stores it)."""

    duration: float
    segments: List[Segment]
    windows: List[Window]
    vectors: np.ndarray
    language: Optional[str]
    warnings: List[str]
    units: List[Tuple[float, float, int]] = field(default_factory=list)  # acoustic: start, end, window
    unit_vectors: Optional[np.ndarray] = None
    voice_vectors: Optional[np.ndarray] = None
    redactions: List[Any] = field(default_factory=list)  # redact.Redaction spans
    contexts: List[Window] = field(default_factory=list)  # the longer units (windows.make_contexts)
    context_vectors: Optional[np.ndarray] = None


class FileJob:
    """One file on its way through the stages (`process.process_files`). The decode thread fills
    `info`, `warnings` and `scanned` before it queues the file's `FileDone`; the main thread reads
    them after that, and gathers the file's segments and sentence vectors chunk by chunk."""

    def __init__(self, path: str, hash: str = "", info: Optional[AudioInfo] = None,
                 channels: Optional[Dict[int, str]] = None):
        self.path, self.hash, self.info = path, hash, info
        self.key = stored_path(path)  # the name the index keeps (valid UTF-8; _paths.py)
        self.channels = channels or {}  # channel -> role; empty: mix all channels down
        self.streams: List[Stream] = [(None, None)]
        self.warnings: List[str] = []
        self.scanned = 0.0  # seconds of audio decoded
        self.language: Optional[str] = None
        self.detected = False
        self.segments: List[Segment] = []
        self.spans: List[Tuple[float, float, int]] = []  # sentence spans: start, end, channel
        self.unit_vectors: List[np.ndarray] = []
        self.voice_vectors: List[np.ndarray] = []
        self.reported = 0.0  # seconds of progress reported
        self.failed = False

    def add_scanned(self, seconds: float) -> None:
        self.scanned += seconds

    def plan_streams(self) -> None:
        """Which audio streams to transcribe: each labelled channel on its own, or the mix."""
        n = self.info.channels if self.info is not None else 1
        self.streams = plan_streams(self.path, self.channels, n, self.warnings)


# ------------------------------------------------------------- building a pipeline -----------
def build_pipeline(*, transcriber: Any = "faster-whisper", model: str = DEFAULT_WHISPER,
                   text_model: str = DEFAULT_TEXT_MODEL, device: str = "auto",
                   transcribe_options: Union[TranscribeOptions, Mapping[str, Any], None] = None,
                   vad: Union[VadOptions, Mapping[str, Any], None] = None,
                   windows: Union[WindowOptions, Mapping[str, Any], None] = None, decoder: str = "auto",
                   acoustic: Any = None, voice: Any = None, channels: Any = None, diarize: bool = False,
                   redact: bool = False) -> Pipeline:
    """A pipeline from names (or instances); nothing loads yet. `acoustic`: an acoustic embedder
    name or model id (``"speech-embedding/meanstd+c"``) or instance; `voice`: True (the default
    voice model), a name or an instance; False or None leaves either off. `diarize` labels the
    speakers of mono files with the voice embedder (the default one without `voice`). The
    arguments are those of `pipeline_spec`'s result, and `Library`'s of the same names."""
    from .embed.voice import DEFAULT as DEFAULT_VOICE, get_voice_embedder

    check_decoder(decoder)
    pipeline = Pipeline(
        transcriber=get_transcriber(transcriber, model=model, options=coerce(TranscribeOptions, transcribe_options),
                                    device=device),
        embedder=get_text_embedder(text_model, device=device),
        vad=coerce(VadOptions, vad),
        windows=coerce(WindowOptions, windows),
        decoder=decoder,
        acoustic=None if acoustic is None or acoustic is False else _acoustic_from(acoustic),
        voice=None if voice is None or voice is False else get_voice_embedder(DEFAULT_VOICE if voice is True
                                                                              else voice),
        channels=parse_channels(channels),
        redact=bool(redact),
    )
    if diarize:
        pipeline.diarizer = pipeline.voice or get_voice_embedder(DEFAULT_VOICE)
    return pipeline


def pipeline_spec(pipeline: Pipeline, cpus_per_worker: int = 1) -> Dict[str, Any]:
    """The keyword arguments of `build_pipeline` that rebuild `pipeline` in another process
    (engine, models, options, channels, redaction, diarization), with Whisper set to use
    `cpus_per_worker` cores. Models travel by name: a transcriber given as an instance cannot
    be sent to another process."""
    p = pipeline
    engine = getattr(p.transcriber, "engine", None)
    if engine not in ENGINES:
        raise InvalidInputError(
            f"distributed ingestion needs a named engine ({sorted(ENGINES)}), not {engine!r}: "
            "Ray workers rebuild the pipeline from names")
    options = as_dict(coerce(TranscribeOptions, getattr(p.transcriber, "options", None)))
    options.update(workers=max(1, int(cpus_per_worker)), cpu_threads=1)
    return {
        "transcriber": engine,
        "model": p.transcriber.model,
        "text_model": p.embedder.model,
        "device": getattr(p.transcriber, "device", "auto"),
        "transcribe_options": options,
        "vad": as_dict(p.vad),
        "windows": as_dict(p.windows),
        "decoder": p.decoder,
        "acoustic": False if p.acoustic is None else _acoustic_spec(p.acoustic),
        "voice": False if p.voice is None else p.voice.name,
        "channels": dict(p.channels),
        "diarize": p.diarizer is not None,
        "redact": bool(p.redact),
    }


def _acoustic_spec(embedder: Any) -> str:
    """What rebuilds `embedder` elsewhere (a worker): its model id, or for a tuned one its base
    id and the absolute folder of its head ("<base>+tuned@<folder>")."""
    folder = getattr(embedder, "folder", None)
    return model_id(embedder) if folder is None else f"{model_id(embedder.base)}+tuned@{os.path.abspath(folder)}"


def _acoustic_from(acoustic: Any) -> Any:
    if isinstance(acoustic, str) and "+tuned@" in acoustic:
        from .embed.acoustic import TunedAcoustic

        base, _, folder = acoustic.partition("+tuned@")
        return TunedAcoustic(get_acoustic_embedder(base), folder)
    return get_acoustic_embedder(acoustic)


# ------------------------------------------------------- checked against what built an index -
def check_model(key: str, asked: Optional[str], to_id: Callable[[str], str], recorded: Optional[str],
                default: str, index: Any) -> str:
    """The model to use for `key` ("asr_model", "text_model"): the one `asked` for, else the one
    that built the `index` (`recorded`), else `default`. Asking for another than the recorded one
    is a ModelMismatchError."""
    if asked is None:
        return recorded or default
    if recorded is not None and to_id(asked) != recorded and to_id(asked) != to_id(recorded):
        raise ModelMismatchError(
            f"{index} was built with {key.replace('_', ' ')} {recorded!r}, not {to_id(asked)!r}; "
            f"open it without naming a model (or with {recorded!r}), or index into a new directory"
            + ("; to switch text models, run Library(path).reindex(text_model=...) or "
               "`speechsearch reindex --text-model NAME`" if key == "text_model" else ""))
    return asked


def choose_acoustic(acoustic: Any, recorded: Optional[str], catalog: Catalog, index: Any) -> Any:
    """The acoustic embedder for an index: "auto" keeps what built it (the default model for
    a new index; none for an index made before acoustic vectors, until `reindex_acoustic`),
    False or None switches it off, a name or an instance must match what built it."""
    if acoustic is False or acoustic is None:
        return None
    if acoustic == "auto":
        if recorded is not None and "+tuned:" in recorded:  # a head trained by `Library.tune`
            from .embed.acoustic import tuned_acoustic

            return tuned_acoustic(recorded, index)
        if recorded is None and catalog.files():
            logger.info("%s has no acoustic vectors; `speechsearch reindex --acoustic` adds them", index)
            return None
        try:
            return get_acoustic_embedder(recorded or DEFAULT_ACOUSTIC)
        except MissingDependencyError as e:
            if recorded is not None:
                raise
            logger.warning("indexing without acoustic vectors: %s", e)
            return None
    embedder = get_acoustic_embedder(acoustic)
    if recorded is not None and model_id(embedder) != recorded:
        raise ModelMismatchError(
            f"{index} was built with acoustic model {recorded!r}, not {model_id(embedder)!r}; "
            "open it without naming one, or index into a new directory")
    return embedder


def choose_voice(voice: Any, recorded: Optional[str], index: Any) -> Any:
    """Voice vectors are optional: True (the default voice model), a name or an instance turns
    them on for the files added from now on; False leaves them off."""
    if voice is False or voice is None:
        return None
    from .embed.voice import DEFAULT as DEFAULT_VOICE, get_voice_embedder

    embedder = get_voice_embedder(DEFAULT_VOICE if voice is True else voice)
    if recorded is not None and embedder.name != recorded:
        raise ModelMismatchError(
            f"{index} was built with voice model {recorded!r}, not {embedder.name!r}; "
            "open it with voice=True, or index into a new directory")
    return embedder
