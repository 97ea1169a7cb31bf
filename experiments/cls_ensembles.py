"""An experiment, not shipped: how far does averaging several models' CLS probabilities go?

    python -m experiments.cls_ensembles models/nerel-e5-small-int8 runs/full-ft-last-int8 \
        runs/full-ft-more-int8 runs/cls-mean-int8 runs/soup-int8

The upper end of "ensembles distilled into one model": a distilled student rarely beats its
teachers, so if no average of the models at hand reaches the CLS micro bar (0.82), distilling
them will not either. Every subset of the models (int8, annotate's own code path) is averaged, its
thresholds tuned on dev as calibrate does (``nerelproc/training/thresholds.py``), and scored on
test; the subset with the best dev CV score is the one a dev-only choice would take. Writes
``reports/cls_ensembles.json``.
"""

import itertools
import json
import sys
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "nerel" / "jsonl"


def cls_probs(model_dir, split):
    """``(probs [docs, labels], gold [docs, labels])`` of one model on one split."""
    from nerelproc.io.readers import read_documents
    from nerelproc.runtime.bundle import load_predictor
    from nerelproc.training.calibration import encode_in_chunks

    predictor = load_predictor(model_dir, threads=2, tasks=("cls",))  # the NER side does not change the CLS probabilities
    docs = list(read_documents(DATA / f"{split}.jsonl"))
    probs = np.stack([predictor.relation_scores(e) for e in encode_in_chunks(predictor, docs)])
    gold = np.array([[label in set(d.relation_labels()) for label in predictor.labels] for d in docs])
    return probs, gold


def main(model_dirs):
    from nerelproc.training.thresholds import micro_macro, tune

    probs = {(m, s): cls_probs(m, s) for m in model_dirs for s in ("dev", "test")}
    gold = {s: probs[model_dirs[0], s][1] for s in ("dev", "test")}
    rows = []
    for size in range(1, len(model_dirs) + 1):
        for subset in itertools.combinations(model_dirs, size):
            dev, test = (np.mean([probs[m, s][0] for m in subset], 0) for s in ("dev", "test"))
            thresholds, mode, cv = tune(dev, gold["dev"])
            micro, macro = micro_macro(test, gold["test"], thresholds)
            rows.append(dict(models=list(subset), dev_cv=cv[mode], mode=mode, test_micro=round(micro, 4),
                             test_macro=round(macro, 4)))
            print(f"{' + '.join(Path(m).name for m in subset):90s} dev CV {cv[mode]:.4f}  test {micro:.4f} / {macro:.4f}")
    chosen = max(rows, key=lambda row: row["dev_cv"])
    print("chosen on dev:", chosen)
    Path("reports/cls_ensembles.json").write_text(json.dumps(dict(chosen_on_dev=chosen, subsets=rows), indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
