"""Ranking at query time: gather candidate windows per signal, complete every candidate's scores,
fuse them, drop rows of files that are not fully indexed, and collapse overlapping windows.

Signals (fusion.py has the full list): "text" scores windows; "context" scores the longer
context units and passes each one's score to the windows it covers, so a call whose reason is
spread over several turns brings its windows in as candidates; "file" scores a window's call by
the mean of the call's two best units across both scales; "lexical" is BM25; "acoustic" and
"voice" score a clip's sound against each window's sentences.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .catalog import Catalog
from .fusion import FusionOptions, fuse, restrict
from .filters import decode_metadata
from .store import RESERVED_KEYS, ChromaStore, StoredHit
from .types import Hit

__all__ = ["Candidates", "ranked_search", "gather", "collapse", "hit_from_row"]

FILE_UNITS = 2  # a file scores the mean of its best this-many units
# The best EXPAND_PER_HIT * k context units bring in the windows they cover (all found still set
# the floor and score files): on the dev set 2 ranks exactly as expanding all 50, 1 does not;
# fetching the vectors of the windows of all 50 was most of a query's time at 100k windows.
EXPAND_PER_HIT = 2
# Under a metadata filter, BM25 matches and acoustic/voice sentences are looked at up to this
# many deep for ones the filter keeps (neither the catalogue nor sentence rows hold metadata).
FILTER_SCAN = 4000


Place = Tuple[str, float, float, int, Optional[str]]  # path, start, end, channel, speaker
Vector = Union[np.ndarray, Callable[[], np.ndarray]]  # a query vector, or how to make it

_POOL: Optional[ThreadPoolExecutor] = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """Threads that run a query's independent lookups beside each other: SQLite, Chroma's
    index and onnxruntime release the GIL, so BM25 overlaps the query's embedding and the
    context query the window query (docs/benchmarks.md)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="speechsearch-query")
        return _POOL


@dataclass
class Candidates:
    """Candidate windows and their raw score per signal. A candidate found by the window search
    comes with its stored row; one found another way (context, BM25, a code) has only its place
    in the catalogue until it ranks high enough to be shown (`finish` fetches its row then)."""

    rows: Dict[str, StoredHit] = field(default_factory=dict)
    places: Dict[str, Place] = field(default_factory=dict)
    scores: Dict[str, Dict[str, float]] = field(default_factory=dict)
    # context units found: (path, channel, start, end, cosine)
    contexts: List[Tuple[str, int, float, float, float]] = field(default_factory=list)

    def signal(self, name: str) -> Dict[str, float]:
        return self.scores.setdefault(name, {})

    def ids(self) -> List[str]:
        return list(self.rows) + [i for i in self.places if i not in self.rows]

    def place(self, i: str) -> Place:
        row = self.rows.get(i)
        if row is None:
            return self.places[i]
        m = row.metadata
        return (m.get("path", ""), float(m["start"]), float(m["end"]), int(m.get("channel", 0)), m.get("speaker"))


def ranked_search(store: ChromaStore, catalog: Catalog, k: int, *, where: Optional[Dict[str, Any]] = None,
                  fusion: Optional[FusionOptions] = None, signals: Sequence[str] = ("text", "lexical"),
                  text: str = "", text_vector: Optional[Vector] = None,
                  acoustic_store: Optional[ChromaStore] = None,
                  acoustic_vector: Optional[np.ndarray] = None, unit_signal: str = "acoustic",
                  context_store: Optional[ChromaStore] = None) -> List[Hit]:
    """Gather candidates from each active signal, complete their scores, fuse, return top `k`.
    `text_vector` may be a function that embeds the query: it then runs while BM25 does.

    Per-sentence vectors (`acoustic_store`, queried with `acoustic_vector`) score windows under
    the name `unit_signal`: "acoustic" for sound, "voice" for speaker."""
    options = restrict(fusion or FusionOptions(), signals)
    cand, on = gather(store, catalog, k, options, where=where, text=text, text_vector=text_vector,
                      acoustic_store=acoustic_store, acoustic_vector=acoustic_vector, unit_signal=unit_signal,
                      context_store=context_store)
    ranked = fuse({s: cand.scores.get(s, {}) for s in on}, options)
    return finish(ranked, cand, catalog, k, on, store=store, where=where)


