"""Library behaviour a user relies on: idempotent add, re-index on change, metadata, remove,
files/info/len, lazy models, model mismatch."""

from __future__ import annotations

import shutil

import pytest

from speechsearch import Library, ModelMismatchError
from speechsearch.errors import InvalidInputError, NotIndexedError

from _text import says
from conftest import CALL_FILES, LIBRIVOX


def test_add_is_idempotent(lib, tmp_path):
    f = shutil.copy(CALL_FILES["refund"], tmp_path / "call.mp3")
    first = lib.add(f)
    assert [r.path for r in first.added] == [str(f)] and first.segments > 0
    n = len(lib)
    second = lib.add(tmp_path)
    assert not second.added and [r.reason for r in second.skipped] == ["unchanged"]
    assert len(lib) == n
    assert lib._store.count() == n  # no duplicate vectors


def test_changed_file_is_reindexed_and_old_segments_removed(lib, tmp_path):
    f = tmp_path / "call.mp3"
    shutil.copy(CALL_FILES["refund"], f)
    lib.add(f)
    old = lib.search("charged twice for the same order", k=1)[0]
    assert old.path == str(f) and says(old.text, "charged")  # what the old content says, as heard here
    shutil.copy(CALL_FILES["cancel_subscription"], f)  # same path, new content
    report = lib.add(f)
    assert len(report.added) == 1
    assert lib._store.count() == len(lib) == report.segments
    assert says(lib.search("moving abroad for a new job", k=1)[0].text, "portugal")
    assert old.id not in {h.id for h in lib.search("charged twice for the same order", k=10)}
    assert not lib._store.get([old.id])  # the old content's vectors are gone, not only unshown


def test_metadata_is_returned_on_hits_and_can_change(lib, tmp_path):
    f = shutil.copy(CALL_FILES["refund"], tmp_path / "call.mp3")
    lib.add(f, metadata={"agent": "A12", "queue": "billing", "priority": 2})
    hit = lib.search("duplicate charge", k=1)[0]
    assert hit.metadata == {"agent": "A12", "queue": "billing", "priority": 2}
    assert lib.search("duplicate charge", where={"agent": "A99"}) == []
    report = lib.add(f, metadata={"agent": "B7"})  # same audio: no re-transcription
    assert report.skipped[0].reason == "unchanged; metadata updated"
    assert lib.search("duplicate charge", k=1)[0].metadata == {"agent": "B7"}
    assert lib.files()[0].metadata == {"agent": "B7"}


def test_a_changed_file_re_added_keeps_its_metadata(lib, tmp_path):
    f = tmp_path / "call.mp3"
    shutil.copy(CALL_FILES["refund"], f)
    meta = {"agent": "A12", "started_at": "2026-01-05T10:00:00Z", "priority": 2}
    lib.add(f, metadata=meta)
    old_ids = {i for i, *_ in lib._catalog.window_rows(str(f))}
    shutil.copy(CALL_FILES["cancel_subscription"], f)  # new content, re-added without metadata=
    report = lib.add(f)
    assert len(report.added) == 1 and report.ok
    assert lib.file(f).metadata == meta
    hit = lib.search("moving abroad for a new job", k=1, where={"agent": "A12"})[0]
    assert says(hit.text, "portugal") and hit.metadata == meta
    assert lib.search("moving abroad", where={"started_at": {"$gte": "2026-01-05"}})
    assert not old_ids & {h.id for h in lib.search("charged twice for the same order", k=10)}
    assert not old_ids & {i for i, *_ in lib._catalog.window_rows(str(f))} and not lib._store.get(sorted(old_ids))
    shutil.copy(CALL_FILES["refund"], f)  # metadata= given: it replaces what the file had
    lib.add(f, metadata={"agent": "B7"})
    assert lib.file(f).metadata == {"agent": "B7"}
    assert lib.search("charged twice for the same order", k=1)[0].metadata == {"agent": "B7"}


@pytest.mark.parametrize("bad", [{"path": "x"}, {"start": 1}, {"k": [1, 2]}, {"": 1}, "agent=A1"])
def test_bad_metadata_is_a_clear_error(lib, bad):
    with pytest.raises(InvalidInputError):
        lib.add(CALL_FILES["refund"], metadata=bad)
    assert len(lib) == 0


