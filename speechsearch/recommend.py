"""Calls like this one, and what people are calling about: call vectors, neighbours and topics.

Every call gets one vector from what the index holds already (`CallIndex`): the text vectors of
its windows and of its context units (the longer spans around them), each centred on the index's
mean and weighted by how specific it is, then added (the contexts' part weighing
`CONTEXT_WEIGHT`). A unit close to the index-wide centroid (a greeting, an identity check, a hold
notice: what every call says) weighs little, one far from it (why this caller called) weighs
most: ``w = exp((s - max s) / T)`` with ``s = 1 - cos(unit, centroid)``, T `WINDOW_TEMPERATURE`
for windows and `TEMPERATURE` for contexts. Windows matter for long calls, where one context
unit spans the greeting and the reason together; contexts for short ones. The choices were made
on two dev sets (benchmarks/devset, benchmarks/simset: long calls with confusable reasons);
docs/evaluation.md has the numbers, and those on the held-out set.

`neighbours` ranks calls by cosine less the two calls' usual closeness to their nearest calls
(`density`), and `similar_hits` says why: the pair of moments, one in each call, whose windows
are most alike among the query call's most specific windows (`key_moments`). `cluster` groups
call vectors with Ward's clustering (k from the silhouettes when not given) and `label` names
each group by class-based TF-IDF over its calls' transcripts (a term frequent in the group and
rare in the others). `bucket` turns a metadata value into a day, week or month. `update` brings
the call vectors up to date after adds and removes, reading only the changed calls' rows.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .errors import InvalidInputError

logger = logging.getLogger(__name__)

__all__ = ["CallIndex", "build", "update", "neighbours", "density", "key_moments", "cluster", "label", "bucket", "TEMPERATURE",
           "MAX_TOPICS"]

# a call vector joins the index's own text model's and a second model's: all-mpnet-base-v2, or
# all-MiniLM-L6-v2 when the index's model is mpnet (chosen on the dev sets, docs/evaluation.md)
CALL_MODELS = ("all-MiniLM-L6-v2", "all-mpnet-base-v2")
TEMPERATURE = 0.1  # the context units' softmax temperature
WINDOW_TEMPERATURE = 0.5  # the windows'
CONTEXT_WEIGHT = 0.5  # the contexts' part of a call vector beside the windows' (1.0)
HUB_K = 3  # a call's neighbourhood: its nearest calls, whose mean cosine `similar` discounts
KEY_MOMENTS = 3  # a call's most specific windows, compared to find why two calls match
MAX_TOPICS = 20
SILHOUETTE_SHARE = 0.8  # topics(): the most topics whose silhouette is at least this share of the best
SILHOUETTE_SAMPLE = 2000  # calls the silhouettes are measured on (a fixed sample on a bigger index)
_WORD = re.compile(r"[a-z][a-z']+")
# English words that say nothing about a topic (a short list: c-TF-IDF already discounts words
# every group uses)
STOP = frozenset("""a about after again all also am an and any are as at be because been before being both but by
can could did do does doing don't down during each few for from further get got had has have having he her here
hers him his how i i'm if in into is it it's its just know like me more most my no nor not now of off on once
only or other our ours out over own please right same she should so some such than thank thanks that that's the
their them then there these they this those through to too under until up us very was we we'll we're were what
when where which while who whom why will with would yeah yes you you're your yours okay ok oh hi hello bye
goodbye morning afternoon sure great well one two three four five six seven eight nine ten let me let's see
just can i'll i've you'll you've that'll today day calling call""".split())


@dataclass
class CallIndex:
    """Call vectors of one state of an index. ``files[i]`` has ``vectors[i]`` (unit length);
    ``windows`` holds every window's id, file index, span, channel, speaker, centred vector and
    specificity, for the moments that explain a match."""

    files: List[str]
    vectors: np.ndarray
    centroid: np.ndarray  # the mean unit vector the units were centred on
    window_ids: List[str] = field(default_factory=list)
    window_file: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    window_spans: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    window_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    window_specific: np.ndarray = field(default_factory=lambda: np.zeros(0))
    source: str = "windows+contexts"  # or "windows": an index without context units, or per speaker
    unit_centroid: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # what the units were centred on
    hashes: Dict[str, str] = field(default_factory=dict)  # path -> hash of every file it was made from
    base: int = 0  # calls at the last full build
    changed: int = 0  # calls added, re-indexed or removed since (`update`)
    neighbourhood: Optional[np.ndarray] = field(default=None, repr=False)  # `density`, made when first asked
    own: Optional[np.ndarray] = field(default=None, repr=False)  # this model's part when `second` is joined
    second: Optional["CallIndex"] = field(default=None, repr=False)  # the second model's call vectors

    def index_of(self, path: str) -> Optional[int]:
        try:
            return self.files.index(path)
        except ValueError:
            return None


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


