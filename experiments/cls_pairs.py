"""The experiment behind ``nerelproc train-pairs`` (``nerelproc/training/pairs.py``): the CLS
decision from entity pairs on a frozen encoder, with pairs built over a whole document (the
runtime builds them window by window) and five seeds per recipe.

    python -m experiments.cls_pairs models/nerel-e5-small-int8 runs/full-ft-more-int8

A document holds relation type k when some pair of its entities does. So, on the exported
model's own int8 encoder states (frozen), a small head scores every ordered pair of entities
at most 64 tokens apart (98.8% of dev's document labels have such a pair): each entity is the
mean and the first of its tokens' states, a pair is both entities, their product, their types
and their distance, and an MLP gives 49 logits. The document's logit for type k is the max
over its pairs. It is trained on train's gold entities and R-lines (pair BCE on the positive
pairs and 30% of the others, plus the document BCE on the max) and applied, on dev and test,
to the *predicted* entities. Then, as the shipped CLS decision is made:

- the pair head alone, and its probabilities averaged with the CLS head's (weight 0.3 / 0.5 /
  0.7 on the pairs), each with thresholds tuned on dev (``nerelproc/training/thresholds.py``:
  the 10 x 2-fold CV score, mean of micro and macro F1, picks the mode);
- a recipe is an epoch (every other one), a weight, and either one head or the average of
  five (seeds 0-4); a one-head recipe's dev CV score is its mean over the five seeds. Dev's CV
  score picks one recipe, and only that one is read on test (a one-head recipe: per seed and
  the mean); every recipe's test figures are in the report, to show how far the choice matters.

Writes ``reports/cls_pairs.json``. Encoder states are cached in ``runs/cls_pairs/``.
"""

import json
import pickle
import sys
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "nerel" / "jsonl"
CACHE = Path("runs/cls_pairs")
DISTANCE_BUCKETS = np.array([0, 1, 2, 4, 8, 16, 32, 64])
MAX_DISTANCE = 64  # tokens between two entities' nearest ends
NEGATIVES = 0.3  # share of pairs without a relation in each batch's pair loss
WEIGHTS = (0.3, 0.5, 0.7)  # of the pair head in the average with the CLS head
EPOCHS, SEEDS = 16, range(5)


def document_states(model_dir, split):
    """Per document of ``split``: int8 encoder states of all its tokens, their offsets, gold
    and predicted entities, gold labels and the CLS head's probabilities (cached)."""
    path = CACHE / f"{Path(model_dir).name}-{split}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    from tqdm import tqdm

    from nerelproc.io.readers import read_documents
    from nerelproc.runtime.bundle import load_predictor

    predictor = load_predictor(model_dir, threads=2)
    gold = list(read_documents(DATA / f"{split}.jsonl"))
    records = []
    for doc in tqdm(gold, desc=f"{path.stem}", file=sys.stderr):
        windows = list(predictor.windows_of(doc.text))  # the runtime drops a window's states once used
        encoded = windows[-1][0] if windows else predictor.encode_documents([doc.text])[0]
        states = [st[encoded.windows[k].own_start - encoded.windows[k].start :
                     encoded.windows[k].own_end - encoded.windows[k].start] for _, k, st in windows]
        prediction = predictor.finish(encoded)
        records.append(dict(
            states=np.concatenate(states).astype(np.float16) if states else np.zeros((0, 384), np.float16),
            offsets=encoded.encoded.offsets,
            gold_entities=[(e.id, e.type, e.spans) for e in doc.entities],
            predicted_entities=[(None, e.type, e.spans) for e in prediction.entities],
            relations=doc.relations, labels=doc.relation_labels(), cls_probs=prediction.relation_scores))
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(records, protocol=4))
    return records


