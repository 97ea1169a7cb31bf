"""CLS from entity pairs, in numpy: a document holds relation type k when a pair of its
entities does.

A small head (``pairs.npz``, written by ``nerelproc train-pairs``) scores every ordered pair
of entities at most 64 tokens apart. It runs where the pair is encoded: per window, on that
window's encoder states and the entities its own NER tags decode to, so memory stays bounded
by a window (windows overlap by a quarter, 128 tokens, so a near pair at a window's edge is
whole in the next one). A document's pair logit for type k is the max over its windows'
pairs, and its CLS probability is the CLS head's averaged with the pairs'
(``pair_weight`` in nerelproc.json).

An entity is the mean of its tokens' states and its first token's state; a pair is both
entities, their product, their types and their distance. What depends on one entity is
computed once per entity; the product and the distance, the same for both orders of a pair,
once per unordered pair. Measured on NEREL in
``reports/model_recipes.md`` (section 3). The torch twin is ``nerelproc/training/pairs.py``.
"""

import numpy as np

from nerelproc.runtime.heads import SavedHead
from nerelproc.runtime.tagging import tag_runs

DISTANCE_BUCKETS = np.array([0, 1, 2, 4, 8, 16, 32, 64])
MAX_DISTANCE = 64  # tokens between two entities' nearest ends: 98.8% of dev's labels have such a pair
NO_PAIR = -30.0  # the logit of a document without pairs: no relation
PAIR_PARAMS = ("entity_weight", "entity_bias", "type_embedding", "distance_embedding",
               "hidden_weight", "hidden_bias", "out_weight", "out_bias")


def gelu(x, out=None):
    """GELU, tanh form (torch's ``approximate="tanh"``): numpy has no erf. ``x * x * x``, not
    ``x ** 3``: numpy's power is several times slower. The steps of
    ``0.5 * x * (1 + tanh(0.79788456 * (x + 0.044715 * x * x * x)))`` in that order, in place
    in one buffer: the same bits without four temporaries of the pairs' size; ``out=x`` writes
    the result over ``x`` (one buffer fewer, for an ``x`` no longer needed)."""
    x = np.asarray(x)
    if x.ndim == 0 or not np.issubdtype(x.dtype, np.floating):  # no buffer to work in
        return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * (x * x * x))))
    inner = x * x
    inner *= x
    inner *= 0.044715
    inner += x
    inner *= 0.7978845608028654
    np.tanh(inner, out=inner)
    inner += 1.0
    inner *= 0.5
    if out is None:
        inner *= x
        return inner
    out *= inner
    return out


class PairHead(SavedHead):
    PARAMS = PAIR_PARAMS

    def __init__(self, entity_weight, entity_bias, type_embedding, distance_embedding,
                 hidden_weight, hidden_bias, out_weight, out_bias):
        self.entity_weight = entity_weight.astype(np.float32)  # [2 * hidden, width]
        self.entity_bias = entity_bias.astype(np.float32)
        self.type_embedding = type_embedding.astype(np.float32)  # [entity types, 32]
        self.distance_embedding = distance_embedding.astype(np.float32)  # [buckets + 1, 32]
        self.hidden_weight = hidden_weight.astype(np.float32)  # [3 * width + 96, width]
        self.hidden_bias = hidden_bias.astype(np.float32)
        self.out_weight = out_weight.astype(np.float32)  # [width, labels]
        self.out_bias = out_bias.astype(np.float32)
        # The hidden layer reads [e_a, e_b, e_a * e_b, type_a, type_b, distance]: its weight's
        # blocks, with what depends on a type or a distance bucket alone computed here, once.
        width, kind = self.hidden_bias.shape[0], self.type_embedding.shape[1]
        w_a, w_b, self.product_weight, w_ta, w_tb, w_d = np.split(
            self.hidden_weight, np.cumsum([width, width, width, kind, kind]))
        self.side_weight = np.concatenate([w_a, w_b], 1)  # [width, 2 * width]: an entity as Arg1, as Arg2
        self.side_types = self.type_embedding @ np.concatenate([w_ta, w_tb], 1)  # [entity types, 2 * width]
        self.near = self.distance_embedding @ w_d + self.hidden_bias  # [buckets + 1, width]

    def logits(self, features, types, a, b, distance, extra=None, shared_extra=None):
        """``[pairs, labels]`` for entities ``features [E, 2 * hidden]``, ``types [E]`` and the
        pairs ``(a[p], b[p])`` with distance buckets ``distance[p]``. Added to the hidden layer's
        input, if given: ``extra [pairs, width]``, and ``shared_extra(lo, hi)``, a term that is
        the same for ``(a, b)`` and ``(b, a)``, asked for the unordered pairs ``(lo, hi)`` only
        (the relation head's context).

        What depends on one entity is computed once per entity; the product, the distance and
        ``shared_extra``, the same for both orders of a pair, once per unordered pair.
        """
        entity = gelu(features @ self.entity_weight + self.entity_bias)
        width = entity.shape[1]
        sides = entity @ self.side_weight
        sides += self.side_types[types]
        lo, hi, near, which = unordered_pairs(len(entity), a, b, distance)
        shared = entity[lo]
        shared *= entity[hi]
        shared = shared @ self.product_weight
        shared += self.near[near]
        if shared_extra is not None:
            shared += shared_extra(lo, hi)
        hidden = shared[which]
        hidden += sides[a, :width]
        hidden += sides[b, width:]
        if extra is not None:
            hidden += extra
        return gelu(hidden, out=hidden) @ self.out_weight + self.out_bias


