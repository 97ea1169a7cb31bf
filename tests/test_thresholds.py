"""CLS threshold tuning (training/thresholds.py) on constructed probabilities whose best
thresholds are known."""

import numpy as np
import pytest

from nerelproc.training.thresholds import GRID, MODES, fit_global, fit_per_label, micro_macro, tune


def separable(positive, negative, docs=40, every=2, shift=0):
    """One label: documents ``shift, shift+every, ...`` are positive with probability
    ``positive``; the others negative with probability ``negative``."""
    gold = (np.arange(docs) - shift) % every == 0
    return np.where(gold, positive, negative), gold


def labels(*columns):
    probs = np.stack([p for p, _ in columns], 1)
    gold = np.stack([g for _, g in columns], 1)
    return probs, gold


def test_the_grid():
    assert GRID[0] == 0.05 and GRID[-1] == 0.95 and len(GRID) == 37


def test_micro_macro_counts():
    probs, gold = labels(separable(0.8, 0.2), separable(0.6, 0.4, shift=1))
    assert micro_macro(probs, gold, np.array([0.5, 0.5])) == (1.0, 1.0)
    # label 2 at 0.7: all its 20 positives missed -> F1 0; label 1 perfect (tp 20)
    micro, macro = micro_macro(probs, gold, np.array([0.5, 0.7]))
    assert micro == pytest.approx(40 / 60) and macro == pytest.approx(0.5)


def test_one_threshold_fits_all_labels_then_global_wins_the_tie():
    # both labels separate anywhere in (0.2, 0.8]: the first grid point above 0.2 is 0.225
    probs, gold = labels(separable(0.8, 0.2), separable(0.9, 0.1, shift=1))
    assert fit_global(probs, gold).tolist() == pytest.approx([0.225, 0.225])
    thresholds, mode, cv = tune(probs, gold)
    assert cv == {"global": 1.0, "shrunk": 1.0, "per_label": 1.0} and mode == "global"  # a tie: the simpler one
    assert thresholds.tolist() == pytest.approx([0.225, 0.225])


def test_labels_that_need_their_own_thresholds_get_them():
    # label 1 separates in (0.1, 0.3], label 2 in (0.5, 0.9]: no single threshold does both
    probs, gold = labels(separable(0.3, 0.1), separable(0.9, 0.5, shift=1))
    assert sum(micro_macro(probs, gold, fit_global(probs, gold))) < 2
    assert fit_per_label(probs, gold).tolist() == pytest.approx([0.125, 0.525])
    thresholds, mode, cv = tune(probs, gold)
    assert mode == "per_label" and cv["per_label"] == 1.0 and cv["global"] < 1.0
    assert thresholds.tolist() == pytest.approx([0.125, 0.525])


def test_a_label_with_too_few_positives_keeps_the_global_threshold():
    rare = np.zeros(40, dtype=bool)
    rare[[3, 17]] = True  # two positives: fewer than min_positives=3
    # the common label separates in (0.2, 0.3], the rare one only in (0.4, 0.5]
    probs, gold = labels(separable(0.3, 0.2), (np.where(rare, 0.5, 0.4), rare))
    assert fit_global(probs, gold).tolist() == pytest.approx([0.225, 0.225])
    assert fit_per_label(probs, gold).tolist() == pytest.approx([0.225, 0.225])
    assert fit_per_label(probs, gold, min_positives=2).tolist() == pytest.approx([0.225, 0.425])


def test_shrunk_thresholds_lie_halfway_and_the_cv_winner_is_refitted():
    probs, gold = labels(separable(0.3, 0.1), separable(0.9, 0.5, shift=1))
    halfway = (fit_global(probs, gold) + fit_per_label(probs, gold)) / 2
    np.testing.assert_allclose(MODES["shrunk"](probs, gold), halfway)
    thresholds, mode, cv = tune(probs, gold, seed=3)
    assert set(cv) == set(MODES) and cv[mode] == max(cv.values())
    np.testing.assert_allclose(thresholds, MODES[mode](probs, gold))
    assert tune(probs, gold, seed=3)[2] == cv  # the halvings are drawn from the seed
