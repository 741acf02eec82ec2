"""Ray ingestion against a plain Library.add on one machine: wall time, speed, memory.

Pipelines, each in its own fresh subprocess, one after the other, on benchmarks/ingest.py's
deterministic 8-file set (1280 s of audio, built into benchmarks/.data/ on first use):

  lib      BASELINE. ``Library(tmp).add(files)``: every default (two one-thread Whisper workers).
  ray-N    ``speechsearch.distributed.ingest(files, tmp, workers=N)``: a local Ray cluster started
           by the call (``ray.init`` with every core), N actors of one core each, the driver
           committing to the embedded store.

Wall time runs from before the first import to the report (Ray start-up, actor start and model
loads included, since a user pays them). Memory is the peak of the summed RSS of the worker
process and all its descendants (Ray's raylet, GCS and actors), sampled every 0.5 s with psutil.

    python benchmarks/distributed.py [--pipelines lib,ray-1,ray-2] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))


def tree_rss_mb(pid: int) -> float:
    import psutil

    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for q in procs:
        try:
            total += q.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def worker(name: str, files: list, out: str) -> None:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        if name == "lib":
            from speechsearch import Library

            with Library(os.path.join(d, "b.idx")) as lib:
                report = lib.add(files)
        else:
            from speechsearch.distributed import ingest

            report = ingest(files, os.path.join(d, "b.idx"), workers=int(name.split("-")[1]))
        wall = time.perf_counter() - t0
        if report.failed:
            raise SystemExit(f"failed: {report.failed}")
    Path(out).write_text(json.dumps({"wall": wall, "files": len(report.added)}))


def run(name: str, files: list) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    proc = subprocess.Popen([sys.executable, __file__, "--worker", name, "--out", out, "--files", *files])
    peak, stop = [0.0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], tree_rss_mb(proc.pid))
            stop.wait(0.5)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    code = proc.wait()
    stop.set()
    t.join()
    if code:
        raise SystemExit(f"{name} failed")
    res = json.loads(Path(out).read_text())
    os.unlink(out)
    return dict(res, rss_mb=peak[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pipelines", default="lib,ray-1,ray-2")
    ap.add_argument("--json")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--files", nargs="*", default=[], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker(a.worker, a.files, a.out)
    from ingest import build_data

    man = build_data(8, 90, 240, 30)
    files = [f["path"] for f in man["files"]]
    audio = sum(f["seconds"] for f in man["files"])
    print(f"{len(files)} files, {audio:.0f} s of audio; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    rows = []
    for name in a.pipelines.split(","):
        r = run(name, files)
        rows.append(dict(r, pipeline=name))
        print(f"  {name}: {r['wall']:.1f} s, {audio / r['wall']:.1f} audio-s/s, {r['rss_mb']:.0f} MB", flush=True)
    base = rows[0]["wall"]
    print("\n| pipeline | wall s | audio-s per wall-s | vs " + rows[0]["pipeline"] + " | peak RSS MB (process tree) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['pipeline']} | {r['wall']:.1f} | {audio / r['wall']:.1f} | {base / r['wall']:.2f} | {r['rss_mb']:.0f} |")
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")
    if a.json:
        Path(a.json).write_text(json.dumps({"audio_s": audio, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
