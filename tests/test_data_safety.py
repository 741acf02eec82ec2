"""No batch lost, no file lost: a re-add never costs the good copy, unexpected errors are
reported per file or as one SpeechSearchError, and removal (right to erasure) leaves no trace
that search can find."""

from __future__ import annotations

import shutil

import pytest

from speechsearch.errors import IndexingError, SpeechSearchError

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