def entity_pairs(records, which, types, relations):
    """All documents' candidate pairs as flat arrays (entities indexed across documents)."""
    import torch

    relation_index = {name: k for k, name in enumerate(relations)}
    entities, entity_types, first, second, distance, targets, doc_of = [], [], [], [], [], [], []
    base = 0
    for d, record in enumerate(records):
        states, starts, ends = record["states"].astype(np.float32), *record["offsets"].T
        kept = []  # (id, type, first token, last token, features)
        for entity_id, entity_type, spans in record[which]:
            covered = np.zeros(len(starts), bool)
            for start, end in spans:
                covered |= (starts < end) & (ends > start) & (ends > starts)
            tokens = np.flatnonzero(covered)
            if len(tokens):
                features = np.concatenate([states[tokens].mean(0), states[tokens[0]]])
                kept.append((entity_id, types.index(entity_type), tokens[0], tokens[-1], features))
        if len(kept) < 2:
            continue
        lo, hi = np.array([e[2] for e in kept]), np.array([e[3] for e in kept])
        a, b = (grid.ravel() for grid in np.meshgrid(np.arange(len(kept)), np.arange(len(kept)), indexing="ij"))
        gap = np.maximum(0, np.maximum(lo[a] - hi[b], lo[b] - hi[a]))
        near = (a != b) & (gap <= MAX_DISTANCE)
        a, b, gap = a[near], b[near], gap[near]
        y = np.zeros((len(a), len(relations)), np.float32)
        row = {(i, j): r for r, (i, j) in enumerate(zip(a, b))}
        position = {e[0]: i for i, e in enumerate(kept)}
        for line in record["relations"] if which == "gold_entities" else ():
            name, arg1, arg2 = line.split("\t")[1].split()[:3]
            i, j = position.get(arg1.split(":", 1)[1]), position.get(arg2.split(":", 1)[1])
            if (i, j) in row and name in relation_index:
                y[row[i, j], relation_index[name]] = 1
        entities.append(np.stack([e[4] for e in kept]))
        entity_types.append([e[1] for e in kept])
        first.append(a + base), second.append(b + base), distance.append(np.searchsorted(DISTANCE_BUCKETS, gap))
        targets.append(y), doc_of.append(np.full(len(a), d))
        base += len(kept)
    cat = lambda parts, dtype=None: torch.tensor(np.concatenate(parts), dtype=dtype)
    return dict(entities=cat(entities), types=cat(entity_types, torch.long), a=cat(first), b=cat(second),
                distance=cat(distance), y=cat(targets), doc=np.concatenate(doc_of), n_docs=len(records))


def pair_head(n_types, n_labels, hidden=384, width=256):
    import torch
    from torch import nn

    class PairHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.entity = nn.Sequential(nn.Dropout(0.2), nn.Linear(2 * hidden, width), nn.GELU())
            self.type_embedding = nn.Embedding(n_types, 32)
            self.distance_embedding = nn.Embedding(len(DISTANCE_BUCKETS) + 1, 32)
            self.out = nn.Sequential(nn.Linear(3 * width + 96, width), nn.GELU(), nn.Dropout(0.2),
                                     nn.Linear(width, n_labels))

        def forward(self, pairs, rows):
            """Logits ``[len(rows), labels]`` of the pairs ``rows``."""
            used, local = torch.unique(torch.cat([pairs["a"][rows], pairs["b"][rows]]), return_inverse=True)
            entity, types = self.entity(pairs["entities"][used]), pairs["types"][used]
            a, b = local[: len(rows)], local[len(rows) :]
            x = torch.cat([entity[a], entity[b], entity[a] * entity[b], self.type_embedding(types[a]), self.type_embedding(types[b]),
                           self.distance_embedding(pairs["distance"][rows])], 1)
            return self.out(x)

    return PairHead()


def document_probs(model, pairs, n_labels):
    import torch

    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(pairs, torch.arange(i, min(i + 65536, len(pairs["a"]))))
                            for i in range(0, len(pairs["a"]), 65536)]).numpy()
    best = np.full((pairs["n_docs"], n_labels), -30.0, np.float32)  # a document without pairs: no relation
    np.maximum.at(best, pairs["doc"], logits)
    return 1 / (1 + np.exp(-best))


