"""Bad and unusual input: each gives a clear error naming the file and the fix, or is indexed
correctly, and never costs what is already indexed."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from speechsearch import Library
from speechsearch.errors import InvalidInputError, MissingToolError

from conftest import CALL_FILES, LIBRIVOX, ffmpeg, write_wav


def _failure(report, path):
    (f,) = [f for f in report.failed if f.path == str(path)]
    assert str(path) in f.error
    return f.error


def test_missing_path(lib, tmp_path):
    report = lib.add(tmp_path / "nope.wav")
    assert "no such file" in _failure(report, tmp_path / "nope.wav")
    assert not report.added


def test_empty_file(lib, tmp_path):
    f = tmp_path / "empty.wav"
    f.write_bytes(b"")
    assert "empty (0 bytes)" in _failure(lib.add(f), f)
    assert lib.files() == []


def test_text_file_named_wav(lib, tmp_path):
    f = tmp_path / "notes.wav"
    f.write_text("meeting notes, not audio\n" * 50)
    error = _failure(lib.add(f), f)
    assert "not a readable audio file" in error and "common format" in error


def test_truncated_mp3_indexes_what_decodes_and_warns(lib, tmp_path):
    data = CALL_FILES["refund"].read_bytes()
    f = tmp_path / "cut.mp3"
    f.write_bytes(data[: int(len(data) * 0.6)])
    report = lib.add(f)
    (added,) = report.added
    assert 20 < added.duration < 30 and added.segments > 0
    assert any("truncated" in w for w in added.warnings)
    assert lib.search("charged twice for one order", k=1)[0].path == str(f)
    stub = tmp_path / "stub.mp3"
    stub.write_bytes(data[:300])  # little more than a header
    assert _failure(lib.add(stub), stub)


def test_pure_silence_gives_no_text(lib, tmp_path):
    f = write_wav(tmp_path / "silence.wav", np.zeros(16000 * 40, np.float32))
    report = lib.add(f)
    assert report.added[0].segments == 0 and report.added[0].reason == "no speech found"
    assert lib.search("hello") == [] and len(lib) == 0
    assert lib.files()[0].status == "ready"
    assert lib.add(f).skipped  # recorded as indexed: not transcribed again


def test_pure_noise_gives_no_text(lib, tmp_path):
    rng = np.random.default_rng(7)
    white = rng.standard_normal(16000 * 20).astype(np.float32) * 0.1
    brown = np.cumsum(rng.standard_normal(16000 * 20)).astype(np.float32)
    brown = 0.3 * brown / np.abs(brown).max()
    a = write_wav(tmp_path / "white.wav", white)
    b = write_wav(tmp_path / "brown.wav", brown)
    report = lib.add([a, b])
    assert [r.segments for r in report.added] == [0, 0], report.added
    assert len(lib) == 0


def test_six_channel_file(lib, tmp_path):
    f = tmp_path / "surround.wav"
    # speech on the front-centre channel of a 5.1 file, the other five channels silent
    ffmpeg("-i", str(CALL_FILES["refund"]), "-af",
           "pan=5.1|FL=0*c0|FR=0*c0|FC=c0|LFE=0*c0|BL=0*c0|BR=0*c0", str(f))
    report = lib.add(f)
    (added,) = report.added
    assert added.segments > 0 and any("6 channels" in w for w in added.warnings)
    hit = lib.search("charged twice for the same order", k=1)[0]
    assert hit.path == str(f) and hit.channel == -1


def test_8khz_telephone_recording(lib, tmp_path):
    f = tmp_path / "phone.wav"
    ffmpeg("-i", str(LIBRIVOX), "-ar", "8000", "-acodec", "pcm_mulaw", str(f))
    report = lib.add(f)
    assert report.added[0].segments == 1
    reference = (LIBRIVOX.with_suffix(".txt")).read_text().lower()
    hit = lib.search("selfish", k=1)[0]
    words = set(hit.text.lower().replace(".", "").replace(",", "").split())
    assert len(words & set(reference.split())) >= 0.7 * len(words)


def test_mixed_folder_keeps_going_and_reports(lib, tmp_path):
    folder = tmp_path / "mixed"
    (folder / "sub").mkdir(parents=True)
    good = shutil.copy(LIBRIVOX, folder / "sub" / "good.flac")
    good2 = shutil.copy(CALL_FILES["refund"], folder / "z-good.mp3")
    (folder / "a-bad.wav").write_text("not audio")
    (folder / "empty.mp3").write_bytes(b"")
    (folder / "readme.txt").write_text("ignored: not an audio extension")
    report = lib.add(folder)
    assert {r.path for r in report.added} == {str(good), str(good2)}
    assert {os.path.basename(f.path) for f in report.failed} == {"a-bad.wav", "empty.mp3"}
    assert "failed 2" in report.summary() and not report.ok
    # a failing batch never costs what is indexed
    again = lib.add([folder / "a-bad.wav"])
    assert not again.ok and len(lib.files()) == 2


def test_empty_index_search_returns_nothing(lib):
    assert lib.search("refund request") == []


@pytest.mark.parametrize("query", ["", "   ", "\n"])
def test_empty_query_is_a_clear_error(indexed, query):
    with pytest.raises(InvalidInputError, match="query is empty"):
        indexed.search(query)


@pytest.mark.parametrize("k", [0, -3, 2.5, True])
def test_bad_k_is_a_clear_error(indexed, k):
    with pytest.raises(InvalidInputError, match="k must be a positive integer"):
        indexed.search("refund", k=k)


def test_missing_ffmpeg_is_a_clear_error_and_pyav_takes_over(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    f = shutil.copy(LIBRIVOX, tmp_path / "clip.flac")
    with Library(tmp_path / "a.idx", decoder="ffmpeg") as lib:
        with pytest.raises(MissingToolError, match="apt-get install -y ffmpeg"):
            lib.add(f)
        assert len(lib) == 0
    with Library(tmp_path / "b.idx") as lib:  # decoder="auto" falls back to PyAV
        assert lib.add(f).added[0].segments == 1


def test_pyav_and_ffmpeg_decode_the_same_audio():
    from speechsearch.audio import decode

    a = decode(str(CALL_FILES["account_locked"]), decoder="ffmpeg")
    b = decode(str(CALL_FILES["account_locked"]), decoder="pyav")
    assert abs(len(a) - len(b)) < 16000 * 0.1
    assert abs(float(np.abs(a).mean()) - float(np.abs(b).mean())) < 0.01


def test_unknown_decoder(tmp_path):
    with pytest.raises(InvalidInputError, match="unknown decoder 'sox'"):
        Library(tmp_path / "x.idx", decoder="sox")


def test_file_name_that_is_not_utf8_is_indexed_with_the_rest_of_the_batch(lib, tmp_path):
    # b"caf\xe9.flac": the latin-1 byte of `café`, as a Windows share writes it
    folder = tmp_path / "share"
    folder.mkdir()
    good = shutil.copy(CALL_FILES["refund"], folder / "good.mp3")
    raw = os.path.join(os.fsencode(folder), b"caf\xe9.flac")
    with open(raw, "wb") as out:
        out.write(LIBRIVOX.read_bytes())
    shown = str(folder / "caf\\xe9.flac")  # how the index names it: valid UTF-8, readable

    report = lib.add(folder)
    assert report.ok, report.summary()
    assert {r.path for r in report.added} == {str(good), shown}
    assert "caf\\\\xe9.flac" in json.dumps(report.to_dict(), ensure_ascii=False).encode("utf-8").decode()
    hit = lib.search("selfish and cold", k=1)[0]
    assert hit.path == shown and len(hit.clip()) > 16000  # the clip opens the real file
    assert lib.search("charged twice for the same order", k=1)[0].path == str(good)
    # the name as the OS gives it, as bytes, or as the index shows it: one file
    assert lib.file(os.fsdecode(raw)).path == lib.file(raw).path == lib.file(shown).path == shown
    assert "selfish" in " ".join(s.text for s in lib.transcript(raw)).lower()
    again = lib.add(raw)
    assert [r.reason for r in again.skipped] == ["unchanged"] and again.ok
    assert lib.remove(os.fsdecode(raw)) == 1
    assert [f.path for f in lib.files()] == [str(good)]


def test_two_files_one_stored_name_the_second_is_reported(lib, tmp_path):
    folder = tmp_path / "clash"
    folder.mkdir()
    with open(os.path.join(os.fsencode(folder), b"caf\xe9.flac"), "wb") as out:
        out.write(LIBRIVOX.read_bytes())
    literal = shutil.copy(LIBRIVOX, folder / "caf\\xe9.flac")  # a real backslash in the name
    report = lib.add(folder)
    assert [r.path for r in report.added] == [str(literal)]  # the name is this file's
    (failed,) = report.failed  # the other is reported: the index could not tell them apart
    assert failed.path == str(literal) and "rename it" in failed.error and "not UTF-8" in failed.error


def test_a_folder_without_audio_is_reported_not_silently_ok(lib, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "notes.txt").write_text("not audio")
    (docs / "sub" / ".hidden.wav").write_bytes(LIBRIVOX.read_bytes())  # hidden files are skipped
    for folder in (empty, docs):
        report = lib.add(folder)
        assert not report.ok and not report.added
        assert "no audio files" in _failure(report, folder)
        assert "failed 1" in report.summary()
    good = shutil.copy(LIBRIVOX, tmp_path / "book.flac")  # beside a good file: it is indexed
    report = lib.add([empty, good])
    assert [r.path for r in report.added] == [str(good)] and not report.ok
    assert "no audio files" in _failure(report, empty)
