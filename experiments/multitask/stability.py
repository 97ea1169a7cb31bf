"""Seeds and documents: is joint training better than single-task, and is it more stable?

Two questions the paired bootstrap over documents (``report.paired_bootstrap``) cannot answer,
because it sees one (seed-averaged) system per configuration:

* **Better?** ``seed_document_bootstrap`` resamples both sources of chance: the seeds (pairs
  of a joint and a single-task run trained with the same seed, drawn with replacement) and,
  within each drawn seed, the test documents (the same draw for both runs of the pair). Its
  statistic is the mean over seeds of joint − single micro-F1, the mean delta of the run
  table. ``verdict_words`` turns it into *helps*, *hurts* or *no difference shown*.
* **More stable?** ``spread`` is the seed-to-seed standard deviation (ddof 1) and range of a
  metric; with one seed there is none (``None``, never 0). ``label_spreads`` compares, label
  by label, how much each configuration's per-label F1 moves over seeds: the median per-label
  std of each and a two-sided sign test over the labels on which the two differ.

Nothing here gives words before each configuration has ``MIN_SEEDS`` seeds; ``missing`` says
which runs are needed.
"""

import math
from dataclasses import dataclass

import numpy as np

from nerelproc.evaluation.score import f1_score

ALPHA = 0.05
MIN_SEEDS = 3


# -------------------------------------------------------------------------------- spread


@dataclass(frozen=True)
class Spread:
    n: int
    mean: float | None
    std: float | None  # ddof 1; None with fewer than 2 seeds
    range: float | None  # max - min; None with fewer than 2 seeds


def spread(values):
    """Mean, std (ddof 1) and range of per-seed values; ``None`` cells are skipped."""
    values = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return Spread(0, None, None, None)
    if len(values) == 1:
        return Spread(1, values[0], None, None)
    return Spread(len(values), float(np.mean(values)), float(np.std(values, ddof=1)),
                  float(max(values) - min(values)))


def describe(s, digits=4):
    """A spread for a table cell: the std and range, or why there is none."""
    if s.n == 0:
        return "—"  # no run, or no value in the runs there are
    if s.std is None:
        return "undefined (1 seed)"
    return f"{s.std:.{digits}f} (range {s.range:.{digits}f}, {s.n} seeds)"


# -------------------------------------------------------------------- per-label spread


def label_f1(pred_sets, gold_sets, labels):
    """Per-label F1 of one run from per-document label sets (gold order), for ``labels``."""
    f1 = {}
    for label in labels:
        gold = np.array([label in g for g in gold_sets])
        pred = np.array([label in p for p in pred_sets])
        f1[label] = float(f1_score(np.sum(gold & pred), np.sum(pred & ~gold), np.sum(gold & ~pred)))
    return f1


