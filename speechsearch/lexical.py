"""Lexical search: BM25 over the stored transcript windows (SQLite FTS5).

Dense sentence embeddings blur the words that matter most in a call centre: order numbers,
names, product codes. An FTS5 index over the catalogue's ``windows`` table, kept in step by
triggers (so every add, re-index and remove updates it in the same transaction), ranks windows
by BM25. Porter stemming folds "refunds"/"refunded" onto "refund".
"""

from __future__ import annotations

import math
import re
import sqlite3
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = ["ensure_schema", "terms", "discriminative_terms", "bm25_search", "STOPWORDS", "spoken_numbers",
           "code_runs", "query_codes", "ensure_codes", "store_codes", "code_search"]

_SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS windows_fts USING fts5(
    text, content='windows', content_rowid='rowid', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS windows_fts_insert AFTER INSERT ON windows BEGIN
    INSERT INTO windows_fts(rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER IF NOT EXISTS windows_fts_delete AFTER DELETE ON windows BEGIN
    INSERT INTO windows_fts(windows_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;
CREATE TRIGGER IF NOT EXISTS windows_fts_update AFTER UPDATE OF text ON windows BEGIN
    INSERT INTO windows_fts(windows_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    INSERT INTO windows_fts(rowid, text) VALUES (new.rowid, new.text);
END;
"""

# Words so common in calls that matching them says nothing.
STOPWORDS = frozenset(
    """a an and are as at be but by can could did do does for from had has have he her hi hello
    him his how i i'd i'm i've if in into is it it's its just me my no not of on or our please
    she so than thanks thank that the their them then there these they this to too us was we
    were what when where which who why will with would yes you your yeah okay ok um uh oh""".split()
)
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def ensure_schema(db: sqlite3.Connection) -> bool:
    """Create the FTS index and its triggers if missing; returns True when it was just created
    (the caller then fills it from existing windows with :func:`rebuild`)."""
    existed = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='windows_fts'").fetchone() is not None
    db.executescript(_SCHEMA)
    if not existed:
        db.execute("INSERT INTO windows_fts(windows_fts) VALUES ('rebuild')")
    return not existed


def terms(query: str) -> List[str]:
    """The query's searchable words: lower-cased, stopwords dropped, order kept, no repeats."""
    seen: List[str] = []
    for t in _TOKEN.findall(query.lower()):
        if t not in STOPWORDS and t not in seen:
            seen.append(t)
    return seen


# A word in more than this share of all windows (and in more than MIN_COMMON of them) is left
# out of the query: its IDF is near zero, so it barely moves BM25, yet scoring every window it
# appears in is what makes a lexical query slow on a large index.
COMMON_SHARE = 0.02
MIN_COMMON = 50


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def discriminative_terms(db: sqlite3.Connection, query: str) -> Tuple[List[str], float]:
    """The query's words minus those too common in the index to help (see COMMON_SHARE), and
    the BM25 of a window that says each of them once (used to scale scores to [0, 1])."""
    words = terms(query)
    words += [t for t in terms(spoken_numbers(query)) if t not in words]  # "eighty seven" -> 87
    if not words:
        return [], 0.0
    total = db.execute("SELECT count(*) FROM windows").fetchone()[0]
    cap = max(MIN_COMMON, COMMON_SHARE * total)
    kept, ceiling = [], 0.0
    for t in words:
        df = db.execute("SELECT count(*) FROM windows_fts WHERE windows_fts MATCH ?", (_quote(t),)).fetchone()[0]
        if 0 < df <= cap:
            kept.append(t)
            # FTS5's BM25 gives a word said once in a window of average length its idf
            ceiling += max(1e-6, math.log((total - df + 0.5) / (df + 0.5)))
    return kept, ceiling


def bm25_search(db: sqlite3.Connection, query: str, n: int) -> List[Tuple[str, float]]:
    """Up to `n` (window id, score) pairs, best first. The score is BM25 divided by what a window
    saying every query word once would get, capped at 1, so it lies in [0, 1] whatever the index
    size. Words too common to discriminate are left out (`discriminative_terms`)."""
    kept, ceiling = discriminative_terms(db, query)
    if not kept:
        return []
    rows = db.execute(
        "SELECT w.id, -bm25(windows_fts) AS score FROM windows_fts JOIN windows w "
        "ON w.rowid = windows_fts.rowid WHERE windows_fts MATCH ? ORDER BY score DESC LIMIT ?",
        (" OR ".join(_quote(t) for t in kept), n)).fetchall()
    return [(r[0], min(1.0, float(r[1]) / ceiling)) for r in rows]


# -- numbers and codes --------------------------------------------------------------------------
# Whisper writes a number read out in groups as "770-0941-358", "4, 829" or "3-8-9-1-5", and a
# caller types "941358" or "order 4829"; BM25 sees different tokens. Both sides are reduced to
# codes: runs of tokens that contain a digit, joined across the separators a reading leaves
# (spaces, hyphens, commas, dots, slashes). Number words are read as digits first, so "thirty six
# fifty" meets "36.50". A window's every code suffix is stored (``window_codes``), so a query code
# is found as any part of a window code ("ending 941358") with one indexed range lookup.

_CODES_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS window_codes (code TEXT NOT NULL, wid TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS window_codes_code ON window_codes(code)",
    "CREATE INDEX IF NOT EXISTS window_codes_wid ON window_codes(wid)",
    "CREATE TRIGGER IF NOT EXISTS window_codes_delete AFTER DELETE ON windows BEGIN "
    "DELETE FROM window_codes WHERE wid = old.id; END",
)
MIN_CODE = 4  # a query code shorter than this ("12", "May 5") is not a lookup
DIGITS_ONLY = 0.8  # credit for a code whose digits, not its letters, are found
_PIECE = r"[a-z]*\d[a-z0-9]*"
_RUN = re.compile(rf"(?<![a-z0-9]){_PIECE}(?:(?:\s*[-–.,/]\s*|\s+){_PIECE})*(?![a-z0-9])")
_SPLIT = re.compile(r"[^a-z0-9]+")
_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
_ORDINALS = {w: i + 1 for i, w in enumerate(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth "
    "fifteenth sixteenth seventeenth eighteenth nineteenth".split())}
_ORDINALS.update({w: 10 * (i + 2) for i, w in enumerate(
    "twentieth thirtieth fortieth fiftieth sixtieth seventieth eightieth ninetieth".split())})
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_WORD = re.compile(r"[a-z]+|[^a-z]+")


def spoken_numbers(text: str) -> str:
    """`text` lower-cased with number words as digits: "four thousand" -> "4000", "eighty seven"
    -> "87", "thirty six fifty" -> "36 50", "three eight nine" -> "3 8 9". Other words are kept."""
    out: List[str] = []
    value: Optional[int] = None  # the number being read
    part = 0  # the part of it below the current scale
    last = ""  # kind of the last number word: "unit", "teen", "tens", "scale"
    gap = ""  # what followed the number so far, kept in case it ends there

    def close() -> None:
        nonlocal value, part, last, gap
        if value is not None:
            out.append(str(value + part))
        out.append(gap)
        value, part, last, gap = None, 0, "", ""

    for tok in _WORD.findall(text.lower()):
        if tok in _UNITS or tok in _TENS:
            n = _UNITS.get(tok, _TENS.get(tok))
            unit = tok in _UNITS and n < 10
            # a unit after a tens word adds to it ("thirty six"); anything else after a complete
            # number starts a new one ("three eight", "thirty six fifty")
            if value is not None and not (last == "tens" and unit) and last != "scale":
                gap = " "
                close()
            gap = ""
            if value is None:
                value = 0
            part += n
            last = "tens" if tok in _TENS else ("unit" if unit else "teen")
        elif tok in _ORDINALS:  # "twelfth" -> "12th", "twenty first" -> "21st"
            n = _ORDINALS[tok]
            if value is not None and not (last == "tens" and n < 10):
                gap = " "
                close()
            n += (value or 0) + part
            end = {1: "st", 2: "nd", 3: "rd"}.get(n % 10 if n % 100 not in (11, 12, 13) else 0, "th")
            out.extend((gap if value is None else "", f"{n}{end}"))
            value, part, last, gap = None, 0, "", ""
        elif tok in _SCALES and value is not None:
            scale = _SCALES[tok]
            if scale == 100:
                part = (part or 1) * 100
            else:
                value += (part or 1) * scale
                part = 0
            last, gap = "scale", ""
        elif tok == "and" and last == "scale":
            gap += tok  # "three hundred and twenty"
        elif value is not None and (tok.isspace() or tok == "-"):
            gap += tok
        else:
            close()
            out.append(tok)
    close()
    return "".join(out)


def code_runs(text: str) -> List[str]:
    """The codes a text says, each a run of digit-bearing tokens joined ("4, 829" -> "4829"),
    plus each token of a run alone; number words count as digits."""
    found: List[str] = []
    for m in _RUN.finditer(spoken_numbers(text)):
        pieces = [p for p in _SPLIT.split(m.group(0)) if p]
        for code in ["".join(pieces)] + (pieces if len(pieces) > 1 else []):
            if code not in found:
                found.append(code)
    return found


def query_codes(query: str) -> List[str]:
    """The codes of a query worth looking up: at least MIN_CODE characters, three of them digits."""
    return [c for c in code_runs(query)[:1] + code_runs(query)[1:]
            if len(c) >= MIN_CODE and sum(ch.isdigit() for ch in c) >= 3][:8]


def _suffixes(codes: Sequence[str]) -> List[str]:
    out = set()
    for c in codes:
        for i in range(0, len(c) - MIN_CODE + 1):
            out.add(c[i:])
    return sorted(out)


def ensure_codes(db: sqlite3.Connection) -> bool:
    """Create the code table if missing, filled from every window already stored (indexes made
    before it existed), in one transaction; returns True when it was just created."""
    db.execute("BEGIN IMMEDIATE")
    try:
        existed = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='window_codes'").fetchone() is not None
        for statement in _CODES_SCHEMA:
            db.execute(statement)
        if not existed:
            store_codes(db, db.execute("SELECT id, text FROM windows").fetchall())
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return not existed


def store_codes(db: sqlite3.Connection, rows: Sequence[Tuple[str, str]]) -> None:
    """Record the codes of windows given as (id, text); the caller holds the transaction."""
    db.executemany("INSERT INTO window_codes(code, wid) VALUES (?, ?)",
                   [(s, wid) for wid, text in rows for s in _suffixes(code_runs(text))])


def code_search(db: sqlite3.Connection, query: str, n: int) -> Dict[str, float]:
    """Windows that say a code of the query, anywhere inside one of theirs: window id -> share of
    the query's codes found (1.0: all). A code with letters whose digits alone are found counts
    DIGITS_ONLY ("CV82773" heard as "CB82773"). Empty when the query names no code. A code found
    in more than `n` windows (a year, say) is not a lookup and is dropped."""
    codes = query_codes(query)
    found: Dict[str, float] = {}
    for c in codes:
        credit: Dict[str, float] = {}
        digits = max(re.findall(r"\d+", c), key=len)
        for form, value in ((digits, DIGITS_ONLY), (c, 1.0)) if digits != c and len(digits) >= MIN_CODE \
                else ((c, 1.0),):
            rows = db.execute("SELECT DISTINCT wid FROM window_codes WHERE code >= ? AND code < ? LIMIT ?",
                              (form, form + "\uffff", n + 1)).fetchall()
            if len(rows) <= n:
                credit.update((wid, value) for (wid,) in rows)
        for wid, value in credit.items():
            found[wid] = found.get(wid, 0.0) + value / len(codes)
    return found
