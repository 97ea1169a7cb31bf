"""CLS decision thresholds, tuned on dev: one global, or one per label.

Which of the two generalises better is itself decided on dev, by 2-fold
cross-validation over documents (tune on one half, score micro+macro F1 on the
other); the winner is then refitted on the whole dev set.
"""

import numpy as np

from nerelproc.evaluation.score import f1_score

GRID = np.round(np.arange(0.05, 0.96, 0.025), 3)


def micro_macro(probs, gold, thresholds):
    pred = probs >= thresholds
    tp = (pred & gold).sum(0)
    fp = (pred & ~gold).sum(0)
    fn = (~pred & gold).sum(0)
    micro = float(f1_score(tp.sum(), fp.sum(), fn.sum()))
    macro = float(f1_score(tp, fp, fn).mean())
    return micro, macro


def fit_global(probs, gold):
    scores = [sum(micro_macro(probs, gold, t)) for t in GRID]
    return np.full(probs.shape[1], GRID[int(np.argmax(scores))], dtype=np.float32)


def fit_per_label(probs, gold, min_positives=3):
    thresholds = fit_global(probs, gold)
    for label in range(probs.shape[1]):
        if gold[:, label].sum() < min_positives:
            continue  # too few examples to tune: keep the global threshold
        pred = probs[:, label, None] >= GRID[None, :]
        positive = gold[:, label, None]
        tp, fp, fn = (pred & positive).sum(0), (pred & ~positive).sum(0), (~pred & positive).sum(0)
        thresholds[label] = GRID[int(np.argmax(f1_score(tp, fp, fn)))]
    return thresholds


def tune(probs, gold, seed=0):
    """``(thresholds, mode, cv_scores)`` for ``probs``/``gold`` of shape ``[docs, labels]``."""
    gold = gold.astype(bool)
    order = np.random.default_rng(seed).permutation(len(probs))
    halves = [order[: len(order) // 2], order[len(order) // 2 :]]
    cv = {}
    for mode, fit in (("global", fit_global), ("per_label", fit_per_label)):
        scores = []
        for fit_part, eval_part in (halves, halves[::-1]):
            thresholds = fit(probs[fit_part], gold[fit_part])
            scores.append(sum(micro_macro(probs[eval_part], gold[eval_part], thresholds)) / 2)
        cv[mode] = float(np.mean(scores))
    mode = max(cv, key=cv.get)
    fit = fit_global if mode == "global" else fit_per_label
    return fit(probs, gold), mode, cv
