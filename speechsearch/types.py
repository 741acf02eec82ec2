"""Result and data types that flow between the stages. Plain frozen dataclasses."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Union

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Word", "Segment", "Window", "Hit", "SimilarHit", "Topic", "FileResult", "FileFailure", "AddReport",
           "FileInfo", "RemoveReport", "CompactReport"]


@dataclass(frozen=True)
class Word:
    """One recognised word with its time span in seconds from the start of the file.

    ``text`` is spelled as the recogniser returned it, with its leading space when it starts a
    new word (Whisper's tokens: " cold", "-hearted"), so joining texts restores the sentence."""

    start: float
    end: float
    text: str
    probability: float = 1.0


@dataclass(frozen=True)
class Segment:
    """One transcript segment as the speech recogniser returned it (times in seconds)."""

    start: float
    end: float
    text: str
    words: Tuple[Word, ...] = ()
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    channel: int = 0
    speaker: Optional[str] = None  # a role ("agent") for a labelled channel, "S1", "S2"... from diarization


@dataclass(frozen=True)
class Window:
    """A search unit: a few consecutive sentences with exact start and end times."""

    start: float
    end: float
    text: str
    channel: int = 0
    speaker: Optional[str] = None


@dataclass
class Hit:
    """One search result: a moment in a file.

    ``score`` is higher for better matches (cosine similarity for text search).
    ``scores`` holds the per-signal components that made up ``score``.
    """

    path: str
    start: float
    end: float
    text: str
    score: float
    metadata: Dict[str, Any] = field(default_factory=dict)
    channel: int = 0
    id: str = ""
    scores: Dict[str, float] = field(default_factory=dict)
    language: Optional[str] = None  # the file's language, where it was detected or set
    speaker: Optional[str] = None  # who spoke: a channel's role, or S1, S2... from diarization
    redactions: Tuple[Tuple[float, float], ...] = ()  # redacted word spans (file time) of the whole file

    @property
    def duration(self) -> float:
        return self.end - self.start

    def clip(self, padding: float = 0.0, bleep: bool = True) -> "np.ndarray":
        """The audio of this moment (16 kHz mono float32, all channels mixed), with `padding`
        seconds either side; redacted words are bleeped unless ``bleep=False``."""
        from ._paths import os_path
        from .clips import clip_of

        return clip_of(os_path(self.path), self.start, self.end, padding, self.redactions if bleep else ())

    def save(self, path: Union[str, "os.PathLike[str]"], padding: float = 0.0, bleep: bool = True) -> Path:
        """Write :meth:`clip` to `path`; the extension picks the format (.wav, .mp3, .ogg, .flac...)."""
        from .clips import write_audio

        return write_audio(path, self.clip(padding, bleep))

    def to_dict(self) -> Dict[str, Any]:
        return {
            "path": self.path,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "text": self.text,
            "score": round(self.score, 6),
            "scores": {k: round(v, 6) for k, v in self.scores.items()},
            "channel": self.channel,
            "language": self.language,
            "speaker": self.speaker,
            "metadata": dict(self.metadata),
            "id": self.id,
        }



@dataclass
class SimilarHit(Hit):
    """One call like the query (`Library.similar`): ``path``/``start``/``end``/``text`` are the
    moment of this call most like one of the query's key moments (``query_start``..``query_end``,
    ``query_text``); ``score`` ranks: the cosine of the two calls' vectors less the mean of the
    two calls' "neighbourhoods" (each one's mean cosine to its 3 nearest calls), so above 0 means
    more alike than each usually is to its nearest calls. ``scores`` has "call" (the cosine),
    "neighbourhood" (this call's) and "moment" (the cosine of the two moments)."""

    query_path: str = ""
    query_start: float = 0.0
    query_end: float = 0.0
    query_text: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return dict(super().to_dict(), query={"path": self.query_path, "start": round(self.query_start, 3),
                                              "end": round(self.query_end, 3), "text": self.query_text})


@dataclass
class Topic:
    """A group of calls (`Library.topics`): ``label`` (its top terms), ``size`` (calls),
    ``terms`` (class-based TF-IDF, best first), ``files`` (nearest the topic's centre first),
    ``examples`` (the most specific moment of its most central calls), ``counts`` (calls per
    period, when asked ``by=``), ``cohesion`` (mean cosine of its calls to their centre)."""

    id: int
    label: str
    size: int
    terms: List[str]
    files: List[str]
    examples: List[Hit]
    counts: Dict[str, int] = field(default_factory=dict)
    cohesion: float = 0.0

    def to_dict(self) -> Dict[str, Any]:
        return {"id": self.id, "label": self.label, "size": self.size, "terms": list(self.terms),
                "files": list(self.files), "examples": [e.to_dict() for e in self.examples],
                "counts": dict(self.counts), "cohesion": self.cohesion}


@dataclass(frozen=True)
class FileResult:
    """A file that `Library.add` indexed or skipped."""

    path: str
    duration: float = 0.0
    segments: int = 0
    reason: str = ""
    warnings: Tuple[str, ...] = ()


@dataclass(frozen=True)
class FileFailure:
    """A file that `Library.add` could not index, with the reason and what to do."""

    path: str
    error: str
    error_type: str = ""


@dataclass
class AddReport:
    """What one `Library.add` call did: files added, skipped (unchanged) and failed."""

    added: List[FileResult] = field(default_factory=list)
    skipped: List[FileResult] = field(default_factory=list)
    failed: List[FileFailure] = field(default_factory=list)
    seconds: float = 0.0  # wall-clock time of the call
    options: Dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def segments(self) -> int:
        return sum(r.segments for r in self.added)

    @property
    def audio_seconds(self) -> float:
        return sum(r.duration for r in self.added)

    @property
    def warnings(self) -> List[str]:
        return [f"{r.path}: {w}" for r in self.added for w in r.warnings]

    def summary(self) -> str:
        lines = [
            f"added {len(self.added)} file(s) ({self.segments} segments, "
            f"{self.audio_seconds:.1f} s of audio), skipped {len(self.skipped)} unchanged, "
            f"failed {len(self.failed)} in {self.seconds:.1f} s"
        ]
        lines += [f"  warning: {w}" for w in self.warnings]
        lines += [f"  failed: {f.error}" for f in self.failed]
        return "\n".join(lines)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "added": [r.__dict__ | {"warnings": list(r.warnings)} for r in self.added],
            "skipped": [r.__dict__ | {"warnings": list(r.warnings)} for r in self.skipped],
            "failed": [f.__dict__ for f in self.failed],
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class FileInfo:
    """One indexed file as the index records it."""

    path: str
    hash: str
    status: str  # "ready", or "indexing" when an add was interrupted
    duration: float
    segments: int
    added_at: str
    models: Dict[str, str] = field(default_factory=dict)
    metadata: Dict[str, Any] = field(default_factory=dict)
    warnings: Tuple[str, ...] = ()
    language: Optional[str] = None


@dataclass
class RemoveReport:
    """What one `Library.remove` call deleted: the files (as the index names them), their
    transcript windows (catalogue, BM25 and code index; transcripts and metadata go with the
    files) and the rows deleted from each kind of vector collection ("text", "context",
    "acoustic", "voice"). The bytes stay on disk until `Library.compact` (docs/privacy.md)."""

    files: List[str] = field(default_factory=list)
    windows: int = 0
    vectors: Dict[str, int] = field(default_factory=dict)
    where: Optional[Dict[str, Any]] = None  # the filter, when files were chosen by one
    seconds: float = 0.0

    def summary(self) -> str:
        rows = ", ".join(f"{n} {kind}" for kind, n in sorted(self.vectors.items()) if n) or "none"
        lines = [f"removed {len(self.files)} file(s): {self.windows} windows; vector rows: {rows}"]
        lines += [f"  removed: {p}" for p in self.files]
        return "\n".join(lines)

    def to_dict(self) -> Dict[str, Any]:
        return {"files": list(self.files), "windows": self.windows, "vectors": dict(self.vectors),
                "where": self.where, "seconds": round(self.seconds, 3)}


@dataclass
class CompactReport:
    """What `Library.compact` did: the index directory's size before and after (bytes), and the
    vector collections it rebuilt (their deleted rows are gone from disk with the old ones)."""

    bytes_before: int = 0
    bytes_after: int = 0
    collections: List[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"compacted: {self.bytes_before / 1e6:.1f} MB -> {self.bytes_after / 1e6:.1f} MB; rebuilt "
                f"{len(self.collections)} vector collection(s) in {self.seconds:.1f} s")

    def to_dict(self) -> Dict[str, Any]:
        return {"bytes_before": self.bytes_before, "bytes_after": self.bytes_after,
                "collections": list(self.collections), "seconds": round(self.seconds, 3)}
