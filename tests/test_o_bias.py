"""The per-type O bias experiment's cross-validation (experiments/o_bias_by_type.py): the figures
in reports/model_recipes.md rest on it."""

import numpy as np

from experiments import o_bias_by_type as o_bias
from nerelproc.io.document import Document, Entity
from nerelproc.runtime.predictor import Prediction

G = len(o_bias.GRID)


def counts_for(per_type_best, docs=20, entities=10):
    """Counts in which type t is decoded perfectly at grid index ``per_type_best[t]``, with one
    false positive per document below it and one false negative per document above it."""
    counts = np.zeros((docs, len(per_type_best), G, 3), dtype=np.int64)
    for t, best in enumerate(per_type_best):
        for g in range(G):
            counts[:, t, g] = (entities - (g > best), (g < best) * (best - g), (g > best) * (g - best))
    return counts


def test_per_type_biases_win_when_the_types_really_differ():
    biases, mode, cv = o_bias.tune(counts_for([0, 4, 9]), seed=0)
    assert mode == "per_type" and list(biases) == [o_bias.GRID[0], o_bias.GRID[4], o_bias.GRID[9]]
    assert cv["per_type"] > cv["shrunk"] > cv["global"]


def test_one_global_bias_wins_when_the_types_agree():
    biases, mode, cv = o_bias.tune(counts_for([2, 2, 2]), seed=0)
    assert mode == "global" and set(biases) == {o_bias.GRID[2]}  # a tie goes to the first mode


def test_shrunk_is_halfway_down_to_the_grid():
    shrunk = o_bias.fit_shrunk(counts_for([0, 4, 9]).sum(0))
    global_ = o_bias.fit_global(counts_for([0, 4, 9]).sum(0))[0]
    for t, best in enumerate([0, 4, 9]):
        halfway = (o_bias.GRID[global_] + o_bias.GRID[best]) / 2
        assert o_bias.GRID[shrunk[t]] <= halfway < (o_bias.GRID + (np.inf,))[shrunk[t] + 1]


def test_type_counts_match_exact_spans_per_type():
    gold = [Document("1", "Анна в Москве", [Entity("PERSON", ((0, 4),)), Entity("CITY", ((7, 13),))])]
    right_person = Prediction([Entity("PERSON", ((0, 4),))], None, [], [])
    wrong_city = Prediction([Entity("PERSON", ((0, 4),)), Entity("CITY", ((5, 13),))], None, [], [])
    counts = o_bias.type_counts([[right_person], [wrong_city]], gold, ["CITY", "PERSON"])
    assert counts[0, :, 0].tolist() == [[0, 0, 1], [1, 0, 0]]  # CITY missed, PERSON found
    assert counts[0, :, 1].tolist() == [[0, 1, 1], [1, 0, 0]]  # CITY at the wrong span
