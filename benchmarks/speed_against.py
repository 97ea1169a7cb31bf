"""Documents per second of `nerelproc annotate` (model load included) for this checkout and
another one (a git worktree of an older commit), in one run, alternating, on the same input.

    python benchmarks/speed_against.py --against /tmp/base --rounds 3

Prints and writes benchmarks/speed_against.json: per checkout the wall seconds and CPU seconds
(user + sys of the child) of each round, the best docs/s, and the ratio this / against.
Extra arguments after `--` go to both annotate calls (e.g. `-- --no-names` for this one only
is not possible: options must exist in both checkouts)."""

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


def run_once(checkout, data, threads, extra):
    env = dict(os.environ, PYTHONPATH=str(checkout))
    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nerelproc", "annotate", str(data), "-o", f"{tmp}/out.jsonl",
                        "--quiet", "--threads", str(threads), *extra], env=env, cwd=checkout, check=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--against", required=True, type=Path)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/nerel/jsonl/test.jsonl")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/speed_against.json")
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    documents = sum(1 for line in args.data.open(encoding="utf-8") if line.strip())
    checkouts = {"this": ROOT, "against": args.against.resolve()}
    rounds = {name: [] for name in checkouts}
    for _ in range(args.rounds):
        for name, checkout in checkouts.items():
            rounds[name].append(run_once(checkout, args.data.resolve(), args.threads, extra))
    commit = subprocess.run(["git", "-C", str(args.against), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    result = {"documents": documents, "threads": args.threads, "against commit": commit, "extra arguments": extra}
    for name, values in rounds.items():
        result[name] = {"wall s": [round(w, 2) for w, _ in values], "CPU s": [round(c, 2) for _, c in values],
                        "best docs/s": round(documents / min(w for w, _ in values), 2)}
    result["docs/s this / against"] = round(result["this"]["best docs/s"] / result["against"]["best docs/s"], 3)
    result["CPU against / this"] = round(min(c for _, c in rounds["against"]) / min(c for _, c in rounds["this"]), 3)
    text = json.dumps(result, indent=1, ensure_ascii=False)
    print(text)
    args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
