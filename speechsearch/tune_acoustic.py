"""Tuning the acoustic model: the same words, said by other voices over other lines, land close.

`Library.tune(acoustic=True)` trains a small residual head on the frame vectors of the index's
acoustic CNN (`embed.acoustic.TunedAcoustic`) with a contrastive loss. No labels are needed:

1. `read_units` cuts every indexed sentence out of its recording (one decode per file) and keeps
   its CNN frames and the words said in it.
2. `views` makes other renderings of a sample of those sentences: each one said again by
   `VOICINGS` voices of the offline synthesisers installed (`synth`: drawn voice, pitch and
   channel: noise at 10-20 dB SNR, telephone band, lossy codec, speed +-7 %), and the original
   recording sent through one drawn channel.
3. `train_head`: every rendering of a sentence must pick the other renderings of the same
   sentence out of a batch of sentences (supervised contrastive loss, temperature `TAU`) for
   `EPOCHS` epochs. A fifth of the sampled sentences is kept out of training: a head whose
   renderings of them find their indexed sentence no better than none (`synthetic_r1`) is not
   used. (Keeping the epoch that did best on them instead was worse on the dev set's real
   clips: cross-voice R@1 0.36 against 0.50-0.64; docs/tuning.md.)
4. The index's vectors are the head's pooled frames (`vectors`), centred on their own mean.

`audio_metrics` ranks labelled audio queries with a given acoustic collection and embedder, each
clip transcribed once, to judge the head on real clips before the index switches to it.
"""

from __future__ import annotations

import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import synth
from ._log import logger
from ._paths import os_path
from .audio import SAMPLE_RATE, decode, ffmpeg_decode, file_hash, probe, run_ffmpeg
from .errors import AudioError, InvalidInputError
from .transcripts import record_segments

__all__ = ["Units", "read_units", "views", "train_head", "vectors", "synthetic_r1", "audio_metrics",
           "SENTENCES", "VOICINGS", "EPOCHS", "TAU", "HIDDEN"]

SENTENCES = 300  # sampled sentences re-spoken per tune
VOICINGS = 4  # synthetic voices per sampled sentence (plus the original through another channel)
EPOCHS = 20
TAU = 0.1
HIDDEN = 512
LR = 1e-3
BATCH = 32  # sentences per step
HELD_SHARE = 0.2  # sampled sentences kept out of training, to choose the epoch
MIN_WORDS = 3
VOICES: Optional[Sequence[str]] = None  # engines or "engine:voice" to re-speak with (None: every one installed)


@dataclass
class Units:
    """The indexed sentences of an acoustic collection that could be cut from their audio."""

    ids: List[str] = field(default_factory=list)
    metadatas: List[Dict[str, Any]] = field(default_factory=list)
    frames: List[np.ndarray] = field(default_factory=list)  # base CNN frames of each
    texts: List[str] = field(default_factory=list)  # the words said in each
    audio: List[np.ndarray] = field(default_factory=list)  # kept only for the sampled ones
    missing: List[str] = field(default_factory=list)  # files whose audio is gone or changed


def _words(segments: Sequence[Any], start: float, end: float, channel: int) -> str:
    """The words said between `start` and `end` (in `channel`, when the file has several)."""
    out = []
    for s in segments:
        if channel >= 0 and s.channel not in (channel, -1) or s.end < start - 0.05 or s.start > end + 0.05:
            continue
        if s.words:
            out += [w.text.strip() for w in s.words if w.start >= start - 0.05 and w.end <= end + 0.05]
        else:
            out.append(s.text.strip())
    return " ".join(w for w in out if w)


def _decode(path: str, channel: Optional[int]) -> np.ndarray:
    if channel is None:
        return decode(path)
    done = run_ffmpeg(ffmpeg_decode(path, channel))
    if done.returncode != 0:
        raise AudioError(path, f"ffmpeg could not decode channel {channel}")
    return np.frombuffer(done.stdout, np.int16).astype(np.float32) / 32768.0


