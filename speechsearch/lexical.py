"""Lexical search: BM25 over the stored transcript windows (SQLite FTS5).

Dense sentence embeddings blur the words that matter most in a call centre: order numbers,
names, product codes. An FTS5 index over the catalogue's ``windows`` table, kept in step by
triggers (so every add, re-index and remove updates it in the same transaction), ranks windows
by BM25. Porter stemming folds "refunds"/"refunded" onto "refund".
"""

from __future__ import annotations

import re
import sqlite3
from typing import List, Tuple

__all__ = ["ensure_schema", "match_expression", "bm25_search", "STOPWORDS"]

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


def match_expression(query: str) -> str:
    """An FTS5 MATCH expression: any of the query's words, each quoted (no FTS syntax leaks)."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms(query))


def bm25_search(db: sqlite3.Connection, query: str, n: int) -> List[Tuple[str, float]]:
    """Up to `n` (window id, score) pairs, best first; score = -bm25, so higher is better."""
    expr = match_expression(query)
    if not expr:
        return []
    rows = db.execute(
        "SELECT w.id, -bm25(windows_fts) AS score FROM windows_fts JOIN windows w "
        "ON w.rowid = windows_fts.rowid WHERE windows_fts MATCH ? ORDER BY score DESC LIMIT ?",
        (expr, n)).fetchall()
    return [(r[0], float(r[1])) for r in rows]
