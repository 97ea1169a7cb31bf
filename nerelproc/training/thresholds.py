"""CLS decision thresholds, tuned on dev: one global, one per label, or halfway between.

Which of the three generalises best is itself decided on dev, by 2-fold
cross-validation over documents (tune on one half, score micro+macro F1 on the
other), repeated over 10 random halvings: one halving of 94 documents picked the
per-label thresholds for the first fully fine-tuned model, where 10 halvings put
them last (reports/model_recipes.md). The winner is then refitted on the whole dev set.
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


def fit_shrunk(probs, gold):
    """Per label, halfway between its own threshold and the global one: less noise for labels
    with few dev positives, some freedom for the others."""
    return (fit_global(probs, gold) + fit_per_label(probs, gold)) / 2


MODES = {"global": fit_global, "shrunk": fit_shrunk, "per_label": fit_per_label}  # a tie goes to the first


def cross_validate(n_docs, fits, score, seed=0, repeats=10):
    """Mean held-out score per mode: over ``repeats`` random halvings of ``n_docs`` documents,
    each mode fitted on one half (``fits[mode](half)``) and scored on the other
    (``score(fitted, half)``), both ways round."""
    rng = np.random.default_rng(seed)
    scores = {mode: [] for mode in fits}
    for _ in range(repeats):
        order = rng.permutation(n_docs)
        halves = [order[: n_docs // 2], order[n_docs // 2 :]]
        for fit_part, eval_part in (halves, halves[::-1]):
            for mode, fit in fits.items():
                scores[mode].append(score(fit(fit_part), eval_part))
    return {mode: round(float(np.mean(values)), 6) for mode, values in scores.items()}


def tune(probs, gold, seed=0, repeats=10):
    """``(thresholds, mode, cv_scores)`` for ``probs``/``gold`` of shape ``[docs, labels]``."""
    gold = gold.astype(bool)
    fits = {mode: (lambda part, fit=fit: fit(probs[part], gold[part])) for mode, fit in MODES.items()}
    cv = cross_validate(len(probs), fits, lambda t, part: sum(micro_macro(probs[part], gold[part], t)) / 2,
                        seed, repeats)
    mode = max(cv, key=cv.get)
    return MODES[mode](probs, gold), mode, cv
