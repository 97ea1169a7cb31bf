"""An experiment: a span-based nested NER head (SpERT-style) on a model's frozen int8 encoder,
against the model's own tagging head (O/B/I per type and nesting layer).

    nice -n 10 python -m experiments.span_head models/nerel-e5-small-int8 --epochs 4 --lr 3e-3 [--test]

The encoder runs once over NEREL train, and over dev as written, lower-cased and upper-cased
(``str.lower``/``str.upper`` keep every offset of Russian and Latin text), window by window
as ``annotate`` runs it; the windows' states are cached in ``runs/span_head/``. The span head
(``nerelproc/training/spans.py``) trains on train's gold spans; after each epoch the numpy
head (``nerelproc/runtime/spans.py``, what a runtime would run) decodes dev as written at each
threshold, and dev's nested micro-F1 (``nerelproc score``'s) picks the epoch and threshold.
Then both heads are scored on the three dev texts: the tagging head's entities are what
``annotate`` writes (the predictor's own decoding, its O bias). ``--test`` also reads the
chosen setting on test (three cases), once. Writes ``reports/span_head.json`` and the head to
``runs/span_head/spans.npz``.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from nerelproc.evaluation.score import score_documents
from nerelproc.io.document import Document
from nerelproc.io.readers import read_documents
from nerelproc.runtime.bundle import Bundle
from nerelproc.runtime.pairs import entity_token_spans
from nerelproc.training.spans import (EPOCHS, LEARNING_RATE, MAX_WIDTH, WIDTH, candidates_of, encode_split, log_to_stderr,
                                      span_predictions, train_span_head, training_windows, tune_threshold)

DATA = Path(__file__).resolve().parents[2] / "shared" / "nerel" / "jsonl"
CACHE = Path("runs/span_head")
CASES = {"as written": lambda text: text, "lower": str.lower, "upper": str.upper}


class Clock:
    """Wall and CPU seconds of each named step (CPU: this process, the encoder's threads included)."""

    def __init__(self):
        self.steps = {}

    def __call__(self, name, function, *args, **kwargs):
        wall, cpu = time.time(), time.process_time()
        result = function(*args, **kwargs)
        self.steps[name] = {"wall_s": round(time.time() - wall, 1), "cpu_s": round(time.process_time() - cpu, 1)}
        log_to_stderr(f"{name}: {self.steps[name]['wall_s']} s wall, {self.steps[name]['cpu_s']} CPU s")
        return result


def cased(documents, case):
    texts = [CASES[case](d.text) for d in documents]
    for document, text in zip(documents, texts):
        if len(text) != len(document.text):  # e.g. "ß".upper() is "SS": offsets would move
            raise ValueError(f"document {document.id}: {case} changes the text's length")
    return texts


def figures(predicted, gold):
    """Nested micro P/R/F1, PER/LOC/ORG micro F1 and F1 per type."""
    scores = score_documents(predicted, gold, warn=lambda message: None)
    r = lambda x: round(float(x), 4)
    ner = scores["ner"]
    return {"nested": {k: r(ner["micro"][k]) for k in ("p", "r", "f1")},
            "per_loc_org": r(ner["coarse"]["micro"]["f1"]),
            "per_type_f1": {t: r(v["f1"]) for t, v in sorted(ner["per_type"].items()) if v["support"]}}


def width_shares(records, documents, entity_types, limits=(8, 12, 16, 20, 24, 32)):
    widths = np.array([span[2] - span[1] + 1 for record, document in zip(records, documents)
                       for span in entity_token_spans(document.entities, record["offsets"], entity_types)
                       if span is not None])
    return {"entities": len(widths), **{f"share over {k} tokens": round(float(np.mean(widths > k)), 5)
                                        for k in limits}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", default="models/nerel-e5-small-int8")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=WIDTH)
    parser.add_argument("--max-width", type=int, default=MAX_WIDTH)
    parser.add_argument("--lr", type=float, default=LEARNING_RATE)
    parser.add_argument("--test", action="store_true", help="also read the chosen setting on test (once)")
    parser.add_argument("--report", default="reports/span_head.json")
    args = parser.parse_args()
    clock = Clock()
    types = list(Bundle.load(args.model).entity_types)
    name = Path(args.model).name
    splits = ("train", "dev", "test") if args.test else ("train", "dev")
    docs = {split: list(read_documents(DATA / f"{split}.jsonl")) for split in splits}
    records = {}
    for split in splits:
        for case in (("as written",) if split == "train" else CASES):
            key = f"{split} {case}"
            cache = CACHE / f"{name}-{split}-{case.replace(' ', '_')}.pkl"
            step = f"encode {key}" + (" (cached)" if cache.exists() else "")
            progress = lambda texts, key=key: tqdm(texts, desc=f"encoding {key}", unit="doc", file=sys.stderr)
            records[key] = clock(step, encode_split, args.model, cased(docs[split], case), cache, progress=progress)

    train = records["train as written"]
    shares = width_shares(train, docs["train"], types)
    examples, missed = clock("training spans", training_windows, train, docs["train"], types, args.max_width)
    n_spans = sum(len(e[3]) for e in examples)
    log_to_stderr(f"{len(examples)} windows, {n_spans} candidate spans; {missed} of {shares['entities']} gold "
                  f"entities have no candidate (over {args.max_width} tokens, or an edge inside a word)")
    dev, dev_docs = records["dev as written"], docs["dev"]
    dev_texts = [d.text for d in dev_docs]
    heads, curve = {}, {}

    def evaluate(epoch, model):
        heads[epoch] = model.export()
        found = candidates_of(heads[epoch], dev, dev_texts)
        threshold, scores = tune_threshold(found, dev, dev_docs, types, args.max_width)
        curve[epoch] = {"threshold": threshold, "dev_nested_f1": round(scores[threshold], 4),
                        "by_threshold": {str(t): round(s, 4) for t, s in scores.items()}}
        log_to_stderr(f"  dev nested F1 {scores[threshold]:.4f} at threshold {threshold}")

    hidden = train[0]["states"][0].shape[1]
    clock("train span head", train_span_head, examples, hidden, len(types), args.epochs, args.seed, evaluate,
          log_to_stderr, width=args.width, max_width=args.max_width, learning_rate=args.lr)
    epoch = max(curve, key=lambda e: (curve[e]["dev_nested_f1"], -e))
    head, threshold = heads[epoch], curve[epoch]["threshold"]
    CACHE.mkdir(parents=True, exist_ok=True)
    head.save(CACHE / "spans.npz")

    def compare(split):
        out = {}
        for case in CASES:
            key = f"{split} {case}"
            gold = docs[split]
            texts = cased(gold, case)
            found = candidates_of(head, records[key], texts)
            spans = span_predictions(found, records[key], gold, types, threshold, args.max_width)
            tagging = [Document(d.id, d.text, r["tagging"]) for d, r in zip(gold, records[key])]
            out[case] = {"span head": figures(spans, gold), "tagging head": figures(tagging, gold)}
            log_to_stderr(f"{key}: nested F1 span head {out[case]['span head']['nested']['f1']:.4f}, "
                          f"tagging head {out[case]['tagging head']['nested']['f1']:.4f}")
        return out

    report = {
        "model": args.model,
        "command": "nice -n 10 python -m " + " ".join(["experiments.span_head"] + sys.argv[1:]),
        "max_width": args.max_width, "width": args.width, "epochs": args.epochs, "seed": args.seed, "lr": args.lr,
        "train_entity_widths": shares,
        "train_candidates": {"windows": len(examples), "spans": n_spans, "gold without a candidate": missed},
        "curve": {str(e): c for e, c in curve.items()},
        "chosen": {"epoch": epoch, "threshold": threshold},
    }
    report["dev"] = clock("score dev", compare, "dev")
    if args.test:
        report["test"] = clock("score test", compare, "test")
    report["time"] = clock.steps
    Path(args.report).write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    log_to_stderr(f"chosen on dev: epoch {epoch}, threshold {threshold}; wrote {args.report}")


if __name__ == "__main__":
    main()