def train(pairs, doc_labels, n_types, seed, evaluate):
    """Train one pair head; ``evaluate(epoch, model)`` after every other epoch. The loop and the
    loss are those of ``nerelproc train-pairs`` (``training/head_loop.py``, ``pairs.pair_loss``),
    on torch's own threads as when the recipe was measured."""
    import torch

    from nerelproc.training.head_loop import fit_head, rows_by_document
    from nerelproc.training.pairs import pair_loss

    loss = pair_loss(lambda model, rows: model(pairs, rows), pairs["y"], torch.tensor(doc_labels, dtype=torch.float32))
    return fit_head(lambda: pair_head(n_types, doc_labels.shape[1]), rows_by_document(pairs["doc"]), loss,
                    epochs=EPOCHS, seed=seed, learning_rate=1e-3, docs_per_batch=8, evaluate=evaluate,
                    log=lambda message: print(message, file=sys.stderr), name=f"seed {seed}", evaluate_every=2,
                    single_thread=False)


def measure(model_dir):
    from nerelproc.training.thresholds import micro_macro, tune

    config = json.loads((Path(model_dir) / "nerelproc.json").read_text())
    types, relations = config["entity_types"], config["relation_types"]
    splits = {split: document_states(model_dir, split) for split in ("train", "dev", "test")}
    gold = {s: np.array([[r in set(x["labels"]) for r in relations] for x in recs]) for s, recs in splits.items()}
    cls = {s: np.stack([x["cls_probs"] for x in splits[s]]) for s in ("dev", "test")}
    train_pairs = entity_pairs(splits["train"], "gold_entities", types, relations)
    predicted = {s: entity_pairs(splits[s], "predicted_entities", types, relations) for s in ("dev", "test")}

    def decide(dev_probs, test_probs):
        thresholds, mode, cv = tune(dev_probs, gold["dev"])
        return dict(dev_cv=cv[mode], mode=mode, test=[round(x, 4) for x in micro_macro(test_probs, gold["test"], thresholds)])

    baseline = decide(cls["dev"], cls["test"])
    pair_probs = {}

    def evaluate(seed):
        def at(epoch, model):
            probs = {s: document_probs(model, predicted[s], len(relations)) for s in ("dev", "test")}
            pair_probs[seed, epoch] = probs
        return at

    for seed in SEEDS:
        train(train_pairs, gold["train"], len(types), seed, evaluate(seed))
    recipes = {}  # name -> {"dev_cv": ..., "test": [micro, macro] or per-seed lists}
    for epoch in range(2, EPOCHS + 1, 2):
        averaged = {s: np.mean([pair_probs[seed, epoch][s] for seed in SEEDS], 0) for s in ("dev", "test")}
        for w in (1.0, *WEIGHTS):
            mix = lambda probs: {s: (1 - w) * cls[s] + w * probs[s] for s in ("dev", "test")}
            name = "pairs alone" if w == 1.0 else f"pairs {w} + cls head"
            one = [decide(*mix(pair_probs[seed, epoch]).values()) for seed in SEEDS]
            recipes[f"{name}, one seed, epoch {epoch}"] = dict(
                dev_cv=round(float(np.mean([r["dev_cv"] for r in one])), 6),
                test_per_seed=[r["test"] for r in one],
                test_mean=[round(float(np.mean([r["test"][i] for r in one])), 4) for i in (0, 1)])
            recipes[f"{name}, {len(SEEDS)} seeds averaged, epoch {epoch}"] = decide(*mix(averaged).values())
    chosen = max(recipes, key=lambda name: recipes[name]["dev_cv"])
    return dict(chosen_on_dev=chosen, chosen=recipes[chosen], baseline=baseline, recipes=recipes)


def main(model_dirs):
    report = {}
    for model_dir in model_dirs:
        report[model_dir] = result = measure(model_dir)
        print(f"{model_dir}: CLS head alone {result['baseline']}; chosen on dev: {result['chosen_on_dev']} "
              f"{result['chosen']}")
    Path("reports/cls_pairs.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:] or ["models/nerel-e5-small-int8"])
