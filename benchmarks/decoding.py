"""NER decoders compared on NEREL dev (selection) and test: argmax per token vs the
BIO-constrained Viterbi of `nerelproc/runtime/decoding.py`; writes benchmarks/decoding.json.

    python benchmarks/decoding.py --model models/nerel-e5-small-int8
"""

import argparse
import json
from pathlib import Path

from nerelproc.evaluation.score import score_documents
from nerelproc.io.document import Document
from nerelproc.io.readers import read_documents
from nerelproc.runtime import decoding
from nerelproc.runtime.bundle import load_predictor

ROOT = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "models" / "nerel-e5-small-int8"))
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "nerel" / "jsonl"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "decoding.json"))
    args = parser.parse_args()
    predictor = load_predictor(args.model, threads=args.threads)
    results = {}
    for split in ("dev", "test"):
        gold = list(read_documents(Path(args.data) / f"{split}.jsonl"))
        for name, decode in (("argmax", decoding.argmax_tags), ("constrained", decoding.constrained_tags)):
            predictor.decode_tags = decode
            predicted = [Document(d.id, d.text, p.entities, relation_types=p.relation_types)
                         for d, p in zip(gold, predictor.predict([d.text for d in gold]))]
            ner = score_documents(predicted, gold, warn=lambda message: None)["ner"]
            results[f"{split}/{name}"] = {
                "nested": {k: round(v, 4) for k, v in ner["micro"].items() if k != "support"},
                "flat_f1": round(ner["flat"]["f1"], 4),
                "per_loc_org_f1": round(ner["coarse"]["micro"]["f1"], 4),
            }
            print(split, name, json.dumps(results[f"{split}/{name}"]))
    report = {"model": str(Path(args.model).resolve().relative_to(ROOT)), "results": results,
              "command": "python benchmarks/decoding.py"}
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
