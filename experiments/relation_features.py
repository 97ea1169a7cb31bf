"""Which inputs the relation head (``nerelproc/runtime/relations.py``) gains from, measured on
dev's gold pairs with the training of ``nerelproc train-relations`` (same seed, epochs and
schedule), on the bundled model's frozen int8 states.

    python -m experiments.relation_features models/nerel-e5-small-int8 base full wide

A variant switches inputs off by blanking them (a constant input is no input): ``base`` has
the context between the entities and the name match without its same-name bit and no layout
(the head of 0.2.0's first relation model); ``full`` adds where the two entities lie and the
same-name bit; ``wide`` is ``full`` with a hidden layer of 512 instead of 256; ``shipped`` adds
the sentence ends between the two entities to ``wide`` (the bundled head: its first epochs here
match ``nerelproc train-relations``' log to the fourth decimal). Each prints its
dev gold-pair micro-F1 per epoch and writes ``runs/relation_features/VARIANT.json``. The
encoder states of train and dev are collected once and cached in ``runs/relation_features/``.
"""

import json
import sys
from pathlib import Path

import torch

DATA = Path(__file__).resolve().parents[2] / "shared" / "nerel" / "jsonl"
CACHE = Path("runs/relation_features")
INPUTS = {"base": (), "full": ("layout", "same_name"), "wide": ("layout", "same_name"),
          "shipped": ("layout", "same_name", "sentences")}
WIDTHS = {"wide": 512, "shipped": 512}  # the others: 256


def cached_sets(model_dir):
    path = CACHE / "pairs.pt"
    if path.exists():
        return torch.load(path, weights_only=False)
    from tqdm import tqdm

    from nerelproc.io.readers import read_documents
    from nerelproc.runtime.bundle import load_predictor
    from nerelproc.training.pairs import collect

    predictor = load_predictor(model_dir, threads=2, pair_head=False, relation_head=False)
    sets = {}
    for split in ("train", "dev"):
        documents = list(read_documents(DATA / f"{split}.jsonl"))
        found, _ = collect(predictor, documents, gold=True, context=True,
                           progress=lambda docs: tqdm(docs, desc=split, file=sys.stderr))
        sets[split] = found.tensors()
    sets["n_types"], sets["labels"] = len(predictor.scheme.entity_types), list(predictor.labels)
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.save(sets, path)
    return sets


def blank(tensors, inputs):
    out = dict(tensors)
    if "same_name" not in inputs:
        out["name"] = tensors["name"] % 4
    for name in ("layout", "sentences"):
        if name not in inputs:
            out[name] = torch.zeros_like(tensors[name])
    return out


def main(model_dir, *variants):
    from nerelproc.training.relations import allowed_labels, pair_f1, train_head

    sets = cached_sets(model_dir)
    n_types, n_labels = sets["n_types"], len(sets["labels"])
    for variant in variants:
        train_set = (blank(sets["train"][0], INPUTS[variant]), sets["train"][1])
        dev_set = (blank(sets["dev"][0], INPUTS[variant]), sets["dev"][1])
        allowed = allowed_labels(train_set[0], n_types, n_labels)
        scores = {}

        def evaluate(epoch, model):
            scores[epoch] = round(pair_f1(model, dev_set, allowed), 4)
            print(f"{variant} epoch {epoch}: dev gold pairs micro-F1 {scores[epoch]:.4f}", flush=True)

        train_head(train_set, n_types, n_labels, 12, 0, evaluate, print, width=WIDTHS.get(variant, 256))
        (CACHE / f"{variant}.json").write_text(json.dumps({"variant": variant, "dev_gold_pairs_f1": scores}, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:])
