"""Removing files from an index: by path, or by a file-level metadata filter (the right to
erasure: every call of one customer).

`files_matching` picks files by the metadata they were added with, in the filter language of
`search` (docs/filters.md); `remove_files` deletes them from the catalogue (windows, BM25 index,
number codes, transcript, metadata) and from every vector collection. Deleted data stays in the
files' free space until `Library.compact` (docs/privacy.md).
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .catalog import Catalog
from .errors import InvalidInputError
from .filters import build_where, encode_metadata
from .store import ChromaStore
from .types import FileInfo, RemoveReport

__all__ = ["FILE_FIELDS", "files_matching", "remove_files", "collection_kind"]

# fields a file-level filter may name beside the user's metadata
FILE_FIELDS = {"path": "string", "language": "string"}
_WINDOW_FIELDS = ("start", "end", "channel", "speaker")
_MISSING = object()


def files_matching(files: Sequence[FileInfo], where: Dict[str, Any], types: Dict[str, str]) -> List[FileInfo]:
    """The `files` whose metadata (and path, language) match `where`. Same operators and
    semantics as a search filter: a comparison on a field a file lacks is false, except $ne and
    $nin, which it satisfies."""
    if not isinstance(where, dict) or not where:
        raise InvalidInputError(f"where must be a non-empty filter like {{'customer_id': 'C-1042'}}, got {where!r}")
    window = sorted(set(_fields(where)) & set(_WINDOW_FIELDS))
    if window:
        raise InvalidInputError(f"remove works on whole files: {', '.join(window)} describe moments, not files; "
                                f"filter on the files' metadata, path or language")
    fields = dict(types, **FILE_FIELDS)
    clause = build_where(where, fields)
    out = []
    for info in files:
        try:
            row = encode_metadata(info.metadata, types)
        except InvalidInputError:  # a value recorded before its field's type changed
            row = dict(info.metadata)
        row.update(path=info.path, language=info.language)
        if _matches(clause, row):
            out.append(info)
    return out


def _fields(where: Any) -> List[str]:
    out: List[str] = []
    if isinstance(where, dict):
        for key, value in where.items():
            if key in ("$and", "$or") and isinstance(value, list):
                for item in value:
                    out += _fields(item)
            elif isinstance(key, str) and not key.startswith("$"):
                out.append(key)
    return out


def _matches(clause: Optional[Dict[str, Any]], row: Dict[str, Any]) -> bool:
    """Evaluate a filter in Chroma's where syntax (what `build_where` makes) on one row."""
    if clause is None:
        return True
    for key, cond in clause.items():
        if key == "$and":
            ok = all(_matches(c, row) for c in cond)
        elif key == "$or":
            ok = any(_matches(c, row) for c in cond)
        else:
            ops = cond if isinstance(cond, dict) else {"$eq": cond}
            value = row.get(key, _MISSING)
            ok = all(_compare(value, op, operand) for op, operand in ops.items())
        if not ok:
            return False
    return True


def _same(a: Any, b: Any) -> bool:
    """Equal as Chroma compares: a bool, a string and a number never equal one another."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    return a == b


def _compare(value: Any, op: str, operand: Any) -> bool:
    if value is _MISSING or value is None:
        return op in ("$ne", "$nin")
    if op == "$eq":
        return _same(value, operand)
    if op == "$ne":
        return not _same(value, operand)
    if op == "$in":
        return any(_same(value, v) for v in operand)
    if op == "$nin":
        return not any(_same(value, v) for v in operand)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return {"$gt": value > operand, "$gte": value >= operand, "$lt": value < operand,
            "$lte": value <= operand}[op]


def collection_kind(name: str) -> str:
    """What a collection of the index holds, from its name: text, context, acoustic, voice."""
    for prefix, kind in (("windows", "text"), ("context", "context"), ("acoustic", "acoustic"), ("voice", "voice")):
        if name.startswith(prefix):
            return kind
    return name


def remove_files(catalog: Catalog, files: Sequence[FileInfo], stores: Sequence[Tuple[str, ChromaStore]]
                 ) -> RemoveReport:
    """Delete `files` from the catalogue and from each of `stores` (``(kind, store)`` pairs). The
    files are marked ``indexing`` first, so searches stop serving them at once; an interrupted
    removal leaves them so marked, metadata kept, and the same call removes the rest."""
    t0 = time.perf_counter()
    report = RemoveReport(files=[f.path for f in files])
    report.windows = sum(f.segments for f in files)
    for info in files:
        catalog.begin_file(info.path, info.hash)  # its windows, BM25 terms and codes go here
    for kind, store in stores:
        n = 0
        for at in range(0, len(report.files), 100):
            batch = report.files[at:at + 100]
            ids = store.ids_where({"path": batch[0]} if len(batch) == 1 else {"path": {"$in": batch}})
            store.delete_ids(ids)
            n += len(ids)
        report.vectors[kind] = report.vectors.get(kind, 0) + n
    for path in report.files:
        catalog.remove_file(path)  # with its transcript, redactions and metadata
    report.seconds = time.perf_counter() - t0
    return report