def read_units(catalog: Any, store: Any, base: Any, keep: float = 0.0, seed: int = 0,
               progress: Optional[Callable[[int], None]] = None) -> Units:
    """Every row of the acoustic collection `store`, cut from its file's audio (each file decoded
    once, per channel for files indexed channel by channel) and run through the `base` embedder's
    CNN. The audio of a `keep` share of the sentences 1-12 s long (drawn with `seed`) is kept, to
    be re-spoken. Files whose audio is missing or changed are listed in ``missing``."""
    rng = random.Random(seed)
    by_path: Dict[str, List[Tuple[str, Dict[str, Any]]]] = {}
    for page in store.iter_rows(embeddings=False):
        for i, m in zip(page["ids"], page["metadatas"]):
            by_path.setdefault(str(m["path"]), []).append((i, dict(m)))
    units = Units()
    for path, rows in sorted(by_path.items()):
        known = catalog.get_file(path)
        audio_path = os_path(path)
        if known is None or not os.path.exists(audio_path) or file_hash(audio_path) != known.hash:
            units.missing.append(path)
            continue
        segments = record_segments({"segments": catalog.transcript(path)}, path)
        multi = probe(audio_path).channels > 1
        decoded: Dict[Optional[int], np.ndarray] = {}
        for i, m in sorted(rows, key=lambda r: float(r[1]["start"])):
            channel = int(m.get("channel", -1))
            stream = channel if multi and channel >= 0 else None
            if stream not in decoded:
                decoded[stream] = _decode(audio_path, stream)
            a, b = int(float(m["start"]) * SAMPLE_RATE), int(float(m["end"]) * SAMPLE_RATE)
            clip = decoded[stream][max(0, a):max(0, b)]
            if len(clip) < SAMPLE_RATE // 4:
                continue
            units.ids.append(i)
            units.metadatas.append(m)
            units.frames.append(base.frames(clip))
            units.texts.append(_words(segments, float(m["start"]), float(m["end"]), channel))
            kept = SAMPLE_RATE <= len(clip) <= 12 * SAMPLE_RATE and rng.random() < keep
            units.audio.append(clip.copy() if kept else np.zeros(0, np.float32))
        if progress is not None:
            progress(len(rows))
    return units


def sample(units: Units, n: int, seed: int) -> List[int]:
    """Up to `n` units to re-speak: their audio kept, at least MIN_WORDS words, drawn with `seed`."""
    ok = [i for i, (a, t) in enumerate(zip(units.audio, units.texts)) if len(a) and len(t.split()) >= MIN_WORDS]
    random.Random(seed).shuffle(ok)
    return sorted(ok[:n])


def views(units: Units, chosen: Sequence[int], voices: Sequence[synth.Voice], base: Any, seed: int,
          voicings: int = VOICINGS, progress: Optional[Callable[[int], None]] = None
          ) -> List[Tuple[int, np.ndarray, str]]:
    """(unit, base frames, how it was made) for each rendering of the `chosen` units: `voicings`
    synthetic voices each (drawn from `voices`), and the original through a drawn channel. A
    rendering the synthesiser fails on is left out (logged)."""
    rng = random.Random(seed)
    base_frames = base.frames
    jobs = [(u, units.texts[u], random.Random(rng.randrange(1 << 30))) for u in chosen for _ in range(voicings)]
    jobs += [(u, None, random.Random(rng.randrange(1 << 30))) for u in chosen]

    def render(job: Tuple[int, Optional[str], random.Random]) -> Optional[Tuple[int, np.ndarray, str]]:
        u, text, r = job
        try:
            if text is None:
                channel = synth.draw_channel(r)
                audio = synth.augment(units.audio[u], channel, r.randrange(1 << 30), units.ids[u])
                return u, base_frames(audio), f"original; {channel}"
            audio, how = synth.revoice(text, r, voices)
            return u, base_frames(audio), how
        except Exception as e:  # one bad rendering costs one example, not the tune
            logger.warning("tune: could not render %r: %s", text or units.ids[u], e)
            return None
        finally:
            if progress is not None:
                progress(1)

    with ThreadPoolExecutor(2) as pool:  # the synthesisers and ffmpeg are separate processes
        return [v for v in pool.map(render, jobs) if v is not None]


