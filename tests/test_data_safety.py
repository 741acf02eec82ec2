"""No batch lost, no file lost: a re-add never costs the good copy, unexpected errors are
reported per file or as one SpeechSearchError, and removal (right to erasure) leaves no trace
that search can find."""

from __future__ import annotations

import json
import shutil

import pytest

from speechsearch import Library
from speechsearch.errors import IndexingError, InvalidInputError, NotIndexedError, SpeechSearchError
from speechsearch.windows import sentences

from _text import says
from conftest import CALL_FILES, LIBRIVOX, ffmpeg


def test_an_unexpected_batch_error_is_a_speechsearch_error(lib, tmp_path):
    f = shutil.copy(LIBRIVOX, tmp_path / "book.flac")

    def broken(files, pipeline, progress):  # a processor (e.g. a cluster) that dies mid-batch
        raise RuntimeError("the cluster went away")
        yield  # pragma: no cover

    with pytest.raises(IndexingError, match="unexpected RuntimeError: the cluster went away") as err:
        lib.add(f, processor=broken)
    assert isinstance(err.value, SpeechSearchError) and isinstance(err.value.__cause__, RuntimeError)
    assert lib.add(f).ok and len(lib) > 0  # the index is still usable


def _still_the_refund_call(lib, f, n):
    assert lib.file(f).status == "ready" and lib.file(f).metadata == {"agent": "A12"}
    hit = lib.search("charged twice for the same order", k=1, where={"agent": "A12"})[0]
    assert hit.path == str(f) and says(hit.text, "charged")
    assert len(lib) == n == lib._store.count()  # no half-written rows served or counted
    assert lib.transcript(f)[0].text


def test_a_re_add_with_rejected_metadata_keeps_the_good_copy(lib, tmp_path):
    f = tmp_path / "call.mp3"
    shutil.copy(CALL_FILES["refund"], f)
    assert lib.add(f, metadata={"agent": "A12"}).ok
    n = len(lib)
    shutil.copy(CALL_FILES["cancel_subscription"], f)  # changed content...
    try:  # ...with metadata the store cannot take: a clear error, before anything is touched
        report = lib.add(f, metadata={"agent": "A12", "called__iso": "2026-01-05"})
        (failure,) = report.failed
        message = failure.error
    except InvalidInputError as e:
        message = str(e)
    assert "called__iso" in message and "rename" in message
    _still_the_refund_call(lib, f, n)


def test_a_commit_that_fails_part_way_keeps_the_good_copy(lib, tmp_path):
    from dataclasses import replace

    from speechsearch.ingest import commit_file, process_file

    f = shutil.copy(CALL_FILES["refund"], tmp_path / "call.mp3")
    assert lib.add(f, metadata={"agent": "A12"}).ok
    n = len(lib)
    new = process_file(str(LIBRIVOX), lib._pipeline)  # the file's next content, transcribed

    def commit(processed, metadata):
        commit_file(lib._catalog, lib._text_store(), str(f), "f" * 32, processed, metadata,
                    lib._pipeline.models, lib._acoustic_store, lib._voice_store, lib._contexts())

    with pytest.raises(InvalidInputError, match="__iso"):  # metadata checked before any write
        commit(new, {"agent": "A12", "x__iso": "2026-01-05"})
    _still_the_refund_call(lib, f, n)
    with pytest.raises(Exception):  # the store refuses the vectors (wrong dimension) mid-commit
        commit(replace(new, vectors=new.vectors[:, :16]), {"agent": "A12"})
    _still_the_refund_call(lib, f, n)
    commit(new, {"agent": "A12"})  # and a good commit switches to the new content
    assert lib.search("selfish and cold", k=1)[0].path == str(f)
    assert not any(says(h.text, "charged") for h in lib.search("charged twice for the same order"))
    assert len(lib) == lib._store.count() == len(new.windows)


