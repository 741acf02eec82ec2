"""Speaker turns for a mono recording: cluster its sentences' voice vectors into S1, S2, ...

Draft under measurement (benchmarks/diarization.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

from .errors import InvalidInputError

__all__ = ["DiarizeOptions", "assign_speakers"]


@dataclass(frozen=True)
class DiarizeOptions:
    max_speakers: int = 4
    threshold: float = 0.25
    min_speakers: int = 1
    linkage: str = "average"  # "average" | "centroid"
    weight: str = "duration"  # "duration" | "none"
    min_seconds: float = 0.0  # shorter spans do not seed clusters; they join the nearest one
    refine: int = 0  # k-means style reassignment passes
    smooth_seconds: float = 0.0
    min_cluster_seconds: float = 0.0


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 0, n, 1.0)


def _cluster(V: np.ndarray, w: np.ndarray, o: DiarizeOptions, dur=None) -> np.ndarray:
    n = len(V)
    members = [[i] for i in range(n)]
    alive = list(range(n))
    while len(alive) > 1:
        best, pair = np.inf, None
        for ai in range(len(alive)):
            for bi in range(ai + 1, len(alive)):
                A, B = members[alive[ai]], members[alive[bi]]
                if o.linkage == "average":
                    D = 1.0 - V[A] @ V[B].T
                    d = float(w[A] @ D @ w[B] / (w[A].sum() * w[B].sum()))
                else:
                    ca, cb = _unit(w[A] @ V[A]), _unit(w[B] @ V[B])
                    d = 1.0 - float(ca @ cb)
                if d < best:
                    best, pair = d, (ai, bi)
        k = len(alive)
        if k <= o.min_speakers or (best > o.threshold and k <= o.max_speakers):
            break
        ai, bi = pair
        members[alive[ai]] += members[alive[bi]]
        del alive[bi]
    while len(alive) > max(1, o.min_speakers) and o.min_cluster_seconds > 0:
        tot = [dur[members[a]].sum() for a in alive]
        si = int(np.argmin(tot))
        if tot[si] >= o.min_cluster_seconds:
            break
        A = members[alive[si]]
        ds = []
        for bi in range(len(alive)):
            if bi == si:
                ds.append(np.inf); continue
            B = members[alive[bi]]
            D = 1.0 - V[A] @ V[B].T
            ds.append(float(w[A] @ D @ w[B] / (w[A].sum() * w[B].sum())))
        bi = int(np.argmin(ds))
        members[alive[bi]] += A
        del alive[si]
    lab = np.zeros(n, int)
    for c, a in enumerate(alive):
        lab[members[a]] = c
    return lab


def assign_speakers(spans: Sequence[Tuple[float, float]], vectors: np.ndarray,
                    options: DiarizeOptions = DiarizeOptions()) -> List[str]:
    o = options
    V = np.asarray(vectors, np.float64).reshape(len(spans), -1) if len(spans) else np.zeros((0, 1))
    n = len(spans)
    if n == 0:
        return []
    V = _unit(V)
    dur = np.array([max(1e-3, e - s) for s, e in spans])
    w = dur if o.weight == "duration" else np.ones(n)
    seed = np.flatnonzero(dur >= o.min_seconds)
    if len(seed) == 0:
        seed = np.arange(n)
    lab = np.full(n, -1)
    lab[seed] = _cluster(V[seed], w[seed], o, dur[seed])
    k = lab.max() + 1
    for _ in range(max(1, o.refine) if len(seed) < n else o.refine):
        C = _unit(np.stack([(w[lab == c, None] * V[lab == c]).sum(0) if (lab == c).any() else np.zeros(V.shape[1])
                            for c in range(k)]))
        new = np.argmax(V @ C.T, axis=1)
        if len(seed) < n and o.refine == 0:
            rest = np.setdiff1d(np.arange(n), seed)
            lab[rest] = new[rest]
        else:
            lab = new
    if o.smooth_seconds > 0:
        for i in range(1, n - 1):
            if dur[i] < o.smooth_seconds and lab[i - 1] == lab[i + 1] != lab[i]:
                lab[i] = lab[i - 1]
    order = {}
    for c in lab:
        order.setdefault(int(c), len(order) + 1)
    return [f"S{order[int(c)]}" for c in lab]
