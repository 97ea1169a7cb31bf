"""The time a training step takes on this machine, as `nerelproc train` measures it, for the
recipes that start from the bundled model: full fine-tuning (fp32) and the lower 8 or 10
layers frozen with their outputs cached. Each run is stopped once train has printed its
step time (after step 4); the first documents of TRAIN are enough for that (the frozen
layers are cached for them only). Writes benchmarks/train_step_time.json.

    python benchmarks/train_step_time.py --model models/nerel-e5-small-int8 \\
        --train ../shared/nerel/jsonl/train.jsonl --dev ../shared/nerel/jsonl/dev.jsonl --threads 2
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {"full": [], "freeze8": ["--freeze-layers", "8"], "freeze10": ["--freeze-layers", "10"]}
STEP_LINE = re.compile(r"train: ([\d.]+) s a step \(process CPU ([\d.]+) s")
CPU_LINE = re.compile(r"train: (CPU .*)")


def measure(args, recipe, work):
    command = ["nerelproc", "train", "--init", args.model, "--train", args.train, "--dev", args.dev,
               "-o", str(work / recipe), "--batch-size", "8", "--attention-dropout", "0",
               "--threads", str(args.threads), "--max-train-docs", str(args.max_train_docs),
               "--cache-dir", str(work / "cache"), *RECIPES[recipe]]
    started = time.time()
    load = os.getloadavg()[0]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                               errors="replace")
    result = {"command": " ".join(command).replace(str(work), "WORK"), "load_average_at_start": round(load, 2)}
    buffer = ""
    try:
        while True:
            chunk = process.stderr.read(256)
            if not chunk:
                break
            buffer += chunk
            for line in re.split(r"[\r\n]", buffer)[:-1]:
                if (match := CPU_LINE.match(line)) and "setup_seconds" not in result:
                    result["cpu"] = match[1]
                    result["setup_seconds"] = round(time.time() - started, 1)  # to the first step
                if match := STEP_LINE.search(line):
                    result["seconds_a_step"], result["cpu_seconds_a_step"] = float(match[1]), float(match[2])
            buffer = re.split(r"[\r\n]", buffer)[-1]
            if "seconds_a_step" in result:
                break
    finally:
        process.terminate()
        process.wait()
    if "seconds_a_step" not in result:
        sys.exit(f"{recipe}: train ended before it printed a step time (exit {process.returncode})")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/nerel-e5-small-int8")
    parser.add_argument("--train", default="../shared/nerel/jsonl/train.jsonl")
    parser.add_argument("--dev", default="../shared/nerel/jsonl/dev.jsonl")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-train-docs", type=int, default=40)
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "train_step_time.json"))
    args = parser.parse_args()

    import torch

    results = {"torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
               "native_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
               "cores": os.cpu_count(), "threads": args.threads, "batch_windows": 8, "precision": "fp32",
               "max_train_docs": args.max_train_docs, "recipes": {}}
    with tempfile.TemporaryDirectory() as work:
        for recipe in args.recipes.split(","):
            results["recipes"][recipe] = measure(args, recipe, Path(work))
            print(recipe, results["recipes"][recipe], flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