def gather(store: ChromaStore, catalog: Catalog, k: int, options: FusionOptions, *,
           where: Optional[Dict[str, Any]] = None, text: str = "", text_vector: Optional[Vector] = None,
           acoustic_store: Optional[ChromaStore] = None, acoustic_vector: Optional[np.ndarray] = None,
           unit_signal: str = "acoustic", context_store: Optional[ChromaStore] = None) -> Tuple[Candidates, set]:
    """Every candidate window with each active signal's raw score (`options` already
    restricted), and the set of active signals. Lookups that do not depend on each other run
    side by side: BM25 and codes while the query is embedded, the context query beside the
    window query."""
    on = {s for s, w in options.weights.items() if w > 0}
    if text_vector is None:
        on -= {"text", "context", "file"}
    if context_store is None:
        on.discard("context")
    if not on & {"text", "context"}:
        on.discard("file")
    if "lexical" not in on:
        on.discard("exact")
    n = max(options.candidates, 3 * k + 10)
    cand = Candidates()
    lexical: Optional[Future] = None
    if "lexical" in on and text.strip():
        lexical = _pool().submit(_lexical, catalog, text, n, "exact" in on, store, where)
    vector = text_vector() if callable(text_vector) else text_vector
    contexts: Optional[Future] = None
    if context_store is not None and vector is not None and ("context" in on or "file" in on):
        contexts = _pool().submit(context_store.query, vector, n, where, False)
    if "text" in on:  # ids and distances only: rows are fetched for the hits shown (finish)
        for row in store.query(vector, n=n, where=where, documents=False, metadatas=False):
            cand.signal("text")[row.id] = 1.0 - row.distance
    if lexical is not None:
        for name, scores in lexical.result().items():
            cand.signal(name).update(scores)
    if contexts is not None:  # "file" counts contexts too
        _contexts(cand, contexts.result(), catalog, EXPAND_PER_HIT * k)
    if unit_signal in on and acoustic_store is not None and acoustic_vector is not None:
        cand.signal(unit_signal).update(_units(acoustic_store, acoustic_vector, n, store, where))
    _complete(cand, store, where, on, vector, acoustic_store, acoustic_vector, unit_signal, catalog)
    if "context" in on:
        _score_contexts(cand)
    if "file" in on:
        _score_files(cand)
    return cand, on


def _lexical(catalog: Catalog, text: str, n: int, exact: bool, store: ChromaStore,
             where: Optional[Dict[str, Any]]) -> Dict[str, Dict[str, float]]:
    """The best `n` BM25 matches and, for a lookup by number or code, the windows that say it;
    with `where`, only windows it keeps (the catalogue does not hold metadata: the window store
    checks the BM25 matches, up to FILTER_SCAN of them, so a narrow filter still finds its best `n`)."""
    lexical = catalog.lexical(text, n if where is None else FILTER_SCAN)
    out = {"lexical": dict(lexical)}
    if exact:
        out["exact"] = catalog.codes(text, n)
    if where is not None:
        kept = store.matching([i for scores in out.values() for i in scores], where)
        out = {name: {i: x for i, x in scores.items() if i in kept} for name, scores in out.items()}
        out["lexical"] = dict([(i, x) for i, x in lexical if i in kept][:n])
    return out


