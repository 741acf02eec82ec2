"""Call metadata: manifests on the way in, `where` filters on the way out.

A manifest (CSV with a header row, or JSON Lines) gives metadata for many files at once; it has
a ``path`` column and any fields beside it. Each field has a type (``field_types_of``): "string",
"number", "bool" or "datetime" (a string that reads as an ISO-8601 date or datetime). Chroma
compares only numbers with ``$gt``/``$lt``, so a datetime is stored as float epoch seconds (UTC)
with the original text kept under ``f"{field}__iso"`` (``encode_metadata`` / ``decode_metadata``).

``build_where`` checks a user filter against the known fields and their types and translates it
to Chroma's where syntax: ISO dates become epoch seconds, several conditions become ``$and``,
and a field seen with mixed types (merged to "string") matches every stored form of a value.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import reprlib
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from .errors import InvalidInputError

# Metadata keys the library writes on every row; user metadata may not use them.
RESERVED_KEYS = frozenset({"path", "file_hash", "start", "end", "channel", "asr_model", "text_model",
                           "window_id", "language", "speaker"})

__all__ = ["read_manifest", "field_types_of", "merge_field_types", "encode_metadata",
           "decode_metadata", "build_where", "ISO_SUFFIX", "OPERATORS", "MAX_WHERE_DEPTH", "MAX_WHERE_VALUES"]

ISO_SUFFIX = "__iso"
TYPES = ("string", "number", "bool", "datetime")
OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin")
_RANGE = frozenset({"$gt", "$gte", "$lt", "$lte"})
_LIST = frozenset({"$in", "$nin"})
_EXPECTED = {
    "string": "a string",
    "number": "a number",
    "bool": "true or false",
    "datetime": "an ISO-8601 date or datetime such as '2026-01-05' or '2026-01-05T14:03:00Z'",
}

# ---------------------------------------------------------------------------------------------
# Values

_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
                  r"(Z|[+-]\d{2}(?::?\d{2})?)?)?", re.IGNORECASE)
_INT = re.compile(r"-?(0|[1-9]\d*)")
_FLOAT = re.compile(r"-?(0|[1-9]\d*)?\.\d+")


def parse_datetime(value: Any) -> Optional[datetime]:
    """An aware UTC-comparable datetime for an ISO-8601 string or a date/datetime; else None.
    A date alone is midnight UTC; a datetime without an offset is UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if not isinstance(value, str):
        return None
    m = _ISO.fullmatch(value.strip())
    if not m:
        return None
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    tzinfo = timezone.utc
    if tz and tz.upper() != "Z":
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        tzinfo = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0)))
    try:
        return datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0),
                        int((frac or "0")[:6].ljust(6, "0")), tzinfo=tzinfo)
    except ValueError:  # 2026-02-30, 25:00, an offset of 24 hours or more
        return None


def _epoch(value: Any) -> Optional[float]:
    dt = parse_datetime(value)
    return None if dt is None else dt.timestamp()


def parse_scalar(text: str) -> Union[str, int, float, bool]:
    """A CSV cell as a value: integers and decimals become numbers (but "007", "+44...", "1e5"
    and "12:30" stay text), true/false become bools, anything else stays a string."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if _INT.fullmatch(text):
        n = int(text)
        return n if -2**63 <= n < 2**63 else text  # Chroma stores 64-bit integers
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def _kind(value: Any) -> Optional[str]:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, (datetime, date)) or (isinstance(value, str) and parse_datetime(value)):
        return "datetime"
    if isinstance(value, str):
        return "string"
    return None


def _check_key(field: Any) -> None:
    if not isinstance(field, str) or not field or field.startswith("$"):
        raise InvalidInputError(f"metadata field {field!r} must be a non-empty string not starting with '$'")
    if field.endswith(ISO_SUFFIX):
        raise InvalidInputError(f"metadata field {field!r}: the suffix {ISO_SUFFIX!r} is reserved for "
                                "stored dates; rename the field")


# ---------------------------------------------------------------------------------------------
# Field types and what is stored

def field_types_of(metadata: Dict[str, Any]) -> Dict[str, str]:
    """{"field": "datetime" | "number" | "string" | "bool"} for one file's metadata (None skipped)."""
    out = {}
    for field, value in (metadata or {}).items():
        if value is None:
            continue
        kind = _kind(value)
        if kind is None:
            raise InvalidInputError(f"metadata value for {field!r} must be a string, number or bool, "
                                    f"got {type(value).__name__}")
        out[field] = kind
    return out