def _torch_pool(head: Any, X: Any, M: Any) -> Any:
    import torch

    F = torch.nn.functional
    Y = X if head is None else head(X)
    count = M.sum(1)
    mean = (Y * M).sum(1) / count
    std = (((Y - mean[:, None]) ** 2 * M).sum(1) / count).clamp_min(1e-10).sqrt()
    return F.normalize(torch.cat([F.normalize(mean, dim=1), F.normalize(std, dim=1)], 1), dim=1)


def _pad(frames: Sequence[np.ndarray]) -> Tuple[Any, Any]:
    import torch

    n = max(len(f) for f in frames)
    X = torch.zeros(len(frames), n, frames[0].shape[1])
    M = torch.zeros(len(frames), n, 1)
    for i, f in enumerate(frames):
        X[i, :len(f)] = torch.from_numpy(np.asarray(f, np.float32))
        M[i, :len(f)] = 1.0
    return X, M


def _pooled(head: Any, frames: Sequence[np.ndarray], batch: int = 256) -> Any:
    import torch

    with torch.no_grad():
        return torch.cat([_torch_pool(head, *_pad(frames[i:i + batch])) for i in range(0, len(frames), batch)])


def synthetic_r1(head: Any, units: Units, rendered: Sequence[Tuple[int, np.ndarray, str]]) -> float:
    """Share of the synthetic renderings (not the originals) whose nearest indexed sentence,
    among all of them, is the one they say (with `head`, or the base frames when None)."""
    import torch

    rendered = [v for v in rendered if not v[2].startswith("original")]
    if not rendered:
        return 0.0
    index = _pooled(head, units.frames)
    centre = index.mean(0)
    index = torch.nn.functional.normalize(index - centre, dim=1)
    queries = torch.nn.functional.normalize(_pooled(head, [v[1] for v in rendered]) - centre, dim=1)
    found = (queries @ index.T).argmax(1).numpy()
    return float(np.mean(found == np.array([v[0] for v in rendered])))


def _head_module(dim: int, hidden: int) -> Any:
    import torch

    class Head(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w1 = torch.nn.Linear(dim, hidden)
            self.w2 = torch.nn.Linear(hidden, dim)
            torch.nn.init.zeros_(self.w2.weight)  # starts as the identity: the base model
            torch.nn.init.zeros_(self.w2.bias)

        def forward(self, f: Any) -> Any:
            return f + self.w2(torch.nn.functional.gelu(self.w1(f), approximate="tanh"))

    return Head()


def train_head(units: Units, rendered: Sequence[Tuple[int, np.ndarray, str]], seed: int = 0,
               epochs: int = EPOCHS, tau: float = TAU, hidden: int = HIDDEN, lr: float = LR,
               keep: str = "last") -> Dict[str, Any]:
    """Train the head (see the module docstring) for `epochs`; `keep` "last" keeps the last epoch's
    head, "best" the one whose kept-out sentences' renderings found their sentence best. Returns
    its numpy parameters ("w1", "b1", "w2", "b2", "centre": the mean pooled vector of the index
    through it), the loss and the kept-out R@1 per epoch, the kept-out R@1 before and with the
    head kept ("improved": higher), and the split."""
    import copy

    import torch

    torch.manual_seed(seed)
    sentences = sorted({v[0] for v in rendered})
    random.Random(seed).shuffle(sentences)
    held = set(sentences[:max(1, int(len(sentences) * HELD_SHARE))])
    train = [u for u in sentences if u not in held]
    if len(train) < 8:
        raise InvalidInputError(f"only {len(sentences)} sentences could be re-spoken; the acoustic model needs "
                                "at least 10 sentences of 3 words or more")
    by: Dict[int, List[np.ndarray]] = {}
    for u, frames, _ in rendered:
        by.setdefault(u, []).append(frames)
    held_views = [v for v in rendered if v[0] in held]
    head = _head_module(units.frames[0].shape[1], hidden)
    optimiser = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-2)
    rng = random.Random(seed)
    before = synthetic_r1(None, units, held_views)
    best, best_epoch, best_state, losses, curve = before, 0, None, [], []
    for epoch in range(1, epochs + 1):
        rng.shuffle(train)
        total, steps = 0.0, 0
        head.train()
        for at in range(0, len(train), BATCH):
            frames, labels = [], []
            for u in train[at:at + BATCH]:
                for f in [units.frames[u]] + by[u]:
                    frames.append(f)
                    labels.append(u)
            z = _torch_pool(head, *_pad(frames))
            z = torch.nn.functional.normalize(z - z.mean(0, keepdim=True).detach(), dim=1)
            lab = torch.tensor(labels)
            eye = torch.eye(len(labels))
            positive = (lab[:, None] == lab[None, :]).float() - eye
            logits = z @ z.T / tau - eye * 1e9
            logp = logits - torch.logsumexp(logits, 1, keepdim=True)
            loss = -((logp * positive).sum(1) / positive.sum(1).clamp_min(1.0)).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total, steps = total + float(loss.detach()), steps + 1
        losses.append(round(total / max(1, steps), 4))
        head.eval()
        r1 = synthetic_r1(head, units, held_views)
        curve.append(round(r1, 4))
        if r1 > best or (keep == "last" and epoch == epochs):
            best, best_epoch, best_state = r1, epoch, copy.deepcopy(head.state_dict())
    if best_state is not None:
        head.load_state_dict(best_state)
    centre = _pooled(head if best_state is not None else None, units.frames).mean(0).numpy()
    params = {"w1": head.w1.weight.detach().numpy().T.copy(), "b1": head.w1.bias.detach().numpy().copy(),
              "w2": head.w2.weight.detach().numpy().T.copy(), "b2": head.w2.bias.detach().numpy().copy(),
              "centre": centre.astype(np.float32)}
    return {"params": params, "losses": losses, "held_before": round(before, 4), "held_after": round(best, 4),
            "epoch": best_epoch, "improved": best_state is not None and best > before, "held_curve": curve,
            "train_sentences": len(train),
            "held_sentences": len(held), "renderings": len(rendered)}


