"""The pair head of a model trained on train+dev, which has no held-out documents left to
choose on: the head is trained on train+dev's gold pairs with the recipe (epochs, the epoch
kept, weight, seed) and the CLS thresholds that ``nerelproc train-pairs`` chose on dev for the
same recipe's train-only model.

    python -m experiments.pairs_final_fit runs/more-traindev-int8 runs/cand-pairs runs/traindev-pairs

writes a copy of the first model with ``pairs.npz`` and the second's decisions into the third.
"""

import shutil
import sys
from pathlib import Path

from tqdm import tqdm

from nerelproc.io.readers import read_documents
from nerelproc.runtime.bundle import PAIRS_FILE, Bundle, load_predictor
from nerelproc.training.calibration import copy_decisions, gold_labels
from nerelproc.training.pairs import collect, train_pair_head

DATA = Path(__file__).resolve().parents[2] / "shared" / "nerel" / "jsonl"


def main(model_dir, recipe_dir, out_dir):
    recipe = Bundle.load(recipe_dir)
    if not recipe.pair_weight:
        raise SystemExit(f"{recipe_dir} has no pair head to take the recipe from")
    shutil.rmtree(out_dir, ignore_errors=True)
    shutil.copytree(model_dir, out_dir)
    predictor = load_predictor(out_dir, threads=2, pair_head=False)
    docs = [*read_documents(DATA / "train.jsonl"), *read_documents(DATA / "dev.jsonl")]
    found, _ = collect(predictor, docs, gold=True, progress=lambda d: tqdm(d, desc="encoding train+dev", file=sys.stderr))
    heads = {}
    train_pair_head(found.tensors(), gold_labels(docs, predictor.labels), len(predictor.scheme.entity_types),
                    recipe.pairs["epochs"], recipe.pairs["seed"], lambda epoch, model: heads.update({epoch: model.export()}),
                    log=lambda message: print(message, file=sys.stderr))
    heads[recipe.pairs["epoch"]].save(Path(out_dir) / PAIRS_FILE)
    bundle = copy_decisions(Bundle.load(out_dir), recipe)
    bundle.pair_weight = recipe.pair_weight
    bundle.pairs = {**recipe.pairs, "trained_on": f"{len(docs)} documents (train+dev)", "chosen_on": f"{recipe_dir}'s dev choice"}
    bundle.extra["decisions_from"] = str(recipe_dir)
    bundle.save(out_dir)


if __name__ == "__main__":
    main(*sys.argv[1:4])