def merge_field_types(known: Dict[str, str], new: Dict[str, str]) -> Dict[str, str]:
    """Union of two type maps; a field seen with two types becomes "string", so that range
    filters (which would miss the rows of the other type) are refused on it."""
    out = dict(known or {})
    for field, kind in (new or {}).items():
        out[field] = kind if out.get(field, kind) == kind else "string"
    return out


def encode_metadata(metadata: Dict[str, Any], types: Dict[str, str]) -> Dict[str, Any]:
    """What Chroma stores: a datetime field as float epoch seconds (UTC) plus its ISO text under
    f"{field}__iso"; every other value unchanged."""
    out: Dict[str, Any] = {}
    for field, value in (metadata or {}).items():
        _check_key(field)
        if value is None:
            continue
        if types.get(field) == "datetime" and not isinstance(value, bool):
            seconds = _epoch(value)
            if seconds is None:
                raise InvalidInputError(f"metadata value for {field!r} must be {_EXPECTED['datetime']}, "
                                        f"got {value!r}")
            out[field] = seconds
            out[field + ISO_SUFFIX] = value if isinstance(value, str) else value.isoformat()
        else:
            out[field] = value
    return out


def decode_metadata(stored: Dict[str, Any], types: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """The metadata as given: every field with an __iso shadow gets its ISO text back, and the
    shadow keys are dropped. (`types` is accepted for symmetry; the shadows alone decide.)"""
    out = {k: v for k, v in (stored or {}).items() if not k.endswith(ISO_SUFFIX)}
    for k, v in (stored or {}).items():
        if k.endswith(ISO_SUFFIX) and k[: -len(ISO_SUFFIX)] in out:
            out[k[: -len(ISO_SUFFIX)]] = v
    return out


# ---------------------------------------------------------------------------------------------
# Manifests

def read_manifest(path: Union[str, Path]) -> Dict[str, Dict[str, Any]]:
    """{absolute normalised audio path: {field: value}} from a CSV (header row) or JSON Lines
    manifest, chosen by extension (.csv, .jsonl, .ndjson; otherwise by the first character).
    Relative paths resolve against the manifest's folder. Errors name the file and line."""
    name = os.path.abspath(os.path.expanduser(str(path)))
    try:
        with open(name, "rb") as f:
            text = f.read().decode("utf-8-sig")
    except FileNotFoundError:
        raise InvalidInputError(f"{name}: manifest not found; check the path") from None
    except IsADirectoryError:
        raise InvalidInputError(f"{name}: is a folder; give the manifest file (.csv or .jsonl)") from None
    except UnicodeDecodeError as e:
        raise InvalidInputError(f"{name}: not UTF-8 text ({e.reason} at byte {e.start}); "
                                "save the manifest as UTF-8") from None
    if not text.strip():
        raise InvalidInputError(f"{name}: the manifest is empty; it needs a 'path' column or key")
    ext = os.path.splitext(name)[1].lower()
    jsonl = ext in (".jsonl", ".ndjson") or (ext != ".csv" and text.lstrip().startswith("{"))
    rows = _jsonl_rows(name, text) if jsonl else _csv_rows(name, text)
    base = os.path.dirname(name)
    out: Dict[str, Dict[str, Any]] = {}
    first_line: Dict[str, int] = {}
    for line, row in rows:
        where = f"{name}, line {line}"
        audio = row.pop("path", None)
        if not isinstance(audio, str) or not audio.strip():
            raise InvalidInputError(f"{where}: no 'path'; give each row the audio file's path as text "
                                    "(relative to the manifest's folder, or absolute)")
        audio = os.path.abspath(os.path.join(base, os.path.expanduser(audio.strip())))
        if audio in out:
            raise InvalidInputError(f"{where}: {audio} is listed twice (first on line "
                                    f"{first_line[audio]}); keep one row per file")
        for field in row:
            if field in RESERVED_KEYS:
                raise InvalidInputError(f"{where}: field {field!r} is reserved; rename it "
                                        f"(reserved: {', '.join(sorted(RESERVED_KEYS))})")
            try:
                _check_key(field)
            except InvalidInputError as e:
                raise InvalidInputError(f"{where}: {e}") from None
        out[audio], first_line[audio] = row, line
    return out


def _csv_rows(name: str, text: str) -> Iterator[Tuple[int, Dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(h for h in reader if any(c.strip() for c in h))
    except csv.Error as e:
        raise InvalidInputError(f"{name}, line {reader.line_num}: bad CSV header ({e})") from None
    header = [h.strip() for h in header]
    at = f"{name}, line {reader.line_num}"
    if "path" not in header:
        raise InvalidInputError(f"{at}: no 'path' column (columns: {', '.join(header)}); "
                                "the first row must be a header naming a 'path' column")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if "" in header or dupes:
        raise InvalidInputError(f"{at}: every column needs a distinct name "
                                f"({'duplicated: ' + ', '.join(dupes) if dupes else 'one is empty'})")
    end = reader.line_num
    while True:
        line = end + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise InvalidInputError(f"{name}, line {line}: bad CSV ({e}); check the quoting") from None
        end = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(header):
            raise InvalidInputError(f"{name}, line {line}: {len(cells)} values for {len(header)} columns; "
                                    "quote values that contain commas")
        yield line, {h: c.strip() if h == "path" else parse_scalar(c.strip())
                     for h, c in zip(header, cells) if c.strip()}


def _jsonl_rows(name: str, text: str) -> Iterator[Tuple[int, Dict[str, Any]]]:
    for line, raw in enumerate(text.split("\n"), 1):  # not splitlines(): JSON text may hold U+2028
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as e:
            raise InvalidInputError(f"{name}, line {line}: bad JSON ({e.msg} at column {e.colno}); "
                                    "each line must be one JSON object") from None
        if not isinstance(obj, dict):
            raise InvalidInputError(f"{name}, line {line}: expected a JSON object like "
                                    f'{{"path": "a.wav", "agent": "A12"}}, got {type(obj).__name__}')
        for field, value in obj.items():
            if isinstance(value, (dict, list)):
                raise InvalidInputError(f"{name}, line {line}: field {field!r} has a nested value; "
                                        "manifest values must be a string, number, true/false or null")
        yield line, {k: v for k, v in obj.items() if v is not None}


# ---------------------------------------------------------------------------------------------
# Filters

MAX_WHERE_DEPTH = 32  # $and / $or nested at most this deep
MAX_WHERE_VALUES = 1000  # values compared in one filter, all conditions and $in lists together


def build_where(where: Optional[Dict[str, Any]], types: Dict[str, str],
                extra: Optional[Dict[str, Any]] = None) -> Optional[Dict[str, Any]]:
    """Check a user filter against `types` (every filterable field and its type) and translate it
    to Chroma's where syntax; `extra` (same syntax) is ANDed in. None when nothing filters.
    A filter nested deeper than MAX_WHERE_DEPTH or comparing more than MAX_WHERE_VALUES values
    is refused."""
    if isinstance(extra, dict):  # a shortcut left unset (speaker=None) filters nothing
        extra = {k: v for k, v in extra.items() if v is not None}
    budget = [MAX_WHERE_VALUES]
    parts = [c for c in (_clause(where, types, 0, budget), _clause(extra, types, 0, budget)) if c is not None]
    return _join("$and", parts)


def _join(op: str, parts: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    # Chroma wants two or more items under $and / $or
    return None if not parts else parts[0] if len(parts) == 1 else {op: parts}


def _clause(where: Any, types: Dict[str, str], depth: int, budget: List[int]) -> Optional[Dict[str, Any]]:
    if where is None:
        return None
    if not isinstance(where, dict):
        raise InvalidInputError(f"a filter must be a dict like {{'agent': 'A12'}}, got {type(where).__name__}")
    if depth > MAX_WHERE_DEPTH:
        raise InvalidInputError(f"the filter nests $and / $or more than {MAX_WHERE_DEPTH} levels deep; "
                                "flatten it (one $and or $or can hold many conditions)")
    parts = []
    for key, value in where.items():
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise InvalidInputError(f"{key} needs a non-empty list of filters, got {_short(value)}")
            items = []
            for item in value:
                if not isinstance(item, dict) or not item:
                    raise InvalidInputError(f"each item of {key} must be a non-empty filter dict, got {_short(item)}")
                items.append(_clause(item, types, depth + 1, budget))
            parts.append(_join(key, items))
        elif isinstance(key, str) and key.startswith("$"):
            raise InvalidInputError(f"unknown operator {key!r} at the top of a filter; use a field name, "
                                    "or $and / $or with a list of filters")
        elif key not in types:
            raise InvalidInputError(f"unknown filter field {key!r}; known fields: {', '.join(sorted(types))}")
        else:
            budget[0] -= sum(len(v) if isinstance(v, (list, tuple, set, frozenset)) else 1
                             for v in (value.values() if isinstance(value, dict) else [value]))
            if budget[0] < 0:
                raise InvalidInputError(f"the filter compares more than {MAX_WHERE_VALUES} values; "
                                        "narrow it, or split the search")
            parts.extend(_field(key, types[key], value))
    return _join("$and", parts)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 80, 80


def _short(value: Any) -> str:
    """A value for an error message: repr, cut short (a filter may be large or deeply nested)."""
    return _REPR.repr(value)


def _field(field: str, kind: str, spec: Any) -> List[Dict[str, Any]]:
    if kind not in TYPES:
        raise InvalidInputError(f"field {field!r} has unknown type {kind!r}; types are {', '.join(TYPES)}")
    if not isinstance(spec, dict):
        return [_compare(field, kind, "$eq", spec)]
    if not spec:
        raise InvalidInputError(f"filter for {field!r} is an empty dict; give a value or an operator "
                                f"({', '.join(OPERATORS)})")
    return [_compare(field, kind, op, operand) for op, operand in spec.items()]


def _compare(field: str, kind: str, op: str, operand: Any) -> Dict[str, Any]:
    if op not in OPERATORS:
        raise InvalidInputError(f"unknown operator {op!r} for field {field!r}; "
                                f"valid operators: {', '.join(OPERATORS)}")
    if op in _RANGE and kind not in ("number", "datetime"):
        raise InvalidInputError(f"{op} needs a number or date field, but {field!r} is a {kind} field"
                                f"{' (text, or values of several types)' if kind == 'string' else ''}; "
                                "use $eq, $ne, $in or $nin")
    if op in _LIST:
        if not isinstance(operand, (list, tuple, set, frozenset)) or not operand:
            raise InvalidInputError(f"{op} for {field!r} needs a non-empty list of values, got {_short(operand)}")
        values = [_value(field, kind, v) for v in operand]
    elif isinstance(operand, (list, tuple, set, frozenset, dict)):
        hint = " (use $in for a list)" if op == "$eq" else ""
        raise InvalidInputError(f"filter value for {field!r} must be {_EXPECTED[kind]}, got {_short(operand)}{hint}")
    else:
        values = [_value(field, kind, operand)]
    if kind == "string":  # one value may be stored as text, number, bool or epoch seconds
        values = [form for v in values for form in _forms(v)]
    if op in _RANGE:
        return {field: {op: values[0]}}
    positive = op in ("$eq", "$in")
    groups = _by_type(values)
    parts = [{field: ({"$eq" if positive else "$ne": vs[0]} if len(vs) == 1 else
                      {"$in" if positive else "$nin": vs})} for vs in groups]
    return _join("$or" if positive else "$and", parts)


def _value(field: str, kind: str, value: Any) -> Any:
    if isinstance(value, str) and not _is_text(value):
        raise InvalidInputError(f"filter value for {field!r} is not valid Unicode text (it holds a lone "
                                "surrogate such as \\ud800); send UTF-8 text")
    ok: Any = None
    if kind == "datetime" and not isinstance(value, bool):
        ok = _epoch(value)
    elif kind == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
        ok = value if math.isfinite(value) else None
    elif kind == "bool" and isinstance(value, bool):
        ok = value
    elif kind == "string" and isinstance(value, (str, int, float, bool)):
        ok = value
    if ok is None:
        raise InvalidInputError(f"filter value for {field!r} must be {_EXPECTED[kind]}, got {_short(value)}")
    return ok


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _forms(value: Any) -> List[Any]:
    """Every way `value` may sit in a field of mixed type: as given, as the number or bool its
    text reads as, as epoch seconds when it is a date, and numbers and bools as text."""
    forms = [value]
    if isinstance(value, str):
        forms.append(parse_scalar(value.strip()))
        forms.append(_epoch(value))
    elif isinstance(value, bool):
        forms.append("true" if value else "false")
    else:
        forms.append(str(value))
    out: List[Any] = []
    for f in forms:
        if f is not None and not any(type(f) is type(o) and f == o for o in out):
            out.append(f)
    return out


def _by_type(values: List[Any]) -> List[List[Any]]:
    """Chroma's $in wants one type per list: split into text, bools and numbers (ints stay ints
    unless floats are among them)."""
    strs = [v for v in values if isinstance(v, str)]
    bools = [v for v in values if isinstance(v, bool)]
    nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if any(isinstance(v, float) for v in nums):
        nums = [float(v) for v in nums]
    return [_unique(g) for g in (strs, bools, nums) if g]


def _unique(values: List[Any]) -> List[Any]:
    return list(dict.fromkeys(values))


def json_object(text: Optional[str], what: str, example: str = '{"agent": "A12"}') -> Optional[Dict[str, Any]]:
    """Parse a JSON object given as text (a filter, metadata); `what` names it in errors."""
    if text is None or not text.strip():
        return None
    try:
        value = json.loads(text)
    except ValueError as e:
        raise InvalidInputError(f"{what} must be a JSON object like {example} ({e})") from None
    except RecursionError:  # thousands of nested [ or {
        raise InvalidInputError(f"{what} must be a JSON object like {example}, not nested thousands of "
                                "levels deep") from None
    if not isinstance(value, dict):
        raise InvalidInputError(f"{what} must be a JSON object like {example}")
    return value
