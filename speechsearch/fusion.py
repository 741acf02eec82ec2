"""Fusion of ranking signals: pure functions.

Each signal gives a raw score per candidate window (higher is better):

  text      cosine similarity of the query (or a clip's transcript) to the window
  context   the best cosine of the longer context units that cover the window (windows.py)
  file      how well the window's whole call matches: the mean of the file's two best units,
            windows and contexts alike (search.py); the same for every window of a file
  lexical   BM25 of the query words over the best score they could reach, in [0, 1]
  exact     the share of the query's numbers and codes (an order, account or card number, a
            postcode; at least 4 characters, 3 digits) that the window says, however Whisper
            grouped the digits ("770-0941-358" says "941358"; lexical.py): a lookup must find
            its call, and the moment the number is said, first
  acoustic  the best cosine between the clip and the window's sentences (CNN vectors)
  voice     the same with speaker embeddings (who spoke, not what was said)

Methods:

- ``"logistic"`` (default): ``score = 1 / (1 + exp(-(bias + sum_s w_s * f_s(x_s))))``, a
  logistic regression over the raw scores, fitted on labelled queries (is this window's call
  relevant?) by ``benchmarks/fusion_cv.py``; the weight set was chosen by leave-one-intent-out
  cross-validation on the dev set and is reported on a held-out set (docs/evaluation.md). The
  score is an estimated probability that the hit's call is relevant, so a threshold such as 0.5
  means the same on every index and every query. ``f_s`` is the identity, except for a signal
  with a floor: ``max(0, x - floor) / (1 - floor)``. BM25 counts only above its floor: the few
  words a paraphrase shares with a wrong call are noise. Across different voices the acoustic
  cosine is near chance, so only a near-copy of the recording (the same speech through a codec)
  counts, and it can only lift a hit, never push a transcript match down.
- ``"calibrated"``: each raw score mapped by a fixed affine scale ``(x - lo) / (hi - lo)``, then
  a weighted mean.
- ``"minmax"``: the same blend after per-query min-max normalisation (txtai's hybrid search).
- ``"rrf"``: reciprocal rank fusion, ``sum_s w_s / (rrf_k + rank_s)``; ignores score scales.

A run restricted to one signal (``signals=("lexical",)``) ranks by that signal's raw score, and
the hit's score is that raw score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .errors import InvalidInputError

__all__ = ["FusionOptions", "FITTED", "fitted_fields", "normalise", "fuse", "restrict", "METHODS", "SIGNALS", "DENSE"]

METHODS = ("logistic", "calibrated", "minmax", "rrf")
SIGNALS = ("text", "context", "file", "lexical", "exact", "acoustic", "voice")
DENSE = ("text", "context", "file")  # the sentence-embedding signals; "file" is derived from the others


# Fitted by benchmarks/fusion_cv.py on the dev set, once per preset (the scores' scales depend on
# the text model and the transcripts): the feature set, the lexical floor and the fit were chosen
# by leave-one-intent-out cross-validation (only settings never worse than the best single signal
# on any query type qualify), then refitted on all dev queries. For query by
# example the clip's transcript is ranked like a typed query with BM25 weighted more (a clip says
# a whole sentence; its words are evidence a typed paraphrase's are not) and the acoustic cosine
# counting only above 0.9. docs/evaluation.md has the folds and the held-out numbers.
FITTED: Dict[str, Dict[str, Any]] = {
    # preset "fast": Whisper tiny.en + all-MiniLM-L6-v2
    "all-MiniLM-L6-v2": {
        "weights": {"text": 4.28, "context": 9.849, "lexical": 0.564}, "bias": -5.879,
        "floors": {"lexical": 0.4}, "audio_lexical": 16.0, "audio_floors": {"lexical": 0.4, "acoustic": 0.9},
    },
    # preset "best": Whisper base + all-mpnet-base-v2
    "all-mpnet-base-v2": {
        "weights": {"text": 5.13, "file": 10.871, "lexical": 0.95}, "bias": -6.838,
        "floors": {"lexical": 0.4}, "audio_lexical": 8.0, "audio_floors": {"lexical": 0.4, "acoustic": 0.9},
    },
}
AUDIO_ACOUSTIC_WEIGHT = 2.0
# A full match of a query that names a number outweighs the spread of the dense scores among the
# top candidates (text 4.3 x 0.3 + context 9.8 x 0.3 at most, fast preset). Not fitted: the dev
# set's identifier queries are found by every setting, and any BM25 boost for all queries costs
# its paraphrased intents 0.02-0.17 MRR (docs/evaluation.md); queries with a number are lookups.
EXACT_WEIGHT = 4.0
BASE_FIT = "all-MiniLM-L6-v2"  # what a text model without a fit of its own gets


def fitted_fields(text_model: str = BASE_FIT) -> Dict[str, Any]:
    """The FusionOptions fields fitted for `text_model` (FITTED, else the all-MiniLM-L6-v2 fit)."""
    fit = FITTED.get(text_model, FITTED[BASE_FIT])
    weights = dict(fit["weights"], exact=EXACT_WEIGHT)
    audio = dict(weights, lexical=weights.get("lexical", 0.0) * fit["audio_lexical"], acoustic=AUDIO_ACOUSTIC_WEIGHT)
    return {"weights": weights, "bias": fit["bias"], "floors": dict(fit["floors"], acoustic=0.9),
            "audio_weights": audio, "audio_bias": fit["bias"], "audio_floors": dict(fit["audio_floors"])}


def _default_scales() -> Dict[str, Tuple[float, float]]:
    return {"text": (0.1, 0.7), "context": (0.1, 0.7), "file": (0.1, 0.7), "lexical": (0.6, 1.0)}


def _default_audio_scales() -> Dict[str, Tuple[float, float]]:
    return dict(_default_scales(), acoustic=(0.3, 0.8))


@dataclass(frozen=True)
class FusionOptions:
    """How signals are combined: `weights`/`bias` rank text queries (`Library.search`),
    `audio_weights`/`audio_bias` query by example (`Library.search_audio`). A weight of 0
    switches a signal off. `scales` and `audio_scales` serve the "calibrated" method only."""

    method: str = "logistic"
    weights: Mapping[str, float] = field(default_factory=lambda: fitted_fields()["weights"])
    bias: float = -5.879
    audio_weights: Mapping[str, float] = field(default_factory=lambda: fitted_fields()["audio_weights"])
    audio_bias: float = -5.879
    floors: Mapping[str, float] = field(default_factory=lambda: fitted_fields()["floors"])  # below: adds nothing
    audio_floors: Mapping[str, float] = field(default_factory=lambda: fitted_fields()["audio_floors"])
    scales: Mapping[str, Tuple[float, float]] = field(default_factory=_default_scales)
    audio_scales: Mapping[str, Tuple[float, float]] = field(default_factory=_default_audio_scales)
    rrf_k: int = 60
    candidates: int = 50  # units fetched per signal before fusing

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InvalidInputError(f"unknown fusion method {self.method!r}; choose one of {METHODS}")
        for name, weights in (("weights", self.weights), ("audio_weights", self.audio_weights)):
            if not isinstance(weights, Mapping):
                raise InvalidInputError(f"FusionOptions.{name} must be a dict of signal -> weight")
            for s, w in weights.items():
                if s not in SIGNALS:
                    raise InvalidInputError(f"FusionOptions.{name}: unknown signal {s!r}; signals: {SIGNALS}")
                if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
                    raise InvalidInputError(f"FusionOptions.{name}[{s!r}] must be a finite number >= 0, got {w!r}")
        for name, scales in (("scales", self.scales), ("audio_scales", self.audio_scales)):
            for s, lohi in dict(scales).items():
                if not (isinstance(lohi, (tuple, list)) and len(lohi) == 2
                        and all(isinstance(v, (int, float)) for v in lohi)):
                    raise InvalidInputError(f"FusionOptions.{name}[{s!r}] must be a (lo, hi) pair, got {lohi!r}")
        for s, f in list(dict(self.floors).items()) + list(dict(self.audio_floors).items()):
            if s not in SIGNALS or isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 <= f < 1:
                raise InvalidInputError(f"FusionOptions.floors[{s!r}] must name a signal and be in [0, 1), got {f!r}")
        if isinstance(self.candidates, bool) or not isinstance(self.candidates, int) or self.candidates < 1:
            raise InvalidInputError(f"FusionOptions.candidates must be a positive integer, got {self.candidates!r}")
        if isinstance(self.rrf_k, bool) or not isinstance(self.rrf_k, int) or self.rrf_k < 0:
            raise InvalidInputError(f"FusionOptions.rrf_k must be an integer >= 0, got {self.rrf_k!r}")

    @classmethod
    def fitted(cls, text_model: str, **changes: Any) -> "FusionOptions":
        """The defaults fitted for `text_model` (a model without a fit of its own gets the
        all-MiniLM-L6-v2 fit), with `changes` laid over them."""
        return cls(**dict(fitted_fields(text_model), **changes))

    def for_audio(self) -> "FusionOptions":
        """The options that rank query-by-example results."""
        return replace(self, weights=self.audio_weights, bias=self.audio_bias, scales=self.audio_scales,
                       floors=self.audio_floors)


def feature(signal: str, x: float, options: FusionOptions) -> float:
    """What a raw score contributes to the logistic model."""
    floor = options.floors.get(signal)
    if floor is None:
        return x
    return max(0.0, x - floor) / (1.0 - floor)


def normalise(scores: Mapping[str, float], method: str, signal: str,
              options: FusionOptions) -> Dict[str, float]:
    """Map one signal's raw scores (id -> score) onto [0, 1] by `method` ("calibrated", "minmax")."""
    if not scores:
        return {}
    if method == "minmax":
        lo, hi = min(scores.values()), max(scores.values())
    else:
        lo, hi = options.scales.get(signal, (0.0, 1.0))
    if hi <= lo:
        return {i: (1.0 if s >= hi else 0.0) for i, s in scores.items()}
    return {i: (s - lo) / (hi - lo) for i, s in scores.items()}


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def fuse(signals: Mapping[str, Mapping[str, float]], options: Optional[FusionOptions] = None,
         ) -> List[Tuple[str, float]]:
    """Combine per-signal scores (signal -> {id: raw score}) into one ranking, best first.

    Signals with weight 0 are ignored. A candidate missing from a signal gets nothing from it
    (its feature is 0 for "logistic", as if it scored ``lo`` for "calibrated"). With one active
    signal, candidates are ranked by that signal's raw score, which is also their score.
    """
    o = options or FusionOptions()
    if o.method not in METHODS:
        raise InvalidInputError(f"unknown fusion method {o.method!r}; choose one of {METHODS}")
    active = {s: v for s, v in signals.items() if o.weights.get(s, 0.0) > 0}
    ids = {i for v in active.values() for i in v}
    total: Dict[str, float] = {i: 0.0 for i in ids}
    if len(active) == 1 and o.method in ("logistic", "calibrated"):
        (scores,) = active.values()
        total.update(scores)
    elif o.method == "logistic":
        for s, scores in active.items():
            w = o.weights[s]
            for i, x in scores.items():
                total[i] += w * feature(s, x, o)
        total = {i: _sigmoid(o.bias + z) for i, z in total.items()}
    elif o.method == "rrf":
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
    """The same options with every signal outside `signals` switched off. "file" follows the
    dense signals: it is on while "text" or "context" is. A single signal asked for alone is on
    whatever its weight (a diagnostic run)."""
    chosen = set(signals)
    if chosen & {"text", "context"}:
        chosen.add("file")
    if "lexical" in chosen:
        chosen.add("exact")
    if len(set(signals)) == 1:
        return replace(options, weights={s: 1.0 for s in signals}, bias=0.0)
    weights = {s: float(options.weights.get(s, 0.0)) if s in chosen else 0.0 for s in SIGNALS}
    return replace(options, weights=weights)