def unordered_pairs(count, a, b, distance):
    """``(lo, hi, distance, which)``: the distinct unordered pairs (with their distance bucket)
    among the ordered pairs ``(a, b)`` of ``count`` entities, and for each ordered pair the
    index of its unordered one. The candidates hold both orders of a pair: half as many rows
    for the terms the two orders share."""
    buckets = int(distance.max()) + 1 if len(distance) else 1
    keys, which = np.unique((np.minimum(a, b) * count + np.maximum(a, b)) * buckets + distance, return_inverse=True)
    pair, near = np.divmod(keys, buckets)
    lo, hi = np.divmod(pair, count)
    return lo, hi, near, which.reshape(-1)


def tag_spans(tags, layers):
    """``(types, first, last)`` token runs of tags ``[tokens, channels]`` (channel = type x layer)."""
    spans = [(channel // layers, first, last) for channel in np.flatnonzero(tags.any(0))
             for first, last in tag_runs(tags[:, channel])]
    return tuple(np.array(column, dtype=np.int64).reshape(-1) for column in zip(*spans)) if spans else (
        np.zeros(0, np.int64),) * 3


def candidate_pairs(first, last):
    """Ordered pairs ``(a, b, distance bucket)`` of distinct entities at most ``MAX_DISTANCE`` apart."""
    a, b = (grid.ravel() for grid in np.meshgrid(np.arange(len(first)), np.arange(len(first)), indexing="ij"))
    gap = np.maximum(0, np.maximum(first[a] - last[b], first[b] - last[a]))
    near = (a != b) & (gap <= MAX_DISTANCE)
    return a[near], b[near], np.searchsorted(DISTANCE_BUCKETS, gap[near])


def entity_token_spans(entities, offsets, entity_types):
    """Per entity, ``(type index, first token, last token)`` over the tokens its spans touch, or
    None for an entity of an unknown type or without a token (a discontinuous one: its extent)."""
    starts, ends = offsets.T
    real = ends > starts
    spans = []
    for entity in entities:
        covered = np.zeros(len(starts), bool)
        for start, end in entity.spans:
            covered |= real & (starts < end) & (ends > start)
        tokens = np.flatnonzero(covered)
        known = entity.type in entity_types
        spans.append((entity_types.index(entity.type), int(tokens[0]), int(tokens[-1]))
                     if len(tokens) and known else None)
    return spans


def entity_features(states, first, last):
    """``[E, 2 * hidden]``: each entity's mean token state (summed in float64), then its first
    token's."""
    if not len(first):
        return np.zeros((0, 2 * states.shape[1]), np.float32)
    sums = np.stack([states[f : l + 1].sum(0, dtype=np.float64) for f, l in zip(first.tolist(), last.tolist())])
    mean = sums / (last - first + 1)[:, None]
    return np.concatenate([mean.astype(np.float32), states[first]], 1)


def window_pairs(states, first, last):
    """``(features, a, b, distance)``: one window's entity features and candidate pairs, computed
    once for the pair head and the relation head; None without a pair."""
    a, b, distance = candidate_pairs(first, last)
    if not len(a):
        return None
    return entity_features(states, first, last), a, b, distance


def window_pair_logits(head, types, pairs):
    """The max pair logit per label ``[labels]`` of one window's ``pairs`` (``window_pairs``)."""
    features, a, b, distance = pairs
    return head.logits(features, types, a, b, distance).max(0)
