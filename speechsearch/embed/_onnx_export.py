"""One-time export of a sentence-transformers folder to INT8 ONNX (used by onnx_text for
all-mpnet-base-v2). Needs torch, transformers and onnx, which only the export imports."""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Any, Dict, Sequence

import numpy as np

from .._log import logger
from ..errors import MissingDependencyError, ModelError
from .onnx_text import _VERIFY, MIN_EXPORT_COSINE, OnnxSpec, OnnxTextEmbedder, _publish

OPSET = 17
EXPORT_PIP = "pip install onnx==1.23.2 onnx-ir==1.1.0"
MIN_QUERY_COSINE = 0.9999  # fp32 export: the same vectors as torch up to rounding
RECIPE = ("int8: attention projections QInt8 per-channel (quantize_dynamic); feed-forward layers 8-bit "
          "weights in blocks of 128 with int8 compute (MatMulNBits, accuracy_level 4)")


def quantize_int8(fp32: Path, out: Path) -> None:
    """INT8 weights that keep the model's vectors (cosine > 0.99 with fp32).

    Plain ``quantize_dynamic`` on every MatMul gives cosine 0.71-0.81 against fp32 on MPNet: the
    feed-forward layers' activations have outlier channels that one per-tensor activation scale
    cannot hold (the down projection after GELU most of all). So the feed-forward MatMuls get
    8-bit block-wise weights whose activations are quantised per block of 128 at run time
    (MatMulNBits), and the attention projections the usual dynamic QInt8 per-channel weights.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.matmul_nbits_quantizer import (DefaultWeightOnlyQuantConfig,
                                                                 MatMulNBitsQuantizer)

    model = onnx.load(str(fp32))
    matmuls = [n.name for n in model.graph.node if n.op_type == "MatMul"]
    attention = [n for n in matmuls if "/dense/" not in n]  # q, k, v, o and the score products
    config = DefaultWeightOnlyQuantConfig(block_size=128, is_symmetric=True, accuracy_level=4, bits=8)
    q = MatMulNBitsQuantizer(model, bits=8, block_size=128, is_symmetric=True, accuracy_level=4,
                             algo_config=config, nodes_to_exclude=attention)
    q.process()
    mid = out.with_name("ffn-nbits.onnx")
    q.model.save_model_to_file(str(mid), False)
    quantize_dynamic(str(mid), str(out), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul"])
    mid.unlink()


def _torch_vectors(model: Any, tokenizer: Any, spec: OnnxSpec, texts: Sequence[str]) -> np.ndarray:
    """The reference: the torch model, pooled and normalised as sentence-transformers does."""
    import torch

    from .onnx_text import pad_batch, pad_id, pool

    enc = tokenizer.encode_batch(list(texts))
    feeds = pad_batch(enc, pad_id(tokenizer), ("input_ids", "attention_mask"))
    with torch.inference_mode():
        hidden = model(input_ids=torch.from_numpy(feeds["input_ids"]),
                       attention_mask=torch.from_numpy(feeds["attention_mask"])).last_hidden_state
    return pool(hidden.numpy(), feeds["attention_mask"], spec.pooling)


def export_int8(src: Path, target: Path, spec: OnnxSpec) -> Dict[str, Any]:
    """Export `src` (a transformers/sentence-transformers folder) to ONNX with dynamic batch and
    sequence axes, quantise its weights to INT8, check it against torch and publish `target`."""
    try:
        import onnx  # noqa: F401  (quantize_dynamic needs it)
        import onnx_ir  # noqa: F401  (the MatMulNBits quantiser needs it)
        import onnxruntime
        import torch
        import transformers
    except ImportError as e:
        raise MissingDependencyError(f"building the ONNX {spec.name} needs torch, transformers, onnx and "
                                     f"onnx-ir ({e}): {EXPORT_PIP}") from e
    from .onnx_text import load_tokenizer

    t0 = time.perf_counter()
    logger.warning("exporting %s to INT8 ONNX in %s (once; a minute or two)", spec.name, target)
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        model = transformers.AutoModel.from_pretrained(str(src), attn_implementation="eager").eval()
        tokenizer = load_tokenizer(src / "tokenizer.json", spec.max_tokens)
        # before the export: tracing leaves this transformers model computing other vectors
        reference = _torch_vectors(model, tokenizer, spec, _VERIFY)

        fp32 = tmp / "fp32.onnx"
        export_fp32(model, tokenizer, fp32)
        quantize_int8(fp32, tmp / "model.onnx")
        for f in tmp.iterdir():
            if f.name != "model.onnx":
                f.unlink()
        for f in ("tokenizer.json", "config.json", "sentence_bert_config.json", "1_Pooling/config.json",
                  "README.md"):
            if (src / f).exists():
                shutil.copyfile(src / f, tmp / f.replace("/", "_"))

        check = OnnxTextEmbedder(spec.name, device="cpu", folder=tmp).encode(list(_VERIFY), threads=1)
        cosines = (reference * check).sum(1)
        info = {
            "model": spec.name, "source": str(src), "weights": RECIPE,
            "opset": OPSET, "torch": torch.__version__, "transformers": transformers.__version__,
            "onnxruntime": onnxruntime.__version__, "cosine_vs_torch_min": round(float(cosines.min()), 5),
            "cosine_vs_torch_mean": round(float(cosines.mean()), 5), "sentences": len(_VERIFY),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        _keep_if_close(tmp, cosines, MIN_EXPORT_COSINE, f"the INT8 ONNX export of {spec.name}", info)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _publish(tmp, target, ("model.onnx", "tokenizer.json"))
    logger.info("exported %s: cosine vs torch min %.4f, %.0f s", spec.name, info["cosine_vs_torch_min"],
                info["seconds"])
    return info


def _keep_if_close(tmp: Path, cosines: np.ndarray, minimum: float, what: str, info: Dict[str, Any]) -> None:
    """Record `info` beside an export whose vectors match torch's (every cosine >= `minimum`),
    else raise: the caller removes the folder."""
    if cosines.min() < minimum:
        raise ModelError(f"{what} disagrees with the torch model (cosine {cosines.min():.6f} < {minimum}); "
                         f"not kept. Versions: {info}")
    (tmp / "export.json").write_text(json.dumps(info, indent=1))


def export_fp32(model: Any, tokenizer: Any, path: Path) -> None:
    """Export a transformers encoder to ONNX (fp32) giving its last hidden state, with dynamic
    batch and sequence axes."""
    import torch

    from .onnx_text import pad_batch, pad_id

    class LastHidden(torch.nn.Module):
        def __init__(self, m: Any):
            super().__init__()
            self.m = m

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    sample = pad_batch(tokenizer.encode_batch(list(_VERIFY[:2])), pad_id(tokenizer), ("input_ids", "attention_mask"))
    axes = {0: "batch", 1: "sequence"}
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shapes and indexing, not ours to act on
        torch.onnx.export(LastHidden(model), (torch.from_numpy(sample["input_ids"]),
                                              torch.from_numpy(sample["attention_mask"])),
                          str(path), input_names=["input_ids", "attention_mask"],
                          output_names=["last_hidden_state"], opset_version=OPSET, dynamo=False,
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
                          do_constant_folding=True)


def export_query_encoder(src: Path, target: Path, max_tokens: int, reference: Any) -> Dict[str, Any]:
    """Export the mean-pooled sentence-transformers model in `src` to fp32 ONNX for single queries
    (about 2.5x faster than torch for one short text on one thread), check that it gives the
    vectors `reference(texts)` gives (cosine >= MIN_QUERY_COSINE) and publish `target`."""
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
        import onnxruntime
        import torch
        import transformers
    except ImportError as e:
        raise MissingDependencyError(f"the ONNX query encoder needs onnx and onnxruntime ({e})") from e
    from .onnx_text import load_tokenizer, pad_batch, pad_id, pool

    t0 = time.perf_counter()
    logger.info("exporting the query encoder of %s to ONNX in %s (once)", src.name, target)
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        model = transformers.AutoModel.from_pretrained(str(src), attn_implementation="eager").eval()
        tokenizer = load_tokenizer(src / "tokenizer.json", max_tokens)
        export_fp32(model, tokenizer, tmp / "model.onnx")
        shutil.copyfile(src / "tokenizer.json", tmp / "tokenizer.json")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(tmp / "model.onnx"), options, providers=["CPUExecutionProvider"])
        got = []
        for text in _VERIFY:
            feeds = pad_batch([tokenizer.encode(text)], pad_id(tokenizer), ("input_ids", "attention_mask"))
            got.append(pool(session.run(None, feeds)[0], feeds["attention_mask"], "mean")[0])
        cosines = (np.stack(got) * np.asarray(reference(list(_VERIFY)))).sum(1)
        info = {"source": str(src), "max_tokens": max_tokens, "opset": OPSET, "torch": torch.__version__,
                "transformers": transformers.__version__, "onnxruntime": onnxruntime.__version__,
                "cosine_vs_torch_min": round(float(cosines.min()), 6), "sentences": len(_VERIFY),
                "seconds": round(time.perf_counter() - t0, 1)}
        _keep_if_close(tmp, cosines, MIN_QUERY_COSINE, f"the ONNX query encoder of {src.name}", info)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _publish(tmp, target, ("model.onnx", "tokenizer.json"))
    return info
