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

import functools

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
      others get ``NOT_ALLOWED``, and a pair whose types hold no label is not computed at all.
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
        rows, logits = self.allowed_logits(states, types, first, last, a, b, distance, surfaces, features, breaks)
        if rows is None:
            return logits
        out = np.full((len(a), len(self.out_bias)), np.float32(NOT_ALLOWED), np.float32)
        out[rows] = logits
        return out

    def allowed_logits(self, states, types, first, last, a, b, distance, surfaces=None, features=None, breaks=None):
        """``(rows, [rows, labels])``: ``window_logits`` of the pairs ``rows`` only (indices into
        ``a``, ``b``), those whose two entity types hold some label in training: the others'
        logits are all ``NOT_ALLOWED`` and are not computed (a third of NEREL's pairs). ``rows``
        is None for a head without ``allowed``: every pair is computed."""
        rows = None
        if self.allowed is not None:
            rows = np.flatnonzero(self.allowed.any(-1)[types[a], types[b]])
            a, b, distance = a[rows], b[rows], distance[rows]
            if not len(rows):
                return rows, np.zeros((0, len(self.out_bias)), np.float32)
        features = entity_features(states, first, last) if features is None else features
        width = self.hidden_bias.shape[0]
        context = None
        if self.context_weight is not None:  # the same for (a, b) and (b, a)
            context = functools.partial(projected_context, states, first, last, weight=self.context_weight)
        # the name match, the layout and the sentence ends index small tables: their sums, one
        # row per combination of the three, are added in one step
        names, layouts, sentences = (table if table is not None else np.zeros((1, width), np.float32)
                                     for table in (self.name_embedding, self.layout_embedding, self.sentence_embedding))
        code = np.zeros(len(a), np.int64)
        if self.name_embedding is not None:
            # a head of four name codes predates the same-name bit: it reads the low two bits
            code += name_match(surfaces, a, b) % len(names)
        code *= len(layouts)
        if self.layout_embedding is not None:
            code += pair_layout(first, last, a, b)
        code *= len(sentences)
        if self.sentence_embedding is not None and breaks is not None:
            # without the window's breaks (a caller's own pairs), the two are taken as one sentence
            code += sentences_between(breaks, first, last, a, b)
        combined = (names[:, None, None] + layouts[None, :, None] + sentences[None, None, :]).reshape(-1, width)
        logits = self.logits(features, types, a, b, distance, combined[code], context)
        if self.allowed is not None:
            logits = np.where(self.allowed[types[a], types[b]], logits, np.float32(NOT_ALLOWED))
        return rows, logits


def tokens_between(first, last, a, b):
    """``(lo, hi)`` per pair: the first and last token strictly between its two entities
    (``hi < lo`` where they touch, overlap or nest)."""
    a_first = last[a] < first[b]
    return np.where(a_first, last[a] + 1, last[b] + 1), np.where(a_first, first[b] - 1, first[a] - 1)


def span_maxima(states, lo, hi, reach=64):
    """``[spans, hidden]``: the max of ``states[lo[i] : hi[i] + 1]`` per span (none empty, none
    over ``reach`` tokens). A sparse table of maxima over spans of 1, 2, 4, ... tokens answers
    each span with two lookups, whatever its length; it covers only the tokens the spans do."""
    out = np.zeros((len(lo), states.shape[1]), np.float32)
    if not len(lo):
        return out
    start = int(lo.min())
    lo, hi = lo - start, hi - start
    size = hi - lo + 1
    levels = [states[start : int(hi.max()) + start + 1]]
    while (1 << len(levels)) <= min(reach, int(size.max())):
        previous, step = levels[-1], 1 << (len(levels) - 1)
        levels.append(np.maximum(previous[:-step], previous[step:]))
    level = np.floor(np.log2(size)).astype(np.int64)
    for k in np.unique(level):
        rows = np.flatnonzero(level == k)
        table = levels[k]
        out[rows] = np.maximum(table[lo[rows]], table[hi[rows] - (1 << k) + 1])
    return out


def context_features(states, first, last, a, b, reach=64):
    """``[pairs, hidden]``: per pair, the max of the states of the tokens strictly between its two
    entities (zeros where they touch, overlap or nest; ``span_maxima``)."""
    lo, hi = tokens_between(first, last, a, b)
    gap = hi >= lo
    out = np.zeros((len(a), states.shape[1]), np.float32)
    out[gap] = span_maxima(states, lo[gap], hi[gap], reach)
    return out


