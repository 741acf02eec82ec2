"""Call-centre features on real audio: stereo channels labelled by role, speaker search, a
manifest with dates and typed filters, clips, reindexing with another text model, and
transcript export/import."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from _text import normalise
from conftest import CALL_FILES, write_wav
from speechsearch import Library
from speechsearch.audio import decode
from speechsearch.errors import InvalidInputError, ModelMismatchError
from speechsearch.models import resolve_text_model


def _stereo(call: dict, path: Path) -> Path:
    """The synthetic call with the agent's turns on the left channel and the customer's on the right."""
    audio = decode(str(Path(__file__).resolve().parent.parent / call["file"]))
    left, right = np.zeros_like(audio), np.zeros_like(audio)
    for t in call["turns"]:
        a, b = int(t["start"] * 16000), int(t["end"] * 16000)
        (left if t["speaker"] == "AGENT" else right)[a:b] = audio[a:b]
    return write_wav(path, np.stack([left, right], 1))


@pytest.fixture(scope="module")
def centre(tmp_path_factory, calls):
    folder = tmp_path_factory.mktemp("recordings")
    _stereo(calls["cancel_subscription"], folder / "call-0001.wav")
    _stereo(calls["late_delivery"], folder / "call-0002.wav")
    shutil.copy(CALL_FILES["refund"], folder / "call-0003.mp3")  # a mono recording
    manifest = folder / "calls.csv"
    manifest.write_text(
        "path,call_id,agent,queue,direction,started_at,channels\n"
        "call-0001.wav,C-0001,A12,retention,inbound,2026-01-05T09:14:00Z,\"agent,customer\"\n"
        "call-0002.wav,C-0002,B7,logistics,inbound,2026-02-11T16:40:00+01:00,\"agent,customer\"\n"
        "call-0003.mp3,C-0003,A12,billing,outbound,2025-12-30,\n")
    lib = Library(tmp_path_factory.mktemp("idx") / "centre.idx")
    report = lib.add(folder, manifest=manifest)
    assert report.ok and len(report.added) == 3, report.summary()
    lib.folder = folder  # type: ignore[attr-defined]
    yield lib
    lib.close()


def test_stereo_channels_are_transcribed_apart_and_labelled(centre, calls):
    hits = centre.search("I would like to cancel my monthly plan", k=10)
    stereo = [h for h in hits if h.path.endswith("call-0001.wav")]
    assert stereo and stereo[0].speaker == "customer" and stereo[0].channel == 1
    customer_turns = [t for t in calls["cancel_subscription"]["turns"] if t["speaker"] == "CUSTOMER"]
    assert any(t["start"] - 1 <= stereo[0].start <= t["end"] for t in customer_turns)
    mono = [h for h in centre.search("refund", k=10) if h.path.endswith("call-0003.mp3")]
    assert mono and mono[0].speaker is None  # a mono file has no channel roles


def test_speaker_filter_finds_only_that_speaker(centre):
    # the agent asks "May I ask why you're leaving" in the cancel call
    agent = centre.search("why are you leaving", speaker="agent", k=5)
    customer = centre.search("why are you leaving", speaker="customer", k=5)
    assert agent and {h.speaker for h in agent} == {"agent"}
    assert customer and {h.speaker for h in customer} == {"customer"}
    assert all(h.channel == 0 for h in agent) and all(h.channel == 1 for h in customer)


def test_manifest_metadata_and_typed_filters(centre):
    q = "the caller has a problem"
    assert {Path(h.path).name for h in centre.search(q, where={"agent": "A12"}, k=20)} == {"call-0001.wav", "call-0003.mp3"}
    in_2026 = centre.search(q, where={"started_at": {"$gte": "2026-01-01"}}, k=20)
    assert {Path(h.path).name for h in in_2026} == {"call-0001.wav", "call-0002.wav"}
    window = {"started_at": {"$gte": "2026-02-11T15:00:00Z", "$lt": "2026-02-12"}}  # 16:40+01:00 is 15:40Z
    assert {Path(h.path).name for h in centre.search(q, where=window, k=20)} == {"call-0002.wav"}
    queues = centre.search(q, where={"queue": {"$in": ["billing", "logistics"]}}, k=20)
    assert {h.metadata["queue"] for h in queues} == {"billing", "logistics"}
    hit = centre.search(q, where={"call_id": "C-0002"}, k=1)[0]
    assert hit.metadata == {"call_id": "C-0002", "agent": "B7", "queue": "logistics", "direction": "inbound",
                            "started_at": "2026-02-11T16:40:00+01:00"}  # ISO text back, as given
    both = centre.search(q, where={"agent": "A12", "direction": "outbound"}, speaker=None, k=20)
    assert {Path(h.path).name for h in both} == {"call-0003.mp3"}


@pytest.mark.parametrize("where, match", [
    ({"agnet": "A12"}, "unknown filter field 'agnet'; known fields: agent, call_id"),
    ({"agent": {"$like": "A1"}}, "unknown operator '\\$like'.*valid operators"),
    ({"started_at": {"$gte": "last week"}}, "ISO-8601"),
    ({"agent": {"$gt": "A"}}, "agent"),
])
def test_bad_filters_are_clear_errors(centre, where, match):
    with pytest.raises(InvalidInputError, match=match):
        centre.search("refund", where=where)


def test_files_status_and_update_metadata(centre):
    files = {Path(f.path).name: f for f in centre.files()}
    assert set(files) == {"call-0001.wav", "call-0002.wav", "call-0003.mp3"}
    f = files["call-0002.wav"]
    assert f.status == "ready" and f.segments > 0 and f.duration > 30 and f.language == "en"
    assert f.models["asr_model"] == "tiny.en" and f.added_at and f.metadata["agent"] == "B7"
    centre.update_metadata(f.path, dict(f.metadata, agent="B8", reviewed=True))
    hits = centre.search("where is my parcel", where={"agent": "B8"}, k=5)
    assert hits and all(h.path == f.path and h.metadata["reviewed"] is True for h in hits)
    assert not centre.search("where is my parcel", where={"agent": "B7"}, k=5)
    centre.update_metadata(f.path, f.metadata)  # put it back for the other tests


def test_clip_and_save(centre, tmp_path):
    hit = centre.search("cancel my monthly plan", speaker="customer", k=1)[0]
    audio = hit.clip(padding=0.5)
    assert audio.dtype == np.float32
    assert len(audio) / 16000 == pytest.approx(hit.end - hit.start + 1.0, abs=0.05)
    assert np.abs(audio).max() > 0.05  # real speech, not silence
    assert len(hit.clip()) / 16000 == pytest.approx(hit.end - hit.start, abs=0.05)
    wav = hit.save(tmp_path / "clip.wav")
    with wave.open(str(wav)) as w:
        assert w.getnframes() == len(hit.clip())
    mp3 = hit.save(tmp_path / "clip.mp3", padding=0.25)
    assert mp3.stat().st_size > 1000 and abs(len(decode(str(mp3))) / 16000 - (hit.duration + 0.5)) < 0.15
    with pytest.raises(InvalidInputError, match="padding"):
        hit.clip(padding=-1)


def test_cli_search_exports_clips(centre, tmp_path):
    out = tmp_path / "clips"
    r = subprocess.run([sys.executable, "-m", "speechsearch", "search", "where is my parcel", "--index",
                        str(centre.path), "-k", "2", "--speaker", "customer", "--where", '{"queue": "logistics"}',
                        "--export", str(out), "--format", "wav"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    clips = sorted(out.glob("*.wav"))
    assert len(clips) == 2 and clips[0].name.startswith("01-call-0002-")
    assert "[customer]" in r.stdout


def test_export_and_import_transcripts(centre, tmp_path):
    out = tmp_path / "transcripts.jsonl"
    assert centre.export_transcripts(out) == 3
    records = [json.loads(line) for line in out.read_text().splitlines()]
    stereo = next(r for r in records if r["path"].endswith("call-0001.wav"))
    assert {s["speaker"] for s in stereo["segments"]} == {"agent", "customer"}
    assert all(s["words"] and len(s["words"][0]) == 4 for s in stereo["segments"])
    assert stereo["metadata"]["call_id"] == "C-0001"
    other = Library(tmp_path / "other.idx")
    report = other.import_transcripts(out)
    assert report.ok and len(report.added) == 3
    hits = other.search("I would like to cancel my monthly plan", speaker="customer", k=1)
    assert hits and hits[0].path.endswith("call-0001.wav") and hits[0].metadata["agent"] == "A12"
    assert other.search("refund", where={"started_at": {"$lt": "2026-01-01"}})
    bad = tmp_path / "bad.jsonl"
    bad.write_text(out.read_text().splitlines()[0] + "\n{not json\n" + json.dumps({"path": "x.wav"}) + "\n")
    report = other.import_transcripts(bad)
    assert len(report.added) == 1 and len(report.failed) == 2
    assert all("bad.jsonl:" in f.error for f in report.failed)
    other.close()


def test_reindex_with_another_text_model(tmp_path, calls):
    """Re-embedding from stored transcripts, no transcription: here into a copy of MiniLM in a
    folder (a different model as far as the index knows)."""
    lib = Library(tmp_path / "re.idx")
    assert lib.add(CALL_FILES["late_delivery"]).ok
    before = lib.search("my package has not arrived", k=1)[0]
    copy = tmp_path / "minilm-copy"
    shutil.copytree(resolve_text_model("all-MiniLM-L6-v2").source, copy)
    with pytest.raises(ModelMismatchError, match="reindex"):
        Library(tmp_path / "re.idx", text_model=str(copy))
    n = lib.reindex(text_model=str(copy))
    assert n > 0 and n == lib._catalog.count_windows()
    assert lib.info()["models"]["text_model"] == str(copy.resolve())
    after = lib.search("my package has not arrived", k=1)[0]
    assert (after.path, after.start, after.end) == (before.path, before.start, before.end)
    lib.close()
    reopened = Library(tmp_path / "re.idx")  # the new model sticks
    assert reopened.search("my package has not arrived", k=1)[0].start == before.start


def test_bad_channel_labels(tmp_path, calls):
    stereo = _stereo(calls["cancel_subscription"], tmp_path / "s.wav")
    with pytest.raises(InvalidInputError, match="channel"):
        Library(tmp_path / "x.idx", channels={"left": "agent"})
    lib = Library(tmp_path / "y.idx", channels={0: "agent", 2: "supervisor"})
    report = lib.add(stereo)
    assert not report.ok and "channel(s) [2]" in report.failed[0].error and "s.wav" in report.failed[0].error


PII = json.loads((Path(__file__).resolve().parent / "data" / "pii-calls.json").read_text())


@pytest.fixture(scope="module")
def redacted(tmp_path_factory):
    root = Path(__file__).resolve().parent.parent
    lib = Library(tmp_path_factory.mktemp("pii") / "pii.idx", redact=True, channels="agent,customer")
    report = lib.add([root / c["file"] for c in PII["calls"]])
    assert report.ok, report.summary()
    yield lib
    lib.close()


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _longest_number(text: str) -> int:
    """Digits in the longest run of digits joined by spaces, dashes or dots ("4532 0151" is 8)."""
    import re

    return max((len(_digits(m)) for m in re.findall(r"\d(?:[\d \-.]*\d)?", text)), default=0)


def test_redaction_reaches_nothing_stored(redacted, tmp_path):
    """Card, phone, e-mail and ID numbers are replaced before storing and embedding: not in the
    transcripts, not in the window texts Chroma holds, not findable by search."""
    values = [p["value"] for c in PII["calls"] for p in c["pii"]]
    out = tmp_path / "t.jsonl"
    redacted.export_transcripts(out)
    text = out.read_text()
    for v in values:
        assert v not in text and (len(_digits(v)) < 6 or _digits(v) not in _digits(text)), v
    # a marker where each item was; a number misheard by a digit may be marked [DIGITS] instead
    # of its kind (the customer's SSN and phone come out so on one channel here), but of the two
    # cards, two phones and two addresses each kind is recognised at least once
    assert "[CARD]" in text and "[PHONE]" in text and "[EMAIL]" in text
    docs = redacted._store.collection.get(include=["documents"])["documents"]
    # no six digits in a row in any stored window, number words counted as digits (normalised,
    # tests/_text.py); the longest left is the harmless five-digit order number
    assert docs and max(_longest_number(normalise(d)) for d in docs) < 6
    assert not any("example" in d.lower() for d in docs)
    for q in ("4532 0151 1234 5670", "john dot smith at example dot com", "5454 5454 5454 5454"):
        assert all(_longest_number(normalise(h.text)) < 6 and "example" not in h.text.lower()
                   for h in redacted.search(q))
    hits = redacted.search("what is your card number", k=10)
    assert any("[CARD]" in h.text for h in hits)
    assert redacted.info()["models"] and Library(redacted.path)._pipeline.redact  # remembered on reopen


def test_exported_clip_bleeps_the_card_number(redacted):
    call = next(c for c in PII["calls"] if c["file"].endswith("pii-stereo-call.ogg"))
    card = next(p for p in call["pii"] if p["kind"] == "CARD")
    hit = next(h for h in redacted.search("my card number is", speaker="customer", k=10)
               if h.path.endswith("pii-stereo-call.ogg") and h.start < card["end"] and h.end > card["start"])
    assert hit.redactions
    a, b = max(hit.start, card["start"] + 1), min(hit.end, card["end"] - 1)
    lo = int((a - hit.start) * 16000)
    seg = hit.clip()[lo: lo + int((b - a) * 16000)]
    plain = hit.clip(bleep=False)[lo: lo + int((b - a) * 16000)]
    spectrum = np.abs(np.fft.rfft(seg))
    peak_hz = np.argmax(spectrum) * 16000 / len(seg)
    assert abs(peak_hz - 1000) < 5  # the tone
    assert not np.allclose(seg, plain)
    assert abs(np.argmax(np.abs(np.fft.rfft(plain))) * 16000 / len(plain) - 1000) > 5  # speech, not a tone


def test_mono_call_diarized_into_speakers(tmp_path, calls):
    """A mono call: sentences labelled S1, S2 by voice; each label's windows hold one speaker."""
    call = calls["cancel_subscription"]
    lib = Library(tmp_path / "d.idx", diarize=True)
    assert lib.add(CALL_FILES["cancel_subscription"]).ok
    segs = lib._catalog.transcript(str(CALL_FILES["cancel_subscription"]))
    assert {s["speaker"] for s in segs} == {"S1", "S2"}

    def said_by(t):  # reference speaker of the turn holding time t
        return next((x["speaker"] for x in call["turns"] if x["start"] - 0.5 <= t <= x["end"] + 0.5), None)

    agree = {}
    for s in segs:
        agree.setdefault(s["speaker"], []).append(said_by((s["start"] + s["end"]) / 2))
    majority = {label: max(set(refs), key=refs.count) for label, refs in agree.items()}
    assert set(majority.values()) == {"AGENT", "CUSTOMER"}
    right = sum(ref == majority[label] for label, refs in agree.items() for ref in refs)
    assert right / len(segs) >= 0.85
    customer = next(label for label, ref in majority.items() if ref == "CUSTOMER")
    hits = lib.search("I want to cancel my monthly plan", speaker=customer, k=3)
    assert hits and all(h.speaker == customer for h in hits)
    lib.close()
