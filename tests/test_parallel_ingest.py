"""Whisper workers decoding batches in parallel (TranscribeOptions.workers): results must reach
the right file in the right order, exactly as with one worker (same batches, same greedy decode)."""

from __future__ import annotations

import shutil

from conftest import CALL_FILES

from speechsearch import Library


def _transcripts(lib: Library) -> dict:
    return {f.path.rsplit("/", 1)[-1]: [(round(s.start, 2), round(s.end, 2), s.text) for s in lib.transcript(f.path)]
            for f in lib.files()}


def test_two_workers_give_the_same_index_as_one(tmp_path):
    folder = tmp_path / "calls"
    folder.mkdir()
    for name in ("refund", "late_delivery", "account_locked"):
        shutil.copy(CALL_FILES[name], folder / CALL_FILES[name].name)
    results = {}
    for workers in (1, 2):
        with Library(tmp_path / f"w{workers}.idx", transcribe_options={"workers": workers, "batch_size": 2}) as lib:
            assert lib._pipeline.transcriber.workers == workers
            report = lib.add(folder)
            assert report.ok and len(report.added) == 3, report.summary()
            results[workers] = _transcripts(lib)
            durations = {f.path.rsplit("/", 1)[-1]: f.duration for f in lib.files()}
            for name, segs in results[workers].items():  # every segment inside its own file
                assert segs and all(0 <= a < b <= durations[name] + 0.5 for a, b, _ in segs), name
    assert results[2] == results[1]
    # and the content is each call's own: the refund call talks about the refund, not a password
    refund = " ".join(t for _, _, t in results[2][CALL_FILES["refund"].name]).lower()
    assert "coffee machine" in refund and "password" not in refund