def _rows(store: Any, where: Optional[Dict[str, Any]]) -> Tuple[List[str], List[Dict[str, Any]], np.ndarray]:
    ids: List[str] = []
    metas: List[Dict[str, Any]] = []
    vectors: List[np.ndarray] = []
    if where:
        for row, v in store.get_where(where, embeddings=True):
            ids.append(row.id)
            metas.append(row.metadata)
            vectors.append(v)
    else:
        for page in store.iter_rows():
            ids += page["ids"]
            metas += [dict(m or {}) for m in page["metadatas"]]
            vectors += list(page["embeddings"])
    return ids, metas, np.asarray(vectors, np.float32).reshape(len(ids), -1)


def weights(specific: np.ndarray, temperature: float = TEMPERATURE) -> np.ndarray:
    """Softmax weights of a call's units from their specificity."""
    w = np.exp((specific - specific.max()) / temperature)
    return w / w.sum()


def _call_vectors(unit_file: np.ndarray, unit_vectors: np.ndarray, unit_spec: np.ndarray, count: int,
                  dim: int, temperature: float = TEMPERATURE) -> np.ndarray:
    """One unit vector per file 0..count-1: its units' centred vectors weighted by specificity."""
    vectors = np.zeros((count, dim), np.float32)
    order = np.argsort(unit_file, kind="stable")
    bounds = np.searchsorted(unit_file[order], np.arange(count + 1))
    for f in range(count):
        ix = order[bounds[f]:bounds[f + 1]]
        if len(ix):
            vectors[f] = (unit_vectors[ix] * weights(unit_spec[ix], temperature)[:, None]).sum(0)
    return _unit(vectors)


def _blend(windows: np.ndarray, contexts: Optional[np.ndarray]) -> np.ndarray:
    """A call vector from its windows' part and, when there is one, its context units' part."""
    return windows if contexts is None else _unit(windows + CONTEXT_WEIGHT * contexts)


def _ready_rows(store: Any, where: Optional[Dict[str, Any]], ready: Optional[Dict[str, str]]
                ) -> Tuple[List[str], List[Dict[str, Any]], np.ndarray]:
    """`_rows`, without the rows of files whose hash `ready` does not list (when given)."""
    ids, metas, V = _rows(store, where)
    keep = [n for n, m in enumerate(metas) if ready is None or ready.get(m.get("path")) == m.get("file_hash")]
    return [ids[n] for n in keep], [metas[n] for n in keep], V[keep] if len(keep) else V[:0]


class Reembedded:
    """A vector store's rows with another text model's vectors in place of the store's: what
    `build` and `update` read for a call vector's second part. The vectors are kept in the
    catalogue (`Catalog.unit_vectors`, by model and row id); rows that have none yet are
    embedded (their text read from the store) and kept, so each is embedded once."""

    BATCH = 1000  # units embedded, then kept, at a time
    LOUD = 2000  # this many units to embed at once is logged as a warning (minutes of work)

    def __init__(self, store: Any, catalog: Any, embedder: Any, model: str, kind: str):
        self.store, self.catalog, self.embedder = store, catalog, embedder
        self.key = f"{model}:{kind}"

    def iter_rows(self, batch: int = 2000) -> Iterable[Dict[str, Any]]:
        ids: List[str] = []
        metas: List[Dict[str, Any]] = []
        texts: List[Optional[str]] = []
        for page in self.store.iter_rows(batch, embeddings=False):  # all pages, then one `vectors`
            ids += page["ids"]
            metas += [dict(m or {}) for m in page["metadatas"]]
            texts += page["documents"]
        if ids:
            yield {"ids": ids, "metadatas": metas, "embeddings": self.vectors(ids, metas, texts)}

    def get_where(self, where: Dict[str, Any], embeddings: bool = True) -> List[Tuple[Any, Optional[np.ndarray]]]:
        rows = [r for r, _ in self.store.get_where(where)]
        V = self.vectors([r.id for r in rows], [r.metadata for r in rows])
        return [(r, V[n]) for n, r in enumerate(rows)]

    def vectors(self, ids: Sequence[str], metas: Sequence[Dict[str, Any]],
                texts: Optional[Sequence[Optional[str]]] = None) -> np.ndarray:
        """The vectors of these rows, embedding (and keeping) those not kept yet."""
        have = self.catalog.unit_vectors(self.key, ids)
        missing = [n for n, i in enumerate(ids) if i not in have]
        if missing:
            if texts is None:
                found = self.store.get([ids[n] for n in missing])
                texts = {n: found[ids[n]][0].text if ids[n] in found else "" for n in missing}
            else:
                texts = {n: texts[n] or "" for n in missing}
            (logger.warning if len(missing) >= self.LOUD else logger.info)(
                "embedding %d window and context units with %s for call vectors, once (about %.0f s on "
                "2 cores); later calls read them from the index", len(missing), self.key.split(":")[0],
                0.035 * len(missing))
            for at in range(0, len(missing), self.BATCH):  # kept a batch at a time: an interrupted run keeps its work
                part = missing[at:at + self.BATCH]
                # rounded as the catalogue keeps them (float16), so a first build equals every later one
                fresh = np.asarray(self.embedder.encode([texts[n] for n in part]), np.float16).astype(np.float32)
                for n, v in zip(part, fresh):
                    have[ids[n]] = v
                try:
                    self.catalog.put_unit_vectors(self.key, [(ids[n], str(metas[n].get("path")), have[ids[n]])
                                                             for n in part])
                except Exception as e:  # a read-only index: they are embedded again next time
                    logger.warning("could not keep the %s call vectors in the index: %s", self.key, e)
        dim = next((len(v) for v in have.values()), 0)
        return np.asarray([have[i] for i in ids], np.float32).reshape(len(ids), dim)


