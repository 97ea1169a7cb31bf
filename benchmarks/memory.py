"""Peak memory of `nerelproc annotate` on one huge document; writes benchmarks/memory.json.

    python benchmarks/memory.py --chars 1000000

The document is the NEREL test texts joined and repeated up to ``--chars`` characters.
`annotate` runs in a child process; its peak RSS is the child's ``ru_maxrss``.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "models" / "nerel-e5-small-int8"))
    parser.add_argument("--gold", default=str(ROOT.parent / "shared" / "nerel" / "jsonl" / "test.jsonl"))
    parser.add_argument("--chars", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "memory.json"))
    args = parser.parse_args()
    texts = [json.loads(line)["text"] for line in open(args.gold, encoding="utf-8")]
    text = "\n\n".join(texts)
    text = (text * (args.chars // len(text) + 1))[: args.chars]
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "huge.jsonl", Path(tmp) / "out.jsonl"
        source.write_text(json.dumps({"id": "huge", "text": text}, ensure_ascii=False) + "\n", "utf-8")
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nerelproc", "annotate", str(source), "-o", str(target),
                        "--model", args.model, "--threads", str(args.threads), "--quiet"], check=True, cwd=ROOT)
        seconds = time.perf_counter() - started
        entities = len(json.loads(target.read_text("utf-8"))["entities"])
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.uname().machine}, {os.cpu_count()} cores",
        "model": os.path.relpath(args.model, ROOT),
        "chars": len(text),
        "entities": entities,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "command": f"python benchmarks/memory.py --chars {args.chars}",
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
