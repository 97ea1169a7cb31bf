"""Nested NER as span classification (SpERT-style), in numpy.

Every span of at most ``max_width`` sub-word tokens that starts and ends on a word edge gets
one of the entity types or none (a softmax over ``1 + types``: NEREL train has 3 spans of
45k with two types). A span is read as

    gelu(start[i] + end[j] + max(pool[i..j]) + left[i - 1] + right[j + 1] + width[j - i] + bias)

where ``start``, ``end``, ``pool``, ``left`` and ``right`` are linear maps of the token
states (one matrix, ``token_weight``), so the per-token work is one matmul and the per-span
work one sum, a running max and the output layer. ``left``/``right`` read the tokens just
outside the span (zero at a window's edge).

It runs where the states are, window by window: a window scores the spans whose first token
it owns (``windows.py``), so every span of a document is scored once, by the window where its
start sits most centrally, and memory stays bounded by a window. A window keeps only its
spans whose best type scores over a floor (``window_span_entities``). A document's entities
(``decode_spans``) are its candidates over the threshold, taken best first; one that crosses
an entity already taken (overlaps it without one holding the other) is dropped, nesting is
kept (``select_spans``; NEREL train has 93 crossing pairs among 45k entities). Token spans
become character spans as the tagging head's do (``TagScheme.entity_at``: spaces trimmed,
whole words). The torch twin is ``nerelproc/training/spans.py``; ``experiments/span_head.py``
measures it against the tagging head.
"""

import numpy as np

from nerelproc.runtime.heads import SavedHead
from nerelproc.runtime.pairs import gelu
from nerelproc.runtime.tagging import TagScheme

SPANS_FILE = "spans.npz"
SPAN_PARAMS = ("token_weight", "hidden_bias", "width_embedding", "out_weight", "out_bias")
PARTS = 5  # start, end, pool, left, right: the column blocks of token_weight
# The lowest score a window keeps a candidate at: under any threshold worth trying, so a
# document's threshold can be tuned without encoding it again (``nerelproc calibrate``).
FLOOR = 0.05


class SpanHead(SavedHead):
    PARAMS = SPAN_PARAMS

    def __init__(self, token_weight, hidden_bias, width_embedding, out_weight, out_bias):
        self.token_weight = token_weight.astype(np.float32)  # [hidden, 5 * width]
        self.hidden_bias = hidden_bias.astype(np.float32)  # [width]
        self.width_embedding = width_embedding.astype(np.float32)  # [max_width, width]
        self.out_weight = out_weight.astype(np.float32)  # [width, 1 + types]; class 0 is none
        self.out_bias = out_bias.astype(np.float32)
        if self.token_weight.shape[1] != PARTS * len(self.hidden_bias):
            raise ValueError(f"token_weight has {self.token_weight.shape[1]} columns, not {PARTS} x "
                             f"{len(self.hidden_bias)}")

    @property
    def max_width(self):
        return len(self.width_embedding)

    @property
    def n_types(self):
        return self.out_weight.shape[1] - 1

    def token_parts(self, states):
        """``(start, end, pool, left, right)``, each ``[tokens, width]``; ``left[i]`` is already
        the state before token i (what a span starting at i reads), ``right[j]`` the one after j."""
        start, end, pool, before, after = np.split(states.astype(np.float32) @ self.token_weight, PARTS, axis=1)
        zero = np.zeros((1, before.shape[1]), np.float32)
        left = np.concatenate([zero, before[:-1]])
        right = np.concatenate([after[1:], zero])
        return start, end, pool, left, right

    def logits(self, states, first, last):
        """``[spans, 1 + types]`` for the spans ``first[s]..last[s]`` (token indices, inclusive) of
        one window's ``states [tokens, hidden]``: the plain form, for tests."""
        start, end, pool, left, right = self.token_parts(states)
        pooled = np.stack([pool[f : l + 1].max(0) for f, l in zip(first.tolist(), last.tolist())]).reshape(
            len(first), -1)
        hidden = start[first] + end[last] + pooled + left[first] + right[last]
        hidden += self.width_embedding[last - first] + self.hidden_bias
        return gelu(hidden) @ self.out_weight + self.out_bias


def span_edges(text, offsets):
    """``(can_start, can_end)`` per token ``[tokens]`` bool: whether a span may start (end) on it,
    i.e. its text, spaces trimmed, begins (ends) on a word edge. Entities are whole words (4 of
    45k NEREL train edges lie inside one), and a span inside a word would decode to the whole
    word anyway (``TagScheme.entity_at``): skipping the others leaves 43% of the spans."""
    n = len(offsets)
    can_start, can_end = np.zeros(n, bool), np.zeros(n, bool)
    for t, (start, end) in enumerate(offsets.tolist()):
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            can_start[t] = start == 0 or not (text[start - 1].isalnum() and text[start].isalnum())
            can_end[t] = end == len(text) or not (text[end - 1].isalnum() and text[end].isalnum())
    return can_start, can_end


