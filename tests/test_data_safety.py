"""No batch lost, no file lost: a re-add never costs the good copy, unexpected errors are
reported per file or as one SpeechSearchError, and removal (right to erasure) leaves no trace
that search can find."""

from __future__ import annotations

import shutil

import pytest

from speechsearch.errors import IndexingError, InvalidInputError, SpeechSearchError

from conftest import CALL_FILES, LIBRIVOX


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
    assert hit.path == str(f) and "charged" in hit.text.lower()
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
    assert not any("charged" in h.text.lower() for h in lib.search("charged twice for the same order"))
    assert len(lib) == lib._store.count() == len(new.windows)
