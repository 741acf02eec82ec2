"""Long-recording memory benchmark: peak and over-time RSS when indexing 10 minutes vs 2 hours.

Issue 5 asks that a 2-hour recording index with flat memory: decoded and transcribed in pieces,
with no whole-file float array. This measures it.

Pipelines, each in its own fresh subprocess, one after the other:

  lib     speechsearch ``Library(tmp).add(file)`` with default settings (decode, VAD, Whisper,
          windows, MiniLM, acoustic vectors, Chroma + SQLite writes).
  fw-vad  BASELINE. Bare faster-whisper, same packaged tiny.en weights, int8 on CPU:
          ``WhisperModel(dir, device="cpu", compute_type="int8").transcribe(path, vad_filter=True)``,
          every segment consumed. faster-whisper decodes the whole file into one float array
          first, so it runs on the 10-minute file only, unless --baseline-long is given.

For each run: wall time (from before the first import to the last segment stored: imports and
model loads included), peak RSS (``ru_maxrss`` of the worker), and RSS sampled every second from
/proc/self/status by a thread, reported at 25/50/75/100 % of the run: flat memory shows as
about the same number at 50 % and at 100 %. "tree" adds the worker's child processes (the
library's ffmpeg decoder) sampled at the same moments.

The audio is real speech, built deterministically (fixed seed) with benchmarks/ingest.py's
``sources()/load16k()/compose()/encode()`` into benchmarks/.data/ (git-ignored): a 2-hour mono
16 kHz 32 kbit/s mp3, and its first 10 minutes as a second mp3.

    python benchmarks/long_memory.py [--minutes 10,120] [--baseline-long] [--json OUT]
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import ingest as ib  # noqa: E402  (benchmarks/ingest.py: the shared audio builders)

ROOT = HERE.parent
DATA = HERE / ".data"
SEED = ib.SEED + 5
MP3_16K = ["-ar", "16000", "-c:a", "libmp3lame", "-b:a", "32k"]


# ---------------------------------------------------------------- data --------------------------
def build(minutes: list) -> dict:
    """{minutes: {"path", "seconds", "bytes"}}: the longest file, and each shorter one as its start."""
    longest = max(minutes)
    key = {"seed": SEED, "minutes": sorted(minutes), "fmt": MP3_16K, "v": 1}
    man_path = DATA / f"long-memory-{'-'.join(str(m) for m in sorted(minutes))}.json"
    if man_path.exists():
        man = json.loads(man_path.read_text())
        if man.get("key") == key and all(os.path.exists(f["path"]) for f in man["files"].values()):
            return {int(k): v for k, v in man["files"].items()}
    DATA.mkdir(parents=True, exist_ok=True)
    print(f"building {longest} min of speech in {DATA} ...", flush=True)
    clips = [c for c in (ib.load16k(p) for p in ib.sources()) if len(c) > ib.SR // 2]
    audio = ib.compose(clips, longest * 60, random.Random(SEED))
    files = {}
    for m in sorted(minutes):
        path = DATA / f"long-memory-{m}min.mp3"
        ib.encode(audio[: m * 60 * ib.SR], path, MP3_16K)
        files[m] = {"path": str(path), "seconds": m * 60.0, "bytes": path.stat().st_size}
    man_path.write_text(json.dumps({"key": key, "files": files}, indent=1))
    return files


# ---------------------------------------------------------------- memory ------------------------
def _rss_kib(pid: str = "self") -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list:
    out = []
    for path in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            out += [int(c) for c in Path(path).read_text().split()]
        except OSError:
            pass
    return out + [g for c in out for g in _children(c)]


class Sampler(threading.Thread):
    """VmRSS of this process (and of it plus its children) every `every` seconds."""

    def __init__(self, every: float = 1.0):
        super().__init__(daemon=True)
        self.every, self.samples, self.t0 = every, [], time.perf_counter()
        self._halt = threading.Event()

    def sample(self) -> None:
        own = _rss_kib()
        tree = own + sum(_rss_kib(str(c)) for c in _children(os.getpid()))
        self.samples.append((time.perf_counter() - self.t0, own / 1024, tree / 1024))

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.every)

    def stop(self) -> list:
        self._halt.set()
        self.join()
        self.sample()
        return self.samples


def at(samples: list, t: float) -> list:
    """The last sample taken at or before time t."""
    best = samples[0]
    for s in samples:
        if s[0] <= t:
            best = s
    return best


# ---------------------------------------------------------------- workers -----------------------
def worker(name: str, path: str, out: str) -> None:
    sampler = Sampler()
    sampler.start()
    t0 = sampler.t0
    extra: dict = {}
    if name == "fw-vad":
        from faster_whisper import WhisperModel
        model = WhisperModel(ib.model_dir(), device="cpu", compute_type="int8")
        segments, _ = model.transcribe(path, vad_filter=True)
        n, chars = 0, 0
        for s in segments:
            n, chars = n + 1, chars + len(s.text)
        extra = {"segments": n, "chars": chars}
    elif name == "lib":
        from speechsearch import Library
        with tempfile.TemporaryDirectory() as d:
            with Library(os.path.join(d, "bench.idx")) as lib:
                report = lib.add(path)
                if report.failed:
                    raise SystemExit(f"library failed: {report.summary()}")
                extra = {"windows": report.segments, "audio_s": report.audio_seconds,
                         "index_mb": sum(f.stat().st_size for f in Path(d).rglob("*") if f.is_file()) / 2 ** 20}
    else:
        raise SystemExit(f"unknown pipeline {name!r}")
    wall = time.perf_counter() - t0
    samples = sampler.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    Path(out).write_text(json.dumps({"wall": wall, "ru_maxrss_mb": peak, "samples": samples, **extra}))


def run_worker(name: str, path: str) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    load = os.getloadavg()
    if subprocess.run([sys.executable, __file__, "--worker", name, "--file", path, "--out", out]).returncode:
        raise SystemExit(f"worker {name} failed on {path}")
    res = json.loads(Path(out).read_text())
    os.unlink(out)
    s = res["samples"]
    res["rss_at"] = {f"{p}%": round(at(s, res["wall"] * p / 100)[1]) for p in (25, 50, 75, 100)}
    res["tree_peak_mb"] = max(x[2] for x in s)
    res["sampled_peak_mb"] = max(x[1] for x in s)
    res["load_before"] = [round(x, 2) for x in load]
    res["load_after"] = [round(x, 2) for x in os.getloadavg()]
    return res


# ---------------------------------------------------------------- main --------------------------
def table(rows: list) -> str:
    lines = ["| pipeline | audio | wall s | x real time | peak RSS MB | RSS MB at 25 / 50 / 75 / 100 % of the run "
             "| growth 50->100 % | peak RSS MB with children | load avg (1 min) before / after |",
             "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |"]
    for r in rows:
        a = r["rss_at"]
        lines.append(f"| {r['pipeline']} | {r['minutes']} min | {r['wall']:.1f} | {r['seconds'] / r['wall']:.1f} | "
                     f"{r['ru_maxrss_mb']:.0f} | {a['25%']} / {a['50%']} / {a['75%']} / {a['100%']} | "
                     f"{a['100%'] - a['50%']:+d} | {r['tree_peak_mb']:.0f} | "
                     f"{r['load_before'][0]:.2f} / {r['load_after'][0]:.2f} |")
    return "\n".join(lines)


def source_digest() -> str:
    """A digest of speechsearch/*.py as they are on disk (the working tree may differ from HEAD)."""
    h = hashlib.blake2b(digest_size=6)
    for p in sorted((ROOT / "speechsearch").rglob("*.py")):
        h.update(str(p.relative_to(ROOT)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", default="10,120", help="lengths to run, in minutes (default 10,120)")
    ap.add_argument("--baseline-long", action="store_true",
                    help="run the fw-vad baseline on every length, not just the shortest")
    ap.add_argument("--json", help="write all results here")
    ap.add_argument("--build-only", action="store_true", help="build the audio files and stop")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker(a.worker, a.file, a.out)

    minutes = sorted(int(m) for m in a.minutes.split(","))
    files = build(minutes)
    if a.build_only:
        return print(json.dumps(files, indent=1))
    git = shutil.which("git")
    commit = subprocess.run([git, "-C", str(ROOT), "log", "-1", "--format=%h"], capture_output=True,
                            text=True).stdout.strip() if git else "?"
    digest = source_digest()
    print(f"commit {commit}, speechsearch/ source digest {digest}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()}", flush=True)
    for m in minutes:
        print(f"  {m} min: {files[m]['path']} ({files[m]['bytes'] / 2 ** 20:.1f} MiB)", flush=True)
    warm = "import faster_whisper, speechsearch, sentence_transformers, chromadb, torch"
    subprocess.run([sys.executable, "-c", warm], check=True)  # untimed: fill the page cache
    for f in Path(ib.model_dir()).iterdir():
        f.read_bytes()
    rows = []
    for m in minutes:
        pipes = ["lib"] + (["fw-vad"] if a.baseline_long or m == minutes[0] else [])
        for p in pipes:
            res = run_worker(p, files[m]["path"])
            row = dict(res, pipeline=p, minutes=m, seconds=files[m]["seconds"], file=files[m]["path"],
                       file_mib=round(files[m]["bytes"] / 2 ** 20, 1))
            rows.append(row)
            print(f"  {p} {m} min: {res['wall']:.1f} s, peak {res['ru_maxrss_mb']:.0f} MB, "
                  f"RSS at 25/50/75/100 %: {res['rss_at']}", flush=True)
    print(f"\n## Indexing one long recording: peak and over-time memory (commit {commit})\n")
    print(table(rows))
    print("\nRSS MB of the worker at every 10 % of its run (0 % is the interpreter start):\n")
    for r in rows:
        print(f"  {r['pipeline']:>6} {r['minutes']:>4} min: "
              + " ".join(f"{at(r['samples'], r['wall'] * p / 100)[1]:.0f}" for p in range(0, 101, 10)))
    print(f"\nload average at end {os.getloadavg()}")
    if source_digest() != digest:
        print(f"WARNING: speechsearch/ changed on disk during the run ({digest} -> {source_digest()})")
    if a.json:
        Path(a.json).write_text(json.dumps({"commit": commit, "source_digest": digest,
                                            "source_digest_end": source_digest(),
                                            "files": {str(k): v for k, v in files.items()},
                                            "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