def _joined(first: CallIndex, second: Optional[CallIndex]) -> CallIndex:
    """`first` whose call vectors are joined with `second`'s (each part unit length, the two
    weighing the same), when both hold the same files."""
    if second is None or second.files != first.files or not len(first.files):
        return first
    first.own, first.second = first.vectors, second
    first.vectors = _unit(np.concatenate([first.vectors, second.vectors], 1)).astype(np.float32)
    return first


def build(windows: Any, contexts: Optional[Any], where: Optional[Dict[str, Any]] = None,
          ready: Optional[Dict[str, str]] = None, second: Optional[Tuple[Any, Optional[Any]]] = None) -> CallIndex:
    """Call vectors of every file in the stores (those with rows matching `where`; only files
    whose hash `ready` lists, when given). Context units make the call vectors when there are
    any (and no `where`, whose fields they may not carry); windows always give the moments.
    `second` (the same stores read through another text model, `Reembedded`) adds that
    model's call vectors to each call's."""
    first = _build(windows, contexts, where, ready)
    return _joined(first, _build(second[0], second[1], where, ready) if second is not None else None)


def _build(windows: Any, contexts: Optional[Any], where: Optional[Dict[str, Any]] = None,
           ready: Optional[Dict[str, str]] = None) -> CallIndex:
    ids, metas, V = _ready_rows(windows, where, ready)
    files = sorted({str(m["path"]) for m in metas})
    if not files:
        return CallIndex([], np.zeros((0, V.shape[1] if V.ndim == 2 else 0), np.float32), np.zeros(0, np.float32),
                         hashes=dict(ready or {}))
    at = {f: n for n, f in enumerate(files)}
    V = _unit(V)
    centroid = V.mean(0)
    wf = np.array([at[str(m["path"])] for m in metas])
    Vc = _unit(V - centroid)
    spec = 1.0 - V @ _unit(centroid)
    source, unit_centroid = "windows", centroid
    parts = [_call_vectors(wf, Vc, spec, len(files), V.shape[1], WINDOW_TEMPERATURE), None]
    if contexts is not None and not where:
        _, cmetas, C = _ready_rows(contexts, None, ready)
        cm = [n for n, m in enumerate(cmetas) if str(m.get("path")) in at]
        if cm and len({str(cmetas[n]["path"]) for n in cm}) == len(files):
            C = _unit(C[cm])
            unit_centroid, source = C.mean(0), "windows+contexts"
            parts[1] = _call_vectors(np.array([at[str(cmetas[n]["path"])] for n in cm]), _unit(C - unit_centroid),
                                     1.0 - C @ _unit(unit_centroid), len(files), V.shape[1])
    vectors = _blend(*parts)
    spans = np.array([[float(m["start"]), float(m["end"])] for m in metas])
    return CallIndex(files, vectors, centroid.astype(np.float32), ids, wf, spans,
                     Vc.astype(np.float32), spec, source, unit_centroid.astype(np.float32),
                     hashes=dict(ready) if ready is not None else {f: "" for f in files}, base=len(files))


REBUILD = 0.2  # `update` builds afresh once this share of the calls has changed since the last build
_IN = 500  # paths per "$in" filter