def _units(unit_store: ChromaStore, vector: np.ndarray, n: int, store: ChromaStore,
           where: Optional[Dict[str, Any]]) -> Dict[str, float]:
    """Window id -> the best cosine of its sentences (acoustic or voice vectors) for the nearest
    3n sentences. Sentence rows carry no user metadata, so `where` is checked on the windows they
    fall in, and the search widens (up to FILTER_SCAN sentences) until `n` windows pass it."""
    want = 3 * n
    while True:
        rows = unit_store.query(vector, n=want, documents=False)
        best: Dict[str, float] = {}
        for unit in rows:
            w = unit.metadata.get("window_id")
            if w is not None:
                best[w] = max(best.get(w, -1.0), 1.0 - unit.distance)
        if where is None:
            return best
        kept = store.matching(list(best), where)
        best = {w: x for w, x in best.items() if w in kept}
        if len(best) >= n or len(rows) < want or want >= FILTER_SCAN:
            return best
        want = min(FILTER_SCAN, 4 * want)


def _contexts(cand: Candidates, found: Sequence[StoredHit], catalog: Catalog, expand: int) -> None:
    """The context units `found` (best first); each of the best `expand` makes the windows it
    covers candidates."""
    best = cand.signal("context")
    for row in found:
        m = row.metadata
        c = (m.get("path", ""), int(m.get("channel", 0)), float(m["start"]), float(m["end"]), 1.0 - row.distance)
        cand.contexts.append(c)
    # contexts come best first: a window takes the score of the best context covering it
    for path, channel, start, end, score in cand.contexts[:expand]:
        for wid in catalog.windows_within(path, channel, start, end):
            if wid not in best:
                best[wid] = score


def _score_contexts(cand: Candidates) -> None:
    """Windows no context found get the lowest context score found (what they can at most
    have scored, since their contexts ranked below every one found)."""
    best = cand.signal("context")
    floor = min((c[4] for c in cand.contexts), default=0.0)
    for i in cand.ids():
        if i not in best:
            best[i] = floor
    for i in list(best):
        if i not in cand.rows and i not in cand.places:
            best.pop(i)


def _score_files(cand: Candidates) -> None:
    """Each window's file: the mean of the file's best FILE_UNITS dense scores (windows and
    contexts); a file with fewer units found is topped up with the lowest score found."""
    units: Dict[str, List[float]] = {}
    text = cand.scores.get("text", {})
    for i, x in text.items():
        units.setdefault(cand.place(i)[0], []).append(x)
    for path, _, _, _, x in cand.contexts:
        units.setdefault(path, []).append(x)
    floor = min((x for xs in units.values() for x in xs), default=0.0)
    file_score = {}
    for path, xs in units.items():
        top = sorted(xs, reverse=True)[:FILE_UNITS]
        top += [floor] * (FILE_UNITS - len(top))
        file_score[path] = sum(top) / FILE_UNITS
    out = cand.signal("file")
    for i in cand.ids():
        out[i] = file_score.get(cand.place(i)[0], floor)


def _complete(cand: Candidates, store: ChromaStore, where: Optional[Dict[str, Any]], on: set,
              text_vector: Optional[np.ndarray], acoustic_store: Optional[ChromaStore],
              acoustic_vector: Optional[np.ndarray], unit_signal: str = "acoustic",
              catalog: Optional[Catalog] = None) -> None:
    """Score the candidates found by one signal only on the others, so fusion compares like with
    like, and find each one's place. Their vectors come from Chroma (with `where`: candidates it
    filters out are dropped), their places from the catalogue (no metadata yet: fetching it is
    most of a Chroma get's cost, and only the few shown need it). Without a catalogue, their
    whole rows are fetched."""
    ids = {i for s in cand.scores.values() for i in s}
    found = set(cand.scores.get("text", {}))  # by the window query itself: `where` already held
    missing = [i for i in ids if i not in cand.rows and i not in found]
    want_dense = "text" in on and text_vector is not None
    if catalog is None:
        fetched = store.get(list(ids - set(cand.rows)), where=where, embeddings=want_dense)
        kept = {i: emb for i, (row, emb) in fetched.items()}
        cand.rows.update((i, row) for i, (row, _) in fetched.items())
    else:
        kept = store.vectors(missing, where=where) if (want_dense or where is not None) else dict.fromkeys(missing)
        cand.places.update(catalog.places([i for i in ids if i not in cand.rows and (i in kept or i in found)]))
    for i in ids - set(missing):  # found by the window query but gone from the catalogue
        if i not in cand.rows and i not in cand.places:
            for s in cand.scores.values():
                s.pop(i, None)
    for i in missing:
        if i not in cand.rows and i not in cand.places:
            for s in cand.scores.values():
                s.pop(i, None)
            continue
        emb = kept.get(i)
        if want_dense and emb is not None:
            cand.signal("text")[i] = float(np.dot(text_vector, emb))
    if unit_signal in on and acoustic_store is not None and acoustic_vector is not None:
        best = cand.signal(unit_signal)
        unscored = [i for i in cand.ids() if i not in best]
        if unscored:
            units = acoustic_store.get_where({"window_id": {"$in": unscored}}, embeddings=True)
            for row, emb in units:
                w = row.metadata.get("window_id")
                best[w] = max(best.get(w, -1.0), float(np.dot(acoustic_vector, emb)))