def vectors(embedder: Any, units: Units, batch: int = 512) -> np.ndarray:
    """The stored vectors of `units` with `embedder` (a `TunedAcoustic`, or the base embedder),
    from the base frames kept in `units`."""
    head = getattr(embedder, "head", None)
    out = [embedder.pool(head(f) if head is not None else f) for f in units.frames]
    return np.stack(out).astype(np.float32) if out else np.zeros((0, embedder.dim), np.float32)


def audio_metrics(lib: Any, queries: Sequence[Dict[str, Any]],
                  variants: Sequence[Tuple[Any, Any]]) -> List[Dict[str, Dict[str, Any]]]:
    """For each (acoustic store, embedder) of `variants`: the labelled audio `queries` ranked as
    `Library.search_audio` ranks them (fused, and "acoustic/<kind>": the acoustic signal
    alone), metrics per query kind. Each clip is decoded and transcribed once."""
    from .audio import load_clip
    from .evaluate import judge
    from .search import ranked_search
    from .tune import metrics_by_type

    prepared = []
    for q in queries:
        audio = load_clip(q["clip"], None, lib._pipeline.decoder)
        segments, _ = lib._pipeline.transcriber.transcribe(audio)
        text = " ".join(s.text for s in segments).strip()
        vector = lib._pipeline.embedder.encode_query(text) if text else None
        prepared.append((q, audio, text, vector))
    fusion = lib.fusion.for_audio()
    signals = ("text", "context", "lexical", "acoustic")
    out = []
    for store, embedder in variants:
        outcomes = []
        for q, audio, text, vector in prepared:
            t0 = time.perf_counter()
            a = embedder.embed(audio)
            common = dict(where=None, text=text, acoustic_store=store, acoustic_vector=a,
                          context_store=lib._contexts())
            fused = ranked_search(lib._text_store(), lib._catalog, 10, fusion=fusion,
                                  signals=signals if text else ("acoustic",), text_vector=vector, **common)
            outcomes.append(judge(q, fused, "fused", time.perf_counter() - t0))
            alone = ranked_search(lib._text_store(), lib._catalog, 10, fusion=fusion, signals=("acoustic",),
                                  **common)
            o = judge(q, alone, "acoustic", 0.0)
            outcomes.append(replace(o, group="acoustic/" + o.group.split("/", 1)[1]))
        out.append(metrics_by_type(outcomes))
    return out
