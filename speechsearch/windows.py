"""Group transcript segments into search units at two scales, keeping the exact start and end
time of the speech they hold:

- windows: a few whole sentences, about 10-30 s each, with a small overlap; what a hit shows;
- contexts: about 30-60 s of the same channel (both speakers of a mono call), overlapping more,
  so that a reason stated across two or three turns is one unit. They score the windows they
  cover (search.py) and are never shown on their own."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Iterable, List, Optional, Sequence, Tuple

from .options import WindowOptions
from .types import Segment, Window, Word

__all__ = ["sentences", "make_windows", "make_contexts", "context_options"]

_END = re.compile(r"[.?!…]['\")\]]*$")


@dataclass(frozen=True)
class Sentence:
    start: float
    end: float
    text: str
    words: Tuple[Word, ...] = ()


def _join(words: Sequence[Word]) -> str:
    """Words as Whisper spells them carry their own leading space ("cold" "-hearted")."""
    return " ".join("".join(w.text for w in words).split())


def sentences(segments: Iterable[Segment], options: Optional[WindowOptions] = None) -> List[Sentence]:
    """Split segments into sentences at end punctuation and long pauses, using word times.

    Segments without word timestamps count as one sentence each. A sentence longer than
    ``max_seconds`` is cut between words.
    """
    o = options or WindowOptions()
    out: List[Sentence] = []
    for seg in segments:
        if not seg.words:
            out.append(Sentence(seg.start, seg.end, seg.text.strip()))
            continue

        def close(words: List[Word]) -> None:
            out.append(Sentence(words[0].start, words[-1].end, _join(words), tuple(words)))

        current: List[Word] = []
        for i, w in enumerate(seg.words):
            if current and (w.end - current[0].start > o.max_seconds
                            or w.start - current[-1].end >= o.sentence_pause_seconds):
                close(current)
                current = []
            current.append(w)
            if _END.search(w.text):
                close(current)
                current = []
        if current:
            close(current)
    return [s for s in out if s.text]


def make_windows(segments: Iterable[Segment], options: Optional[WindowOptions] = None,
                 channel: int = 0, speaker: Optional[str] = None) -> List[Window]:
    """Greedy sentence grouping: extend a window until it lasts ``min_seconds``, never past
    ``max_seconds`` or across a pause of ``max_gap_seconds``; the next window starts
    ``overlap_sentences`` before the previous one ended."""
    o = options or WindowOptions()
    sents = sentences(segments, o)
    windows: List[Window] = []
    n = len(sents)
    i = 0
    while i < n:
        j = i
        while j + 1 < n:
            nxt = sents[j + 1]
            if sents[j].end - sents[i].start >= o.min_seconds:
                break
            if nxt.end - sents[i].start > o.max_seconds or nxt.start - sents[j].end > o.max_gap_seconds:
                break
            j += 1
        if j + 1 < n and _absorbs_tail(sents, i, j, o):
            j = n - 1
        group = sents[i: j + 1]
        windows.append(Window(group[0].start, group[-1].end, " ".join(s.text for s in group), channel, speaker))
        if j == n - 1:
            break
        gap_after = sents[j + 1].start - sents[j].end
        overlap = o.overlap_sentences if gap_after <= o.max_gap_seconds else 0
        i = max(j + 1 - overlap, i + 1)
    return windows


def _absorbs_tail(sents: Sequence[Sentence], i: int, j: int, o: WindowOptions) -> bool:
    """Whether the short remainder after sentence j should join window i..j instead of making a
    tiny last window of its own."""
    last = sents[-1]
    if last.end - sents[i].start > o.max_seconds or last.end - sents[j + 1].start >= o.min_seconds / 2:
        return False
    return all(b.start - a.end <= o.max_gap_seconds for a, b in zip(sents[j:], sents[j + 1:]))


def context_options(options: WindowOptions) -> WindowOptions:
    """The window options that cut context units (`options.context_*`)."""
    return replace(options, min_seconds=options.context_min_seconds, max_seconds=options.context_max_seconds,
                   overlap_sentences=options.context_overlap_sentences)


def make_contexts(segments: Sequence[Segment], options: Optional[WindowOptions] = None) -> List[Window]:
    """Context units per channel, in time order; none when ``context_min_seconds`` is 0.

    Speakers of one channel (a diarized mono call) share their contexts: a caller's reason is
    often half in the agent's question and half in the answer."""
    o = options or WindowOptions()
    if o.context_min_seconds <= 0:
        return []
    co = context_options(o)
    out: List[Window] = []
    for channel in sorted({s.channel for s in segments}):
        part = sorted((s for s in segments if s.channel == channel), key=lambda s: s.start)
        speakers = {s.speaker for s in part}
        out += make_windows(part, co, channel=channel, speaker=speakers.pop() if len(speakers) == 1 else None)
    return sorted(out, key=lambda w: (w.start, w.channel))
