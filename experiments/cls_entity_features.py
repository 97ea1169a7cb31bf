"""An experiment, not shipped: do the predicted entities tell the CLS decision anything the CLS
head does not already know?

    python -m experiments.cls_entity_features models/nerel-e5-small-int8

A document can only hold a relation type whose argument types it contains (AGE_IS needs an
AGE). Two uses of that, on the model's own predictions, measured on dev (where they would be
chosen) and test (CLS micro / macro F1 at the best single threshold on each split, so both
sides get the same, optimistic, threshold):

- stacking: a logistic regression per relation type on the counts of each predicted entity
  type, fitted on *gold* train entities (the model has seen train, so its own train
  predictions are too good to fit on), added to the CLS logit with weight ``a``;
- gating: how many false positives hold no pair of predicted entities of a type pair that
  the relation has in train; dropping those is the most a gate could gain.

Writes ``reports/cls_entity_features.json``.
"""

import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "nerel" / "jsonl"
THRESHOLDS = np.round(np.arange(0.2, 0.65, 0.05), 2)


def micro_macro(pred, gold):
    tp, fp, fn = (pred & gold).sum(0), (pred & ~gold).sum(0), (~pred & gold).sum(0)
    per_label = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), np.nan)
    return 2 * tp.sum() / (2 * tp.sum() + fp.sum() + fn.sum()), float(np.nanmean(per_label))


def best_threshold(logits, gold):
    """(micro, macro, threshold) at the single threshold with the best micro-F1."""
    probs = 1 / (1 + np.exp(-logits))
    return max((*micro_macro(probs >= t, gold), float(t)) for t in THRESHOLDS)


def features(type_counts):
    return np.concatenate([np.log1p(type_counts), type_counts > 0], 1).astype(np.float32)


def fit_logistic(x, y, l2=1e-3):
    import torch

    x, y = torch.tensor(x), torch.tensor(y, dtype=torch.float32)
    weight = torch.zeros(x.shape[1], y.shape[1], requires_grad=True)
    bias = torch.zeros(y.shape[1], requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ weight + bias, y) + l2 * (weight ** 2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weight.detach().numpy(), bias.detach().numpy()


def argument_type_pairs(docs):
    """Per relation type, the (arg1 type, arg2 type) pairs seen in ``docs``' R-lines."""
    pairs = defaultdict(set)
    for doc in docs:
        types = {e.id: e.type for e in doc.entities}
        for line in doc.relations:
            name, arg1, arg2 = line.split("\t")[1].split()[:3]
            a, b = arg1.split(":", 1)[1], arg2.split(":", 1)[1]
            if a in types and b in types:
                pairs[name].add((types[a], types[b]))
    return pairs


def main(model_dir):
    from nerelproc.io.readers import read_documents
    from nerelproc.runtime.bundle import load_predictor

    predictor = load_predictor(model_dir, threads=2)
    types, labels = list(predictor.scheme.entity_types), predictor.labels

    def counts(entities):
        found = Counter(e.type for e in entities)
        return [found[t] for t in types]

    train = list(read_documents(DATA / "train.jsonl"))
    weight, bias = fit_logistic(features(np.array([counts(d.entities) for d in train])),
                                np.array([[l in d.relation_labels() for l in labels] for d in train]))
    pairs = argument_type_pairs(train)
    results = {}
    for split in ("dev", "test"):
        gold_docs = list(read_documents(DATA / f"{split}.jsonl"))
        predictions = predictor.predict([d.text for d in gold_docs])
        gold = np.array([[l in d.relation_labels() for l in labels] for d in gold_docs])
        probs = np.clip(np.stack([p.relation_scores for p in predictions]), 1e-6, 1 - 1e-6)
        cls_logits = np.log(probs / (1 - probs))
        entity_logits = features(np.array([counts(p.entities) for p in predictions])) @ weight + bias
        row = {"cls_only": best_threshold(cls_logits, gold), "entities_only": best_threshold(entity_logits, gold)}
        for a in (0.25, 0.5, 1.0):
            row[f"cls+{a}*entities"] = best_threshold(cls_logits + a * entity_logits, gold)
        shipped = probs >= predictor.thresholds
        present = [{e.type for e in p.entities} for p in predictions]
        possible = np.array([[any(a in seen and b in seen for a, b in pairs[l]) for l in labels] for seen in present])
        row["gate"] = {"false_positives": int((shipped & ~gold).sum()),
                       "of_them_without_a_pair": int((shipped & ~gold & ~possible).sum()),
                       "true_positives_without_a_pair": int((shipped & gold & ~possible).sum()),
                       "shipped_thresholds": micro_macro(shipped, gold),
                       "gated": micro_macro(shipped & possible, gold)}
        results[split] = row
        print(split, json.dumps(row))
    out = Path(__file__).resolve().parents[1] / "reports" / "cls_entity_features.json"
    out.write_text(json.dumps({str(model_dir): results}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
