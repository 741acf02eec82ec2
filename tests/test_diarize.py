"""Speaker turns from sentence voice vectors (speechsearch.diarize), on real audio through the
real pipeline stages: Silero VAD -> Whisper tiny.en -> sentences -> resemblyzer. About 15-30 s.

Where Whisper cuts sentences depends on the CPU (its int8 kernels differ between CPU families),
so the spans, their count and the turn boundaries differ a little between machines. The tests
therefore hold diarization to what a user relies on, with margins: two voices get two labels
that beat labelling everyone S1, one voice keeps one label. Bars come from
benchmarks/diarization.py (docs/diarization.md): the synthetic call is labelled 100 % right
there; the pyannote call's turn accuracy was 0.678 against 0.563 for "everyone is S1" (0.692 vs
0.558 here on a later run, 0.62 on an AMD EPYC).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from speechsearch.audio import decode, iter_blocks
from speechsearch.diarize import MAX_CLUSTERED, DiarizeOptions, assign_speakers
from speechsearch.errors import InvalidInputError

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
SR = 16000


@pytest.fixture(scope="module")
def pipeline():
    from speechsearch.embed.voice import get_voice_embedder
    from speechsearch.ingest import Pipeline
    from speechsearch.transcribe import get_transcriber

    return Pipeline(transcriber=get_transcriber("faster-whisper", model="tiny.en"), embedder=None,
                    voice=get_voice_embedder("resemblyzer"))


@pytest.fixture(scope="module")
def sentence_voices(pipeline):
    """(spans, vectors) of a file's (or an array's) sentences, exactly as indexing makes them."""
    from speechsearch.ingest import sentence_clips
    from speechsearch.segment import iter_speech
    from speechsearch.transcribe import transcribe_chunks

    memo = {}

    def run(source):
        if isinstance(source, Path) and source in memo:
            return memo[source]
        blocks = iter_blocks(str(source), 30.0) if isinstance(source, Path) else [source]
        spans, vectors = [], []
        for chunk in iter_speech(blocks, pipeline.vad):
            segs = transcribe_chunks(pipeline.transcriber, [chunk.audio], "en")[0]
            if segs:
                s, clips = sentence_clips(chunk, segs, pipeline)
                spans += s
                vectors.append(pipeline.voice.embed_many(clips))
        out = spans, np.concatenate(vectors) if vectors else np.zeros((0, 256), np.float32)
        if isinstance(source, Path):
            memo[source] = out
        return out

    return run


def rttm():
    out = []
    for line in (DATA / "pyannote-sample.rttm").read_text().splitlines():
        p = line.split()
        out.append((float(p[3]), float(p[3]) + float(p[4]), p[7]))
    return out


def majority_speaker(span, turns):
    s, e = span
    overlap = {}
    for a, b, who in turns:
        overlap[who] = overlap.get(who, 0.0) + max(0.0, min(e, b) - max(s, a))
    best = max(overlap, key=overlap.__getitem__)
    return best if overlap[best] > 0 else None


def sentence_accuracy(spans, labels, turns):
    """Share of sentences labelled as the reference speaker they overlap most, best label map."""
    pairs = [(lab, majority_speaker(sp, turns)) for sp, lab in zip(spans, labels)]
    pairs = [p for p in pairs if p[1] is not None]
    speakers = sorted({r for _, r in pairs})
    best = 0
    for order in (speakers, speakers[::-1]):
        mapping = {f"S{i + 1}": spk for i, spk in enumerate(order)}
        best = max(best, sum(mapping.get(h) == r for h, r in pairs))
    return best / len(pairs)


def turn_accuracy(spans, labels, turns):
    """Share of reference speech time (10 ms frames, covered by a span) labelled right, best map;
    a frame where both talk is right for either. Where spans overlap, the nearer middle wins."""
    n = int(max(e for _, e, _ in turns) * 100) + 2
    ref = [set() for _ in range(n)]
    for a, b, who in turns:
        for k in range(round(a * 100), round(b * 100)):
            ref[k].add(who)
    hyp, dist = [None] * n, np.full(n, np.inf)
    for (s, e), lab in zip(spans, labels):
        mid = (s + e) * 50
        for k in range(max(0, round(s * 100)), min(n, round(e * 100))):
            if abs(k - mid) < dist[k]:
                hyp[k], dist[k] = lab, abs(k - mid)
    frames = [k for k in range(n) if ref[k] and hyp[k] is not None]
    speakers = sorted({t[2] for t in turns})
    best = 0
    for order in (speakers, speakers[::-1]):
        mapping = {f"S{i + 1}": spk for i, spk in enumerate(order)}
        best = max(best, sum(mapping.get(hyp[k]) in ref[k] for k in frames))
    return best / len(frames)


# ------------------------------------------------------------------ real recordings -----------
def test_two_voice_synthetic_call(sentence_voices):
    call = next(c for c in json.loads((DATA / "calls.json").read_text())["calls"]
                if c["name"] == "cancel_subscription")
    turns = [(t["start"], t["end"], t["speaker"]) for t in call["turns"]]
    spans, V = sentence_voices(DATA / "cancel-subscription-call.mp3")
    labels = assign_speakers(spans, V)
    assert len(spans) >= 10 and set(labels) == {"S1", "S2"}
    assert labels[0] == "S1"
    # measured 1.0 (18/18, 19/19 on another run); everyone S1 gets about half the sentences right
    # and so does a coin, so 0.85 (two or three wrong) is far above either on any CPU
    assert sentence_accuracy(spans, labels, turns) >= 0.85


def test_one_voice_gets_one_label(sentence_voices):
    spans, V = sentence_voices(DATA / "librivox-short.flac")
    assert len(spans) >= 1 and assign_speakers(spans, V) == ["S1"] * len(spans)


def test_each_pyannote_speaker_alone_is_one_speaker(sentence_voices):
    """The real call's two people, each on their own (their solo stretches, 0.6 s apart):
    telephone speech in 1-4 s sentences, the hardest one-voice case we have."""
    audio, turns = decode(str(ROOT / "examples" / "phone-call-human.flac")), rttm()
    gap = np.zeros(int(0.6 * SR), np.float32)
    for speaker in sorted({t[2] for t in turns}):
        mine = np.zeros(3001, bool)
        others = np.zeros(3001, bool)
        for a, b, who in turns:
            (mine if who == speaker else others)[round(a * 100):round(b * 100)] = True
        alone = np.flatnonzero(mine & ~others)
        runs = [r for r in np.split(alone, np.flatnonzero(np.diff(alone) != 1) + 1) if len(r) >= 30]
        clip = np.concatenate([gap] + [x for r in runs for x in (audio[r[0] * 160:(r[-1] + 1) * 160], gap)])
        spans, V = sentence_voices(clip)
        # how many sentences Whisper cuts differs between CPUs (3 to 5 seen); two are enough
        # to show that one voice is not split
        assert len(spans) >= 2
        assert set(assign_speakers(spans, V)) == {"S1"}, speaker


def test_pyannote_sample_call_turns(sentence_voices):
    """The real call: two labels, and more of the talk labelled right than by calling everyone
    S1. The baseline is measured on the same spans, so it moves with them when another CPU cuts
    the sentences elsewhere; an absolute bar (0.65 here before) does not, and failed at 0.62 on
    an AMD EPYC. The margin is 0.03 of the call's speech time, about a second. It is a weak bar
    on its own (the call has about 12 short sentences, and most random two-label assignments of
    them beat everyone-is-S1 too): test_two_voice_synthetic_call is the one that tells voices
    apart; this one keeps the real call from being labelled one speaker or worse than that."""
    turns = rttm()
    spans, V = sentence_voices(ROOT / "examples" / "phone-call-human.flac")
    labels = assign_speakers(spans, V)
    assert set(labels) == {"S1", "S2"}
    acc = turn_accuracy(spans, labels, turns)
    one = turn_accuracy(spans, ["S1"] * len(spans), turns)
    assert acc >= one + 0.03, (acc, one)  # measured 0.678 vs 0.563, 0.692 vs 0.558


# ------------------------------------------------------------------ edge cases ----------------
@pytest.fixture(scope="module")
def agent_customer(sentence_voices):
    """The longest sentence of each voice of the synthetic call: (span, vector) for each."""
    call = next(c for c in json.loads((DATA / "calls.json").read_text())["calls"]
                if c["name"] == "cancel_subscription")
    turns = [(t["start"], t["end"], t["speaker"]) for t in call["turns"]]
    spans, V = sentence_voices(DATA / "cancel-subscription-call.mp3")
    out = {}
    for who in ("AGENT", "CUSTOMER"):
        idx = [i for i, sp in enumerate(spans) if majority_speaker(sp, turns) == who]
        i = max(idx, key=lambda i: spans[i][1] - spans[i][0])
        out[who] = (spans[i], V[i])
    return out


def test_no_and_one_span():
    assert assign_speakers([], np.zeros((0, 256), np.float32)) == []
    v = np.ones((1, 256), np.float32) / 16
    assert assign_speakers([(3.0, 4.0)], v) == ["S1"]


def test_two_spans(agent_customer):
    (sa, va), (sc, vc) = agent_customer["AGENT"], agent_customer["CUSTOMER"]
    # the same voice twice -> one speaker
    assert assign_speakers([sa, (50.0, 54.0)], np.stack([va, va])) == ["S1", "S1"]
    # two voices, with the min-cluster rule off -> two speakers, numbered in time order
    o = DiarizeOptions(min_cluster_seconds=0)
    labels = assign_speakers([sa, sc], np.stack([va, vc]), o)
    assert labels == (["S1", "S2"] if sa[0] < sc[0] else ["S2", "S1"])
    # by default a voice needs 4 s of speech to count as a speaker: two short sentences are one
    short = [(0.0, 1.5), (2.0, 3.5)]
    assert assign_speakers(short, np.stack([va, vc])) == ["S1", "S1"]
    assert assign_speakers(short, np.stack([va, vc]), {"min_speakers": 2}) == ["S1", "S2"]


def test_labels_follow_time_not_input_order(agent_customer):
    va, vc = agent_customer["AGENT"][1], agent_customer["CUSTOMER"][1]
    spans = [(30.0, 36.0), (0.0, 6.0), (10.0, 16.0)]
    labels = assign_speakers(spans, np.stack([vc, va, va]), DiarizeOptions(min_cluster_seconds=0))
    assert labels == ["S2", "S1", "S1"]


def test_max_and_min_speakers_bound_the_count(sentence_voices):
    spans, V = sentence_voices(DATA / "cancel-subscription-call.mp3")
    assert set(assign_speakers(spans, V, DiarizeOptions(max_speakers=1))) == {"S1"}
    three = assign_speakers(spans, V, DiarizeOptions(min_speakers=3, threshold=2.0))
    assert set(three) == {"S1", "S2", "S3"}


def test_bad_input_is_refused():
    v = np.ones((2, 8), np.float32)
    with pytest.raises(InvalidInputError, match="one row per span"):
        assign_speakers([(0, 1)], v)
    with pytest.raises(InvalidInputError, match="finite"):
        assign_speakers([(0, 1), (1, 2)], np.full((2, 8), np.nan))
    with pytest.raises(InvalidInputError, match=r"\(start, end\)"):
        assign_speakers([(0, 1, 2), (1, 2, 3)], np.ones((2, 8)))
    with pytest.raises(InvalidInputError, match="end at or after"):
        assign_speakers([(0, 1), (2, 1)], v)
    with pytest.raises(InvalidInputError, match="min_speakers"):
        assign_speakers([(0, 1), (1, 2)], v, DiarizeOptions(min_speakers=3, max_speakers=2))
    with pytest.raises(InvalidInputError, match="threshold"):
        assign_speakers([(0, 1), (1, 2)], v, {"threshold": -0.1})
    with pytest.raises(InvalidInputError, match="valid fields"):
        assign_speakers([(0, 1), (1, 2)], v, {"treshold": 0.3})


# ------------------------------------------------------------------ the clustering itself -----
def test_matches_scipy_average_linkage(sentence_voices):
    """Unweighted and without the min-cluster rule, the clusters are scipy's average linkage
    cut at the threshold."""
    hierarchy = pytest.importorskip("scipy.cluster.hierarchy")
    from scipy.spatial.distance import pdist

    spans, V = sentence_voices(ROOT / "examples" / "phone-call-human.flac")
    spans2, V2 = sentence_voices(DATA / "cancel-subscription-call.mp3")
    for sp, X in ((spans, V), (spans2, V2), (spans + spans2, np.concatenate([V, V2]))):
        X = X.astype(np.float64)
        Z = hierarchy.linkage(pdist(X, "cosine"), "average")
        for th in (0.2, 0.31, 0.4):
            ref = hierarchy.fcluster(Z, th, "distance")
            got = assign_speakers(sp, X, DiarizeOptions(threshold=th, duration_weights=False,
                                                        min_cluster_seconds=0, max_speakers=len(X)))
            assert len(set(zip(ref, got))) == len(set(ref)) == len(set(got)), th


def test_long_recordings_cluster_a_sample_and_assign_the_rest():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(2, 64))
    n = MAX_CLUSTERED + 300
    truth = rng.integers(0, 2, n)
    V = np.abs(centres[truth] + 0.5 * rng.normal(size=(n, 64)))
    starts = np.cumsum(rng.uniform(1, 5, n))
    spans = [(float(s), float(s + rng.uniform(1, 6))) for s in starts]
    labels = np.array(assign_speakers(spans, V))
    assert set(labels) == {"S1", "S2"}
    agree = np.mean((labels == "S1") == (truth == truth[0]))
    assert agree == 1.0
