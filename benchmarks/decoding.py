"""The model's decisions compared on NEREL dev (where they are chosen) and test: NER decoders
(argmax per token, the BIO-constrained Viterbi of `nerelproc/runtime/decoding.py`, the same
with each O bias of the calibration grid, and document-level propagation of entity strings,
rejected) and CLS threshold modes (each refitted on all of dev; the 2-fold CV over dev that
picks one is in the model's nerelproc.json). Writes benchmarks/decoding.json.

    python benchmarks/decoding.py --model models/nerel-e5-small-int8
"""

import argparse
import json
import re
from pathlib import Path

import numpy as np

from nerelproc.evaluation.score import score_documents
from nerelproc.io.document import Document, Entity
from nerelproc.io.readers import read_documents
from nerelproc.runtime import decoding
from nerelproc.runtime.bundle import load_predictor
from nerelproc.training.calibration import O_BIAS_GRID, encode_in_chunks
from nerelproc.training.thresholds import MODES, micro_macro

ROOT = Path(__file__).resolve().parents[1]
PROPAGATED = ("ORGANIZATION",)  # the best of the type sets tried for propagation on dev


def propagate(document, types=None):
    """Every other occurrence (whole words) of a predicted entity's exact string gets its type."""
    have = {(e.type, e.start, e.end) for e in document.entities}
    entities = list(document.entities)
    for e in document.entities:
        if len(e.spans) != 1 or e.end - e.start < 3 or (types and e.type not in types):
            continue
        pattern = r"(?<!\w)" + re.escape(document.text[e.start : e.end]) + r"(?!\w)"
        for match in re.finditer(pattern, document.text):
            if (e.type, *match.span()) not in have:
                have.add((e.type, *match.span()))
                entities.append(Entity(e.type, (match.span(),)))
    return Document(document.id, document.text, entities)


def ner_figures(predicted, gold):
    ner = score_documents(predicted, gold, warn=lambda message: None)["ner"]
    return {"nested": {k: round(v, 4) for k, v in ner["micro"].items() if k != "support"},
            "flat_f1": round(ner["flat"]["f1"], 4), "per_loc_org_f1": round(ner["coarse"]["micro"]["f1"], 4)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "models" / "nerel-e5-small-int8"))
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "nerel" / "jsonl"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "decoding.json"))
    args = parser.parse_args()
    predictor = load_predictor(args.model, threads=args.threads)
    gold = {split: list(read_documents(Path(args.data) / f"{split}.jsonl")) for split in ("dev", "test")}
    encoded = {split: encode_in_chunks(predictor, docs) for split, docs in gold.items()}
    labels = predictor.labels
    truth = {split: np.array([[label in set(d.relation_labels()) for label in labels] for d in docs])
             for split, docs in gold.items()}
    probs = {split: np.stack([predictor.relation_scores(e) for e in encoded[split]]) for split in gold}
    ner, cls = {}, {}
    variants = [("argmax", decoding.argmax_tags, 0.0, None)]
    variants += [(f"constrained, O bias {b}", decoding.constrained_tags, b, None) for b in O_BIAS_GRID]
    variants += [("constrained + propagation (all types)", decoding.constrained_tags, 0.0, ()),
                 (f"constrained + propagation ({', '.join(PROPAGATED)})", decoding.constrained_tags, 0.0, PROPAGATED)]
    for split, docs in gold.items():
        for name, decode, o_bias, propagated in variants:
            decoder = predictor.with_options(decode_tags=decode)
            predicted = [Document(d.id, d.text, decoder.finish(e, o_bias).entities)
                         for d, e in zip(docs, encoded[split])]
            if propagated is not None:
                predicted = [propagate(p, propagated or None) for p in predicted]
            ner[f"{split}/{name}"] = ner_figures(predicted, docs)
            print(split, name, json.dumps(ner[f"{split}/{name}"]), flush=True)
        for mode, fit in MODES.items():
            thresholds = fit(probs["dev"], truth["dev"])  # chosen on dev, applied to both
            micro, macro = micro_macro(probs[split], truth[split], thresholds)
            cls[f"{split}/{mode}"] = {"micro_f1": round(micro, 4), "macro_f1": round(macro, 4)}
            print(split, "CLS", mode, json.dumps(cls[f"{split}/{mode}"]), flush=True)
    report = {"model": str(Path(args.model).resolve().relative_to(ROOT)), "ner": ner, "cls_thresholds": cls,
              "command": "python benchmarks/decoding.py"}
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