def test_importing_over_an_indexed_file_leaves_no_stale_acoustic_or_voice_vectors(tmp_path):
    f = shutil.copy(CALL_FILES["refund"], tmp_path / "call.mp3")
    with Library(tmp_path / "v.idx", voice=True) as lib:
        assert lib.add(f).ok
        assert lib._acoustic_store.ids_where({"path": str(f)}) and lib._voice_store.ids_where({"path": str(f)})
        before = len(lib)
        out = tmp_path / "t.jsonl"
        lib.export_transcripts(out)
        rec = json.loads(out.read_text())
        rec["segments"] = rec["segments"][:1]  # a corrected transcript: other windows than before
        out.write_text(json.dumps(rec) + "\n")
        report = lib.import_transcripts(out)
        assert report.ok and report.added[0].segments == len(lib) < before
        # vectors made from the old windows are gone, not served against the new ones
        assert lib._acoustic_store.ids_where({"path": str(f)}) == []
        assert lib._voice_store.ids_where({"path": str(f)}) == []
        assert any("reindex --acoustic" in w for w in report.added[0].warnings)
        assert lib._catalog.without_acoustic() == [str(f)]
        assert lib.reindex_acoustic() == 1  # made again from the audio, for the new windows
        windows = {i for i, *_ in lib._catalog.window_rows(str(f))}
        rows = lib._acoustic_store.get_where({"path": str(f)})
        assert rows and {r.metadata["window_id"] for r, _ in rows} <= windows


@pytest.fixture(scope="module")
def stereo(tmp_path_factory):
    """Channel 0: the refund call; channel 1: the LibriVox reading, starting at 12 s (both talk)."""
    f = tmp_path_factory.mktemp("stereo") / "stereo-call.wav"
    ffmpeg("-i", str(CALL_FILES["refund"]), "-i", str(LIBRIVOX), "-filter_complex",
           "[0]aresample=16000,aformat=channel_layouts=mono[a];"
           "[1]aresample=16000,aformat=channel_layouts=mono,adelay=12000[b];[a][b]amerge=inputs=2[out]",
           "-map", "[out]", "-ar", "16000", str(f))
    return f


def test_acoustic_vectors_added_later_follow_the_channels_of_a_stereo_file(tmp_path, stereo):
    index = tmp_path / "s.idx"
    with Library(index, acoustic=False, channels="agent,customer") as lib:  # an index without them
        assert lib.add(stereo).ok
    with Library(index) as lib:
        assert lib.reindex_acoustic() == 1
        segments = lib.transcript(stereo)
        places = {i: (ch, start, end) for i, start, end, ch, _ in lib._catalog.window_rows(str(stereo))}
        rows = lib._acoustic_store.get_where({"path": str(stereo)})
        assert {r.metadata["channel"] for r, _ in rows} == {0, 1}
        said = {(round(x.start, 2), round(x.end, 2), ch)  # each channel's sentences
                for ch in (0, 1) for x in sentences([s for s in segments if s.channel == ch], lib._pipeline.windows)}
        for r, _ in rows:  # each sentence is keyed to a window of its own channel
            ch = r.metadata["channel"]
            assert (round(r.metadata["start"], 2), round(r.metadata["end"], 2), ch) in said
            assert places[r.metadata["window_id"]][0] == ch
        # cut from that channel's audio: the reading is found on channel 1 by sound alone
        hit = lib.search_audio(str(LIBRIVOX), k=1, signals=("acoustic",))[0]
        assert hit.channel == 1 and hit.speaker == "customer"


def test_adding_acoustic_vectors_goes_past_a_file_whose_audio_is_gone(tmp_path, caplog):
    book = shutil.copy(LIBRIVOX, tmp_path / "book.flac")
    gone = shutil.copy(LIBRIVOX, tmp_path / "gone.flac")
    index = tmp_path / "g.idx"
    with Library(index, acoustic=False) as lib:
        assert lib.add([book, gone]).ok
    gone.unlink()
    with Library(index) as lib, caplog.at_level("WARNING", logger="speechsearch"):
        assert lib.reindex_acoustic() == 1
        assert lib._catalog.without_acoustic() == [str(gone)]
        assert f"{gone}: the file is missing" in caplog.text
        assert lib.search_audio(str(LIBRIVOX), k=1, signals=("acoustic",))[0].path == str(book)


