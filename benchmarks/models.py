"""The bundled models side by side with natasha on the NEREL test texts: speed, memory, quality.

    python benchmarks/models.py --rounds 3            # writes benchmarks/models.json

Each system annotates the test texts (id + text) in a fresh process, load included, as a user
runs it: ``nerelproc annotate --model default`` and ``--model fast``, and natasha's NER (slovnet,
PER/LOC/ORG; ``experiments/natasha_ner.py``). Rounds alternate the systems so that a busy
moment of the machine does not fall on one of them. Per system: the best round's docs/s and
chars/s (the whole process, load included), its load time (the model loaded, before the first
document), CPU seconds (user + sys of the process) and peak RSS; then ``nerelproc score``'s
figures of its output against gold (natasha: the PER/LOC/ORG view only, the one it can be
compared on). Needs natasha (the train extra) for its row.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nerelproc.machine import cpu_model

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("default", "fast")
LOAD_PROBE = ("from nerelproc.runtime.bundle import load_predictor, resolve_model; import sys, time; "
              "t = time.perf_counter(); load_predictor(resolve_model(sys.argv[1]), threads=int(sys.argv[2])); "
              "print(time.perf_counter() - t)")


def command(system, texts, out, threads):
    if system == "natasha":
        return [sys.executable, "-m", "experiments.natasha_ner", str(texts), str(out)]
    return [sys.executable, "-m", "nerelproc", "annotate", str(texts), "-o", str(out), "--model", system,
            "--quiet", "--threads", str(threads)]


def timed(cmd):
    """``(wall seconds, CPU seconds, peak RSS in MiB)`` of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def load_seconds(system, threads):
    if system == "natasha":
        probe = ("import time; t = time.perf_counter(); from natasha import NewsEmbedding, NewsNERTagger, Segmenter; "
                 "Segmenter(); NewsNERTagger(NewsEmbedding()); print(time.perf_counter() - t)")
        return float(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout)
    result = subprocess.run([sys.executable, "-c", LOAD_PROBE, system, str(threads)], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    return float(result.stdout)


def quality(system, out, gold_path):
    from nerelproc.evaluation.score import HEADLINE, dig, score_documents
    from nerelproc.io.readers import read_documents

    scores = score_documents(list(read_documents(out)), list(read_documents(gold_path)), warn=lambda message: None)
    if system == "natasha":
        return {"per_loc_org": round(dig(scores, HEADLINE["coarse"]), 4)}
    return {"nested": round(dig(scores, HEADLINE["ner"]), 4), "per_loc_org": round(dig(scores, HEADLINE["coarse"]), 4),
            "cls_micro": round(dig(scores, HEADLINE["cls_micro"]), 4),
            "cls_macro": round(dig(scores, HEADLINE["cls_macro"]), 4),
            "relations": round(dig(scores, ("re", "micro", "f1")), 4)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gold", type=Path, default=ROOT.parent / "shared/nerel/jsonl/test.jsonl")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--systems", default="default,fast,natasha")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "models.json")
    args = parser.parse_args()
    systems = args.systems.split(",")
    records = [json.loads(line) for line in args.gold.read_text("utf-8").splitlines() if line.strip()]
    chars = sum(len(r["text"]) for r in records)
    result = {"data": str(args.gold.name), "documents": len(records), "characters": chars, "threads": args.threads,
              "cpu": cpu_model(), "rounds": args.rounds, "systems": {}}
    with tempfile.TemporaryDirectory() as tmp:
        texts = Path(tmp) / "texts.jsonl"
        texts.write_text("".join(json.dumps({"id": r["id"], "text": r["text"]}, ensure_ascii=False) + "\n"
                                 for r in records), "utf-8")
        runs = {system: [] for system in systems}
        for _ in range(args.rounds):
            for system in systems:
                runs[system].append(timed(command(system, texts, Path(tmp) / f"{system}.jsonl", args.threads)))
        for system in systems:
            wall, cpu, rss = min(runs[system])
            result["systems"][system] = {
                "docs_per_s": round(len(records) / wall, 2), "chars_per_s": round(chars / wall),
                "wall_s": [round(w, 2) for w, _, _ in runs[system]], "cpu_s": [round(c, 2) for _, c, _ in runs[system]],
                "peak_rss_mib": round(max(r for _, _, r in runs[system])), "load_s": round(load_seconds(system, args.threads), 2),
                **quality(system, Path(tmp) / f"{system}.jsonl", args.gold)}
    if "natasha" in result["systems"]:
        for system in systems:
            ratio = result["systems"][system]["docs_per_s"] / result["systems"]["natasha"]["docs_per_s"]
            result["systems"][system]["docs_per_s_vs_natasha"] = round(ratio, 3)
    args.out.write_text(json.dumps(result, indent=1) + "\n", "utf-8")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
