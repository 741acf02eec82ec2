"""Speaker turns for a mono recording: cluster its sentences' voice vectors into S1, S2, ...

The input is what indexing already computes: one span per transcript sentence (file time) and
that sentence's L2-normalised speaker vector (:mod:`speechsearch.embed.voice`). No extra model
runs. :func:`assign_speakers` gives each span a label:

1. **Average linkage on cosine distance, weighted by duration.** Every sentence starts as its own
   cluster; the two clusters with the smallest mean pairwise distance ``1 - cos`` (each pair
   weighted by the product of the two spans' durations, so a 6 s sentence counts six times a
   1 s "Okay.") merge, until the closest pair is farther apart than ``threshold`` and there are
   at most ``max_speakers`` clusters, or only ``min_speakers`` are left.
2. **Too little speech is not a speaker.** While a cluster holds less than
   ``min_cluster_seconds`` of speech, it joins its nearest cluster. Vectors of 1-2 s clips are
   noisy: without this rule a single voice on a telephone line splits into two "speakers".
3. **Labels by first appearance**: the speaker of the earliest span is ``S1``.

Defaults are tuned and measured in docs/diarization.md (``python benchmarks/diarization.py``): a
real two-speaker phone call (pyannote's sample), 34 synthetic two-voice calls and 7 one-voice
human recordings. The tuning data is small; treat ``threshold`` as a knob. Resemblyzer cosines
are all positive (same speaker mostly 0.75-0.95, different 0.5-0.85), so distances live in about
0.05-0.5.

Pure numpy, O(n^2) memory and about O(n^2) time in the number of sentences; above
:data:`MAX_CLUSTERED` sentences the longest ones are clustered and the rest join the cluster
they are closest to on average.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, List, Mapping, Sequence, Tuple, Union

import numpy as np

from .errors import InvalidInputError
from .options import coerce

__all__ = ["DiarizeOptions", "assign_speakers", "MAX_CLUSTERED"]

MAX_CLUSTERED = 2000  # about 1.5 h of sentences; 2000^2 float64 distances = 32 MB


@dataclass(frozen=True)
class DiarizeOptions:
    """How sentences are grouped into speakers (see the module docstring)."""

    max_speakers: int = 4
    threshold: float = 0.31  # cosine distance (1 - cos) above which two clusters stay apart
    min_speakers: int = 1
    min_cluster_seconds: float = 4.0  # a cluster with less speech joins its nearest cluster
    duration_weights: bool = True  # weight each sentence by its length (False: all equal)
    smooth_seconds: float = 0.0  # >0: a shorter span between two spans of one other speaker takes theirs


def _checked(o: DiarizeOptions) -> DiarizeOptions:
    """The options with numbers as numbers; InvalidInputError when one is out of range."""
    try:
        o = replace(o, threshold=float(o.threshold), min_cluster_seconds=float(o.min_cluster_seconds),
                    smooth_seconds=float(o.smooth_seconds), min_speakers=int(o.min_speakers),
                    max_speakers=int(o.max_speakers), duration_weights=bool(o.duration_weights))
    except (TypeError, ValueError):
        raise InvalidInputError(f"DiarizeOptions fields must be numbers, got {o}") from None
    if o.min_speakers < 1 or o.max_speakers < o.min_speakers:
        raise InvalidInputError(f"need 1 <= min_speakers <= max_speakers, got min_speakers={o.min_speakers}, "
                                f"max_speakers={o.max_speakers}")
    if not (np.isfinite(o.threshold) and 0.0 <= o.threshold <= 2.0):
        raise InvalidInputError(f"threshold is a cosine distance in [0, 2], got {o.threshold}")
    if not (o.min_cluster_seconds >= 0 and o.smooth_seconds >= 0):
        raise InvalidInputError("min_cluster_seconds and smooth_seconds must be >= 0, got "
                                f"{o.min_cluster_seconds} and {o.smooth_seconds}")
    return o


def _average_linkage(D: np.ndarray, w: np.ndarray, secs: np.ndarray, o: DiarizeOptions) -> np.ndarray:
    """Cluster index per point. D: pairwise distances (n, n), w: point weights, secs: durations.

    Weighted average linkage with the Lance-Williams update, keeping each row's nearest cluster
    (a merged cluster is never nearer to a third one than the nearer of its parts, so only rows
    that pointed at a merged cluster need a rescan)."""
    n = len(D)
    D = D.astype(np.float64, copy=True)
    np.fill_diagonal(D, np.inf)
    W, S = w.astype(np.float64).copy(), secs.astype(np.float64).copy()
    owner = np.arange(n)  # point -> cluster (a cluster is named by one of its points)
    alive = np.ones(n, bool)
    nn = np.argmin(D, axis=1)
    nd = D[np.arange(n), nn]
    k = n
    lo, hi = o.min_speakers, o.max_speakers

    def merge(i: int, j: int) -> None:
        nonlocal k
        row = (W[i] * D[i] + W[j] * D[j]) / (W[i] + W[j])
        row[i] = np.inf
        D[i], D[:, i] = row, row
        D[j], D[:, j] = np.inf, np.inf
        W[i] += W[j]
        S[i] += S[j]
        alive[j] = False
        owner[owner == j] = i
        nd[j] = np.inf
        k -= 1
        stale = np.flatnonzero(alive & ((nn == i) | (nn == j)))
        for r in stale.tolist() + [i]:
            nn[r] = int(np.argmin(D[r]))
            nd[r] = D[r, nn[r]]
        closer = alive & (D[:, i] < nd)
        nn[closer], nd[closer] = i, D[closer, i]

    while k > max(1, lo):
        i = int(np.argmin(nd))
        if nd[i] > o.threshold and k <= hi:
            break
        merge(i, int(nn[i]))
    while k > max(1, lo) and o.min_cluster_seconds > 0:
        small = np.flatnonzero(alive)
        i = int(small[np.argmin(S[small])])
        if S[i] >= o.min_cluster_seconds:
            break
        merge(int(nn[i]), i)
    return owner


def assign_speakers(spans: Sequence[Tuple[float, float]], vectors: np.ndarray,
                    options: Union[DiarizeOptions, Mapping[str, Any]] = DiarizeOptions()) -> List[str]:
    """One speaker label per span ("S1", "S2", ... numbered by first appearance in time).

    ``spans``: (start, end) seconds, one per sentence; ``vectors``: their speaker vectors, shape
    (n, d), L2-normalised (rows are normalised again here; a zero row is distance 1 from all).
    ``options``: :class:`DiarizeOptions` or a dict of its fields. n = 0 gives [], n = 1 ["S1"].
    Raises InvalidInputError when the shapes disagree, a value is not finite, a span ends before
    it starts, or the options are out of range.
    """
    o = _checked(coerce(DiarizeOptions, options))
    try:
        sp = np.asarray(spans, np.float64) if len(spans) else np.zeros((0, 2))
    except (TypeError, ValueError) as e:
        raise InvalidInputError(f"spans must be a sequence of (start, end) seconds: {e}") from None
    if sp.ndim != 2 or sp.shape[1] != 2:
        raise InvalidInputError(f"spans must be a sequence of (start, end) seconds; got shape {sp.shape}")
    n = len(sp)
    V = np.asarray(vectors, np.float64)
    if V.ndim != 2 or len(V) != n:
        raise InvalidInputError(f"vectors must have shape (n, d) with one row per span; got {V.shape} "
                                f"for {n} spans")
    if not (np.isfinite(sp).all() and np.isfinite(V).all()):
        raise InvalidInputError("spans and vectors must be finite numbers (no NaN or inf)")
    if (sp[:, 1] < sp[:, 0]).any():
        raise InvalidInputError("every span must end at or after its start")
    if n == 0:
        return []
    norms = np.linalg.norm(V, axis=1, keepdims=True)
    V = V / np.where(norms > 0, norms, 1.0)
    secs = sp[:, 1] - sp[:, 0]
    w = np.maximum(secs, 1e-3) if o.duration_weights else np.ones(n)

    seeds = np.arange(n)
    if n > MAX_CLUSTERED:
        seeds = np.sort(np.argsort(-secs, kind="stable")[:MAX_CLUSTERED])
    Vs = V[seeds]
    owner = _average_linkage(1.0 - Vs @ Vs.T, w[seeds], secs[seeds], o)
    clusters = np.unique(owner)
    cluster = np.empty(n, int)
    cluster[seeds] = np.searchsorted(clusters, owner)
    if len(seeds) < n:  # the rest join the cluster with the smallest weighted mean distance
        rest = np.setdiff1d(np.arange(n), seeds)
        M = np.zeros((len(clusters), len(seeds)))
        M[cluster[seeds], np.arange(len(seeds))] = w[seeds]
        M /= M.sum(1, keepdims=True)
        cluster[rest] = np.argmin((1.0 - V[rest] @ Vs.T) @ M.T, axis=1)

    order = np.lexsort((np.arange(n), sp[:, 0]))
    if o.smooth_seconds > 0:
        for a, b, c in zip(order[:-2], order[1:-1], order[2:]):
            if secs[b] < o.smooth_seconds and cluster[a] == cluster[c] != cluster[b]:
                cluster[b] = cluster[a]
    names: dict = {}
    for i in order:
        names.setdefault(int(cluster[i]), f"S{len(names) + 1}")
    return [names[int(c)] for c in cluster]
