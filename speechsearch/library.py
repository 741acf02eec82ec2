"""`Library`: the facade. It checks its input, then hands off to the stages."""

from __future__ import annotations

import functools
import json
import os
import time
import uuid
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union, overload

import numpy as np

from ._log import logger
from ._paths import stored_path, to_path
from .audio import check_decoder, check_readable, decode, load_clip
from .catalog import Catalog
from .embed.acoustic import model_id as acoustic_model_id
from .embed.text import get_text_embedder
from .erase import collection_kind, files_matching, remove_files
from .errors import (
    AudioError,
    IndexingError,
    InvalidInputError,
    ModelMismatchError,
    NotIndexedError,
    SpeechSearchError,
    StoreError,
)
from .commit import record_models, update_metadata
from .filters import build_where
from .ingest import ingest
from .metadata import check_metadata, field_types
from .pipeline import build_pipeline, check_model, choose_acoustic, choose_voice, pipeline_spec
from .reindex import backfill_acoustic, reembed
from .transcripts import import_records, record_segments, write_records
from .models import DEFAULT_TEXT_MODEL, DEFAULT_WHISPER, preset, text_model_id, whisper_model_id
from .options import TranscribeOptions, VadOptions, WindowOptions, as_dict, coerce
from .fusion import FusionOptions
from .search import ranked_search
from .lock import writer_lock
from .store import ChromaStore, choose_store, collection_names, collection_prefix, vacuum_embedded
from .transcribe import ENGINES
from .types import AddReport, CompactReport, FileInfo, Hit, RemoveReport, Segment, Topic

if TYPE_CHECKING:  # pragma: no cover
    from .tune import TuneReport

__all__ = ["Library"]

PathLike = Union[str, "os.PathLike[str]"]
DEFAULT_INDEX = "speechsearch.idx"
# fields every window has, filterable beside the user's metadata
TEXT_SIGNALS = ("text", "context", "lexical")  # what `search` fuses by default
BUILTIN_FIELDS = {"path": "string", "start": "number", "end": "number", "channel": "number",
                  "speaker": "string", "language": "string"}


def _writes(what: str, alone: bool = False) -> Any:
    """Run the method under the index's writer lock (`Library._writing`)."""
    def wrap(method: Any) -> Any:
        @functools.wraps(method)
        def locked(self: "Library", *args: Any, **kwargs: Any) -> Any:
            with self._writing(what, alone):
                return method(self, *args, **kwargs)
        return locked
    return wrap


