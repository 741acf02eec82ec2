"""Metadata filters and manifests: every filter is translated by build_where and run against a
real embedded Chroma collection holding encode_metadata's rows, so the rows that come back are
Chroma's answer, not ours. Bad filters and bad manifests give errors that say what to fix."""

from __future__ import annotations

from datetime import date, datetime, timezone

import numpy as np
import pytest

from speechsearch.errors import InvalidInputError
from speechsearch.filters import (build_where, decode_metadata, encode_metadata, field_types_of,
                                  merge_field_types, read_manifest)

# Five calls, added in this order; the types are merged as each arrives (as ingest does), so
# call_id ("007", then 123) and callback (a date, then "never") end up as mixed "string" fields
# whose first rows were stored under the narrower type.
CALLS = {
    "c1": {"agent": "A12", "queue": "billing", "direction": "inbound", "started_at": "2026-01-05T14:03:00Z",
           "duration": 125, "score": 4.5, "vip": True, "call_id": "007", "callback": "2026-02-01"},
    "c2": {"agent": "A12", "queue": "sales", "direction": "outbound", "started_at": "2026-01-04T23:30:00-02:00",
           "duration": 30, "score": 2.0, "vip": False, "call_id": 123, "callback": "never"},
    "c3": {"agent": "B07", "queue": "billing", "direction": "inbound", "started_at": "2025-12-31",
           "duration": 600, "score": 3, "call_id": 124},
    "c4": {"agent": "C3", "queue": "support", "started_at": "2026-01-05T00:00:00.250+01:00",
           "duration": 59.5, "vip": True},
    "c5": {"agent": "A12"},
}
BUILTIN = {"path": "string", "start": "number", "end": "number", "channel": "number",
           "speaker": "string", "language": "string"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(path=str(tmp_path_factory.mktemp("chroma")),
                                       settings=Settings(anonymized_telemetry=False))
    col = client.create_collection("filters", embedding_function=None, configuration={"hnsw": {"space": "cosine"}})
    types: dict = {}
    rng = np.random.default_rng(0)
    for n, (cid, meta) in enumerate(CALLS.items()):
        types = merge_field_types(types, field_types_of(meta))
        row = {"path": f"/calls/{cid}.wav", "start": 10.0 * n, "end": 10.0 * n + 5, "channel": n % 2,
               "speaker": "S1" if n % 2 else "S2", **encode_metadata(meta, types)}
        col.add(ids=[cid], embeddings=rng.random((1, 8)).tolist(), metadatas=[row])
    return col, {**types, **BUILTIN}


def _ids(store, where, extra=None):
    col, types = store
    res = col.query(query_embeddings=[[0.5] * 8], n_results=len(CALLS),
                    where=build_where(where, types, extra=extra), include=["metadatas"])
    return sorted(res["ids"][0])


def test_types_merge_as_rows_arrive(store):
    _, types = store
    assert {k: types[k] for k in CALLS["c1"]} == {
        "agent": "string", "queue": "string", "direction": "string", "started_at": "datetime",
        "duration": "number", "score": "number", "vip": "bool", "call_id": "string", "callback": "string"}


@pytest.mark.parametrize("where, expected", [
    # equality, $ne, $in, $nin on text (a row without the field counts as "not equal")
    ({"agent": "A12"}, "c1 c2 c5"),
    ({"agent": {"$eq": "A12"}}, "c1 c2 c5"),
    ({"agent": {"$ne": "A12"}}, "c3 c4"),
    ({"queue": {"$in": ["billing", "support"]}}, "c1 c3 c4"),
    ({"queue": {"$nin": ["billing"]}}, "c2 c4 c5"),
    # dates: offsets honoured, a date-only bound is midnight UTC, fractions of a second kept
    ({"started_at": {"$gte": "2026-01-01"}}, "c1 c2 c4"),
    ({"started_at": {"$gte": "2026-01-05"}}, "c1 c2"),
    ({"started_at": {"$gte": "2026-01-05", "$lt": "2026-01-06"}}, "c1 c2"),
    ({"started_at": {"$lt": "2026-01-01T00:00:00Z"}}, "c3"),
    ({"started_at": {"$lte": "2025-12-31"}}, "c3"),
    ({"started_at": {"$gt": "2026-01-05T01:30:00+00:00"}}, "c1"),
    ({"started_at": "2026-01-05T15:03:00+01:00"}, "c1"),
    ({"started_at": "2026-01-04T23:00:00.25Z"}, "c4"),
    ({"started_at": datetime(2026, 1, 5, 14, 3, tzinfo=timezone.utc)}, "c1"),
    ({"started_at": {"$lt": date(2026, 1, 1)}}, "c3"),
    ({"started_at": {"$in": ["2025-12-31", "2026-01-05T14:03:00"]}}, "c1 c3"),
    ({"started_at": {"$nin": ["2025-12-31"]}}, "c1 c2 c4 c5"),
    # numbers: ints and floats compare with each other
    ({"duration": {"$gt": 59.5}}, "c1 c3"),
    ({"duration": {"$gte": 59.5, "$lte": 125}}, "c1 c4"),
    ({"duration": {"$in": [30, 59.5]}}, "c2 c4"),
    ({"duration": 30.0}, "c2"),
    ({"score": {"$lt": 3}}, "c2"),
    ({"vip": True}, "c1 c4"),
    ({"vip": {"$ne": True}}, "c2 c3 c5"),
    # mixed fields match every stored form: 123 was stored as a number, 2026-02-01 as epoch seconds
    ({"call_id": "123"}, "c2"),
    ({"call_id": 123}, "c2"),
    ({"call_id": "007"}, "c1"),
    ({"call_id": {"$in": ["007", "124"]}}, "c1 c3"),
    ({"call_id": {"$nin": ["007", 123]}}, "c3 c4 c5"),
    ({"callback": "2026-02-01"}, "c1"),
    ({"callback": "never"}, "c2"),
    # combinations
    ({"agent": "A12", "direction": "inbound"}, "c1"),
    ({"$or": [{"agent": "B07"}, {"duration": {"$lt": 60}}]}, "c2 c3 c4"),
    ({"$or": [{"agent": "C3"}]}, "c4"),
    ({"$and": [{"agent": "A12"}, {"started_at": {"$gte": "2026-01-05"}}], "queue": "sales"}, "c2"),
    ({"$or": [{"$and": [{"agent": "A12"}, {"vip": True}]}, {"queue": "support"}]}, "c1 c4"),
    # built-in fields
    ({"path": "/calls/c3.wav"}, "c3"),
    ({"start": {"$gte": 20}, "channel": 0}, "c3 c5"),
    (None, "c1 c2 c3 c4 c5"),
    ({}, "c1 c2 c3 c4 c5"),
])
def test_filter_returns_exactly_the_right_rows(store, where, expected):
    assert _ids(store, where) == expected.split()


def test_extra_is_anded_in(store):
    assert _ids(store, {"agent": "A12"}, extra={"speaker": "S1"}) == ["c2"]
    assert _ids(store, None, extra={"speaker": "S2", "language": None}) == ["c1", "c3", "c5"]
    assert build_where(None, BUILTIN, extra={"speaker": None}) is None


def test_translation_shape():
    types = {"duration": "number", "agent": "string", "day": "datetime"}
    assert build_where({"duration": {"$gte": 1, "$lt": 5}}, types) == {
        "$and": [{"duration": {"$gte": 1}}, {"duration": {"$lt": 5}}]}
    assert build_where({"day": {"$gte": "1970-01-02"}}, types) == {"day": {"$gte": 86400.0}}
    assert build_where({"duration": {"$in": [1, 2]}}, types) == {"duration": {"$in": [1, 2]}}
    assert build_where({"agent": {"$in": ["A1"]}}, types) == {"agent": {"$eq": "A1"}}


def test_stored_metadata_round_trips(store):
    col, types = store
    got = col.get(ids=["c1", "c2", "c4"], include=["metadatas"])
    for cid, meta in zip(got["ids"], got["metadatas"]):
        decoded = decode_metadata(meta, types)
        assert {k: decoded[k] for k in CALLS[cid]} == CALLS[cid]
        assert not any(k.endswith("__iso") for k in decoded)


def _error(where, types):
    with pytest.raises(InvalidInputError) as e:
        build_where(where, types)
    assert isinstance(e.value, ValueError)
    return str(e.value)


@pytest.mark.parametrize("where, message", [
    ({"agnt": "A12"}, "unknown filter field 'agnt'; known fields: agent, call_id, callback, channel, direction, "
                      "duration, end, language, path, queue, score, speaker, start, started_at, vip"),
    ({"agent": {"$like": "A"}}, "unknown operator '$like' for field 'agent'; "
                                "valid operators: $eq, $ne, $gt, $gte, $lt, $lte, $in, $nin"),
    ({"$not": {"agent": "A12"}}, "unknown operator '$not' at the top of a filter; use a field name, or $and / $or"),
    ({"agent": {"$gt": "A"}}, "$gt needs a number or date field, but 'agent' is a string field "
                              "(text, or values of several types); use $eq, $ne, $in or $nin"),
    ({"vip": {"$lt": True}}, "$lt needs a number or date field, but 'vip' is a bool field"),
    ({"callback": {"$gte": "2026-01-01"}}, "'callback' is a string field (text, or values of several types)"),
    ({"started_at": {"$gte": "yesterday"}}, "filter value for 'started_at' must be an ISO-8601 date or datetime "
                                            "such as '2026-01-05' or '2026-01-05T14:03:00Z', got 'yesterday'"),
    ({"started_at": "2026-02-30"}, "filter value for 'started_at' must be an ISO-8601 date"),
    ({"started_at": 1767621780}, "filter value for 'started_at' must be an ISO-8601 date"),
    ({"duration": "10"}, "filter value for 'duration' must be a number, got '10'"),
    ({"duration": {"$gt": True}}, "filter value for 'duration' must be a number, got True"),
    ({"duration": {"$lt": float("nan")}}, "filter value for 'duration' must be a number"),
    ({"vip": "yes"}, "filter value for 'vip' must be true or false, got 'yes'"),
    ({"agent": None}, "filter value for 'agent' must be a string, got None"),
    ({"queue": {"$in": []}}, "$in for 'queue' needs a non-empty list of values, got []"),
    ({"queue": {"$nin": "billing"}}, "$nin for 'queue' needs a non-empty list of values, got 'billing'"),
    ({"queue": {"$in": ["billing", ["sales"]]}}, "filter value for 'queue' must be a string, got ['sales']"),
    ({"queue": ["billing", "sales"]}, "must be a string, got ['billing', 'sales'] (use $in for a list)"),
    ({"queue": {}}, "filter for 'queue' is an empty dict"),
    ({"$or": []}, "$or needs a non-empty list of filters, got []"),
    ({"$and": {"agent": "A12"}}, "$and needs a non-empty list of filters"),
    ({"$and": [{"agent": "A12"}, {}]}, "each item of $and must be a non-empty filter dict, got {}"),
    ({"$or": [{"agent": "A12"}, {"agnt": "B"}]}, "unknown filter field 'agnt'"),
    ("agent=A12", "a filter must be a dict like {'agent': 'A12'}, got str"),
])
def test_bad_filter_is_a_clear_error(store, where, message):
    assert message in _error(where, store[1])


def test_field_types():
    assert field_types_of({
        "a": "2026-01-05", "b": "2026-01-05T14:03:00", "c": "2026-01-05T14:03:00Z", "d": "2026-01-05T14:03:00+01:00",
        "e": "2026-01-05 14:03", "f": "2026-01-05T14:03:00.123456-0530", "g": datetime(2026, 1, 5),
        "h": date(2026, 1, 5),
        "i": "2026-13-01", "j": "20260105", "k": "2026-01-05T25:00", "l": "A12", "m": 3, "n": 2.5, "o": True,
        "p": None}) == {
        **dict.fromkeys("abcdefgh", "datetime"), **dict.fromkeys("ijkl", "string"), "m": "number", "n": "number",
        "o": "bool"}
    with pytest.raises(InvalidInputError, match="must be a string, number or bool, got list"):
        field_types_of({"tags": ["a"]})


def test_merge_field_types():
    assert merge_field_types({"a": "number", "b": "datetime", "c": "bool", "d": "string"},
                             {"a": "string", "b": "string", "c": "bool", "e": "datetime"}) == {
        "a": "string", "b": "string", "c": "bool", "d": "string", "e": "datetime"}
    assert merge_field_types({"a": "number"}, {"a": "datetime"}) == {"a": "string"}
    assert merge_field_types({}, {}) == {}


def test_encode_and_decode():
    types = {"at": "datetime", "day": "datetime", "n": "number"}
    meta = {"at": "2026-01-05T14:03:00+01:00", "day": "1970-01-02", "n": 3, "agent": "A12"}
    stored = encode_metadata(meta, types)
    assert stored == {"at": datetime(2026, 1, 5, 13, 3, tzinfo=timezone.utc).timestamp(),
                      "at__iso": "2026-01-05T14:03:00+01:00", "day": 86400.0, "day__iso": "1970-01-02",
                      "n": 3, "agent": "A12"}
    assert decode_metadata(stored, types) == meta
    assert encode_metadata({"at": datetime(1970, 1, 1, 0, 1)}, types) == {"at": 60.0, "at__iso": "1970-01-01T00:01:00"}
    with pytest.raises(InvalidInputError, match="'at' must be an ISO-8601 date"):
        encode_metadata({"at": "soon"}, types)
    with pytest.raises(InvalidInputError, match="suffix '__iso' is reserved"):
        encode_metadata({"x__iso": "a"}, types)


# ---------------------------------------------------------------------------------------------
# Manifests

def _write(path, text, encoding="utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def test_csv_manifest(tmp_path):
    elsewhere = tmp_path / "elsewhere" / "z.wav"
    m = _write(tmp_path / "meta" / "calls.csv", "\ufeffpath,call_id,agent,note,duration,score,vip,phone,started_at\r\n"
               "../rec/a.wav,007,A12,\"Smith, \"\"Jo\"\"\",125,4.5,true,+441234,2026-01-05T14:03:00Z\r\n"
               "\r\n"
               f"{elsewhere},123,B07,,0,-0.5,FALSE,,2025-12-31\r\n"
               "sub/b c.wav,1e3,,\"two\nlines\"\r\n")
    assert read_manifest(m) == {
        str(tmp_path / "rec" / "a.wav"): {"call_id": "007", "agent": "A12", "note": 'Smith, "Jo"', "duration": 125,
                                          "score": 4.5, "vip": True, "phone": "+441234",
                                          "started_at": "2026-01-05T14:03:00Z"},
        str(elsewhere): {"call_id": 123, "agent": "B07", "duration": 0, "score": -0.5, "vip": False,
                         "started_at": "2025-12-31"},
        str(tmp_path / "meta" / "sub" / "b c.wav"): {"call_id": "1e3", "note": "two\nlines"},
    }


def test_jsonl_manifest(tmp_path):
    b = tmp_path / "x" / ".." / "b.wav"
    m = _write(tmp_path / "calls.jsonl",  # CRLF, a blank line, U+2028 inside a JSON string, null
               '{"path": "a.wav", "agent": "A12", "call_id": "007", "n": 3, "vip": true, "x": null, '
               '"note": "a\u2028b"}\r\n\n{"path": "%s", "started_at": "2026-01-05"}\n' % b)
    assert read_manifest(str(m)) == {
        str(tmp_path / "a.wav"): {"agent": "A12", "call_id": "007", "n": 3, "vip": True, "note": "a\u2028b"},
        str(tmp_path / "b.wav"): {"started_at": "2026-01-05"},
    }


def test_manifest_format_sniffed_without_known_extension(tmp_path):
    a = str(tmp_path / "a.wav")
    assert read_manifest(_write(tmp_path / "j.txt", '{"path": "a.wav", "q": 1}\n')) == {a: {"q": 1}}
    assert read_manifest(_write(tmp_path / "c.txt", "path,q\na.wav,1\n")) == {a: {"q": 1}}
    assert read_manifest(_write(tmp_path / "n.ndjson", '{"path": "a.wav"}')) == {a: {}}


@pytest.mark.parametrize("name, text, message", [
    ("m.csv", "file,agent\na.wav,A1\n", "m.csv, line 1: no 'path' column (columns: file, agent); "
                                        "the first row must be a header naming a 'path' column"),
    ("m.csv", "path,agent\na.wav,A1\nb.wav,A2\n./a.wav,A3\n", "m.csv, line 4: {tmp}/a.wav is listed twice "
                                                             "(first on line 2); keep one row per file"),
    ("m.csv", "path,agent\n\"a\nb.wav\",A1\nc.wav,A2,extra\n", "m.csv, line 4: 3 values for 2 columns; "
                                                              "quote values that contain commas"),
    ("m.csv", "path,start\na.wav,3\n", "m.csv, line 2: field 'start' is reserved; rename it"),
    ("m.csv", "path,agent,agent\na.wav,1,2\n", "m.csv, line 1: every column needs a distinct name (duplicated: agent)"),
    ("m.csv", "\npath,,x\na.wav,1,2\n", "m.csv, line 2: every column needs a distinct name (one is empty)"),
    ("m.csv", "path,agent\n,A1\n", "m.csv, line 2: no 'path'; give each row the audio file's path"),
    ("m.csv", "path,$x\na.wav,1\n", "m.csv, line 2: metadata field '$x' must be a non-empty string"),
    ("m.csv", "  \n", "m.csv: the manifest is empty"),
    ("m.jsonl", '{"path": "a.wav"}\n\n{"path": "b.wav", "agent": "A1",}\n',
     "m.jsonl, line 3: bad JSON ("),
    ("m.jsonl", '{"path": "a.wav", "tags": ["x"]}\n', "m.jsonl, line 1: field 'tags' has a nested value; "
                                                       "manifest values must be a string, number, true/false or null"),
    ("m.jsonl", '["a.wav"]\n', "m.jsonl, line 1: expected a JSON object like"),
    ("m.jsonl", '{"path": 3}\n', "m.jsonl, line 1: no 'path'"),
    ("m.jsonl", '{"path": "a.wav", "x__iso": 1}\n', "m.jsonl, line 1: metadata field 'x__iso': the suffix"),
])
def test_bad_manifest_is_a_clear_error(tmp_path, name, text, message):
    m = _write(tmp_path / name, text)
    with pytest.raises(InvalidInputError) as e:
        read_manifest(m)
    assert str(e.value).startswith(str(m))
    assert message.replace("{tmp}", str(tmp_path)).split(", ", 1)[-1] in str(e.value)


def test_manifest_unreadable(tmp_path):
    with pytest.raises(InvalidInputError, match="manifest not found; check the path"):
        read_manifest(tmp_path / "nope.csv")
    with pytest.raises(InvalidInputError, match="is a folder"):
        read_manifest(tmp_path)
    with pytest.raises(InvalidInputError, match="not UTF-8 text .* save the manifest as UTF-8"):
        read_manifest(_write(tmp_path / "latin.csv", "path,agent\nà.wav,A1\n", encoding="latin-1"))