def _rows_of(store: Any, paths: Sequence[str], ready: Dict[str, str]
             ) -> Tuple[List[str], List[Dict[str, Any]], np.ndarray]:
    ids: List[str] = []
    metas: List[Dict[str, Any]] = []
    parts: List[np.ndarray] = []
    for at in range(0, len(paths), _IN):
        i, m, V = _ready_rows(store, {"path": {"$in": list(paths[at:at + _IN])}}, ready)
        ids += i
        metas += m
        parts.append(V)
    dim = next((p.shape[1] for p in parts if p.ndim == 2 and p.shape[0]), 0)
    return ids, metas, np.concatenate([p for p in parts if p.shape[0]]) if ids else np.zeros((0, dim), np.float32)


def update(index: CallIndex, windows: Any, contexts: Optional[Any], ready: Dict[str, str],
           second: Optional[Tuple[Any, Optional[Any]]] = None) -> CallIndex:
    """`index` brought to the files `ready` lists now (`_update`), its second model's part too
    (`second`, as in `build`)."""
    if index.hashes == ready and (second is None) == (index.second is None):
        return index
    first = replace(index, vectors=index.own if index.own is not None else index.vectors, own=None, second=None,
                    neighbourhood=None)
    first = _update(first, windows, contexts, ready)
    if second is None:
        return first
    part = _update(index.second, second[0], second[1], ready) if index.second is not None else None
    if part is None or part.files != first.files:
        part = _build(second[0], second[1], None, ready)
    return _joined(first, part)


def _update(index: CallIndex, windows: Any, contexts: Optional[Any], ready: Dict[str, str]) -> CallIndex:
    """`index` brought to the files `ready` lists now (path -> hash), reading only the rows of
    the files added or re-indexed since: removed files are dropped, new ones get call vectors
    centred on the centroids the index was built with (frozen, so the other calls' vectors,
    and with them their neighbours and topics, stay as they were). Built afresh (`build`) when
    more than `REBUILD` of the calls changed since the last build, when the index was empty or
    built per `where`, or when a new file's context units are missing."""
    if index.hashes == ready:
        return index
    gone = {f for f, h in index.hashes.items() if ready.get(f) != h}
    new = sorted(f for f, h in ready.items() if index.hashes.get(f) != h)
    changed = index.changed + len(gone | set(new))
    if not index.files or changed > REBUILD * max(index.base, 1):
        return _build(windows, contexts, None, ready)
    ids, metas, V = _rows_of(windows, new, ready)
    added = sorted({str(m["path"]) for m in metas})
    units: Tuple[List[Dict[str, Any]], np.ndarray] = ([], np.zeros((0, 0), np.float32))
    if index.source == "windows+contexts" and added:
        _, cmetas, C = _rows_of(contexts, added, ready) if contexts is not None else ([], np.zeros((0, 0)))
        if {str(m["path"]) for m in cmetas} != set(added):
            return _build(windows, contexts, None, ready)
        units = (cmetas, C)
    keep = [n for n, f in enumerate(index.files) if f not in gone]
    files = sorted([index.files[n] for n in keep] + added)
    at = {f: n for n, f in enumerate(files)}
    old_to_new = np.full(len(index.files), -1)
    for n in keep:
        old_to_new[n] = at[index.files[n]]
    vectors = np.zeros((len(files), index.vectors.shape[1]), np.float32)
    vectors[old_to_new[keep]] = index.vectors[keep]
    wkeep = np.flatnonzero(old_to_new[index.window_file] >= 0) if len(index.window_file) else np.zeros(0, int)
    window_ids = [index.window_ids[n] for n in wkeep] + ids
    window_file = np.concatenate([old_to_new[index.window_file[wkeep]],
                                  np.array([at[str(m["path"])] for m in metas], int)]).astype(int)
    spans = np.concatenate([index.window_spans[wkeep].reshape(-1, 2),
                            np.array([[float(m["start"]), float(m["end"])] for m in metas]).reshape(-1, 2)])
    if added:
        V = _unit(V)
        Vc = _unit(V - index.centroid).astype(np.float32)
        spec = 1.0 - V @ _unit(index.centroid)
        dim = vectors.shape[1]
        fresh = [_call_vectors(window_file[len(wkeep):], Vc, spec, len(files), dim, WINDOW_TEMPERATURE), None]
        if index.source == "windows+contexts":
            cmetas, C = units
            C = _unit(C)
            fresh[1] = _call_vectors(np.array([at[str(m["path"])] for m in cmetas], int),
                                     _unit(C - index.unit_centroid), 1.0 - C @ _unit(index.unit_centroid),
                                     len(files), dim)
        fresh = _blend(*fresh)
        rows = [at[f] for f in added]
        vectors[rows] = fresh[rows]
        window_vectors = np.concatenate([index.window_vectors[wkeep], Vc])
        window_specific = np.concatenate([index.window_specific[wkeep], spec])
    else:
        window_vectors, window_specific = index.window_vectors[wkeep], index.window_specific[wkeep]
    return CallIndex(files, vectors, index.centroid, window_ids, window_file, spans, window_vectors,
                     window_specific, index.source, index.unit_centroid, hashes=dict(ready), base=index.base,
                     changed=changed)