def sign_test(wins, losses):
    """Two-sided exact binomial (p = 1/2) p-value of ``wins`` against ``losses``; ties left out."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def label_spreads(joint, single):
    """Label by label, the std over seeds of each configuration's F1.

    ``joint``, ``single``: ``{seed: {label: F1}}``. Labels are those every run scores. Returns
    ``None`` unless both have 2 or more seeds; else the per-label stds, their medians, on how
    many labels joint's std is smaller / larger / equal (to 1e-9), and the sign test's p."""
    if len(joint) < 2 or len(single) < 2:
        return None
    labels = sorted(set.intersection(*(set(t) for t in (*joint.values(), *single.values()))))
    stds = {label: (spread(t[label] for t in joint.values()).std, spread(t[label] for t in single.values()).std)
            for label in labels}
    smaller = sum(j < s - 1e-9 for j, s in stds.values())
    larger = sum(j > s + 1e-9 for j, s in stds.values())
    return {
        "labels": len(labels), "stds": stds,
        "median_joint": float(np.median([j for j, _ in stds.values()])) if labels else None,
        "median_single": float(np.median([s for _, s in stds.values()])) if labels else None,
        "joint_smaller": smaller, "joint_larger": larger, "equal": len(labels) - smaller - larger,
        "p": sign_test(smaller, larger),
        "seeds": (len(joint), len(single)),
    }


def stability_words(result, min_seeds=MIN_SEEDS, alpha=ALPHA):
    """*more stable* / *less stable* / *no difference shown*, from the per-label sign test;
    ``None`` (no words) before both configurations have ``min_seeds`` seeds."""
    if result is None or min(result["seeds"]) < min_seeds:
        return None
    if result["p"] < alpha and result["joint_smaller"] > result["joint_larger"]:
        return "more stable"
    if result["p"] < alpha and result["joint_smaller"] < result["joint_larger"]:
        return "less stable"
    return "no difference shown"


# ----------------------------------------------------------- seeds × documents bootstrap


def micro_f1(counts):
    """Micro-F1 of ``[..., 3]`` tp/fp/fn counts; 1.0 when there is nothing to find or predict (score.py)."""
    counts = np.asarray(counts, dtype=float)
    return f1_score(counts[..., 0], counts[..., 1], counts[..., 2])


def p_and_interval(observed, deltas):
    """Two-sided p of a bootstrap: twice the share of resampled deltas that are zero or of the
    sign opposite to ``observed`` (capped at 1; 1 when ``observed`` is 0), and the 95% interval."""
    if observed > 0:
        opposite = float(np.mean(deltas <= 0))
    elif observed < 0:
        opposite = float(np.mean(deltas >= 0))
    else:
        opposite = 1.0
    low, high = np.percentile(deltas, [2.5, 97.5])
    return min(1.0, 2 * opposite), [float(low), float(high)]


def seed_document_bootstrap(pairs, resamples=1000, seed=0, resample_seeds=True):
    """Bootstrap of the mean over seeds of micro-F1(joint) − micro-F1(single).

    ``pairs``: one ``(joint, single)`` per seed, each a ``[documents, 3]`` tp/fp/fn array of
    two runs trained with the same seed, scored on the same documents. A resample draws
    ``len(pairs)`` seed pairs with replacement (``resample_seeds``; else every pair once), and
    for each drawn pair the documents with replacement, the same draw for its two runs. The
    p-value is two-sided: twice the share of resamples whose statistic is zero or has the sign
    opposite to the observed one (capped at 1; 1 when the observed statistic is 0)."""
    joint = np.stack([np.asarray(a, dtype=float) for a, _ in pairs])  # [seeds, docs, 3]
    single = np.stack([np.asarray(b, dtype=float) for _, b in pairs])
    k, n = joint.shape[:2]
    per_seed = micro_f1(joint.sum(1)) - micro_f1(single.sum(1))
    observed = float(per_seed.mean())
    rng = np.random.default_rng(seed)
    chosen = rng.integers(k, size=(resamples, k)) if resample_seeds else np.broadcast_to(np.arange(k), (resamples, k))
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=(resamples, k)).astype(float)  # [R, k, docs]
    a = np.einsum("rkd,rkdc->rkc", weights, joint[chosen])
    b = np.einsum("rkd,rkdc->rkc", weights, single[chosen])
    deltas = (micro_f1(a) - micro_f1(b)).mean(1)
    p, interval = p_and_interval(observed, deltas)
    return {"delta": observed, "per_seed": [float(d) for d in per_seed], "p": p, "ci": interval,
            "resamples": resamples, "seeds": k}


def verdict_words(result, alpha=ALPHA):
    """*helps* / *hurts* only when the test says so (p < alpha, in the observed direction)."""
    if result["p"] < alpha and result["delta"] > 0:
        return "helps"
    if result["p"] < alpha and result["delta"] < 0:
        return "hurts"
    return "no difference shown"


# ------------------------------------------------------------------------- readiness


def missing(plan, finished, stored, configs):
    """What stands between the runs there are and a verdict on ``configs``.

    ``plan``: ``[(config, seed)]``; ``finished``: run names with a row; ``stored``: run names
    whose per-document predictions are kept. Returns ``(not finished, without predictions)``."""
    names = [f"{config}-s{seed}" for config, seed in plan if config in configs]
    return ([name for name in names if name not in finished],
            [name for name in names if name in finished and name not in stored])


def paired_seeds(joint, single):
    """Seeds on which both configurations have per-document counts: ``{seed: counts}`` each."""
    return sorted(set(joint) & set(single))


def assess(joint_counts, single_counts, joint_seeds, single_seeds, min_seeds=MIN_SEEDS, resamples=1000, seed=0):
    """The verdict of one task, or why there is none.

    ``*_counts``: ``{seed: [documents, 3]}`` of the runs whose predictions are kept;
    ``*_seeds``: how many runs of each configuration have finished. Returns ``{"words",
    "test", "seeds"}``; ``words`` and ``test`` are ``None`` (no test, no verdict) before each
    configuration has ``min_seeds`` finished seeds, paired and with predictions."""
    seeds = paired_seeds(joint_counts, single_counts)
    if min(joint_seeds, single_seeds) < min_seeds or len(seeds) < min_seeds:
        return {"words": None, "seeds": seeds, "test": None}
    test = seed_document_bootstrap([(joint_counts[s], single_counts[s]) for s in seeds], resamples, seed)
    return {"words": verdict_words(test), "seeds": seeds, "test": test}