def finish(ranked: Sequence[tuple], cand: Candidates, catalog: Catalog, k: int, on: set, *,
           store: Optional[ChromaStore] = None, where: Optional[Dict[str, Any]] = None) -> List[Hit]:
    """Turn a fused ranking into hits: ready files only, overlaps collapsed, top `k`. Rows of
    candidates known only by their place are fetched from `store`, a few at a time, best first."""
    ready = catalog.ready(cand.place(i)[0] for i, _ in ranked if i in cand.rows or i in cand.places)
    hits: List[Hit] = []
    todo = [(i, score) for i, score in ranked if i in cand.rows or i in cand.places]
    batch = 2 * k + 5  # k hits collapse from about 1.1-2.2k windows (benchmark and held-out calls)
    for at in range(0, len(todo), batch):
        part = todo[at:at + batch]
        need = [i for i, _ in part if i not in cand.rows]
        if need and store is not None:
            cand.rows.update((i, row) for i, (row, _) in store.get(need, where=where).items())
        for i, score in part:
            row = cand.rows.get(i)
            if row is None:
                continue
            scores = {s: v[i] for s, v in cand.scores.items() if s in on and i in v}
            hit = hit_from_row(row, score, scores, ready)
            if hit is not None:
                hits.append(hit)
        if len(collapse(hits, k)) == k:
            break
    hits = collapse(hits, k)
    redacted: Dict[str, List[tuple]] = {}
    for h in hits:  # every redacted span of the hit's file: its clip bleeps them whatever the padding
        spans = redacted.setdefault(h.path, catalog.redactions(h.path))
        h.redactions = tuple((a, b) for a, b, *_ in spans)
    return hits


def hit_from_row(row: StoredHit, score: float, scores: Dict[str, float],
                 ready: Dict[str, str]) -> Optional[Hit]:
    m = row.metadata
    path = m.get("path")
    if path is None or ready.get(path) != m.get("file_hash"):
        return None  # its file is being (re)indexed or was removed
    return Hit(path=path, start=float(m["start"]), end=float(m["end"]), text=row.text, score=score,
               metadata=decode_metadata({k: v for k, v in m.items() if k not in RESERVED_KEYS}),
               channel=int(m.get("channel", 0)), id=row.id, scores=scores, language=m.get("language"),
               speaker=m.get("speaker"))


def collapse(hits: List[Hit], k: int) -> List[Hit]:
    """Best-first; a hit whose span overlaps a better hit of the same file, channel and speaker is
    dropped."""
    kept: List[Hit] = []
    for h in hits:
        if any(o.path == h.path and o.channel == h.channel and o.speaker == h.speaker and h.start < o.end and o.start < h.end
               for o in kept):
            continue
        kept.append(h)
        if len(kept) == k:
            break
    return kept
