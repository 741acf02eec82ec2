"""A metadata filter applies to every signal, and a clip bleeps every redaction it plays.

Windows carry the file's metadata; BM25 (in the catalogue) and the per-sentence acoustic and
voice rows do not, so each of those is checked against the windows they point at."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import CALL_FILES, HUMAN_CALL, LIBRIVOX

from speechsearch import FusionOptions, Library
from speechsearch.audio import decode

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def agents(tmp_path_factory):
    """Three calls by agent A1, the LibriVox reader's recording by A2; voice vectors on."""
    folder = tmp_path_factory.mktemp("rec")
    files = [CALL_FILES["refund"], CALL_FILES["late_delivery"], HUMAN_CALL, LIBRIVOX]
    for f in files:
        shutil.copy(f, folder / f.name)
    lib = Library(tmp_path_factory.mktemp("idx") / "agents.idx", voice=True)
    for f in files[:3]:
        assert lib.add(folder / f.name, metadata={"agent": "A1"}).ok
    assert lib.add(folder / LIBRIVOX.name, metadata={"agent": "A2"}).ok
    lib.folder = folder
    yield lib
    lib.close()


def test_voice_search_with_a_user_filter(agents):
    clip = decode(str(LIBRIVOX))[int(16000 * 2.0):int(16000 * 5.0)]
    hits = agents.search_audio(clip, sample_rate=16000, k=3, mode="voice", where={"agent": "A2"})
    assert hits and all(h.path.endswith(LIBRIVOX.name) for h in hits)
    assert all(h.metadata["agent"] == "A2" for h in hits)
    # the filter still excludes: the reader's voice under the other agent finds only A1's calls
    others = agents.search_audio(clip, sample_rate=16000, k=3, mode="voice", where={"agent": "A1"})
    assert others and not any(h.path.endswith(LIBRIVOX.name) for h in others)


def test_acoustic_signal_with_a_user_filter(agents):
    refund = decode(str(CALL_FILES["refund"]))[int(16000 * 5):int(16000 * 12)]
    hits = agents.search_audio(refund, sample_rate=16000, k=5, signals=("acoustic",), where={"agent": "A1"})
    assert hits and all(h.metadata["agent"] == "A1" for h in hits)
    assert hits[0].path.endswith(CALL_FILES["refund"].name)  # the same recording, cut out of it


def test_lexical_matches_under_a_narrow_filter(agents, tmp_path):
    """Other agents' calls say the query's words more often than A1's refund call, so over the
    whole index BM25 ranks the refund call's windows below the few candidates a search fetches.
    Under a filter that keeps only A1's calls they must still be found."""
    query = "refund charged twice"
    out = tmp_path / "refund.jsonl"
    original = str(agents.folder / CALL_FILES["refund"].name)
    agents.export_transcripts(out, [original])
    (rec,) = [json.loads(line) for line in out.read_text().splitlines()]
    copies = []
    for n in range(8):  # transcripts only: no audio, no Whisper
        segments = [dict(s, text=s["text"] + " refund refund charged twice", words=[]) for s in rec["segments"]]
        copies.append(json.dumps(dict(rec, path=f"/elsewhere/other-agent-{n}.mp3", hash=None,
                                      metadata={"agent": "B"}, segments=segments)))
    (tmp_path / "copies.jsonl").write_text("\n".join(copies) + "\n")
    assert agents.import_transcripts(tmp_path / "copies.jsonl").ok
    ranked = [agents._catalog.places([i])[i][0] for i, _ in agents._catalog.lexical(query, 1000)]
    assert ranked.index(original) >= 13, ranked  # out of reach of 13 candidates without the filter
    narrow = Library(agents.path, fusion=FusionOptions(candidates=1))  # k=1: 13 candidates
    try:
        hits = narrow.search(query, k=1, signals=("lexical",), where={"agent": "A1"})
        assert [h.path for h in hits] == [original]
        hits = narrow.search(query, k=3, where={"agent": "A1"})  # fused, too
        assert hits and hits[0].path == original and all(h.metadata["agent"] == "A1" for h in hits)
    finally:
        narrow.close()


def test_clip_bleeps_a_redaction_far_from_the_hit(tmp_path):
    """A card number said 60+ s before a hit is bleeped in a clip padded to reach it."""
    pii = json.loads((ROOT / "tests" / "data" / "pii-calls.json").read_text())
    call = next(c for c in pii["calls"] if c["file"].endswith("pii-card-call.mp3"))
    card = next(p for p in call["pii"] if p["kind"] == "CARD")
    long_call = tmp_path / "long-call.wav"
    parts = [ROOT / call["file"], CALL_FILES["refund"], CALL_FILES["late_delivery"]]
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", *[a for p in parts for a in ("-i", str(p))],
                    "-filter_complex", "".join(f"[{n}:a]" for n in range(len(parts))) + f"concat=n={len(parts)}:v=0:a=1",
                    "-ac", "1", "-ar", "16000", str(long_call)], check=True)
    with Library(tmp_path / "pii.idx", redact=True) as lib:
        assert lib.add(long_call).ok
        hits = lib.search("the package never arrived", k=10)
        far = [h for h in hits if h.start > card["end"] + 60]
        assert far, [(h.start, h.end) for h in hits]
        hit = far[0]
        assert any(a <= card["start"] + 1 and b >= card["end"] - 1 for a, b in hit.redactions) or any(
            a < card["end"] and b > card["start"] for a, b in hit.redactions)
        padding = hit.start - card["start"] + 1
        a, b = card["start"] + 1, card["end"] - 1
        lo = int((a - (hit.start - padding)) * 16000)
        seg = hit.clip(padding=padding)[lo: lo + int((b - a) * 16000)]
        plain = hit.clip(padding=padding, bleep=False)[lo: lo + int((b - a) * 16000)]
        peak = np.argmax(np.abs(np.fft.rfft(seg))) * 16000 / len(seg)
        assert abs(peak - 1000) < 5 and not np.allclose(seg, plain)