class Library:
    """A searchable index of spoken audio, stored in one directory.

    >>> lib = Library("calls.idx")           # created if missing; loads no model yet
    >>> lib = Library("calls.idx", quality="best")  # a preset: Whisper base + all-mpnet-base-v2
    >>> report = lib.add("recordings/")      # a file or a folder (recursive)
    >>> hits = lib.search("refund request", k=5)

    Models load on first use, once. `quality` names a preset of both models ("fast": Whisper
    tiny.en + all-MiniLM-L6-v2; "best": Whisper base + all-mpnet-base-v2; docs/evaluation.md
    has their speed and quality); `model` and `text_model` name them one by one. An existing
    index remembers which models built it; leave them unset to use those, or name the same
    ones. Naming others fails with ModelMismatchError rather than mixing incompatible vectors.

    Vectors live in an embedded Chroma store inside the directory (one writing process at a time;
    a second gets IndexLockedError), or on a Chroma server with ``chroma_url="http://host:8000"``
    (default ``$SPEECHSEARCH_CHROMA_URL``; several writers), the catalogue staying in the
    directory. An index is always reopened with the store it was built in (docs/scaling.md).
    """

    def __init__(
        self,
        path: PathLike = DEFAULT_INDEX,
        *,
        model: Optional[str] = None,
        text_model: Optional[str] = None,
        quality: Optional[str] = None,
        transcriber: Any = None,
        device: str = "auto",
        transcribe_options: Union[TranscribeOptions, Mapping[str, Any], None] = None,
        vad: Union[VadOptions, Mapping[str, Any], None] = None,
        windows: Union[WindowOptions, Mapping[str, Any], None] = None,
        decoder: str = "auto",
        fusion: Union[FusionOptions, Mapping[str, Any], None] = None,
        acoustic: Any = "auto",
        voice: Any = False,
        channels: Any = None,
        diarize: Optional[bool] = None,
        redact: Optional[bool] = None,
        show_progress: bool = False,
        chroma_url: Optional[str] = None,
    ):
        self.path = Path(os.path.abspath(os.fspath(path)))
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(f"{self.path}: exists and is not a directory; give Library a directory path")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"{self.path}: cannot create the index directory ({e})") from e
        check_decoder(decoder)
        self.show_progress = show_progress
        self._catalog = Catalog(self.path / "catalog.sqlite3")
        # vectors: embedded Chroma in the directory, or a Chroma server (docs/scaling.md)
        self._server, record = choose_store(self.path, chroma_url, self._catalog.get_meta("store_url"),
                                            self._catalog.has_files())
        if record is not None:
            self._catalog.set_meta({"store_url": record})
        index_id = self._catalog.setdefault_meta("index_id", uuid.uuid4().hex)
        self._prefix = collection_prefix(index_id) if self._server is not None else ""
        self._writer = writer_lock(self.path)
        # `reindex` writes a new text collection and then points the catalogue at it
        self._store = self._vectors(self._catalog.get_meta("windows_collection") or "windows")
        self._context_store = self._vectors(self._catalog.get_meta("context_collection") or "context")
        self._acoustic_store = self._vectors(self._catalog.get_meta("acoustic_collection") or "acoustic")
        self._voice_store = self._vectors(self._catalog.get_meta("voice_collection") or "voice")

        recorded = {k: self._catalog.get_meta(k)
                    for k in ("asr_engine", "asr_model", "text_model", "acoustic_model", "voice_model")}
        if quality is not None:  # a preset names both models; explicit names win
            preset_asr, preset_text = preset(quality)
            model, text_model = model or preset_asr, text_model or preset_text
        recorded["text_model"] = self._here(recorded["text_model"])
        model = check_model("asr_model", model, whisper_model_id, recorded["asr_model"], DEFAULT_WHISPER, self.path)
        text_model = check_model("text_model", text_model, text_model_id, recorded["text_model"],
                                 DEFAULT_TEXT_MODEL, self.path)
        self.fusion = _fusion_for(fusion, text_model_id(text_model))
        self._fusion_given = fusion is not None
        if not self._fusion_given:  # weights a `tune` fitted to this index's labels, for its text model
            self.fusion = _tuned(self.fusion, self._catalog, text_model_id(text_model))
        options = coerce(TranscribeOptions, transcribe_options)
        # redaction and diarization stay as the index was built unless said otherwise
        redact = self._catalog.get_meta("redact") == "1" if redact is None else bool(redact)
        diarize = self._catalog.get_meta("diarize") == "1" if diarize is None else bool(diarize)
        if transcriber is None:  # the engine that built the index, else the default
            transcriber = recorded["asr_engine"] if recorded["asr_engine"] in ENGINES else "faster-whisper"
        self._pipeline = build_pipeline(
            transcriber=transcriber, model=model, text_model=text_model, device=device, transcribe_options=options,
            vad=vad, windows=windows, decoder=decoder,
            acoustic=choose_acoustic(acoustic, recorded["acoustic_model"], self._catalog, self.path),
            voice=choose_voice(voice, recorded["voice_model"], self.path),
            channels=channels, diarize=diarize, redact=redact)
        engine = self._pipeline.transcriber.engine
        if recorded["asr_engine"] is not None and recorded["asr_engine"] != engine:
            raise ModelMismatchError(
                f"{self.path} was built with the {recorded['asr_engine']!r} engine, not {engine!r}; "
                "open it with that engine or index into a new directory")
        self.options = {"transcribe": as_dict(options), "vad": as_dict(self._pipeline.vad),
                        "windows": as_dict(self._pipeline.windows), "decoder": decoder,
                        "channels": self._pipeline.channels, "diarize": bool(diarize), "redact": bool(redact)}

    def _here(self, name: Optional[str]) -> Optional[str]:
        """A text model a `tune` saved inside this index (``<index>/models/text-N``), found where
        the index is now: an index moved or copied elsewhere keeps its tuned model."""
        if name and "/models/text-" in name.replace(os.sep, "/"):
            local = self.path / "models" / os.path.basename(name.rstrip("/" + os.sep))
            if local.is_dir():
                return str(local)
        return name

    def pipeline_spec(self, cpus_per_worker: int = 1) -> Dict[str, Any]:
        """The keyword arguments that rebuild this library's indexing pipeline in another process
        with :func:`speechsearch.pipeline.build_pipeline` (engine, models, options, channels,
        redaction, diarization), Whisper set to use `cpus_per_worker` cores. Models travel by
        name: a transcriber given as an instance cannot be sent (InvalidInputError)."""
        return pipeline_spec(self._pipeline, cpus_per_worker)

    # -- the store and the writer lock ------------------------------------------------------------
    def _vectors(self, collection: str) -> ChromaStore:
        return ChromaStore(self.path / "chroma", collection=collection, server=self._server, prefix=self._prefix)

    def _text_store(self) -> ChromaStore:
        """The text collection the catalogue names now (another process may have reindexed, or
        tuned: then its text model comes with it, so a query is never embedded by another model
        than the windows it is compared with)."""
        name = self._catalog.get_meta("windows_collection") or "windows"
        if name != self._store.collection_name:
            self._store = self._vectors(name)
            model = self._here(self._catalog.get_meta("text_model"))
            if model and model != self._pipeline.embedder.model_name:
                self._pipeline.embedder = get_text_embedder(model, device=self._pipeline.embedder.device)
                if not self._fusion_given:
                    self.fusion = _tuned(FusionOptions.fitted(model), self._catalog, model)
                logger.info("%s: now searched with the text model %s (switched by another process)", self.path, model)
        return self._store

    def _acoustic(self) -> ChromaStore:
        """The acoustic collection the catalogue names now (`compact` rebuilds it under a new name;
        a `tune` or `untune` in another process changes its acoustic model with it)."""
        name = self._catalog.get_meta("acoustic_collection") or "acoustic"
        if name != self._acoustic_store.collection_name:
            self._acoustic_store = self._vectors(name)
            recorded = self._catalog.get_meta("acoustic_model")
            current = self._pipeline.acoustic
            if recorded and (current is None or acoustic_model_id(current) != recorded):
                self._pipeline.acoustic = choose_acoustic("auto", recorded, self._catalog, self.path)
        return self._acoustic_store

    def _voice(self) -> ChromaStore:
        """The voice collection the catalogue names now."""
        name = self._catalog.get_meta("voice_collection") or "voice"
        if name != self._voice_store.collection_name:
            self._voice_store = self._vectors(name)
        return self._voice_store

    def _contexts(self) -> Optional[ChromaStore]:
        """The context collection, when every file of the index has context units: an index
        built before they existed has none until `reindex()`, and then the signal is off rather
        than favouring the files added since."""
        if self._catalog.get_meta("contexts") != "1":
            return None
        return self._context_collection()

    def _context_collection(self) -> ChromaStore:
        """The context collection the catalogue names now, whether or not the signal is on."""
        name = self._catalog.get_meta("context_collection") or "context"
        if name != self._context_store.collection_name:
            self._context_store = self._vectors(name)
        return self._context_store

    @contextmanager
    def _writing(self, what: str, alone: bool = False) -> Iterator[None]:
        """Hold the writer lock for one write call (lock.py). With the embedded store it is
        exclusive: a second writing process gets IndexLockedError at once. With a server, writers
        share it and only `alone` (reindex, which swaps collections) excludes the others."""
        if self._server is None:
            hold = self._writer.hold(what)
        else:
            hold = self._writer.hold(what, shared=not alone, hint="Wait for it to finish: reindex swaps the "
                                     "index's collections and runs alone, even with a Chroma server")
        with hold:
            store = self._text_store()
            if self._server is not None:
                store.count()  # a server that is down fails here, before any audio is decoded
            yield

    # -- writing ------------------------------------------------------------------------------
    @_writes("add")
    def add(self, paths: Union[PathLike, Iterable[PathLike]], metadata: Optional[Dict[str, Any]] = None,
            manifest: Optional[PathLike] = None, *, processor: Any = None) -> AddReport:
        """Index a file, a folder (recursively) or a list of them.

        Files already indexed with the same content are skipped; changed files are indexed again
        and their old windows replaced once the new ones are stored. Bad files do not stop the
        batch: they are listed in ``report.failed`` with the reason. `metadata` is attached to every
        window of every file added by this call and returned on hits; without it, a file indexed
        before keeps the metadata it had. `manifest` is a CSV or JSONL file with a ``path``
        column and per-file fields (call_id, agent, started_at, channels, ...) laid over `metadata`.
        A ``channels`` entry (``"agent,customer"``) labels the channels of that file.
        `processor` runs the files elsewhere (see :func:`speechsearch.distributed.ingest`).
        """
        if isinstance(paths, (str, bytes, os.PathLike)):
            items = [paths]
        else:
            try:
                items = list(paths)
            except TypeError:
                raise InvalidInputError(f"add() needs a file or folder path, or a list of them; got "
                                        f"{type(paths).__name__}") from None
        items = [to_path(p) for p in items]
        if not items:
            raise InvalidInputError("add() needs at least one file or folder")
        if metadata is not None and not isinstance(metadata, dict):
            raise InvalidInputError(f"metadata must be a dict, got {type(metadata).__name__}")
        meta = dict(metadata) if metadata is not None else None  # None: re-added files keep theirs
        rows = None
        if manifest is not None:
            from .filters import read_manifest

            rows = read_manifest(manifest)
        self._record_models()
        bar = None
        if self.show_progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=0, unit="s", unit_scale=False, desc="indexing", dynamic_ncols=True,
                       bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}{postfix}]")
        try:
            with _unexpected(f"{self.path}: add"):
                report = ingest(items, self._catalog, self._text_store(), self._pipeline,
                                meta, bar, self._acoustic(), self._voice(), rows, processor,
                                self._contexts())
        finally:
            if bar is not None:
                bar.close()
        report.options = dict(self.options, models=self._pipeline.models)
        logger.info("%s", report.summary())
        self._calls_follow(report)
        return report

    def _calls_follow(self, report: AddReport) -> None:
        """Once `similar` or `topics` has been used on this index, bring the call vectors up to
        date after an add, so the second model embeds the new calls' units now and not at the
        next `similar` (never fails the add)."""
        if not report.added or self._catalog.get_meta("call_vectors") != "1":
            return
        try:
            self._calls(None, None)
        except Exception as e:  # the next similar() or topics() tries again
            logger.warning("%s: call vectors not updated after the add (%s); similar() will do it", self.path, e)

    def _record_models(self) -> None:
        record_models(self._catalog, self._pipeline)

    @overload
    def remove(self, path: PathLike) -> int: ...

    @overload
    def remove(self, path: Optional[PathLike] = None, *, where: Dict[str, Any]) -> RemoveReport: ...

    @_writes("remove")
    def remove(self, path: Optional[PathLike] = None, *, where: Optional[Dict[str, Any]] = None
               ) -> Union[int, RemoveReport]:
        """Remove a file, or every indexed file under a folder, or every file whose metadata
        match `where` (any or all of them: `path` and `where` together remove the files under
        `path` that match), from the catalogue (windows, BM25 index, transcript, metadata) and
        every vector collection (text, context, acoustic, voice).

        ``lib.remove(where={"customer_id": "C-1042"})`` erases one customer's calls: the filter
        is a search filter (docs/filters.md) on the metadata the files were added with, their
        ``path`` or ``language``; it returns a RemoveReport naming the files and counting the rows
        deleted (none is not an error). With a path alone it returns the number of files removed,
        and a path the index does not hold is a NotIndexedError. What was deleted stays in the
        files' free space until :meth:`compact` (docs/privacy.md)."""
        if path is None and where is None:
            raise InvalidInputError("remove() needs a path, or where={...} to remove the files whose metadata "
                                    "match, e.g. where={'customer_id': 'C-1042'}")
        if path is not None:
            target = _key(path)
            infos = self._catalog.files(under=target)
            if not infos:
                raise NotIndexedError(f"{target}: not in the index; `Library.files()` lists what is")
        else:
            infos = self._catalog.files()
        if where is not None:
            infos = files_matching(infos, where, field_types(self._catalog))
        report = remove_files(self._catalog, infos, self._collections())
        report.where = where
        logger.info("%s", report.summary())
        return report if where is not None else len(report.files)

    def _collections(self) -> List[Tuple[str, ChromaStore]]:
        """(kind, store) of every vector collection the index has, leftovers of an interrupted
        reindex or compact included."""
        current = {s.collection_name: s for s in (self._text_store(), self._context_collection(), self._acoustic(),
                                                  self._voice())}
        return [(collection_kind(name), current.get(name) or self._vectors(name))
                for name in collection_names(self.path / "chroma", self._server, self._prefix)]

    @_writes("compact", alone=True)
    def compact(self) -> CompactReport:
        """Give what removes and re-adds deleted back to the file system, so that it is gone from
        disk and not only from search: each vector collection is copied into a new one and the
        old dropped (HNSW files keep deleted vectors; Chroma's log and full-text index keep
        deleted text), Chroma's and the catalogue's SQLite files are rebuilt (VACUUM) and the
        BM25 index merged. Runs alone, like reindex; other processes pick up the new collections.
        With a Chroma server only the collections are rebuilt: the server's own files are
        compacted there (docs/privacy.md)."""
        t0 = time.perf_counter()
        before = _size(self.path)
        generation = int(self._catalog.get_meta("windows_generation") or 0) + 1
        names = set(collection_names(self.path / "chroma", self._server, self._prefix))
        current = {"windows_collection": self._text_store(), "context_collection": self._context_collection(),
                   "acoustic_collection": self._acoustic(), "voice_collection": self._voice()}
        rebuilt, keep = [], set()
        for key, old in current.items():
            if old.collection_name not in names:
                continue  # never written: nothing to compact
            new = self._vectors(f"{key.split('_')[0]}-{generation}")
            new.drop()  # the leftovers of an interrupted compact
            old.copy_to(new)
            self._catalog.set_meta({key: new.collection_name})
            rebuilt.append(new.collection_name)
            keep.add(new.collection_name)
        self._catalog.set_meta({"windows_generation": str(generation)})
        for switch in (self._text_store, self._context_collection, self._acoustic, self._voice):
            switch()  # this Library now uses the new collections
        for name in names - keep:  # the old collections, and leftovers nobody names
            self._vectors(name).drop()
        if self._server is None:
            vacuum_embedded(self.path / "chroma")
        self._catalog.compact()
        report = CompactReport(before, _size(self.path), rebuilt, time.perf_counter() - t0)
        logger.info("%s: %s", self.path, report.summary())
        return report

    @_writes("tune")
    def tune(self, labels: PathLike, *, text: bool = True, acoustic: bool = True, fusion: bool = True,
             holdout: float = 0.3, seed: int = 0, holdout_groups: Optional[str] = None) -> "TuneReport":
        """Learn from labelled queries (`labels`: the qrels format of `speechsearch eval`) and prove
        it on held-out ones.

        The text queries are split (a `holdout` share, drawn with `seed`; ``holdout_groups="intent"``
        holds whole intents out). With `text`, the index's sentence-transformers model is
        fine-tuned on (query, relevant window, hard negative) triplets from the training queries
        and every window is re-embedded with it into new collections; with `fusion`, the fusion
        weights are then fitted on the training queries. Each part is applied only if no query
        type of the held-out queries gets worse by more than `tune.NOISE` MRR@10 (the index keeps
        what it had otherwise); the report has the metrics before and after per type. With
        `acoustic`, a small head on the acoustic CNN is trained, without labels, on the index's own
        sentences said again by offline synthesisers and sent through noisy, narrow, lossy channels,
        and judged on the labels' audio queries (`tune_acoustic`). An applied
        tune is used by every later search and every process that opens the index; `untune()`
        undoes the last one. docs/tuning.md."""
        from . import tune as tuning

        t0 = time.perf_counter()
        plan = tuning.plan(self, os.fspath(labels), holdout, seed, holdout_groups)
        text_part = self._tune_text(plan, fusion and not self._fusion_given) if text else {}
        if fusion and text_part.get("applied") and text_part.get("fusion"):
            fitted = text_part["fusion"]  # fitted with the new text model and judged with it
            report = tuning.TuneReport(plan.labels, plan.labels_sha256, len(plan.train), len(plan.held),
                                       before=text_part["before"], after=text_part["after"], applied=True,
                                       reason="fitted and judged together with the fine-tuned text model: "
                                              + text_part["reason"], weights=fitted["weights"],
                                       bias=fitted["bias"], settings=dict(plan.settings, C=fitted["C"],
                                       features=fitted["features"], floors=fitted["floors"]), skipped=plan.skipped)
        elif fusion:
            report = tuning.tune_fusion(self, plan.labels, checked=plan)
        else:
            report = tuning.TuneReport(plan.labels, plan.labels_sha256, len(plan.train), len(plan.held),
                                       reason="fusion not tuned (fusion=False)", settings=dict(plan.settings),
                                       skipped=plan.skipped)
        report.text = text_part
        acoustic_part = self._tune_acoustic(plan) if acoustic else {}
        report.acoustic = acoustic_part
        if fusion and self._fusion_given:
            report.applied, report.reason = False, ("this Library was opened with fusion= given, which wins "
                                                    "over tuned weights; " + report.reason)
        model = self._pipeline.embedder.model_name
        if fusion and report.applied:
            tuned = {"text_model": model, "weights": report.weights, "bias": report.bias}
            self._catalog.update_meta_json("fusion_tuned", lambda stack: list(stack or []) + [tuned], [])
            self.fusion = _tuned(self.fusion, self._catalog, model)
        report.seconds = time.perf_counter() - t0
        entry = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "text_model": model, **report.to_dict()}
        self._catalog.update_meta_json("tune_history", lambda h: list(h or []) + [entry], [])
        undo = {"at": entry["at"], "labels": plan.labels, "fusion": bool(fusion and report.applied),
                "text": {k: text_part[k] for k in ("model", "base")} if text_part.get("applied") else None,
                "acoustic": {k: acoustic_part[k] for k in ("model", "base")} if acoustic_part.get("applied") else None}
        if undo["fusion"] or undo["text"] or undo["acoustic"]:
            self._catalog.update_meta_json("tune_stack", lambda stack: list(stack or []) + [undo], [])
        logger.info("%s", report.summary())
        return report

    def _tune_text(self, plan: Any, with_fusion: bool = True) -> Dict[str, Any]:
        """Fine-tune the text model on `plan`'s training queries; switch to it if the held-out
        queries do not get worse (`tune.decide`), else leave the index as it was. With
        `with_fusion`, the new model is judged with fusion weights fitted for its scores on the
        same training queries (a new model's similarities have another scale than the ones the
        weights in use were fitted on); they are returned under "fusion"."""
        import shutil

        from . import tune as tuning
        from .embed.text import TextEmbedder

        t0 = time.perf_counter()
        embedder = self._pipeline.embedder
        base = embedder.model_name
        if not isinstance(embedder, TextEmbedder):
            return {"applied": False, "base": base, "reason": f"the text model {base} is an ONNX export, which "
                    "cannot be trained here; tune an index built with a sentence-transformers model "
                    "(quality='fast')"}
        if not self.show_progress:  # transformers draws bars when it saves and loads the copy
            try:
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
            except ImportError:  # pragma: no cover - sentence-transformers always brings it
                pass
        triplets = tuning.text_triplets(self._catalog, tuning.candidates(self, plan, "train"))
        before = tuning.held_metrics(self, plan)
        model, losses = tuning.train_text(embedder.load(), triplets, seed=plan.settings["seed"])
        n = len(list((self.path / "models").glob("text-*"))) + 1 if (self.path / "models").is_dir() else 1
        folder = self.path / "models" / f"text-{n}"
        while folder.exists():
            n += 1
            folder = self.path / "models" / f"text-{n}"
        model.save(str(folder))
        tuned = get_text_embedder(str(folder), device=embedder.device)
        built = self._build_text(tuned)
        view = (built[0], built[1] if self._contexts() is not None else None, tuned)
        fitted = tuning.refit(self, plan, view) if with_fusion else None
        after = fitted["fitted"] if fitted else tuning.held_metrics(self, plan, view)
        applied, reason = tuning.decide(before, after)
        if applied:
            self._switch_text(built, tuned)
        else:
            built[0].drop()
            built[1].drop()
            shutil.rmtree(folder, ignore_errors=True)
        return {"applied": applied, "reason": reason, "base": base, "model": str(folder) if applied else None,
                "triplets": len(triplets), "losses": losses, "before": before, "after": after,
                "fusion": fitted and {k: v for k, v in fitted.items() if k not in ("kept", "fitted")},
                "seconds": round(time.perf_counter() - t0, 1)}

    def _tune_acoustic(self, plan: Any) -> Dict[str, Any]:
        """Train an acoustic head (`tune_acoustic`), re-embed every indexed sentence with it into a
        new collection, judge it on the labels' audio queries (fused and the acoustic signal
        alone; without audio queries, on re-spoken sentences kept out of training) and switch to
        it, or drop it."""
        import shutil

        from . import synth, tune_acoustic as ta
        from .embed.acoustic import HEAD_FILE, TunedAcoustic
        from .evaluate import load_qrels

        t0 = time.perf_counter()
        current = self._pipeline.acoustic
        base = getattr(current, "base", current)
        if current is None or not self._catalog.has_acoustic():
            return {"applied": False, "reason": f"{self.path} holds no acoustic vectors; `speechsearch reindex "
                    "--acoustic` adds them"}
        voices = synth.voices(ta.VOICES)
        if not voices:
            return {"applied": False, "base": acoustic_model_id(base), "reason": synth.no_engine_message()}
        seed = int(plan.settings["seed"])
        store = self._acoustic()
        total = store.count()
        units = ta.read_units(self._catalog, store, base, keep=min(1.0, 3.0 * ta.SENTENCES / max(1, total)), seed=seed)
        chosen = ta.sample(units, ta.SENTENCES, seed)
        rendered = ta.views(units, chosen, voices, base, seed)
        trained = ta.train_head(units, rendered, seed=seed)
        n = 1
        while (self.path / "models" / f"acoustic-{n}").exists():
            n += 1
        folder = self.path / "models" / f"acoustic-{n}"
        folder.mkdir(parents=True)
        np.savez(folder / HEAD_FILE, **trained.pop("params"))
        tuned = TunedAcoustic(base, folder)
        new, generation = self._embed_acoustic(units, tuned)
        audio = [q for q in load_qrels(plan.labels).queries if q["type"] == "audio"]
        part: Dict[str, Any] = {"base": acoustic_model_id(base), "voices": [str(v) for v in voices],
                                "missing": units.missing, **trained}
        if audio:
            before, after = ta.audio_metrics(self, audio, [(store, current), (new, tuned)])
            applied, reason = _judge_audio(before, after, trained)
            part.update(before=before, after=after)
        else:
            applied = trained["improved"] and trained["held_after"] >= trained["held_before"] + tuning_noise()
            reason = (f"no audio queries in the labels; re-spoken sentences kept out of training found their "
                      f"sentence R@1 {trained['held_before']:.3f} -> {trained['held_after']:.3f}")
        if applied:
            self._catalog.set_meta({"acoustic_collection": new.collection_name, "acoustic_generation": str(generation),
                                    "acoustic_model": tuned.model_id})
            old, self._acoustic_store, self._pipeline.acoustic = store, new, tuned
            for path in units.missing:  # their audio is gone: `reindex_acoustic` adds them back when it returns
                self._catalog.set_acoustic(path, False)
            old.drop()
        else:
            new.drop()
            shutil.rmtree(folder, ignore_errors=True)
        return dict(part, applied=applied, reason=reason, model=str(folder) if applied else None,
                    seconds=round(time.perf_counter() - t0, 1))

    def tuned(self) -> List[Dict[str, Any]]:
        """Every `tune` of this index, oldest first: when, on which labels (path and SHA-256),
        the settings, the held-out metrics before and after, whether it was applied, and untunes."""
        import json

        return json.loads(self._catalog.get_meta("tune_history") or "[]")

    @_writes("untune", alone=True)
    def untune(self) -> FusionOptions:
        """Undo the last applied `tune`: its fusion weights give way to those before it, and a
        text model it fine-tuned to the model before it (every window is re-embedded, as
        `reindex` does). Returns the fusion options now in use."""
        import shutil

        popped: List[Any] = []

        def pop(stack: Any) -> List[Any]:
            stack = list(stack or [])
            if not stack:
                raise InvalidInputError(f"{self.path}: no tune to undo")
            popped.append(stack.pop())
            return stack

        self._catalog.update_meta_json("tune_stack", pop, [])
        last = popped[0]
        if last.get("fusion"):
            self._catalog.update_meta_json("fusion_tuned", lambda stack: list(stack or [])[:-1], [])
        acoustic = last.get("acoustic")
        if acoustic:
            self._untune_acoustic(acoustic)
        text = last.get("text")
        if text:
            embedder = get_text_embedder(text["base"], device=self._pipeline.embedder.device)
            self._switch_text(self._build_text(embedder), embedder)
            shutil.rmtree(self._here(text["model"]) or text["model"], ignore_errors=True)
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._catalog.update_meta_json("tune_history", lambda h: list(h or []) + [
            {"at": at, "untune": True, "undid": last}], [])
        if not self._fusion_given:
            model = self._pipeline.embedder.model_name
            self.fusion = _tuned(FusionOptions.fitted(model), self._catalog, model)
        return self.fusion

    def _embed_acoustic(self, units: Any, embedder: Any) -> Tuple[ChromaStore, int]:
        """Every unit's acoustic vector by `embedder` (from the frames `tune_acoustic.read_units`
        read), in a new collection beside the one in use: (collection, its generation)."""
        from . import tune_acoustic as ta

        generation = int(self._catalog.get_meta("acoustic_generation") or 0) + 1
        new = self._vectors(f"acoustic-{generation}")
        new.drop()  # the leftovers of an interrupted tune
        for at in range(0, len(units.ids), 2000):
            part = slice(at, at + 2000)
            new.upsert(units.ids[part], ta.vectors(embedder, ta.Units(frames=units.frames[part])),
                       [""] * len(units.ids[part]), units.metadatas[part])
        return new, generation

    def _untune_acoustic(self, acoustic: Dict[str, Any]) -> None:
        """Re-embed every indexed sentence with the acoustic model before a tune, and switch."""
        import shutil

        from . import tune_acoustic as ta
        from .embed.acoustic import get_acoustic_embedder

        base = get_acoustic_embedder(acoustic["base"])
        store = self._acoustic()
        units = ta.read_units(self._catalog, store, base)
        new, generation = self._embed_acoustic(units, base)
        self._catalog.set_meta({"acoustic_collection": new.collection_name, "acoustic_generation": str(generation),
                                "acoustic_model": acoustic["base"]})
        self._acoustic_store, self._pipeline.acoustic = new, base
        for path in units.missing:
            self._catalog.set_acoustic(path, False)
        store.drop()
        shutil.rmtree(acoustic["model"], ignore_errors=True)

    @_writes("update metadata")
    def update_metadata(self, path: PathLike, metadata: Dict[str, Any]) -> None:
        """Replace the user metadata of an indexed file (no re-transcription)."""
        target = _key(path)
        if self._catalog.get_file(target) is None:
            raise NotIndexedError(f"{target}: not in the index; `Library.files()` lists what is")
        update_metadata(self._catalog, self._store, target, check_metadata(metadata), self._contexts())

    # -- reading ------------------------------------------------------------------------------
    def search(self, query: str, k: int = 10, where: Optional[Dict[str, Any]] = None,
               signals: Sequence[str] = TEXT_SIGNALS, *, speaker: Optional[str] = None) -> List[Hit]:
        """The `k` best moments for a natural-language `query`, best first.

        Dense sentence similarity of each window, of the longer context around it and of its
        whole call, and lexical (BM25) matches are fused (see `FusionOptions`); ``hit.score`` is
        the estimated probability that the hit's call is relevant (comparable across queries
        and indexes) and ``hit.scores`` shows each signal's raw score. Overlapping windows of
        the same moment are collapsed into the best one. `where` filters on metadata, e.g. ``{"agent": "A12",
        "started_at": {"$gte": "2026-01-01"}}`` (equality, $ne, $gt/$gte/$lt/$lte, $in/$nin,
        $and/$or; ISO-8601 dates; see docs/filters.md). `signals` picks a subset, e.g. ``("text",)`` for dense only.
        `speaker` keeps what one speaker said: a channel's role (``"customer"``) or ``"S1"``.
        """
        if not isinstance(query, str):
            raise InvalidInputError(f"query must be a string, got {type(query).__name__}")
        if not query.strip():
            raise InvalidInputError("query is empty; type some words to search for")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InvalidInputError(f"k must be a positive integer, got {k!r}")
        signals = _check_signals(signals, TEXT_SIGNALS)
        if not self._catalog.has_windows():
            return []
        # the text model is loaded and run only when a dense signal is asked for
        dense = "text" in signals or "context" in signals
        embedder, text = self._pipeline.embedder, query.strip()
        vector = (lambda: embedder.encode_query(text)) if dense else None  # embedded beside BM25
        where = self._where(where, speaker)
        return ranked_search(self._text_store(), self._catalog, k, where=where, fusion=self.fusion, signals=signals,
                             text=query, text_vector=vector, context_store=self._contexts())

    def _where(self, where: Optional[Dict[str, Any]], speaker: Optional[str] = None) -> Optional[Dict[str, Any]]:
        """The user's filter, checked against the fields this index holds and translated for
        Chroma (ISO dates become numbers), with the `speaker` shortcut ANDed in."""
        if speaker is not None and (not isinstance(speaker, str) or not speaker.strip()):
            raise InvalidInputError(f"speaker must be a non-empty string like 'customer' or 'S1', got {speaker!r}")
        types = dict(field_types(self._catalog), **BUILTIN_FIELDS)
        return build_where(where, types, extra={"speaker": speaker} if speaker else None)

    def search_audio(self, clip: Any, k: int = 10, where: Optional[Dict[str, Any]] = None, *,
                     sample_rate: Optional[int] = None, mode: str = "content",
                     signals: Optional[Sequence[str]] = None) -> List[Hit]:
        """Query by example: the `k` moments most like `clip`, best first.

        `clip` is a file path, the bytes of an audio file, or a float array (then give
        `sample_rate`; a ``(array, sample_rate)`` tuple works too).

        ``mode="content"`` (the default): the clip is transcribed and its words searched like a
        typed query, the clip is embedded acoustically, and the signals are fused; ``hit.scores``
        shows each one; `signals` picks a subset of ("text", "context", "lexical", "acoustic"). ``mode="voice"``: the moments where the clip's
        speaker spoke (speaker embeddings; the index must be built with ``voice=True``).
        A clip must hold at least 0.3 s of speech; only its first 30 s are used.
        """
        where = self._where(where)
        if mode == "voice":
            return self._search_voice(clip, k, where, sample_rate)
        if mode != "content":
            raise InvalidInputError(f"unknown mode {mode!r}; choose 'content' or 'voice'")
        allowed = TEXT_SIGNALS + ("acoustic",)
        chosen = _check_signals(signals if signals is not None else allowed, allowed)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InvalidInputError(f"k must be a positive integer, got {k!r}")
        audio = load_clip(clip, sample_rate, self._pipeline.decoder)
        if self._pipeline.acoustic is None or not self._catalog.has_acoustic():
            if signals is not None and "acoustic" in chosen:
                raise StoreError(f"{self.path} holds no acoustic vectors (it was built before they "
                                 "existed or with acoustic=False); run `speechsearch reindex --acoustic` "
                                 "or Library.reindex_acoustic() to add them")
            chosen = tuple(s for s in chosen if s != "acoustic")
            if not chosen:
                return []
        if not self._catalog.has_windows():
            return []
        text, text_vector, acoustic_vector = "", None, None
        if set(chosen) & set(TEXT_SIGNALS):
            segments, _ = self._pipeline.transcriber.transcribe(audio)
            text = " ".join(s.text for s in segments).strip()
            if text and ("text" in chosen or "context" in chosen):
                text_vector = self._pipeline.embedder.encode_query(text)
        if "acoustic" in chosen:
            acoustic_vector = self._pipeline.acoustic.embed(audio)
        return ranked_search(self._text_store(), self._catalog, k, where=where, fusion=self.fusion.for_audio(),
                             signals=chosen, text=text, text_vector=text_vector,
                             acoustic_store=self._acoustic(), acoustic_vector=acoustic_vector,
                             context_store=self._contexts())

    def _search_voice(self, clip: Any, k: int, where: Optional[Dict[str, Any]],
                      sample_rate: Optional[int]) -> List[Hit]:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InvalidInputError(f"k must be a positive integer, got {k!r}")
        audio = load_clip(clip, sample_rate, self._pipeline.decoder)
        if self._voice().count() == 0:
            raise StoreError(f"{self.path} holds no voice vectors; open it with Library(..., voice=True) "
                             "and add the recordings (or add them again) to search by voice")
        voice = self._pipeline.voice
        if voice is None:
            from .embed.voice import get_voice_embedder

            voice = get_voice_embedder(self._catalog.get_meta("voice_model") or "")
        options = replace(self.fusion, weights={"voice": 1.0}, scales={"voice": (0.5, 1.0)})
        return ranked_search(self._text_store(), self._catalog, k, where=where, fusion=options, signals=("voice",),
                             acoustic_store=self._voice(), acoustic_vector=voice.embed(audio),
                             unit_signal="voice")

    # -- recommendation ------------------------------------------------------------------------
    def similar(self, query: Any, k: int = 10, where: Optional[Dict[str, Any]] = None, *,
                speaker: Optional[str] = None) -> List[Hit]:
        """Calls like `query`, best first, never the query's own file.

        `query` is an indexed file's path (one `SimilarHit` per other call: the moment most like
        one of the query's key moments, both spans given, ``score`` the cosine of the two calls'
        vectors), a `Hit` (moments like it in other calls, ranked as `search` ranks a query with
        the hit's words and vector) or a recording that is not indexed (transcribed first; the
        calls like it). `where` keeps the calls whose metadata match; `speaker` compares what one
        speaker said (e.g. ``"customer"``: why they called). recommend.py has the method."""
        from . import recommend

        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InvalidInputError(f"k must be a positive integer, got {k!r}")
        if isinstance(query, Hit):
            return self._similar_moments(query, k, where, speaker)
        index, allowed = self._calls(where, speaker)
        if isinstance(query, (str, os.PathLike)) and self._catalog.get_file(_key(query)) is not None:
            path = _key(query)
            f = index.index_of(path)
            if f is None:
                return []  # nothing of this file matches `speaker`
            keys = recommend.key_moments(index, f)
            wtext = {i: w.text for i, w in self._catalog.windows(path)}
            return recommend.similar_hits(index, self._catalog, index.vectors[f], keys, index.window_vectors,
                                          index.window_spans, [wtext.get(index.window_ids[i], "") for i in keys], k,
                                          path, exclude=f, allowed=allowed)
        if isinstance(query, (str, os.PathLike)):
            check_readable(os.fspath(query))
            name = os.fspath(query)
            audio = decode(name, self._pipeline.decoder)
        else:
            name, audio = "clip", load_clip(query, None, self._pipeline.decoder)
        segments, _ = self._pipeline.transcriber.transcribe(audio)
        segments = [s for s in segments if s.text.strip()]
        if not segments:
            raise InvalidInputError(f"{name}: no speech was recognised, so there is nothing to compare; "
                                    "give a recording with speech")
        from .windows import make_contexts, make_windows

        windows = make_windows(segments, self._pipeline.windows)
        contexts = make_contexts(segments, self._pipeline.windows)
        texts = [w.text for w in windows] + [c.text for c in contexts]
        vectors = self._pipeline.embedder.encode(texts)
        embedder = self._call_embedder() if index.second is not None else None
        other = None if embedder is None else np.asarray(embedder.encode(texts), np.float32)
        vector, unit_vectors, specific = recommend.query_vector(
            index, vectors[:len(windows)], vectors[len(windows):],
            None if other is None else (other[:len(windows)], other[len(windows):]))
        keys = np.argsort(-specific, kind="stable")[:recommend.KEY_MOMENTS]
        spans = np.array([[w.start, w.end] for w in windows])
        return recommend.similar_hits(index, self._catalog, vector, keys, unit_vectors, spans,
                                      [windows[i].text for i in keys], k, name, allowed=allowed)

    def moment(self, id: str) -> Hit:
        """The indexed moment (window) with this id, as a `Hit` (``hit.id`` of a search result;
        `speechsearch search --json` prints it), e.g. to ask `similar` for moments like it."""
        from .search import hit_from_row

        rows = self._text_store().get([str(id)])
        row = rows.get(str(id))
        hit = None if row is None else hit_from_row(row[0], 1.0, {}, self._catalog.ready([row[0].metadata.get("path")]))
        if hit is None:
            raise NotIndexedError(f"{id}: no such moment in {self.path}; take an id from `search --json`")
        return hit

    def _similar_moments(self, hit: Hit, k: int, where: Optional[Dict[str, Any]], speaker: Optional[str]) -> List[Hit]:
        vector = self._text_store().vectors([hit.id]).get(hit.id) if hit.id else None
        if vector is None:
            raise InvalidInputError(f"{hit.path}: this hit's window is not in the index (any more); search again")
        other = {"path": {"$ne": hit.path}}
        base = self._where(where, speaker)
        combined = other if not base else {"$and": [base, other]}
        hits = ranked_search(self._text_store(), self._catalog, 4 * k, where=combined, fusion=self.fusion,
                             signals=TEXT_SIGNALS, text=hit.text, text_vector=vector, context_store=self._contexts())
        seen: set = set()
        out = []
        for h in hits:
            if h.path not in seen:
                seen.add(h.path)
                out.append(h)
        return out[:k]

    def topics(self, where: Optional[Dict[str, Any]] = None, *, n: Optional[int] = None, by: Optional[str] = None,
               period: str = "week", speaker: Optional[str] = None, examples: int = 3,
               files: Optional[Iterable[PathLike]] = None) -> List["Topic"]:
        """What the calls are about: groups of calls, largest first, each with a label (its most
        distinctive terms), its size, terms, files (most central first), example moments and,
        with `by` (a metadata field holding a date or time), calls per `period` ("day", "week",
        "month"). `n` fixes the number of topics (else chosen by silhouette, at most
        `recommend.MAX_TOPICS`). `where` and `speaker` filter as in `search`. The same index
        gives the same topics. `files` limits the topics to those indexed files. A topic whose
        calls are mostly those of a topic of the last `topics` result keeps that topic's label
        (the index remembers it), so adding or removing a few calls does not rename it; `terms`
        always describe its calls now."""
        from . import recommend

        if period not in ("day", "week", "month"):
            raise InvalidInputError(f"period must be 'day', 'week' or 'month', got {period!r}")
        if by is not None and (not isinstance(by, str) or not by.strip()):
            raise InvalidInputError(f"by must be a metadata field name, got {by!r}")
        index, allowed = self._calls(where, speaker)
        if files is not None:
            chosen = {_key(f) for f in ([files] if isinstance(files, (str, os.PathLike)) else files)}
            unknown = sorted(chosen - set(index.files))
            if unknown and speaker is None:
                raise NotIndexedError(f"{unknown[0]}: not in the index; `Library.files()` lists what is")
            allowed = chosen if allowed is None else allowed & chosen
        try:
            memory = json.loads(self._catalog.get_meta("topic_names") or "null")
        except ValueError:
            memory = None
        found = recommend.topics(index, self._catalog, n=n, by=by, period=period, examples=examples, allowed=allowed,
                                 memory=memory)
        remember = {"names": [t.label for t in found], "files": {f: t.id for t in found for f in t.files}}
        if found and remember != memory:
            try:  # the names the next call keeps for topics of mostly the same calls
                self._catalog.set_meta({"topic_names": json.dumps(remember)})
            except Exception as e:  # a read-only index: names are not kept
                logger.debug("could not keep the topic names: %s", e)
        return found

    def _calls(self, where: Optional[Dict[str, Any]], speaker: Optional[str]) -> Tuple[Any, Optional[set]]:
        """The call vectors (per `speaker` when given; cached per index state otherwise) and the
        files `where` allows (None: all)."""
        from . import recommend

        ready = self._catalog.ready([f.path for f in self._catalog.files()])
        embedder = self._call_embedder()
        if embedder is not None and self._catalog.get_meta("call_vectors") != "1":
            try:
                self._catalog.set_meta({"call_vectors": "1"})  # in use: `add` keeps them up to date
            except Exception as e:  # a read-only index
                logger.debug("could not mark call vectors in use: %s", e)
        if speaker is not None:
            second = None if embedder is None else (self._reembedded(self._text_store(), "windows"), None)
            index = recommend.build(self._text_store(), None, self._where(None, speaker), ready, second)
        else:
            contexts = self._contexts()
            second = None if embedder is None else (
                self._reembedded(self._text_store(), "windows"),
                None if contexts is None else self._reembedded(contexts, "contexts"))
            key = (self._text_store().collection_name, self._context_collection().collection_name,
                   self._catalog.state())
            cached = getattr(self, "_call_index", None)
            if cached is None or cached[0][:2] != key[:2]:  # none yet, or the text model changed
                cached = (key, recommend.build(self._text_store(), contexts, None, ready, second))
            elif cached[0] != key:  # files added or removed: only theirs are read
                cached = (key, recommend.update(cached[1], self._text_store(), contexts, ready, second))
            self._call_index = cached
            index = cached[1]
        allowed = None
        if where:
            allowed = {str(row.metadata.get("path")) for row, _ in self._text_store().get_where(self._where(where))}
        return index, allowed

    def _call_embedder(self) -> Any:
        """The second text model of call vectors (`recommend.CALL_MODELS`: the one of the pair
        that is not the index's own model), or None when its weights are not installed (then
        call vectors are the index model's alone)."""
        from . import recommend
        from .embed.onnx_text import is_installed, onnx_model_name

        own = self._catalog.get_meta("text_model") or ""
        name = recommend.CALL_MODELS[1] if onnx_model_name(own) != recommend.CALL_MODELS[1] else recommend.CALL_MODELS[0]
        cached = getattr(self, "_second_embedder", None)
        if cached is None or cached[0] != name:
            available = name == DEFAULT_TEXT_MODEL or is_installed(name)
            if not available:
                logger.info("%s is not installed: similar() and topics() use %s alone (pip install "
                            "speechsearch[best] and the mpnet weights, docs/configuration.md)", name, own)
            cached = (name, get_text_embedder(name) if available else None)
            self._second_embedder = cached
        return cached[1]

    def _reembedded(self, store: Any, kind: str) -> Any:
        from . import recommend

        name, embedder = self._second_embedder
        return recommend.Reembedded(store, self._catalog, embedder, name, kind)

    def export_transcripts(self, out: PathLike, paths: Optional[Iterable[PathLike]] = None) -> int:
        """Write the transcripts (segments, words, channels, speakers, language, metadata) of the
        indexed files, or of `paths`, to `out` as JSON Lines, one file per line. Returns the count."""
        return write_records(self._catalog, out, paths)

    @_writes("import")
    def import_transcripts(self, src: PathLike) -> AddReport:
        """Index transcripts from a JSON Lines file written by `export_transcripts` (by this or
        another index) without transcribing again: windows and vectors are built from the text.
        The audio need not be present (then search works and clips do not). Bad lines are
        listed in ``report.failed``."""
        path = Path(os.fspath(src)).expanduser()
        if not path.is_file():
            raise InvalidInputError(f"{path}: no such transcript file; pass a .jsonl written by export")
        self._record_models()
        with open(path, encoding="utf-8") as f, _unexpected(f"{self.path}: import"):
            report = import_records(((f"{path}:{n}", line) for n, line in enumerate(f, 1)),
                                    self._catalog, self._text_store(), self._pipeline, self._contexts(),
                                    self._acoustic(), self._voice())
        logger.info("%s", report.summary())
        self._calls_follow(report)
        return report

    @_writes("reindex", alone=True)
    def reindex(self, text_model: Optional[str] = None) -> int:
        """Rebuild the text vectors of every window from the stored transcripts, with
        `text_model` (e.g. after choosing another sentence-transformers model) or the current one.
        Nothing is transcribed again. The new vectors go into a new collection and the index
        switches to it only when it is complete, so an interrupted reindex leaves the old one
        searchable. Returns the number of windows."""
        embedder = get_text_embedder(text_model, device=self._pipeline.embedder.device) if text_model \
            else self._pipeline.embedder
        built = self._build_text(embedder)
        self._switch_text(built, embedder)
        logger.info("%s: %d windows re-embedded with %s", self.path, built[2], embedder.model_name)
        return built[2]

    def _build_text(self, embedder: Any) -> Tuple[ChromaStore, ChromaStore, int, int]:
        """Embed every window (and context unit) from the stored transcripts with `embedder` into
        new collections beside the ones in use: (windows, contexts, count, generation)."""
        generation = int(self._catalog.get_meta("windows_generation") or 0) + 1
        new = self._vectors(f"windows-{generation}")
        new.drop()  # the leftovers of an interrupted reindex
        contexts = self._pipeline.windows.context_min_seconds > 0
        new_context = self._vectors(f"context-{generation}")
        new_context.drop()
        bar = None
        if self.show_progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self._catalog.count_windows(), unit="window", desc="reindexing")
        try:
            n = reembed(self._catalog, new, embedder, {"text_model": embedder.model_name},
                        bar.update if bar is not None else None, new_context if contexts else None,
                        self._pipeline.windows)
        finally:
            if bar is not None:
                bar.close()
        return new, new_context, n, generation

    def _switch_text(self, built: Tuple[ChromaStore, ChromaStore, int, int], embedder: Any) -> None:
        """Point the index at collections made by `_build_text` and drop the old ones."""
        new, new_context, _, generation = built
        old, old_context = self._store, self._context_collection()
        contexts = self._pipeline.windows.context_min_seconds > 0
        self._catalog.set_meta({"windows_collection": new.collection_name, "windows_generation": str(generation),
                                "context_collection": new_context.collection_name,
                                "contexts": "1" if contexts else "0", "text_model": embedder.model_name})
        self._store, self._context_store, self._pipeline.embedder = new, new_context, embedder
        if not self._fusion_given:  # the weights fitted for the new model's scores
            self.fusion = _tuned(FusionOptions.fitted(embedder.model_name), self._catalog, embedder.model_name)
        old.drop()
        old_context.drop()

    @_writes("reindex")
    def reindex_acoustic(self) -> int:
        """Add acoustic vectors to files indexed without them (an index built before they
        existed, or files whose transcripts were imported). Transcripts are reused, only the audio
        is decoded again. A file whose audio is missing or changed is skipped with a warning (it
        is still searchable by text). Returns the number of files done."""
        from .embed.acoustic import DEFAULT as DEFAULT_ACOUSTIC, get_acoustic_embedder, model_id

        if self._pipeline.acoustic is None:
            self._pipeline.acoustic = get_acoustic_embedder(DEFAULT_ACOUSTIC)
        self._catalog.set_meta({"acoustic_model": model_id(self._pipeline.acoustic)})
        done = 0
        with _unexpected(f"{self.path}: reindex_acoustic"):
            for path in self._catalog.without_acoustic():
                try:
                    backfill_acoustic(self._catalog, self._acoustic(), path, self._pipeline)
                except AudioError as e:  # one file's audio must not stop the others
                    logger.warning("no acoustic vectors for %s", e)
                    continue
                done += 1
        return done

    def files(self) -> List[FileInfo]:
        """Every indexed file with its status, duration, window count, models and metadata."""
        return self._catalog.files()

    def file(self, path: PathLike) -> FileInfo:
        """One indexed file's status, duration, models and metadata (NotIndexedError if absent).
        `path` as the OS names it (str or bytes) or as the index shows it."""
        target = _key(path)
        info = self._catalog.get_file(target)
        if info is None:
            raise NotIndexedError(f"{target}: not in the index; `Library.files()` lists what is")
        return info

    def transcript(self, path: PathLike) -> List[Segment]:
        """One indexed file's transcript: segments with word times, channel and speaker (after
        redaction, when the index redacts)."""
        info = self.file(path)
        return record_segments({"segments": self._catalog.transcript(info.path)}, info.path)

    def redactions(self, path: PathLike) -> List[Tuple[float, float, str, int]]:
        """The redacted spans of one indexed file: (start, end, kind, channel)."""
        info = self.file(path)
        return list(self._catalog.redactions(info.path))

    def info(self) -> Dict[str, Any]:
        """A summary of the index: where it is, which models built it, what it holds."""
        files = self._catalog.files()
        return {
            "path": str(self.path),
            "models": {k: self._catalog.get_meta(k) for k in ("asr_engine", "asr_model", "text_model",
                                                               "acoustic_model", "voice_model")},
            "files": len(files),
            "segments": self._catalog.count_windows(),
            "audio_seconds": round(sum(f.duration for f in files), 3),
            "incomplete": [f.path for f in files if f.status != "ready"],
            "created_at": self._catalog.get_meta("created_at"),
            "store": self._server.url if self._server is not None else "embedded",
            "tuned": self._last_tune(),  # what the last applied `tune` changed, and when; None: untuned
        }

    def _last_tune(self) -> Optional[Dict[str, Any]]:
        import json

        stack = json.loads(self._catalog.get_meta("tune_stack") or "[]")
        return stack[-1] if stack else None

    def __len__(self) -> int:
        return self._catalog.count_windows()

    def __repr__(self) -> str:
        return f"Library({str(self.path)!r})"

    # -- lifetime -----------------------------------------------------------------------------
    def close(self) -> None:
        for store in (self._store, self._acoustic_store, self._voice_store):
            store.close()
        self._catalog.close()

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _size(directory: Path) -> int:
    """Bytes in the files under `directory`."""
    total = 0
    for root, _, names in os.walk(directory):
        for name in names:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def _key(path: Any) -> str:
    """The catalogue's name for `path`: absolute, in the stored form (see _paths.py)."""
    return stored_path(os.path.abspath(to_path(path)))


