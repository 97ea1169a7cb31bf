"""The BIO-constrained decoder: hand cases, and its sparse form against a dense Viterbi."""

import numpy as np
import pytest

from nerelproc.runtime.decoding import B, I, O, argmax_tags, constrained_tags, uncertain_pairs, viterbi, viterbi_runs


def log(*rows):
    return np.log(np.array(rows, dtype=np.float32))


def test_a_stray_i_after_o_is_not_an_entity_start_unless_it_pays():
    # argmax: B O I -> two entities (B) and (I opens one); constrained: B I I, one entity
    assert viterbi(log([0.1, 0.8, 0.1], [0.5, 0.1, 0.4], [0.1, 0.1, 0.8])) == [B, I, I]
    # an I with nothing before it becomes B
    assert viterbi(log([0.2, 0.3, 0.5], [0.1, 0.1, 0.8])) == [B, I]
    # a clear O in the middle still cuts
    assert viterbi(log([0.1, 0.8, 0.1], [0.9, 0.05, 0.05], [0.05, 0.15, 0.8])) == [B, O, B]


def dense_viterbi(log_probs):
    """Reference: the full Viterbi over every token of one channel, starting after an O."""
    allowed = np.zeros((3, 3))
    allowed[O, I] = -np.inf
    score = log_probs[0] + allowed[O]
    back = []
    for row in log_probs[1:]:
        candidates = score[:, None] + allowed
        back.append(candidates.argmax(0))
        score = candidates.max(0) + row
    path = [int(score.argmax())]
    for pointers in reversed(back):
        path.append(int(pointers[path[-1]]))
    return path[::-1]


@pytest.mark.parametrize("ties", [False, True])
def test_all_runs_at_once_give_each_runs_viterbi_ties_included(ties):
    rng = np.random.default_rng(int(ties))
    for _ in range(50):
        lengths = rng.integers(1, 12, size=rng.integers(1, 40))
        if ties:  # four values only: equal scores everywhere
            log_probs = np.log(rng.choice([0.1, 0.2, 0.3, 0.4], size=(lengths.sum(), 3))).astype(np.float32)
        else:
            log_probs = (rng.normal(size=(lengths.sum(), 3)) * 3).astype(np.float32)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        expected = np.concatenate([viterbi(log_probs[s : s + n]) for s, n in zip(starts, lengths)])
        np.testing.assert_array_equal(viterbi_runs(log_probs, starts, lengths), expected)


def test_sparse_decoding_equals_a_dense_viterbi_where_o_is_certain_elsewhere():
    rng = np.random.default_rng(0)
    n, channels = 60, 4
    logits = rng.normal(size=(n, channels, 3)) * 2
    logits[rng.random((n, channels)) < 0.6] = (12.0, 0.0, 0.0)  # mostly certain O, as in real text
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    windows = [(0, 25), (25, 41), (41, 60)]  # owned ranges, pieces given in window order
    pieces = [uncertain_pairs(log_probs[a:b], a) for a, b in windows]
    tags = constrained_tags(n, channels, pieces)
    for channel in range(channels):
        np.testing.assert_array_equal(tags[:, channel], dense_viterbi(log_probs[:, channel]))
    np.testing.assert_array_equal(argmax_tags(n, channels, pieces), log_probs.argmax(-1))


def test_o_bias_drops_the_doubtful_entity_and_keeps_the_sure_one():
    # channel 0: a sure entity (B 0.9); channel 1: a doubtful one (B 0.55 vs O 0.45)
    log_probs = log([[0.05, 0.9, 0.05], [0.45, 0.55, 0.0001]], [[0.9, 0.05, 0.05], [0.9, 0.05, 0.05]])
    pieces = [uncertain_pairs(log_probs, 0)]
    assert constrained_tags(2, 2, pieces)[0].tolist() == [B, B]
    assert constrained_tags(2, 2, pieces, o_bias=0.5)[0].tolist() == [B, O]  # log(0.45)+0.5 > log(0.55)
    assert constrained_tags(2, 2, pieces, o_bias=0.0).tolist() == constrained_tags(2, 2, pieces).tolist()


def test_a_negative_o_bias_is_refused():
    # below 0 the pairs taken to be O (P(O) >= 0.999) would no longer be sure: not supported
    with pytest.raises(ValueError):
        constrained_tags(1, 1, [uncertain_pairs(log([[0.5, 0.5, 1e-6]]), 0)], o_bias=-0.1)