def query_vector(index: CallIndex, windows: np.ndarray, contexts: np.ndarray,
                 second: Optional[Tuple[np.ndarray, np.ndarray]] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A call vector for a recording that is not indexed, made from the text vectors of its
    windows and context units as the index's are (and, when the index joins a second model's,
    from that model's vectors of them, `second`): (call vector, its windows' centred vectors,
    their specificity)."""
    vector, Wc, wspec = _query_vector(index, windows, contexts)
    if index.second is not None and second is not None:
        vector = _unit(np.concatenate([vector, _query_vector(index.second, *second)[0]]))
    return vector, Wc, wspec


def _query_vector(index: CallIndex, windows: np.ndarray, contexts: np.ndarray
                  ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    W = _unit(np.asarray(windows, np.float32))
    Wc = _unit(W - index.centroid)
    wspec = 1.0 - W @ _unit(index.centroid)
    part = None
    if index.source == "windows+contexts":
        U = _unit(np.asarray(contexts, np.float32)) if len(contexts) else W
        part = _unit((_unit(U - index.unit_centroid) * weights(1.0 - U @ _unit(index.unit_centroid))[:, None]).sum(0))
    return _blend(_unit((Wc * weights(wspec, WINDOW_TEMPERATURE)[:, None]).sum(0)), part), Wc, wspec


def key_moments(index: CallIndex, f: int, n: int = KEY_MOMENTS) -> np.ndarray:
    """Indices (into the windows) of file `f`'s `n` most specific windows."""
    mine = np.flatnonzero(index.window_file == f)
    return mine[np.argsort(-index.window_specific[mine], kind="stable")[:n]]


def _nearest_mean(scores: np.ndarray, k: int) -> np.ndarray:
    """Per row, the mean of its `k` largest values (all of them when a row has fewer)."""
    k = min(k, scores.shape[-1])
    if k <= 0:
        return np.zeros(scores.shape[:-1], np.float32)
    return np.partition(scores, scores.shape[-1] - k, axis=-1)[..., -k:].mean(-1)


def density(index: CallIndex, block: int = 1024) -> np.ndarray:
    """Each call's neighbourhood: the mean cosine to its `HUB_K` nearest other calls (made once
    per `CallIndex`, a block of rows at a time: 10,000 calls take about a second)."""
    if index.neighbourhood is None:
        V = index.vectors
        out = np.zeros(len(V), np.float32)
        for at in range(0, len(V), block):
            scores = V[at:at + block] @ V.T
            rows = np.arange(at, min(at + block, len(V)))
            scores[rows - at, rows] = -np.inf  # not itself
            out[rows] = _nearest_mean(scores, min(HUB_K, len(V) - 1))
        index.neighbourhood = out
    return index.neighbourhood


def neighbours(index: CallIndex, query: np.ndarray, k: int, exclude: Optional[int] = None,
               allowed: Optional[Iterable[str]] = None) -> List[Tuple[int, float, float]]:
    """(file index, score, cosine) of the `k` calls most like `query`, best first, without
    `exclude` and only among `allowed` paths when given. The score is the cosine less the mean
    of the two calls' neighbourhoods (`density`; the query's own from its `HUB_K` nearest calls):
    a call that is close to every call (a long one that says a bit of everything) no longer
    tops every list, and a pair counts by how much more alike they are than each usually is to
    its nearest calls (cross-domain similarity local scaling; chosen on the dev sets: precision@1
    0.833 -> 0.933 and 0.925 -> 0.950, docs/evaluation.md)."""
    if not len(index.files):
        return []
    cosine = index.vectors @ np.asarray(query, np.float32)
    others = np.delete(cosine, exclude) if exclude is not None else cosine
    score = cosine - (density(index) + _nearest_mean(others, HUB_K)) / 2
    ok = np.ones(len(index.files), bool)
    if exclude is not None:
        ok[exclude] = False
    if allowed is not None:
        allow = set(allowed)
        ok &= np.array([f in allow for f in index.files])
    order = [int(i) for i in np.argsort(-score, kind="stable") if ok[i]]
    return [(i, float(score[i]), float(cosine[i])) for i in order[:k]]