@contextmanager
def _unexpected(what: str) -> Iterator[None]:
    """Let the library's own errors through; turn anything else that stops a batch into an
    IndexingError naming it (the original is its __cause__ and is logged with its traceback)."""
    try:
        yield
    except SpeechSearchError:
        raise
    except Exception as e:
        logger.error("%s stopped by an unexpected error", what, exc_info=e)
        raise IndexingError(f"{what} stopped: unexpected {type(e).__name__}: {e}. The files finished before "
                            "it stay indexed; run the same call again to finish, and report the error "
                            "if it comes back") from e


def _fusion_for(fusion: Any, text_model: str) -> FusionOptions:
    """The fusion options: those given, or the defaults fitted for the index's text model with
    any fields given as a dict laid over them."""
    if isinstance(fusion, FusionOptions):
        return fusion
    given = dict(coerce(FusionOptions, fusion).__dict__) if fusion is not None else {}
    return FusionOptions.fitted(text_model, **{k: given[k] for k in (fusion or {})})


def _tuned(options: FusionOptions, catalog: Catalog, text_model: str) -> FusionOptions:
    """`options` with the last applied tune's weights, when it was fitted for `text_model`."""
    import json

    stack = json.loads(catalog.get_meta("fusion_tuned") or "[]")
    if not stack:
        return options
    last = stack[-1]
    if not _same_model(last.get("text_model"), text_model):
        logger.info("tuned fusion weights were fitted for %s, not %s: not used", last.get("text_model"), text_model)
        return options
    return replace(options, weights=dict(last["weights"]), bias=float(last["bias"]))


