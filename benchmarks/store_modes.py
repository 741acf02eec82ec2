"""Embedded Chroma vs a Chroma server, in the same run, on the same files and queries.

    python benchmarks/store_modes.py [--queries 100] [--rows 5000] [--json OUT]
    python benchmarks/store_modes.py --stress 25 [--trials 3] [--no-lock]

Default run (a `chroma run` server is started on a free loopback port for it):

  Library.add        the small real set (the four synthetic calls and the human call, 3.4 min of
                     audio), models loaded beforehand; transcription dominates and is the same work
                     in both modes, so the difference is the store
  import             the same transcripts imported into a fresh index (text embedding + store
                     writes, no transcription): the store's share of indexing, larger
  search             p50/p95 of Library.search(k=10) over --queries real queries after a warm-up
  store upsert       ChromaStore.upsert of --rows random 384-d unit vectors, 50 per call (one
                     file's windows), with our metadata; rows/s
  store query        p50/p95 of ChromaStore.query(n=40) on those rows

--stress SECONDS: one process upserts 200 vectors per call as fast as it can (the HNSW files are
rewritten every 1000) while another searches in a loop, checking that it sees the newest batch,
then a fresh process opens the store: the measurement behind the store lock (lock.py). With the
library's ChromaStore (store lock + re-open on a newer generation), or with --no-lock plain
chromadb clients (the reader re-opening its client each round so that it sees new data).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SET = [ROOT / "examples" / "refund-call.mp3", ROOT / "examples" / "account-locked-call.ogg",
       ROOT / "tests" / "data" / "cancel-subscription-call.mp3", ROOT / "tests" / "data" / "late-delivery-call.flac",
       ROOT / "examples" / "phone-call-human.flac"]
WARMUP = ROOT / "tests" / "data" / "librivox-short.flac"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_chroma(data: Path) -> "tuple[subprocess.Popen, str]":
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(data / "chroma-server.log", "wb")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("chroma")), "run", "--path", str(data / "db"),
                             "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, ANONYMIZED_TELEMETRY="False"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"chroma run did not come up on {url}; see {data / 'chroma-server.log'}")


def pct(values: "list[float]", q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


def queries(n: int) -> "list[str]":
    calls = json.loads((ROOT / "tests" / "data" / "calls.json").read_text())["calls"]
    base = [q for c in calls for q in c["example_queries"]] + [
        "the customer sounds frustrated", "can I speak to a manager", "what is your order number",
        "thank you for calling", "is there anything else I can help with", "the weather was terrible"]
    return [base[i % len(base)] for i in range(n)]


def run_library(url: "str | None", work: Path, n_queries: int, transcripts: Path) -> dict:
    from speechsearch import Library

    name = "server" if url else "embedded"
    out: dict = {}
    with Library(work / f"{name}.idx", chroma_url=url or "") as lib:
        t = time.perf_counter()
        report = lib.add(SET)
        out["add_s"] = time.perf_counter() - t
        assert report.ok and len(report.added) == len(SET), report.summary()
        out["audio_s"] = report.audio_seconds
        out["windows"] = len(lib)
        if not transcripts.exists():
            lib.export_transcripts(transcripts)
        qs = queries(n_queries)
        for q in qs[:10]:  # warm-up
            lib.search(q, k=10)
        lat = []
        for q in qs:
            t = time.perf_counter()
            lib.search(q, k=10)
            lat.append(time.perf_counter() - t)
        out["search_p50_ms"], out["search_p95_ms"] = pct(lat, 50), pct(lat, 95)
        out["top"] = [(h.path, round(h.score, 4)) for h in lib.search(qs[0], k=3)]
    with Library(work / f"{name}-import.idx", chroma_url=url or "") as lib:
        t = time.perf_counter()
        report = lib.import_transcripts(transcripts)
        out["import_s"] = time.perf_counter() - t
        assert report.ok, report.summary()
    return out


def run_store(url: "str | None", work: Path, rows: int) -> dict:
    from speechsearch.store import ChromaServer, ChromaStore, collection_prefix

    server = ChromaServer.parse(url) if url else None
    store = ChromaStore(work / "raw" / "chroma", "bench", server=server,
                        prefix=collection_prefix(os.urandom(8).hex()) if server else "")
    rng = np.random.default_rng(7)
    vecs = rng.standard_normal((rows, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    t = time.perf_counter()
    for f in range(0, rows, 50):
        ids = [f"w{i}" for i in range(f, min(rows, f + 50))]
        metas = [{"path": f"/calls/{f // 50}.mp3", "file_hash": "x", "start": float(i - f) * 15, "end": 20.0,
                  "channel": 0, "agent": f"A{f % 7}"} for i in range(f, f + len(ids))]
        store.upsert(ids, vecs[f:f + len(ids)], ["some words of a window"] * len(ids), metas)
    upsert_s = time.perf_counter() - t
    qv = rng.standard_normal((110, 384)).astype(np.float32)
    for v in qv[:10]:
        store.query(v, n=40)
    lat = []
    for v in qv[10:]:
        t = time.perf_counter()
        store.query(v, n=40)
        lat.append(time.perf_counter() - t)
    count = store.count()
    store.drop()
    return {"rows": count, "upsert_rows_per_s": count / upsert_s, "query_p50_ms": pct(lat, 50),
            "query_p95_ms": pct(lat, 95)}


def main_bench(args: argparse.Namespace) -> None:
    from speechsearch import Library

    work = Path(tempfile.mkdtemp(prefix="store-modes-"))
    server, url = start_chroma(work)
    try:
        t = time.perf_counter()
        with Library(work / "warmup.idx", chroma_url="") as lib:  # loads every model once
            lib.add(WARMUP)
            lib.search("warm up", k=1)
        warm = time.perf_counter() - t
        transcripts = work / "transcripts.jsonl"
        results = {"embedded": {}, "server": {}}
        results["embedded"].update(run_library(None, work, args.queries, transcripts))
        results["server"].update(run_library(url, work, args.queries, transcripts))
        results["embedded"].update(run_store(None, work, args.rows))
        results["server"].update(run_store(url, work, args.rows))
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    e, s = results["embedded"], results["server"]
    same = [p for p, _ in e["top"]] == [p for p, _ in s["top"]] and all(
        abs(a - b) < 1e-4 for (_, a), (_, b) in zip(e["top"], s["top"]))
    import chromadb

    print(f"machine: {platform.machine()}, {os.cpu_count()} vCPUs, Python {platform.python_version()}, "
          f"chromadb {chromadb.__version__}; models warmed up first ({warm:.1f} s)")
    print(f"set: {len(SET)} files, {e['audio_s'] / 60:.1f} min of audio, {e['windows']} windows; "
          f"{args.queries} queries; store rows: {e['rows']}; same top hits and scores in both: {same}")
    print()
    print("| measure | embedded | server |")
    print("| --- | --- | --- |")
    print(f"| Library.add of the set (s) | {e['add_s']:.1f} | {s['add_s']:.1f} |")
    print(f"| import of its transcripts (s) | {e['import_s']:.2f} | {s['import_s']:.2f} |")
    print(f"| Library.search p50 (ms) | {e['search_p50_ms']:.1f} | {s['search_p50_ms']:.1f} |")
    print(f"| Library.search p95 (ms) | {e['search_p95_ms']:.1f} | {s['search_p95_ms']:.1f} |")
    rows = e["rows"]
    print(f"| ChromaStore.upsert, 50 rows a call (rows/s) | {e['upsert_rows_per_s']:.0f} | "
          f"{s['upsert_rows_per_s']:.0f} |")
    print(f"| ChromaStore.query n=40 on {rows} rows p50 (ms) | {e['query_p50_ms']:.1f} | {s['query_p50_ms']:.1f} |")
    print(f"| ChromaStore.query n=40 on {rows} rows p95 (ms) | {e['query_p95_ms']:.1f} | {s['query_p95_ms']:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


# -- --stress: one process writes, another reads ------------------------------------------------
def _vec(b: int, i: int) -> np.ndarray:
    return np.random.default_rng(b * 1000 + i).random(384, dtype=np.float32) - 0.5


def _stress_child(role: str, d: Path, seconds: float, raw: bool) -> None:
    """One side of the stress test; prints one JSON line."""
    import faulthandler

    faulthandler.enable()
    progress = d / "progress"
    if raw:
        import chromadb
        from chromadb.api.shared_system_client import SharedSystemClient
        from chromadb.config import Settings

        from speechsearch.store import HNSW

        def collection():
            SharedSystemClient._identifier_to_system.pop(str(d / "chroma"), None)
            client = chromadb.PersistentClient(path=str(d / "chroma"), settings=Settings(anonymized_telemetry=False))
            return client.get_or_create_collection("stress", embedding_function=None,
                                                   configuration={"hnsw": HNSW})

        col = collection()

        def upsert(ids, vecs, metas):
            col.upsert(ids=ids, embeddings=vecs, documents=[""] * len(ids), metadatas=metas)

        def search(v):
            c = collection()  # a fresh client, or the reader never sees new vectors
            return c.query(query_embeddings=[v], n_results=3)["ids"][0]
    else:
        from speechsearch.store import ChromaStore

        store = ChromaStore(d / "chroma", "stress")

        def upsert(ids, vecs, metas):
            store.upsert(ids, vecs, [""] * len(ids), metas)

        def search(v):
            return [h.id for h in store.query(v, 3)]

    end = time.monotonic() + seconds
    if role == "write":
        b, lat = int(progress.read_text() or 0) + 1 if progress.exists() else 0, []
        while time.monotonic() < end:
            t = time.perf_counter()
            upsert([f"{b}-{i}" for i in range(200)], np.stack([_vec(b, i) for i in range(200)]),
                   [{"path": f"f{b}"}] * 200)
            lat.append(time.perf_counter() - t)
            progress.write_text(str(b))
            b += 1
        print(json.dumps({"batches": len(lat), "upsert_p50_ms": pct(lat, 50)}))
    elif role == "read":
        rounds, newest, errors, lat = 0, 0, {}, []
        while time.monotonic() < end:
            try:
                b = int(progress.read_text() or 0)
                t = time.perf_counter()
                ids = search(_vec(b, 7))
                lat.append(time.perf_counter() - t)
                rounds += 1
                newest += bool(ids) and ids[0] == f"{b}-7"
            except Exception as e:
                key = f"{type(e).__name__}: {str(e)[:120]}"
                errors[key] = errors.get(key, 0) + 1
        print(json.dumps({"rounds": rounds, "newest_seen": newest, "errors": errors,
                          "p50_ms": pct(lat, 50) if lat else None, "p95_ms": pct(lat, 95) if lat else None}))
    else:  # "check": a fresh process opens the store after the run
        ids = search(_vec(0, 7))
        print(json.dumps({"ok": ids[:1] == ["0-7"]}))


def _size_mb(d: Path) -> float:
    total = 0
    for f in d.rglob("*"):
        try:
            total += f.stat().st_blocks * 512 if f.is_file() else 0
        except OSError:
            pass
    return total / 2**20


def _watch(procs: list, d: Path, limit_s: float) -> "tuple[str, float]":
    """Wait for `procs`; kill them if the store passes 2 GB on disk or they outlive `limit_s`."""
    start, peak = time.monotonic(), 0.0
    while any(p.poll() is None for p in procs):
        peak = max(peak, _size_mb(d))
        note = (f" (killed: the store grew to {peak / 1024:.1f} GB on disk)" if peak > 2048 else
                " (killed: hung)" if time.monotonic() - start > limit_s else "")
        if note:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            return note, peak
        time.sleep(0.5)
    return "", max(peak, _size_mb(d))


def main_stress(args: argparse.Namespace) -> None:
    """Run the trials; a watchdog stops a trial whose files grow past 2 GB (a corrupt HNSW index
    can grow link_lists.bin until the disk is full) or whose reader hangs."""
    me = [sys.executable, __file__, "--child"]
    flags = ["--no-lock"] if args.no_lock else []
    print(f"{'plain chromadb, no lock' if args.no_lock else 'ChromaStore (store lock)'}: writer and reader "
          f"for {args.stress:.0f} s, {args.trials} trial(s), {os.cpu_count()} vCPUs")

    def outcome(proc: "subprocess.Popen | None", note: str = "") -> str:
        if proc is None:
            return "not run"
        out, err = proc.communicate()
        if proc.returncode == 0 and out.strip():
            return out.strip().splitlines()[-1]
        lines = [line.strip() for line in err.strip().splitlines() if line.strip()]
        said = [line for line in lines if "Error" in line or "error" in line] or lines
        return f"exit {proc.returncode}{note}" + (f": {said[-1][:200]}" if said else "")

    for trial in range(1, args.trials + 1):
        d = Path(tempfile.mkdtemp(prefix="store-stress-"))
        subprocess.run(me + ["write", str(d), "0.2"] + flags, check=True, capture_output=True)
        popen = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        reader = subprocess.Popen(me + ["read", str(d), str(args.stress + 2)] + flags, **popen)
        time.sleep(1)
        writer = subprocess.Popen(me + ["write", str(d), str(args.stress)] + flags, **popen)
        note, peak = _watch([reader, writer], d, args.stress + 60)
        w, r = outcome(writer, note if writer.returncode and writer.returncode < 0 else ""), outcome(reader, note)
        check = None
        if not note:
            check = subprocess.Popen(me + ["check", str(d), "0"] + flags, **popen)
            cnote, cpeak = _watch([check], d, 120)
            peak = max(peak, cpeak)
        print(f"trial {trial}: writer {w}")
        print(f"         reader {r}")
        print(f"         re-open afterwards {outcome(check, cnote if check else '')}; store on disk "
              f"{peak:.0f} MB at most")
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        role, d, secs = sys.argv[2], Path(sys.argv[3]), float(sys.argv[4])
        _stress_child(role, d, secs, "--no-lock" in sys.argv)
        sys.exit(0)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--json", default=None)
    ap.add_argument("--stress", type=float, default=None, metavar="SECONDS")
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--no-lock", action="store_true")
    a = ap.parse_args()
    main_stress(a) if a.stress else main_bench(a)
