"""The pair and relation heads' shortcuts (each unordered pair's product once, each span's
context once, no pair that no label allows, sentence ends as arrays) against the plain math,
one pair at a time."""

import numpy as np
import pytest
import regex

from nerelproc.runtime import pairs, relations


def plain_gelu(x):
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * (x * x * x))))


def random_head(rng, hidden=12, width=10, n_types=4, n_labels=5, allowed=None):
    normal = lambda *shape: rng.normal(size=shape).astype(np.float32)  # noqa: E731
    params = (normal(2 * hidden, width), normal(width), normal(n_types, 32), normal(9, 32),
              normal(3 * width + 96, width), normal(width), normal(width, n_labels), normal(n_labels))
    return relations.RelationHead(*params, context_weight=normal(hidden, width), name_embedding=normal(8, width),
                                  layout_embedding=normal(5, width), sentence_embedding=normal(4, width),
                                  allowed=allowed)


def one_pair_at_a_time(head, states, types, first, last, a, b, distance, surfaces, breaks):
    """The relation head's logits from its definition: each pair's hidden layer input built whole."""
    features = pairs.entity_features(states, first, last)
    entity = plain_gelu(features @ head.entity_weight + head.entity_bias)
    context = relations.context_features(states, first, last, a, b)
    names = relations.name_match(surfaces, a, b)
    layout = relations.pair_layout(first, last, a, b)
    between = relations.sentences_between(breaks, first, last, a, b)
    out = []
    for p, (i, j) in enumerate(zip(a, b)):
        inputs = np.concatenate([entity[i], entity[j], entity[i] * entity[j], head.type_embedding[types[i]],
                                 head.type_embedding[types[j]], head.distance_embedding[distance[p]]])
        hidden = (inputs @ head.hidden_weight + head.hidden_bias + context[p] @ head.context_weight
                  + head.name_embedding[names[p]] + head.layout_embedding[layout[p]]
                  + head.sentence_embedding[between[p]])
        out.append(plain_gelu(hidden) @ head.out_weight + head.out_bias)
    return np.array(out)


@pytest.fixture
def window():
    rng = np.random.default_rng(3)
    states = rng.normal(size=(60, 12)).astype(np.float32)
    # nested, touching, crossing, far apart and same-span entities
    first = np.array([0, 2, 4, 6, 6, 10, 30, 31, 40])
    last = np.array([5, 3, 4, 8, 6, 12, 34, 33, 50])
    types = np.array([0, 1, 2, 3, 1, 0, 2, 2, 1])
    surfaces = ["Барак Обама", "Обамы", "ООН", "Организация Объединённых Наций", "обамы", "Ёж", "ежовый жук", "ЕЖ",
                "Москва"]
    breaks = np.zeros(60, bool)
    breaks[[9, 20, 35]] = True
    return rng, states, types, first, last, surfaces, breaks


def test_gelu_in_place_is_the_formula_to_the_bit():
    x = np.random.default_rng(0).normal(size=(7, 33)).astype(np.float32) * 4
    assert np.array_equal(pairs.gelu(x), plain_gelu(x))


def test_each_unordered_pair_once_stands_for_both_its_orders():
    a, b = np.array([0, 1, 2, 5, 3, 0, 4, 1]), np.array([1, 0, 5, 2, 4, 3, 4, 0])  # both orders, one order, a self-pair
    distance = np.array([2, 2, 7, 7, 0, 1, 0, 3])  # the last: a caller's pair (1, 0) at another distance
    lo, hi, near, which = pairs.unordered_pairs(6, a, b, distance)
    assert (lo[which] == np.minimum(a, b)).all() and (hi[which] == np.maximum(a, b)).all()
    assert (near[which] == distance).all()
    assert len(lo) == 6 and which[0] == which[1] and which[2] == which[3] and which[7] != which[0]
    assert [len(x) for x in pairs.unordered_pairs(6, a[:0], b[:0], distance[:0])] == [0, 0, 0, 0]


def test_the_pair_head_computes_its_definition_pair_by_pair(window):
    rng, states, types, first, last, surfaces, breaks = window
    head = random_head(rng)
    a, b, distance = pairs.candidate_pairs(first, last)
    features = pairs.entity_features(states, first, last)
    entity = plain_gelu(features @ head.entity_weight + head.entity_bias)
    expected = [plain_gelu(np.concatenate([entity[i], entity[j], entity[i] * entity[j], head.type_embedding[types[i]],
                                           head.type_embedding[types[j]], head.distance_embedding[d]])
                           @ head.hidden_weight + head.hidden_bias) @ head.out_weight + head.out_bias
                for i, j, d in zip(a, b, distance)]
    pair_head = pairs.PairHead(*(getattr(head, name) for name in pairs.PAIR_PARAMS))
    assert np.allclose(pair_head.logits(features, types, a, b, distance), expected, atol=1e-4)