def window_spans(can_start, can_end, owned, max_width):
    """``(first, last)`` of the candidate spans of one window (token indices into the window):
    starting on a token in ``owned = (lo, hi)``, at most ``max_width`` tokens, within the window,
    on word edges. Ordered by width, then start (as ``window_span_entities`` scores them)."""
    lo, hi = owned
    n = len(can_start)
    starts = np.arange(lo, hi)
    starts = starts[can_start[starts]]
    firsts, lasts = [], []
    for w in range(max_width):
        first = starts[starts + w < n]
        first = first[can_end[first + w]]
        firsts.append(first)
        lasts.append(first + w)
    return np.concatenate(firsts).astype(np.int64), np.concatenate(lasts).astype(np.int64)


def softmax(logits):
    logits = logits - logits.max(-1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(-1, keepdims=True)


def window_span_entities(head, states, can_start, can_end, owned, floor=FLOOR):
    """One window's candidate entities ``(types, first, last, scores)``: its spans (``window_spans``)
    whose best type has a probability of at least ``floor``, that type and that probability.
    ``states [tokens, hidden]`` are the window's (special tokens removed), ``can_start``/``can_end``
    its slice of the document's ``span_edges``, ``owned`` its owned tokens ``(lo, hi)`` in window
    indices (``window.own_start - window.start``, ``window.own_end - window.start``); token
    indices out are the window's. Memory: ``[tokens, 5 * width]`` and one width's spans at a time."""
    start, end, pool, left, right = head.token_parts(states)
    n, lo, hi = len(states), owned[0], owned[1]
    starts = np.arange(lo, hi)
    starts = starts[can_start[starts]]
    running = pool.copy()  # after step w: running[i] = max(pool[i..i + w])
    found = []
    for w in range(min(head.max_width, n)):  # a window shorter than max_width holds no wider span
        if w:
            running[: n - w] = np.maximum(running[: n - w], pool[w:])
        first = starts[starts + w < n]
        first = first[can_end[first + w]]
        if not len(first):
            continue
        last = first + w
        hidden = start[first] + end[last] + running[first] + left[first] + right[last]
        hidden += head.width_embedding[w] + head.hidden_bias
        probs = softmax(gelu(hidden) @ head.out_weight + head.out_bias)
        kind = probs[:, 1:].argmax(1)
        score = probs[np.arange(len(first)), kind + 1]
        keep = score >= floor
        found.append((kind[keep], first[keep], last[keep], score[keep]))
    if not found:
        return (np.zeros(0, np.int64),) * 3 + (np.zeros(0, np.float32),)
    return tuple(np.concatenate(column) for column in zip(*found))


def document_span_entities(head, window_states, windows, can_start, can_end, floor=FLOOR):
    """All windows' candidates of one document, token indices into the document:
    ``window_states[k]`` are window ``k``'s states (``windows.plan_windows``)."""
    parts = []
    for states, window in zip(window_states, windows):
        if window.end <= window.start:
            continue
        edges = slice(window.start, window.end)
        owned = (window.own_start - window.start, window.own_end - window.start)
        types, first, last, scores = window_span_entities(head, states, can_start[edges], can_end[edges], owned,
                                                          floor)
        parts.append((types, first + window.start, last + window.start, scores))
    if not parts:
        return (np.zeros(0, np.int64),) * 3 + (np.zeros(0, np.float32),)
    return tuple(np.concatenate(column) for column in zip(*parts))


def resolve_crossing(first, last, scores, max_width):
    """Indices of the spans kept, best score first: a span that crosses one already kept
    (overlaps it, neither holding the other) is dropped; nested and equal spans stay. Ties go to
    the earlier, then the shorter span, so the order of the input does not matter."""
    order = np.lexsort((last, first, -scores))
    kept, by_first = [], {}  # by_first: first token -> last tokens kept
    for index in order.tolist():
        f, l = int(first[index]), int(last[index])
        # a kept span that crosses [f, l] starts within (f - max_width, l]
        crossing = any(
            (other_first < f <= other_last < l) or (f < other_first <= l < other_last)
            for other_first in range(f - max_width + 1, l + 1)
            for other_last in by_first.get(other_first, ())
        )
        if not crossing:
            kept.append(index)
            by_first.setdefault(f, []).append(l)
    return kept


def select_spans(candidates, threshold, max_width):
    """The token spans ``(types, first, last, scores)`` of ``candidates`` that are entities: over
    ``threshold``, crossing ones resolved by score (``resolve_crossing``), best first. Also what
    the pair and relation heads read in one window (its candidates over the whole window)."""
    types, first, last, scores = candidates
    over = scores >= threshold
    types, first, last, scores = types[over], first[over], last[over], scores[over]
    kept = np.array(resolve_crossing(first, last, scores, max_width), np.int64)
    return types[kept], first[kept], last[kept], scores[kept]


def decode_spans(candidates, threshold, offsets, text, entity_types, max_width):
    """A document's entities from its candidates ``(types, first, last, scores)`` (token indices
    into the document, ``offsets`` its tokens' character spans): ``select_spans``, then mapped to
    character spans of ``text`` exactly; sorted as the tagging head's."""
    entities = set()
    for kind, first, last, _ in zip(*(column.tolist() for column in select_spans(candidates, threshold, max_width))):
        entity = TagScheme.entity_at(entity_types[kind], first, last, offsets, text)
        if entity is not None:
            entities.add(entity)
    return sorted(entities, key=lambda e: (e.start, -e.end, e.type))
