"""Build the bundled offline library from SciFact's corpus (run once; output committed).

    python scripts/build_bundled_library.py ../shared/data/scifact/corpus.jsonl

Writes ``src/nomosx/data/scifact.jsonl.gz``: the corpus lines unchanged (SciFact's own
format, which ``nomosx ingest`` reads), gzip-compressed deterministically (mtime 0).
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "nomosx" / "data" / "scifact.jsonl.gz"


def main(corpus: Path) -> None:
    count = 0
    with (
        corpus.open("rb") as src,
        OUT.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as out,
    ):
        for line in src:
            if line.strip():
                record = json.loads(line)
                out.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")
                count += 1
    print(f"wrote {count} records to {OUT} ({OUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/scifact/corpus.jsonl"))
