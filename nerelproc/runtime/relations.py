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
its own final entities whose score passes the label's threshold; where a label's argument
holds one partner only (``relation_single`` in nerelproc.json: a profession is one person's),
only that argument's best-scored pair can pass.
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
    - ``name_embedding [8, width]``: whether the two names share a word's first four letters,
      whether one is the other's initials and whether they are the same name (``name_match``),
      which ALTERNATIVE_NAME pairs ("Обама" and "Барака Обамы", "ООН" and "Организация
      Объединённых Наций") need, and a repeated name never holds;
    - ``layout_embedding [5, width]``: where the two entities lie (``pair_layout``): Arg1
      first, Arg2 first, or one inside the other. The distance alone does not say, and most
      labels lean one way (ALTERNATIVE_NAME: Arg1 first in 98% of train, PART_OF: Arg2 inside
      Arg1 in 80%);
    - ``sentence_embedding [4, width]``: how many sentence ends lie between the two entities
      (0, 1, 2, 3 or more; ``sentences_between``): the context's max cannot count them;
    - ``allowed [types, types, labels]``: which labels an (Arg1 type, Arg2 type) pair ever
      holds in the training data (WORKS_AS: PERSON to PROFESSION, never CITY to DATE); the
      others get ``NOT_ALLOWED``.
    """

    OPTIONAL = ("context_weight", "name_embedding", "layout_embedding", "sentence_embedding", "allowed")

    def __init__(self, *params, context_weight=None, name_embedding=None, layout_embedding=None,
                 sentence_embedding=None, allowed=None):
        super().__init__(*params)
        as_float = lambda array: None if array is None else array.astype(np.float32)
        self.context_weight = as_float(context_weight)
        self.name_embedding = as_float(name_embedding)
        self.layout_embedding = as_float(layout_embedding)
        self.sentence_embedding = as_float(sentence_embedding)
        self.allowed = None if allowed is None else np.asarray(allowed, bool)

    @classmethod
    def load(cls, path):
        with np.load(path) as arrays:
            optional = {name: arrays[name] for name in cls.OPTIONAL if name in arrays.files}
            return cls(*(arrays[name] for name in PAIR_PARAMS), **optional)

    def save(self, path):
        optional = {name: getattr(self, name) for name in self.OPTIONAL if getattr(self, name) is not None}
        np.savez(path, **{name: getattr(self, name) for name in PAIR_PARAMS}, **optional)

    def window_logits(self, states, types, first, last, a, b, distance, surfaces=None, features=None, breaks=None):
        """``[pairs, labels]`` for the pairs ``(a, b)`` of one window's entities (``surfaces``:
        their texts, for the name match; ``features``: their ``entity_features``, if at hand;
        ``breaks``: the window's ``sentence_breaks``)."""
        features = entity_features(states, first, last) if features is None else features
        extra = np.zeros((len(a), self.hidden_bias.shape[0]), np.float32)
        if self.context_weight is not None:
            extra += context_features(states, first, last, a, b) @ self.context_weight
        if self.name_embedding is not None:
            # a head of four name codes predates the same-name bit: it reads the low two bits
            extra += self.name_embedding[name_match(surfaces, a, b) % len(self.name_embedding)]
        if self.layout_embedding is not None:
            extra += self.layout_embedding[pair_layout(first, last, a, b)]
        if self.sentence_embedding is not None:
            # without the window's breaks (a caller's own pairs), the two are taken as one sentence
            between = np.zeros(len(a), np.int64) if breaks is None else sentences_between(breaks, first, last, a, b)
            extra += self.sentence_embedding[between]
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


ARG1_FIRST, ARG2_FIRST, ARG1_INSIDE, ARG2_INSIDE, CROSSING = range(5)


def pair_layout(first, last, a, b):
    """``[pairs]``: where entity ``a`` (Arg1) lies against ``b`` (Arg2), by tokens: apart with
    Arg1 first or Arg2 first, Arg1 inside Arg2 (the same tokens too), Arg2 inside Arg1, or
    crossing."""
    fa, la, fb, lb = first[a], last[a], first[b], last[b]
    return np.select([la < fb, lb < fa, (fb <= fa) & (la <= lb), (fa <= fb) & (lb <= la)],
                     [ARG1_FIRST, ARG2_FIRST, ARG1_INSIDE, ARG2_INSIDE], CROSSING).astype(np.int64)


SENTENCE_END = frozenset(".!?…")


def sentence_breaks(text, offsets):
    """``[tokens]`` bool: a sentence may start at the token, for the text before it holds a line
    break or the token before it is end punctuation (``.``, ``!``, ``?``, ``…``)."""
    breaks = np.zeros(len(offsets), bool)
    for t in range(1, len(offsets)):
        before = text[offsets[t - 1, 1] : offsets[t, 0]]
        breaks[t] = "\n" in before or text[offsets[t - 1, 0] : offsets[t - 1, 1]] in SENTENCE_END
    return breaks


def sentences_between(breaks, first, last, a, b):
    """``[pairs]`` in 0..3: the sentence starts between two apart entities (3: three or more;
    0 for nested or crossing ones)."""
    starts = np.concatenate([[0], np.cumsum(breaks, dtype=np.int64)])  # starts[t]: breaks before token t
    lo, hi = np.minimum(last[a], last[b]), np.maximum(first[a], first[b])  # the earlier's end, the later's start
    count = np.where(hi > lo, starts[hi + 1] - starts[lo + 1], 0)
    return np.minimum(count, 3)


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
    """``[pairs]`` in 0..7: +1 when the two names share a stem, +2 when one name is the other's
    initials (at least two letters), +4 when they are the same letters (case and ё aside).
    Computed once per pair of the window's entities, as arrays."""
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
    every = np.array([k[2] for k in keys], dtype=object)
    same = every[a] == every[b]
    return shared[a, b].astype(np.int64) + 2 * acronym[a, b].astype(np.int64) + 4 * same.astype(np.int64)


def window_surfaces(text, offsets, first, last):
    """The text of each of a window's entities from its tokens' offsets (``first``/``last``:
    token indices into the document)."""
    return [text[offsets[f, 0] : offsets[l, 1]] for f, l in zip(first.tolist(), last.tolist())]


def window_relations(head, states, types, first, last, floor, surfaces=None, pairs=None, breaks=None):
    """``(a, b, label, logit)`` arrays: the window's ordered entity pairs ``(a[i], b[i])`` (indices
    into the window's entities) whose logit for ``label[i]`` is at least ``floor``; ``pairs``:
    ``window_pairs``' result, if the caller has it."""
    pairs = window_pairs(states, first, last) if pairs is None else pairs
    if pairs is None:
        return None
    features, a, b, distance = pairs
    logits = head.window_logits(states, types, first, last, a, b, distance, surfaces, features, breaks)
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


def decide(scores, index, thresholds, labels, single=None):
    """``[(head, tail, label name, probability)]``: the scored pairs of entities found in
    ``index`` (document key -> position in the output's entity list) over their label's
    threshold, in the order (head, tail, label). Two keys may name one entity (the same run in
    two nesting layers): such a pair keeps its best score, and an entity is never paired with
    itself. ``single``: ``{"arg1": [labels] bool, "arg2": ...}``, the labels an argument holds
    with one partner only (``single_partner_labels``): of its pairs, only the best-scored stands."""
    best = {}
    for (key_a, key_b, label), value in scores.items():
        head, tail = index.get(key_a), index.get(key_b)
        if head is not None and tail is not None and head != tail:
            best[head, tail, label] = max(value, best.get((head, tail, label), -np.inf))
    if single is not None:
        best = best_partner_only(best, single)
    out = []
    for (head, tail, label), value in sorted(best.items()):
        probability = float(1 / (1 + np.exp(-value)))
        if probability >= thresholds[label]:
            out.append((head, tail, labels[label], probability))
    return out


def best_partner_only(best, single):
    """``best`` (``{(head, tail, label): logit}``) without the pairs that lose to another pair of
    the same label and the same single-partner argument (ties both stand)."""
    top = {}
    for (head, tail, label), value in best.items():
        for arg, key in (("arg1", (0, head, label)), ("arg2", (1, tail, label))):
            if single[arg][label]:
                top[key] = max(value, top.get(key, -np.inf))
    return {(head, tail, label): value for (head, tail, label), value in best.items()
            if not (single["arg1"][label] and value < top[0, head, label])
            and not (single["arg2"][label] and value < top[1, tail, label])}


def single_partner_labels(relations_per_document, labels, share):
    """``{"arg1": [names], "arg2": [names]}``: the labels whose Arg1 (Arg2) holds one partner in
    at least ``share`` of its (label, argument) groups over the documents' gold relations
    (``relations_per_document``: per document a set of ``(label, arg1 key, arg2 key)``)."""
    counts = {arg: {label: [0, 0] for label in labels} for arg in ("arg1", "arg2")}
    for relations in relations_per_document:
        for arg, side in (("arg1", 1), ("arg2", 2)):
            groups = {}
            for relation in relations:
                groups[relation[0], relation[side]] = groups.get((relation[0], relation[side]), 0) + 1
            for (label, _), n in groups.items():
                if label in counts[arg]:
                    counts[arg][label][0] += n == 1
                    counts[arg][label][1] += 1
    return {arg: [label for label in labels if counts[arg][label][1] and counts[arg][label][0] >= share * counts[arg][label][1]]
            for arg in counts}


def format_relation_line(number, label, head_id, tail_id):
    return f"R{number}\t{label} Arg1:{head_id} Arg2:{tail_id}"
