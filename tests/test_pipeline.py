"""The stages behind Library.add without Whisper: a minimal engine and embedder run through the
indexing threads (process.py) on real audio; the pipeline rebuilt from its spec (what a Ray worker
does); one acoustic model id."""

from __future__ import annotations

import numpy as np
import pytest

from speechsearch import Library
from speechsearch.embed.acoustic import get_acoustic_embedder, model_id
from speechsearch.errors import AudioError, InvalidInputError, ModelError
from speechsearch.pipeline import FileJob, Pipeline, Processed, build_pipeline, pipeline_spec
from speechsearch.process import process_files
from speechsearch.types import Segment, Word

from conftest import LIBRIVOX


class Engine:
    """transcribe(audio) only: one two-word segment per speech chunk."""

    engine, model_name = "fake", "fake-1"

    def __init__(self, error: Exception = None):
        self.error = error

    def transcribe(self, audio):
        if self.error is not None:
            raise self.error
        d = len(audio) / 16000
        return [Segment(0.0, d, " hello there.", (Word(0.0, d / 2, " hello"), Word(d / 2, d, " there.")))], None


class Embedder:
    model_name = "fake-text"

    def encode(self, texts, threads=None):
        return np.ones((len(texts), 4), np.float32)


def _run(files, engine, progress=None):
    return list(process_files(files, Pipeline(transcriber=engine, embedder=Embedder()), progress))


def test_files_come_out_in_order_and_a_bad_one_is_reported(tmp_path):
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"ID3 this is not audio" * 50)
    files = [FileJob(str(LIBRIVOX)), FileJob(str(broken)), FileJob(str(LIBRIVOX))]
    seconds = []
    out = _run(files, Engine(), seconds.append)
    assert [f for f, _ in out] == files
    good, bad, again = (r for _, r in out)
    assert isinstance(bad, AudioError) and "broken.mp3" in str(bad)
    for result in (good, again):
        assert isinstance(result, Processed) and result.duration > 5
        assert result.segments and all(0 <= s.start <= s.end <= result.duration + 0.1 for s in result.segments)
        assert result.windows and result.vectors.shape == (len(result.windows), 4)
    assert sum(seconds) == pytest.approx(2 * good.duration, abs=0.1)  # progress counts each file's audio once


def test_a_failed_batch_blames_its_file_and_a_model_error_stops_the_batch():
    (f, result), = _run([FileJob(str(LIBRIVOX))], Engine(RuntimeError("engine broke")))
    assert isinstance(result, RuntimeError) and f.failed
    with pytest.raises(ModelError):
        _run([FileJob(str(LIBRIVOX))], Engine(ModelError("no model")))


def test_the_pipeline_spec_rebuilds_the_same_pipeline(tmp_path):
    with Library(tmp_path / "x.idx", channels="agent,customer", redact=True, diarize=True,
                 vad={"threshold": 0.4}) as lib:
        spec = lib.pipeline_spec(2)
        rebuilt = build_pipeline(**spec)  # what each Ray worker does: no index, models by name
        assert rebuilt.models == lib._pipeline.models
        assert (rebuilt.channels, rebuilt.redact, rebuilt.vad) == ({0: "agent", 1: "customer"}, True, lib._pipeline.vad)
        assert rebuilt.diarizer is not None and rebuilt.transcriber.workers == 2
        assert pipeline_spec(rebuilt, 2) == spec
    with Library(tmp_path / "y.idx", transcriber=Engine()) as lib:
        with pytest.raises(InvalidInputError, match="named engine"):
            lib.pipeline_spec()


def test_one_acoustic_model_id():
    embedder = get_acoustic_embedder("mfcc")
    assert model_id(embedder) == embedder.model_id

    class Mine:  # a user's embedder without a model_id: its name
        name, dim = "mine", 3

    assert model_id(Mine()) == "mine"
