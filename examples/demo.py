"""Index the example recordings and run a few searches: the 30-second tour of speechsearch.

    python examples/demo.py [INDEX_DIR]

Uses the embedded defaults (Whisper tiny.en and all-MiniLM-L6-v2, both installed from PyPI
packages), so it runs offline.
"""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

from speechsearch import Library

HERE = Path(__file__).resolve().parent
QUERIES = [
    "customer wants their money back",
    "someone cannot get into their account",
    "the caller says where she lives",
]


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    index = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent / "demo.idx"
    shutil.rmtree(index, ignore_errors=True)  # start fresh so the demo shows indexing
    with Library(index, show_progress=True) as lib:
        report = lib.add(HERE)
        print(report.summary())
        print(f"index: {index} ({len(lib)} segments)\n")
        for query in QUERIES:
            print(f"search: {query!r}")
            for hit in lib.search(query, k=3):
                span = f"{int(hit.start) // 60:02d}:{int(hit.start) % 60:02d}-" \
                       f"{int(hit.end) // 60:02d}:{int(hit.end) % 60:02d}"
                print(f"  {hit.score:.3f}  {Path(hit.path).name}  {span}  {hit.text[:110]}")
            print()
        first = sorted(f.path for f in lib.files())[0]
        print(f"calls like {Path(first).name}:")
        for hit in lib.similar(first, k=2):
            print(f"  {hit.score:.3f}  {Path(hit.path).name}  {hit.text[:100]}")
        print("\ntopics:")
        for topic in lib.topics():
            print(f"  {topic.label} ({topic.size} calls): {', '.join(Path(f).name for f in topic.files)}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
