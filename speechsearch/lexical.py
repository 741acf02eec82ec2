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
from typing import List, Tuple

__all__ = ["ensure_schema", "terms", "discriminative_terms", "bm25_search", "STOPWORDS"]

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