def tuning_noise() -> float:
    from .tune import NOISE

    return NOISE


def _judge_audio(before: Dict[str, Dict[str, Any]], after: Dict[str, Dict[str, Any]],
                 trained: Dict[str, Any]) -> Tuple[bool, str]:
    """An acoustic head is applied when it learned something on the re-spoken sentences kept out
    of training, the labelled audio queries' acoustic signal alone does not get worse and no
    kind of them gets worse ranked fused (each by more than `tune.NOISE` MRR@10; a paraphrased
    clip's acoustic signal alone is not judged: its words are not the call's)."""
    noise = tuning_noise()
    if not trained["improved"]:
        return False, (f"the head found no re-spoken sentence better than the base model "
                       f"(R@1 {trained['held_before']:.3f}) in {len(trained['losses'])} epochs")
    worse = [f"{g} {before[g]['mrr']:.3f} -> {after[g]['mrr']:.3f}" for g in before
             if (g == "acoustic" or not g.startswith("acoustic")) and after[g]["mrr"] < before[g]["mrr"] - noise]
    if worse:
        return False, f"held-out MRR@10 would drop by more than {noise}: " + "; ".join(worse)
    b, a = before.get("acoustic", {}), after.get("acoustic", {})
    return True, (f"labelled clips, acoustic signal alone: R@1 {b.get('r1', 0):.3f} -> {a.get('r1', 0):.3f}, "
                  f"MRR@10 {b.get('mrr', 0):.3f} -> {a.get('mrr', 0):.3f}; fused MRR@10 "
                  f"{before.get('audio', {}).get('mrr', 0):.3f} -> {after.get('audio', {}).get('mrr', 0):.3f}")


def _same_model(a: Optional[str], b: Optional[str]) -> bool:
    """The same text model: the same name, or the same tuned model folder of an index (which
    may have moved since)."""
    if a == b:
        return True
    tuned = [x for x in (a, b) if x and "/models/text-" in x.replace(os.sep, "/")]
    return len(tuned) == 2 and os.path.basename(str(a).rstrip("/")) == os.path.basename(str(b).rstrip("/"))


def _check_signals(signals: Sequence[str], allowed: Tuple[str, ...]) -> Tuple[str, ...]:
    chosen = (signals,) if isinstance(signals, str) else tuple(signals)
    bad = [s for s in chosen if s not in allowed]
    if not chosen or bad:
        raise InvalidInputError(f"signals must be a non-empty subset of {allowed}, got {signals!r}")
    return chosen