def test_the_context_once_per_span_is_each_pairs_context(window):
    rng, states, types, first, last, surfaces, breaks = window
    a, b, _ = pairs.candidate_pairs(first, last)
    weight = rng.normal(size=(12, 7)).astype(np.float32)
    projected = relations.projected_context(states, first, last, a, b, weight)
    context = relations.context_features(states, first, last, a, b)
    assert np.allclose(projected, context @ weight, atol=1e-5)
    touching = ~context.any(1)
    assert touching.any() and (projected[touching] == 0).all()  # nested or touching: no context at all


def test_the_relation_head_computes_its_definition_pair_by_pair(window):
    rng, states, types, first, last, surfaces, breaks = window
    head = random_head(rng)
    a, b, distance = pairs.candidate_pairs(first, last)
    logits = head.window_logits(states, types, first, last, a, b, distance, surfaces, breaks=breaks)
    expected = one_pair_at_a_time(head, states, types, first, last, a, b, distance, surfaces, breaks)
    assert logits.shape == (len(a), 5) and np.allclose(logits, expected, atol=1e-4)


def test_pairs_no_label_allows_are_not_computed_and_get_not_allowed(window):
    rng, states, types, first, last, surfaces, breaks = window
    allowed = np.zeros((4, 4, 5), bool)
    allowed[0, 1, [1, 3]] = True  # type 0 -> type 1 only, two labels
    allowed[2, 2, 4] = True
    head = random_head(rng, allowed=allowed)
    a, b, distance = pairs.candidate_pairs(first, last)
    rows, kept = head.allowed_logits(states, types, first, last, a, b, distance, surfaces, breaks=breaks)
    some = ((types[a] == 0) & (types[b] == 1)) | ((types[a] == 2) & (types[b] == 2))
    assert rows.tolist() == np.flatnonzero(some).tolist() and 0 < len(rows) < len(a)
    expected = one_pair_at_a_time(head, states, types, first, last, a, b, distance, surfaces, breaks)
    full = head.window_logits(states, types, first, last, a, b, distance, surfaces, breaks=breaks)
    assert np.array_equal(full[rows], kept)
    mask = allowed[types[a], types[b]]
    assert np.allclose(full[mask], expected[mask], atol=1e-4)
    assert (full[~mask] == relations.NOT_ALLOWED).all()
    # a window's relations over a floor are those of the full matrix
    found = relations.window_relations(head, states, types, first, last, -1.0, surfaces, breaks=breaks)
    pair, label = np.nonzero(full >= -1.0)
    assert (found[0].tolist(), found[1].tolist(), found[2].tolist()) == (a[pair].tolist(), b[pair].tolist(),
                                                                         label.tolist())
    assert np.array_equal(found[3], full[pair, label])
    nothing = np.zeros((4, 4, 5), bool)
    rows, kept = random_head(rng, allowed=nothing).allowed_logits(states, types, first, last, a, b, distance, surfaces)
    assert len(rows) == 0 and kept.shape == (0, 5)


def test_sentence_breaks_as_arrays_are_those_of_the_text_token_by_token():
    def token_by_token(text, offsets):
        breaks = np.zeros(len(offsets), bool)
        for t in range(1, len(offsets)):
            before = text[offsets[t - 1, 1] : offsets[t, 0]]
            breaks[t] = "\n" in before or text[offsets[t - 1, 0] : offsets[t - 1, 1]] in relations.SENTENCE_END
        return breaks

    text = "Он пришёл… Потом\nушёл! «Да?» 😀 — сказал он.\n\nКонец.Ещё"
    offsets = np.array([(m.start(), m.end()) for m in regex.finditer(r"\w+|[^\w\s]", text)])
    assert np.array_equal(relations.sentence_breaks(text, offsets), token_by_token(text, offsets))
    assert relations.sentence_breaks(text, offsets).sum() >= 5
    # a window's tokens from the middle of the text, an empty token, and one token
    window = offsets[4:12].copy()
    window[3] = (window[2, 1], window[2, 1])
    assert np.array_equal(relations.sentence_breaks(text, window), token_by_token(text, window))
    assert relations.sentence_breaks(text, offsets[:1]).tolist() == [False]