def test_right_to_erasure_removes_every_trace_of_a_customer(tmp_path):
    folder = tmp_path / "calls"
    folder.mkdir()
    refund = shutil.copy(CALL_FILES["refund"], folder / "refund.mp3")  # David Miller, order 47291
    late = shutil.copy(CALL_FILES["late_delivery"], folder / "late.flac")  # Michael Turner, order 55028
    book = shutil.copy(LIBRIVOX, folder / "book.flac")
    gone = {str(refund), str(late)}
    index = tmp_path / "erase.idx"
    with Library(index, voice=True) as lib:
        assert lib.add(refund, metadata={"customer_id": "C-1042", "agent": "A1"}).ok
        assert lib.add(late, metadata={"customer_id": "C-1042", "agent": "A2"}).ok
        assert lib.add(book, metadata={"customer_id": "C-7", "agent": "A1"}).ok
        assert lib.search("Miller", k=1, signals=("lexical",))[0].path == str(refund)

        report = lib.remove(where={"customer_id": "C-1042"})
        assert sorted(report.files) == sorted(gone) and report.where == {"customer_id": "C-1042"}
        assert report.windows > 0 and report.vectors["text"] == report.windows
        assert report.vectors["context"] > 0 and report.vectors["acoustic"] > 0 and report.vectors["voice"] > 0
        assert "removed 2 file(s)" in report.summary()

        # nothing of theirs is found, by meaning, by exact words or numbers, by sound or by voice
        for query in ("charged twice for the same order", "Miller", "order 47291", "Michael Turner",
                      "coffee machine", "parcel a week late, the courier lost the box"):
            for signals in (("text",), ("context",), ("lexical",), ("text", "context", "lexical")):
                assert not gone & {h.path for h in lib.search(query, k=50, signals=signals)}, (query, signals)
        assert lib._catalog.lexical("miller turner", 50) == [] and lib._catalog.codes("order 47291", 50) == {}
        assert not gone & {h.path for h in lib.search_audio(str(refund), k=50)}
        assert not gone & {h.path for h in lib.search_audio(str(late), k=50, mode="voice")}
        for path in gone:  # no transcript, no file record
            with pytest.raises(NotIndexedError):
                lib.transcript(path)
        assert [f.path for f in lib.files()] == [str(book)]
        assert lib.export_transcripts(tmp_path / "all.jsonl") == 1
        assert "Miller" not in (tmp_path / "all.jsonl").read_text()
        for kind, store in lib._collections():
            assert store.ids_where({"path": {"$in": sorted(gone)}}) == [], kind
        # the other customer is untouched; asking again removes nothing, and is no error
        assert lib.search("selfish and cold", k=1)[0].path == str(book)
        assert lib.remove(where={"customer_id": "C-1042"}).files == []

        # compaction: what the deletes left in the files' free space is gone from disk too
        compacted = lib.compact()
        assert compacted.bytes_after < compacted.bytes_before and compacted.collections
        assert lib.search("selfish and cold", k=1)[0].path == str(book)
        assert lib.search_audio(str(LIBRIVOX), k=1)[0].path == str(book)
        assert lib.search_audio(str(LIBRIVOX), k=1, mode="voice")[0].path == str(book)
        assert len(lib) == lib._text_store().count()
    for db in (index / "catalog.sqlite3", index / "chroma" / "chroma.sqlite3"):
        data = db.read_bytes().lower()
        for word in (b"miller", b"47291", b"turner", b"coffee machine", b"c-1042", b"refund.mp3"):
            assert word not in data, (db.name, word)
    with Library(index) as lib:  # and a new process finds the index as compact left it
        assert lib.search("selfish and cold", k=1)[0].path == str(book) and len(lib.files()) == 1


def test_remove_by_filter_is_checked_and_works_on_whole_files(lib, tmp_path):
    f = shutil.copy(LIBRIVOX, tmp_path / "book.flac")
    assert lib.add(f, metadata={"customer_id": "C-7", "started_at": "2026-01-05T10:00:00Z"}).ok
    with pytest.raises(InvalidInputError, match="unknown filter field 'customer'"):
        lib.remove(where={"customer": "C-7"})
    with pytest.raises(InvalidInputError, match="whole files"):
        lib.remove(where={"speaker": "customer"})
    with pytest.raises(InvalidInputError, match="needs a path, or where"):
        lib.remove()
    assert lib.remove(where={"started_at": {"$lt": "2026-01-01"}}).files == []
    assert lib.remove(tmp_path, where={"customer_id": {"$in": ["C-7", "C-8"]}}).files == [str(f)]
    assert lib.files() == [] and len(lib) == 0
