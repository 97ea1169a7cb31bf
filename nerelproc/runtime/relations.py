"""Relations (NEREL R-lines) between a document's entities, in numpy.

The relation head (``relations.npz``, written by ``nerelproc train-relations``) has the form
of the entity-pair CLS head (``pairs.py``: the same ``PairHead`` math) but is trained for
pairs, not for the document's max: one sigmoid per relation type for every ordered pair of
entities at most 64 tokens apart, the first entity being ``Arg1``.

It runs where the pairs are encoded, window by window, on the window's states and the
entities of that window (the ones its NER tags decode to, or the caller's own entities with
``--given-entities``). A window keeps only the (pair, label) scores over the lowest
threshold, so memory stays bounded by a window; a pair seen by two windows keeps its higher
score (a max: the windows' order cannot change it). A document's relations are the pairs of
its own final entities whose score passes the label's threshold.
"""

import numpy as np
import regex

from nerelproc.runtime.pairs import PAIR_PARAMS, PairHead, entity_features, window_pairs

RELATIONS_FILE = "relations.npz"
NOT_ALLOWED = -30.0  # the logit of a label the pair's two entity types never hold in training


class RelationHead(PairHead):
    """The pair head's parameters and math, plus two things a relation needs:

    - ``context_weight [hidden, width]``: the words between the two entities (the max over
      their tokens' states, SpERT's context) enter the hidden layer;
    - ``name_embedding [4, width]``: whether the two names share a word's first four letters
      and whether one is the other's initials (``name_match``), which ALTERNATIVE_NAME pairs
      ("Обама" and "Барака Обамы", "ООН" and "Организация Объединённых Наций") need;
    - ``allowed [types, types, labels]``: which labels an (Arg1 type, Arg2 type) pair ever
      holds in the training data (WORKS_AS: PERSON to PROFESSION, never CITY to DATE); the
      others get ``NOT_ALLOWED``.
    """

    OPTIONAL = ("context_weight", "name_embedding", "allowed")

    def __init__(self, *params, context_weight=None, name_embedding=None, allowed=None):
        super().__init__(*params)
        self.context_weight = None if context_weight is None else context_weight.astype(np.float32)
        self.name_embedding = None if name_embedding is None else name_embedding.astype(np.float32)
        self.allowed = None if allowed is None else np.asarray(allowed, bool)

    @classmethod
    def load(cls, path):
        with np.load(path) as arrays:
            optional = {name: arrays[name] for name in cls.OPTIONAL if name in arrays.files}
            return cls(*(arrays[name] for name in PAIR_PARAMS), **optional)

    def save(self, path):
        optional = {name: getattr(self, name) for name in self.OPTIONAL if getattr(self, name) is not None}
        np.savez(path, **{name: getattr(self, name) for name in PAIR_PARAMS}, **optional)

    def window_logits(self, states, types, first, last, a, b, distance, surfaces=None, features=None):
        """``[pairs, labels]`` for the pairs ``(a, b)`` of one window's entities (``surfaces``:
        their texts, for the name match; ``features``: their ``entity_features``, if at hand)."""
        features = entity_features(states, first, last) if features is None else features
        extra = np.zeros((len(a), self.hidden_bias.shape[0]), np.float32)
        if self.context_weight is not None:
            extra += context_features(states, first, last, a, b) @ self.context_weight
        if self.name_embedding is not None:
            extra += self.name_embedding[name_match(surfaces, a, b)]
        logits = self.logits(features, types, a, b, distance, extra)
        if self.allowed is None:
            return logits
        return np.where(self.allowed[types[a], types[b]], logits, np.float32(NOT_ALLOWED))


def context_features(states, first, last, a, b, reach=64):
    """``[pairs, hidden]``: per pair, the max of the states of the tokens strictly between its two
    entities (zeros where they touch, overlap or nest). A sparse table of maxima over spans of
    1, 2, 4, ... 64 tokens answers each pair with two lookups, whatever the gap."""
    a_first = last[a] < first[b]
    lo = np.where(a_first, last[a] + 1, last[b] + 1)
    hi = np.where(a_first, first[b] - 1, first[a] - 1)
    size = hi - lo + 1
    gap = size > 0
    out = np.zeros((len(a), states.shape[1]), np.float32)
    if not gap.any():
        return out
    levels = [states]
    while (1 << len(levels)) <= min(reach, int(size[gap].max())):
        previous, step = levels[-1], 1 << (len(levels) - 1)
        levels.append(np.maximum(previous[:-step], previous[step:]))
    level = np.floor(np.log2(np.maximum(size, 1))).astype(np.int64)
    for k in np.unique(level[gap]):
        rows = np.flatnonzero(gap & (level == k))
        table = levels[k]
        out[rows] = np.maximum(table[lo[rows]], table[hi[rows] - (1 << k) + 1])
    return out