def shared_moment(index: CallIndex, keys: np.ndarray, query_vectors: np.ndarray, f: int
                  ) -> Tuple[int, int, float]:
    """The pair (query unit, window of file `f`) most alike among the query's key units:
    (position in `keys`, window index, cosine); (-1, -1, 0) when `f` has no windows."""
    theirs = np.flatnonzero(index.window_file == f)
    if not len(theirs) or not len(keys):
        return -1, -1, 0.0
    sims = query_vectors[keys] @ index.window_vectors[theirs].T
    a, b = np.unravel_index(int(np.argmax(sims)), sims.shape)
    return int(a), int(theirs[b]), float(sims[a, b])


# -- topics -------------------------------------------------------------------------------------
MICRO = 3000  # above this many calls, Ward's tree is built over k-means micro-clusters


def _tree(vectors: np.ndarray, seed: int) -> Tuple[Any, np.ndarray]:
    """Ward's tree over the calls, or over at most 400 k-means micro-clusters of them (a big
    index: the tree costs memory and time in the square of its leaves). Returns the tree and
    each call's leaf."""
    from scipy.cluster.hierarchy import linkage

    if len(vectors) <= MICRO:
        return linkage(vectors, method="ward"), np.arange(len(vectors))
    from sklearn.cluster import KMeans

    micro = KMeans(n_clusters=min(400, len(vectors) // 8), n_init=1, random_state=seed).fit(vectors)
    return linkage(micro.cluster_centers_, method="ward"), micro.labels_


def cluster(vectors: np.ndarray, n: Optional[int] = None, max_topics: int = MAX_TOPICS,
            seed: int = 0) -> Tuple[np.ndarray, Dict[int, float]]:
    """Group unit `vectors` by Ward's agglomerative clustering: one tree, cut into `n` groups,
    or into the most groups k of 2..`max_topics` (at most a third of the calls) whose silhouette
    (cosine) is at least `SILHOUETTE_SHARE` of the best k's. The best silhouette alone cuts too
    coarse: calls of one domain (two reasons to call an airline) sit closer to each other than to
    other domains, so it merged each confusable pair of reasons on the similar-calls dev set
    (6 topics for 10 reasons, NMI 0.86; with the share, 11 topics, NMI 0.96; the first dev set
    keeps its 10 topics). Deterministic, and a tree changes little when a few calls are added, so the topics
    do too (k-means was as good on the dev set's intents, NMI 0.909 against 0.907, but regrouped
    half the calls when 4 of 30 were left out: adjusted Rand 0.51 against 0.86). Labels are
    renumbered by size, largest first (ties: by the first call's index). Returns (labels,
    silhouette per k tried)."""
    from scipy.cluster.hierarchy import fcluster
    from sklearn.metrics import silhouette_score

    count = len(vectors)
    if count == 0:
        return np.zeros(0, int), {}
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise InvalidInputError(f"n must be a positive integer, got {n!r}")
    if count < 3 or n == 1:
        return np.zeros(count, int), {}
    tree, leaf = _tree(np.asarray(vectors, np.float64), seed)
    if n is not None:
        ks = [min(n, count)]
    elif count >= 6:
        ks = list(range(2, max(2, min(max_topics, count // 3)) + 1))
    else:
        ks = [1]
    tried: Dict[int, float] = {}
    cuts: Dict[int, np.ndarray] = {}
    sample = distances = None
    if len(ks) > 1:  # the silhouettes' cosine distances, once for every k (on at most 2,000 calls)
        sample = np.sort(np.random.RandomState(seed).permutation(count)[:SILHOUETTE_SAMPLE])
        unit = _unit(np.asarray(vectors, np.float64)[sample])
        distances = np.clip(1.0 - unit @ unit.T, 0.0, 2.0)
        np.fill_diagonal(distances, 0.0)
    for k in ks:
        cuts[k] = (fcluster(tree, k, criterion="maxclust") - 1)[leaf] if k > 1 else np.zeros(count, int)
        if len(ks) > 1:
            cut = cuts[k][sample]
            tried[k] = float(silhouette_score(distances, cut, metric="precomputed")) \
                if 1 < len(set(cut.tolist())) < len(cut) else -1.0
    if tried:  # the finest cut whose silhouette is near the best one
        top = max(tried.values())
        best = cuts[max(k for k, v in tried.items() if v >= top - (1.0 - SILHOUETTE_SHARE) * abs(top))]
        tried = {k: round(v, 4) for k, v in tried.items()}
    else:
        best = cuts[ks[0]]
    sizes = {c: (-(best == c).sum(), int(np.flatnonzero(best == c)[0])) for c in set(best.tolist())}
    rank = {c: r for r, c in enumerate(sorted(sizes, key=lambda c: sizes[c]))}
    return np.array([rank[c] for c in best.tolist()]), tried


def words(text: str) -> List[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOP and len(w) > 2]


def label(texts_by_topic: Sequence[Sequence[str]], n_terms: int = 10) -> List[List[str]]:
    """Class-based TF-IDF over calls: for each topic (its calls' transcripts), the terms said in
    most of its calls and in few calls of the others: ``df(t, c) / |c| * log(1 + N / df(t))``
    (df: calls that say the term; N: all calls), ties broken by how often the topic says it. A
    term said in one call only (a name, a number) does not name a topic of several calls."""
    df_by: List[Dict[str, int]] = []
    tf_by: List[Dict[str, int]] = []
    for texts in texts_by_topic:
        df: Dict[str, int] = {}
        tf: Dict[str, int] = {}
        for text in texts:
            ws = words(text)
            for w in ws:
                tf[w] = tf.get(w, 0) + 1
            for w in set(ws):
                df[w] = df.get(w, 0) + 1
        df_by.append(df)
        tf_by.append(tf)
    total: Dict[str, int] = {}
    for df in df_by:
        for w, x in df.items():
            total[w] = total.get(w, 0) + x
    n_calls = sum(len(t) for t in texts_by_topic) or 1
    out = []
    for df, tf, texts in zip(df_by, tf_by, texts_by_topic):
        size = max(1, len(texts))
        need = 2 if size > 1 else 1
        scored = [(x / size * math.log(1.0 + n_calls / total[w]), tf[w], w) for w, x in df.items() if x >= need]
        out.append([w for *_, w in sorted(scored, key=lambda s: (-s[0], -s[1], s[2]))[:n_terms]])
    return out


def bucket(value: Any, period: str) -> str:
    """The week ("2026-W09", ISO) or month ("2026-03") of a metadata value: an ISO date or
    date-time string, a datetime, or a Unix time in seconds."""
    if period not in ("week", "month", "day"):
        raise InvalidInputError(f"period must be 'day', 'week' or 'month', got {period!r}")
    if value is None:
        return "unknown"
    if isinstance(value, _dt.datetime):
        when = value
    elif isinstance(value, _dt.date):
        when = _dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        when = _dt.datetime.fromtimestamp(float(value), _dt.timezone.utc)
    else:
        try:
            when = _dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return "unknown"
    if period == "day":
        return when.strftime("%Y-%m-%d")
    if period == "month":
        return when.strftime("%Y-%m")
    year, week, _ = when.isocalendar()
    return f"{year}-W{week:02d}"


# -- assembling results (called by Library) ---------------------------------------------------
def _window_text(catalog: Any, path: str, wid: str, cache: Dict[str, Dict[str, Any]]) -> Any:
    if path not in cache:
        cache[path] = {i: w for i, w in catalog.windows(path)}
    return cache[path].get(wid)


def similar_hits(index: CallIndex, catalog: Any, query: np.ndarray, keys: np.ndarray, key_vectors: np.ndarray,
                 key_spans: np.ndarray, key_texts: Sequence[str], k: int, query_path: str = "",
                 exclude: Optional[int] = None, allowed: Optional[Iterable[str]] = None) -> List[Any]:
    """`SimilarHit`s for the `k` calls nearest `query`, each with its moment most like one of the
    query's key moments (`keys` index `key_vectors`, `key_spans`, `key_texts`)."""
    from .types import SimilarHit

    cache: Dict[str, Dict[str, Any]] = {}
    infos: Dict[str, Any] = {}
    out = []
    usual = density(index)
    for f, score, cosine in neighbours(index, query, k, exclude, allowed):
        path = index.files[f]
        a, w, moment = shared_moment(index, keys, key_vectors, f)
        if w < 0:
            continue
        window = _window_text(catalog, path, index.window_ids[w], cache)
        info = infos.setdefault(path, catalog.get_file(path))
        start, end = index.window_spans[w]
        out.append(SimilarHit(
            path=path, start=float(start), end=float(end), text=window.text if window is not None else "",
            score=round(score, 4), metadata=dict(info.metadata) if info is not None else {},
            channel=window.channel if window is not None else 0, id=index.window_ids[w],
            scores={"call": round(cosine, 4), "neighbourhood": round(float(usual[f]), 4),
                    "moment": round(moment, 4)},
            language=info.language if info is not None else None,
            speaker=window.speaker if window is not None else None,
            redactions=tuple((x, y) for x, y, *_ in catalog.redactions(path)),
            query_path=query_path, query_start=float(key_spans[keys[a]][0]), query_end=float(key_spans[keys[a]][1]),
            query_text=key_texts[a]))
    return out


def keep_names(groups: Sequence[Sequence[str]], names: Sequence[str], memory: Optional[Dict[str, Any]]) -> List[str]:
    """Names for `groups` (lists of calls) that survive a change of the index: a group takes the
    name a remembered topic had (`memory`: ``{"names": [...], "files": {path: n}}``, the last
    `topics` result) when more than half of the group's remembered calls had that name and more
    than half of that name's remembered calls present now are in the group; each name once,
    largest overlap first. Other groups keep `names` (their fresh label), made unique."""
    out = list(names)
    if not isinstance(memory, dict) or not isinstance(memory.get("names"), list) \
            or not isinstance(memory.get("files"), dict):
        return out  # nothing remembered (or not in the shape `Library.topics` writes)
    known, old = memory["files"], memory["names"]
    present: Dict[int, int] = {}
    counts: List[Dict[int, int]] = []
    for files in groups:
        c: Dict[int, int] = {}
        for f in files:
            t = known.get(f)
            if isinstance(t, int) and 0 <= t < len(old):
                c[t] = c.get(t, 0) + 1
                present[t] = present.get(t, 0) + 1
        counts.append(c)
    pairs = sorted(((x, g, t) for g, c in enumerate(counts) for t, x in c.items()
                    if 2 * x > sum(c.values()) and 2 * x > present[t]), key=lambda p: (-p[0], p[1], p[2]))
    kept: Dict[int, str] = {}
    for x, g, t in pairs:
        if g not in kept and old[t] not in kept.values():
            kept[g] = old[t]
    for g, name in kept.items():
        out[g] = name
    taken = set(kept.values())
    for g in range(len(out)):
        if g not in kept:
            base, extra = out[g], 2
            while out[g] in taken:
                out[g] = f"{base} ({extra})"
                extra += 1
            taken.add(out[g])
    return out


def topics(index: CallIndex, catalog: Any, n: Optional[int] = None, by: Optional[str] = None,
           period: str = "week", examples: int = 3, allowed: Optional[Iterable[str]] = None,
           max_topics: int = MAX_TOPICS, memory: Optional[Dict[str, Any]] = None) -> List[Any]:
    """The topics of the calls of `index` (those `allowed`), largest first; a topic whose calls
    are mostly those of a topic in `memory` (the last result) keeps its name (`keep_names`)."""
    from .types import Hit, Topic

    rows = np.arange(len(index.files))
    if allowed is not None:
        allow = set(allowed)
        rows = np.array([i for i in rows if index.files[i] in allow], int)
    if not len(rows):
        return []
    vectors = index.vectors[rows]
    labels, _ = cluster(vectors, n, max_topics)
    cache: Dict[str, Dict[str, Any]] = {}
    groups = [rows[labels == c] for c in range(int(labels.max()) + 1)]
    texts = [[" ".join(w.text for _, w in catalog.windows(index.files[f])) for f in g] for g in groups]
    terms = label(texts)
    names = keep_names([[index.files[int(f)] for f in g] for g in groups],
                       [" / ".join(t[:3]) or f"topic {c + 1}" for c, t in enumerate(terms)], memory)
    out = []
    for c, g in enumerate(groups):
        centre = _unit(index.vectors[g].mean(0))
        closeness = index.vectors[g] @ centre
        order = g[np.argsort(-closeness, kind="stable")]
        shown = []
        for f in order[:examples]:
            keys = key_moments(index, int(f), 1)
            if not len(keys):
                continue
            path = index.files[int(f)]
            w = int(keys[0])
            window = _window_text(catalog, path, index.window_ids[w], cache)
            info = catalog.get_file(path)
            shown.append(Hit(path=path, start=float(index.window_spans[w][0]), end=float(index.window_spans[w][1]),
                             text=window.text if window is not None else "", score=round(float(closeness.max()), 4),
                             metadata=dict(info.metadata) if info is not None else {},
                             channel=window.channel if window is not None else 0, id=index.window_ids[w],
                             speaker=window.speaker if window is not None else None,
                             redactions=tuple((x, y) for x, y, *_ in catalog.redactions(path))))
        counts: Dict[str, int] = {}
        if by:
            for f in g:
                info = catalog.get_file(index.files[int(f)])
                key = bucket((info.metadata if info is not None else {}).get(by), period)
                counts[key] = counts.get(key, 0) + 1
            counts = dict(sorted(counts.items()))
        out.append(Topic(id=c, label=names[c], size=len(g), terms=terms[c],
                         files=[index.files[int(f)] for f in order], examples=shown, counts=counts,
                         cohesion=round(float(closeness.mean()), 4)))
    return out