def test_remove_file_and_folder(lib, tmp_path):
    sub = tmp_path / "rec"
    sub.mkdir()
    a = shutil.copy(CALL_FILES["refund"], sub / "a.mp3")
    b = shutil.copy(LIBRIVOX, sub / "b.flac")
    lib.add(sub)
    assert {f.path for f in lib.files()} == {str(a), str(b)}
    assert lib.remove(a) == 1
    assert [f.path for f in lib.files()] == [str(b)]
    assert all(h.path == str(b) for h in lib.search("charged twice", k=10))
    assert lib._store.count() == len(lib)
    with pytest.raises(NotIndexedError, match="not in the index"):
        lib.remove(a)
    assert lib.remove(sub) == 1 and len(lib) == 0 and lib.files() == []


def test_files_info_and_len(indexed):
    files = indexed.files()
    assert len(files) == 5 and all(f.status == "ready" for f in files)
    assert sum(f.segments for f in files) == len(indexed) > 0
    refund = next(f for f in files if f.path.endswith("refund-call.mp3"))
    assert refund.duration == pytest.approx(43.6, abs=0.5)
    assert refund.models == {"asr_engine": "faster-whisper", "asr_model": "tiny.en",
                             "text_model": "all-MiniLM-L6-v2", "acoustic_model": "speech-embedding/meanstd+c"}
    info = indexed.info()
    assert info["files"] == 5 and info["segments"] == len(indexed) and info["incomplete"] == []


def test_library_loads_no_model_until_needed(indexed):
    with Library(indexed.path) as again:
        assert again._pipeline.transcriber._model is None
        assert again._pipeline.embedder._model is None
        assert again.search("refund", k=1)
        assert again._pipeline.transcriber._model is None  # searching never loads Whisper


def test_reopening_with_other_models_fails_clearly(indexed):
    with pytest.raises(ModelMismatchError, match="tiny.en"):
        Library(indexed.path, model="base")
    with pytest.raises(ModelMismatchError, match="all-MiniLM-L6-v2"):
        Library(indexed.path, text_model="sentence-transformers/paraphrase-MiniLM-L3-v2")
    Library(indexed.path, model="tiny.en", text_model="sentence-transformers/all-MiniLM-L6-v2").close()


def test_index_persists_across_processes(tmp_path):
    import subprocess
    import sys

    f = shutil.copy(LIBRIVOX, tmp_path / "sense.flac")
    with Library(tmp_path / "p.idx") as lib:
        lib.add(f)
    code = ("from speechsearch import Library; h = Library(%r).search('selfish and cold', k=1)[0]; "
            "print(h.path, round(h.start, 1))" % str(tmp_path / "p.idx"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == str(f)


def test_context_manager_closes(tmp_path):
    with Library(tmp_path / "c.idx") as lib:
        assert len(lib) == 0
        assert lib.search("anything") == []  # an empty index answers with no hits


def test_quality_presets_name_both_models_and_are_checked(tmp_path):
    from speechsearch.fusion import FusionOptions

    with Library(tmp_path / "best.idx", quality="best") as best:  # loads nothing yet
        assert best._pipeline.models["asr_model"] == "base"
        assert best._pipeline.models["text_model"] == "all-mpnet-base-v2"
        assert best.fusion == FusionOptions.fitted("all-mpnet-base-v2")  # the weights fitted for mpnet
    with Library(tmp_path / "mix.idx", quality="best", model="tiny.en") as mix:  # explicit names win
        assert mix._pipeline.models["asr_model"] == "tiny.en"
    with pytest.raises(InvalidInputError, match="fast"):
        Library(tmp_path / "x.idx", quality="turbo")


def test_an_index_reopened_with_another_preset_is_refused(lib, tmp_path):
    f = shutil.copy(LIBRIVOX, tmp_path / "book.flac")
    lib.add(f)
    lib.close()
    with pytest.raises(ModelMismatchError, match="tiny.en"):
        Library(lib.path, quality="best")
