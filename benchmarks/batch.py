"""`nerelproc batch`: documents/s in one process vs `--dask local:N`, and the cost per file.

    python benchmarks/batch.py --model models/nerel-e5-small-int8          # writes benchmarks/batch.json

Every figure is the wall time of a whole `nerelproc batch` command in a fresh OUT_DIR
(the best of ``--repeat`` runs), so it holds what a cron job pays: process start, model
load (and for Dask the LocalCluster start and one model load per worker), planning,
annotation, assembly, the manifest.

- throughput: the NEREL test texts (id + text) split into ``--files`` files; one
  process with ``--threads CORES`` against ``--dask local:N`` with ``--threads CORES/N``
  per worker (the same cores in all). ``fixed_s`` is the same command on one one-line
  file: start-up and model load(s); ``docs_per_s_net`` leaves it out.
- overhead per file: ``--many`` files of one short document each against one file of
  ``--many`` such documents, in each mode; (t_many - t_one) / (many - 1) is what a
  file costs beyond its documents (planning, hashing, a task, assembly, a manifest write).
- the outputs of the two modes are compared byte for byte.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHORT = "Мэр Москвы Сергей Собянин открыл в Зеленограде новый парк."


def write_lines(path, objects):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as file:
        for obj in objects:
            file.write(json.dumps(obj, ensure_ascii=False) + "\n")


def run_batch(feeds, out, model, extra, repeat):
    """The best wall time of ``repeat`` runs, each in a fresh OUT_DIR; the last OUT_DIR is kept."""
    best = None
    for _ in range(repeat):
        shutil.rmtree(out, ignore_errors=True)
        command = [sys.executable, "-m", "nerelproc", "batch", str(feeds), "-o", str(out), "--model", str(model),
                   "--quiet", *map(str, extra)]
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, cwd=ROOT)
        seconds = time.perf_counter() - started
        if result.returncode not in (0, 3):
            raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr.decode()}")
        best = seconds if best is None else min(best, seconds)
    return round(best, 3)


def outputs(out_dir):
    return {p.relative_to(out_dir).as_posix(): p.read_bytes() for p in sorted(Path(out_dir).rglob("*"))
            if p.is_file() and not p.name.startswith(".") and p.name != "manifest.json"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "models" / "nerel-e5-small-int8"))
    parser.add_argument("--data", default=os.environ.get("NEREL_DATA") or str(ROOT.parent / "shared" / "nerel"))
    parser.add_argument("--files", type=int, default=4, help="files the test texts are split into")
    parser.add_argument("--docs", type=int, default=0, help="use only the first DOCS test texts (0: all)")
    parser.add_argument("--workers", type=int, default=2, help="--dask local:WORKERS")
    parser.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--many", type=int, default=40, help="files of one document, for the cost per file")
    parser.add_argument("--part-size", default="4M")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("-o", "--out", default=str(ROOT / "benchmarks" / "batch.json"))
    args = parser.parse_args()

    import distributed  # noqa: F401  (pip install 'nerelproc[dask]')
    from nerelproc.machine import cpu_model

    texts = [json.loads(line) for line in open(Path(args.data) / "jsonl" / "test.jsonl", encoding="utf-8")]
    texts = [{"id": t["id"], "text": t["text"]} for t in texts][: args.docs or None]
    threads_single = args.cores
    threads_worker = max(1, args.cores // args.workers)
    modes = {
        "1 process": ["--threads", threads_single],
        f"dask local:{args.workers}": ["--threads", threads_worker, "--dask", f"local:{args.workers}",
                                       "--part-size", args.part_size],
    }
    with tempfile.TemporaryDirectory(prefix="nerelproc-batch-bench-") as tmp:
        tmp = Path(tmp)
        size = -(-len(texts) // args.files)
        for index in range(args.files):
            write_lines(tmp / "feeds" / f"feed-{index:02d}.jsonl", texts[index * size:(index + 1) * size])
        write_lines(tmp / "one" / "one.jsonl", [{"id": "x", "text": SHORT}])
        for index in range(args.many):
            write_lines(tmp / "many" / f"f{index:03d}.jsonl", [{"id": index, "text": SHORT}])
        write_lines(tmp / "single" / "all.jsonl", [{"id": index, "text": SHORT} for index in range(args.many)])

        results = {}
        for name, extra in modes.items():
            tag = name.replace(" ", "-").replace(":", "")
            print(f"{name}: throughput", file=sys.stderr)
            wall = run_batch(tmp / "feeds", tmp / f"out-{tag}", args.model, extra, args.repeat)
            fixed = run_batch(tmp / "one", tmp / f"fixed-{tag}", args.model, extra, args.repeat)
            print(f"{name}: cost per file", file=sys.stderr)
            many = run_batch(tmp / "many", tmp / f"many-{tag}", args.model, extra, args.repeat)
            one = run_batch(tmp / "single", tmp / f"onefile-{tag}", args.model, extra, args.repeat)
            results[name] = {
                "threads_per_process": extra[1],
                "wall_s": wall,
                "fixed_s": fixed,
                "docs_per_s": round(len(texts) / wall, 2),
                "docs_per_s_net": round(len(texts) / (wall - fixed), 2) if wall - fixed > 0.1 * wall else None,
                f"{args.many}_files_s": many,
                f"1_file_of_{args.many}_docs_s": one,
                "overhead_per_file_s": round((many - one) / max(args.many - 1, 1), 4),
            }
        names = list(modes)
        identical = outputs(tmp / f"out-{names[0].replace(' ', '-')}") == outputs(
            tmp / f"out-{names[1].replace(' ', '-').replace(':', '')}")

    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpu": cpu_model(), "cores": args.cores, "python": platform.python_version(),
                    "platform": platform.platform()},
        "model": str(args.model),
        "docs": len(texts),
        "chars": sum(len(t["text"]) for t in texts),
        "files": args.files,
        "part_size": args.part_size,
        "repeat": args.repeat,
        "modes": results,
        "outputs_identical": identical,
        "speedup_dask_vs_1_process": round(results[names[1]]["docs_per_s"] / results[names[0]]["docs_per_s"], 3),
    }
    Path(args.out).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