def projected_context(states, first, last, a, b, weight):
    """``context_features(...) @ weight`` (``[pairs, width]``), computed once per distinct span
    between two entities: ``(a, b)`` and ``(b, a)`` share theirs, and so do the pairs of entities
    that end (start) on one token. Zeros where no token lies between."""
    lo, hi = tokens_between(first, last, a, b)
    spans, which = np.unique(np.where(hi >= lo, lo * len(states) + hi, -1), return_inverse=True)
    projected = np.zeros((len(spans), weight.shape[1]), np.float32)  # row 0 stays zero if some pair has no gap
    gap = spans >= 0
    span_lo, span_hi = np.divmod(spans[gap], len(states))
    projected[gap] = span_maxima(states, span_lo, span_hi) @ weight
    return projected[which.reshape(-1)]


ARG1_FIRST, ARG2_FIRST, ARG1_INSIDE, ARG2_INSIDE, CROSSING = range(5)


def pair_layout(first, last, a, b):
    """``[pairs]``: where entity ``a`` (Arg1) lies against ``b`` (Arg2), by tokens: apart with
    Arg1 first or Arg2 first, Arg1 inside Arg2 (the same tokens too), Arg2 inside Arg1, or
    crossing."""
    fa, la, fb, lb = first[a], last[a], first[b], last[b]
    return np.select([la < fb, lb < fa, (fb <= fa) & (la <= lb), (fa <= fb) & (lb <= la)],
                     [ARG1_FIRST, ARG2_FIRST, ARG1_INSIDE, ARG2_INSIDE], CROSSING).astype(np.int64)


SENTENCE_END = frozenset(".!?…")
SENTENCE_END_POINTS = np.array(sorted(map(ord, SENTENCE_END)), np.uint32)


def sentence_breaks(text, offsets):
    """``[tokens]`` bool: a sentence may start at the token, for the text before it holds a line
    break or the token before it is end punctuation (``.``, ``!``, ``?``, ``…``). As arrays over
    the code points of the text the tokens cover."""
    breaks = np.zeros(len(offsets), bool)
    if len(offsets) < 2:
        return breaks
    base = int(offsets.min())
    points = np.frombuffer(text[base : int(offsets.max())].encode("utf-32-le", "surrogatepass"), np.uint32)
    lines = np.concatenate([[0], np.cumsum(points == ord("\n"))])  # lines[i]: line breaks before point i
    start, end = offsets[1:, 0] - base, offsets[:-1, 1] - base  # the gap before each token but the first
    breaks[1:] = lines[np.maximum(start, end)] > lines[end]
    single = np.flatnonzero(offsets[:-1, 1] - offsets[:-1, 0] == 1)  # the tokens of one code point
    breaks[single + 1] |= (points[offsets[single, 0] - base, None] == SENTENCE_END_POINTS).any(1)
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


@functools.lru_cache(maxsize=1 << 14)  # a name recurs in a document's windows and texts
def name_keys(surface):
    """``(stems, initials, letters)`` of a name: its words' first four letters (words of three
    letters or more), the first letters of those words, and all its letters, lower case."""
    words = [word.lower().replace("ё", "е") for word in WORD.findall(surface)]
    long = [word for word in words if len(word) >= 3]
    return frozenset(word[:4] for word in long), "".join(word[0] for word in long), "".join(words)


def name_match(surfaces, a, b):
    """``[pairs]`` in 0..7: +1 when the two names share a stem, +2 when one name is the other's
    initials (at least two letters), +4 when they are the same letters (case and ё aside).
    Computed once per pair of the window's entities, as arrays: each string is numbered, and
    the pairs compare numbers."""
    keys = [name_keys(surface) for surface in surfaces]
    stems, strings = {}, {}
    cells = [(i, stems.setdefault(stem, len(stems))) for i, (stem_set, _, _) in enumerate(keys) for stem in stem_set]
    has = np.zeros((len(keys), len(stems)), np.float32)
    if cells:
        has[tuple(np.array(cells).T)] = 1
    shared = (has @ has.T) > 0  # [E, E]
    for _, initial, letter in keys:
        strings.setdefault(initial, len(strings))
        strings.setdefault(letter, len(strings))
    initials = np.array([strings[k[1]] for k in keys], np.int64)
    every = np.array([strings[k[2]] for k in keys], np.int64)
    letters = np.where([len(k[2]) >= 2 for k in keys], every, -1)
    acronym = letters[:, None] == initials[None, :]  # name i is the initials of name j
    acronym |= acronym.T
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
    rows, logits = head.allowed_logits(states, types, first, last, a, b, distance, surfaces, features, breaks)
    row, label = np.nonzero(logits >= floor)
    pair = row if rows is None else rows[row]
    return a[pair], b[pair], label, logits[row, label]


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
