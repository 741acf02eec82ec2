"""Fusion of ranking signals (dense text, lexical BM25, acoustic, voice): pure functions.

Each signal gives a score per candidate window (higher is better). Three ways to combine them:

- ``"calibrated"`` (default): each signal's raw score is mapped with a fixed per-signal affine
  scale, ``(x - lo) / (hi - lo)``, whose ``lo``/``hi`` were measured on the dev set (where
  non-relevant and relevant scores sit, so most scores land in [0, 1]), then blended with
  weights. Scores stay comparable across queries, so a score threshold means the same thing
  everywhere, and one signal alone ranks exactly as its raw score does.
- ``"minmax"``: the same blend after per-query min-max normalisation (txtai's hybrid search).
- ``"rrf"``: reciprocal rank fusion, ``sum_s w_s / (rrf_k + rank_s)``; ignores score scales.

Cosine scores are used throughout: for the unit vectors stored here, Chroma's squared L2
distance is ``2 - 2 cos``, so either ranks the same; we combine similarities, not distances.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

__all__ = ["FusionOptions", "normalise", "fuse", "METHODS", "SIGNALS"]

METHODS = ("calibrated", "minmax", "rrf")
SIGNALS = ("text", "lexical", "acoustic", "voice")


# Chosen by benchmarks/fusion_grid.py on the dev set (docs/evaluation.md). (lo, hi) per signal:
# a raw score of lo counts 0 and hi counts 1. The lexical score is BM25 over the best score the
# query's words could reach (lexical.py), so it lies in [0, 1] whatever the index size, and one
# lexical scale serves typed queries and clips' transcripts alike.
def _default_weights() -> Dict[str, float]:
    return {"text": 1.0, "lexical": 0.3}


def _default_scales() -> Dict[str, Tuple[float, float]]:
    return {"text": (0.1, 0.7), "lexical": (0.6, 1.0)}


def _default_audio_weights() -> Dict[str, float]:
    return {"text": 1.0, "lexical": 0.3, "acoustic": 0.5}


def _default_audio_scales() -> Dict[str, Tuple[float, float]]:
    return {"text": (0.1, 0.7), "lexical": (0.6, 1.0), "acoustic": (0.3, 0.8)}


@dataclass(frozen=True)
class FusionOptions:
    """How signals are combined: `weights`/`scales` for text queries (`Library.search`),
    `audio_weights`/`audio_scales` for query by example (`Library.search_audio`). Defaults were
    chosen on the dev set (docs/evaluation.md)."""

    method: str = "calibrated"
    weights: Mapping[str, float] = field(default_factory=_default_weights)
    scales: Mapping[str, Tuple[float, float]] = field(default_factory=_default_scales)
    audio_weights: Mapping[str, float] = field(default_factory=_default_audio_weights)
    audio_scales: Mapping[str, Tuple[float, float]] = field(default_factory=_default_audio_scales)
    rrf_k: int = 60
    candidates: int = 50  # windows fetched per signal before fusing

    def for_audio(self) -> "FusionOptions":
        """The options that rank query-by-example results."""
        return replace(self, weights=self.audio_weights, scales=self.audio_scales)


def normalise(scores: Mapping[str, float], method: str, signal: str,
              options: FusionOptions) -> Dict[str, float]:
    """Map one signal's raw scores (id -> score) onto [0, 1] by `method`."""
    if not scores:
        return {}
    if method == "minmax":
        lo, hi = min(scores.values()), max(scores.values())
    else:
        lo, hi = options.scales.get(signal, (0.0, 1.0))
    if hi <= lo:
        return {i: (1.0 if s >= hi else 0.0) for i, s in scores.items()}
    return {i: (s - lo) / (hi - lo) for i, s in scores.items()}


def fuse(signals: Mapping[str, Mapping[str, float]], options: Optional[FusionOptions] = None,
         ) -> List[Tuple[str, float]]:
    """Combine per-signal scores (signal -> {id: raw score}) into one ranking, best first.

    A candidate missing from a signal gets nothing from it (as if it scored that signal's
    ``lo``). Signals with weight 0 are ignored. The fused score of "calibrated" and "minmax" is a
    weighted mean of the normalised scores.
    """
    o = options or FusionOptions()
    if o.method not in METHODS:
        raise ValueError(f"unknown fusion method {o.method!r}; choose one of {METHODS}")
    active = {s: v for s, v in signals.items() if o.weights.get(s, 0.0) > 0}
    ids = {i for v in active.values() for i in v}
    total: Dict[str, float] = {i: 0.0 for i in ids}
    if o.method == "rrf":
        for s, scores in active.items():
            ranked = sorted(scores, key=lambda i: -scores[i])
            for rank, i in enumerate(ranked, 1):
                total[i] += o.weights[s] / (o.rrf_k + rank)
    else:
        wsum = sum(o.weights[s] for s in active) or 1.0
        for s, scores in active.items():
            for i, x in normalise(scores, o.method, s, o).items():
                total[i] += o.weights[s] * x / wsum
    return sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))


def restrict(options: FusionOptions, signals: Sequence[str]) -> FusionOptions:
    """The same options with every signal outside `signals` switched off (single-signal runs)."""
    weights = {s: (options.weights.get(s, 0.0) or 1.0) if s in signals else 0.0 for s in SIGNALS}
    return replace(options, weights=weights)