def logit(probability):
    probability = np.clip(np.asarray(probability, np.float64), 1e-6, 1 - 1e-6)
    return np.log(probability / (1 - probability))


WORD = regex.compile(r"\w+")


def name_keys(surface):
    """``(stems, initials, letters)`` of a name: its words' first four letters (words of three
    letters or more), the first letters of those words, and all its letters, lower case."""
    words = [word.lower().replace("ё", "е") for word in WORD.findall(surface)]
    long = [word for word in words if len(word) >= 3]
    return {word[:4] for word in long}, "".join(word[0] for word in long), "".join(words)


def name_match(surfaces, a, b):
    """``[pairs]`` in 0..3: +1 when the two names share a stem, +2 when one name is the other's
    initials (at least two letters). Computed once per pair of the window's entities, as arrays."""
    keys = [name_keys(surface) for surface in surfaces]
    stems = sorted({stem for stem_set, _, _ in keys for stem in stem_set})
    column = {stem: k for k, stem in enumerate(stems)}
    has = np.zeros((len(keys), len(stems)), np.float32)
    for i, (stem_set, _, _) in enumerate(keys):
        has[i, [column[stem] for stem in stem_set]] = 1
    shared = (has @ has.T) > 0  # [E, E]
    initials = np.array([k[1] for k in keys], dtype=object)
    letters = np.array([k[2] if len(k[2]) >= 2 else None for k in keys], dtype=object)
    acronym = letters[:, None] == initials[None, :]  # name i is the initials of name j
    acronym |= acronym.T
    return shared[a, b].astype(np.int64) + 2 * acronym[a, b].astype(np.int64)


def window_surfaces(text, offsets, first, last):
    """The text of each of a window's entities from its tokens' offsets (``first``/``last``:
    token indices into the document)."""
    return [text[offsets[f, 0] : offsets[l, 1]] for f, l in zip(first.tolist(), last.tolist())]


def window_relations(head, states, types, first, last, floor, surfaces=None, pairs=None):
    """``(a, b, label, logit)`` arrays: the window's ordered entity pairs ``(a[i], b[i])`` (indices
    into the window's entities) whose logit for ``label[i]`` is at least ``floor``; ``pairs``:
    ``window_pairs``' result, if the caller has it."""
    pairs = window_pairs(states, first, last) if pairs is None else pairs
    if pairs is None:
        return None
    features, a, b, distance = pairs
    logits = head.window_logits(states, types, first, last, a, b, distance, surfaces, features)
    pair, label = np.nonzero(logits >= floor)
    return a[pair], b[pair], label, logits[pair, label]


def keep_best(scores, keys, found):
    """Merge one window's ``found`` (from ``window_relations``) into ``scores``:
    ``{(key a, key b, label): logit}``, a pair's best logit over windows; ``keys[i]`` names the
    window's entity ``i`` in the whole document."""
    if found is None:
        return
    for a, b, label, value in zip(*(column.tolist() for column in found)):
        key = (keys[a], keys[b], label)
        if value > scores.get(key, -np.inf):
            scores[key] = value


def decide(scores, index, thresholds, labels):
    """``[(head, tail, label name, probability)]``: the scored pairs of entities found in
    ``index`` (document key -> position in the output's entity list) over their label's
    threshold, in the order (head, tail, label). Two keys may name one entity (the same run in
    two nesting layers): such a pair keeps its best score, and an entity is never paired with
    itself."""
    best = {}
    for (key_a, key_b, label), value in scores.items():
        head, tail = index.get(key_a), index.get(key_b)
        if head is not None and tail is not None and head != tail:
            best[head, tail, label] = max(value, best.get((head, tail, label), -np.inf))
    out = []
    for (head, tail, label), value in sorted(best.items()):
        probability = float(1 / (1 + np.exp(-value)))
        if probability >= thresholds[label]:
            out.append((head, tail, labels[label], probability))
    return out


def format_relation_line(number, label, head_id, tail_id):
    return f"R{number}\t{label} Arg1:{head_id} Arg2:{tail_id}"
