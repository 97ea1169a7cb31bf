"""The nested NER label scheme: BIO layers per entity type and nesting depth.

Each (type, layer) pair is one channel with tags O/B/I over sub-word tokens.
Layer 0 of a type holds its outermost entities, layer 1 the entities of the same
type nested inside those, and so on. Entities of *different* types never compete,
so "ГИБДД Москвы" (ORGANIZATION) and "Москвы" (CITY) sit in different channels.

Decoding is cheap numpy: tags per channel (``decoding.py``), B/I runs to token spans, token spans
to character spans through the tokenizer's offsets, trimmed of whitespace and
widened to whole words.
A discontinuous entity is encoded by its extent (smallest start, largest end).
"""

import numpy as np
import regex

from nerelproc.io.document import Entity

O, B, I = 0, 1, 2


class TagScheme:
    def __init__(self, entity_types, layers=2):
        self.entity_types = tuple(entity_types)
        self.layers = layers
        self.type_index = {name: i for i, name in enumerate(self.entity_types)}

    @property
    def channels(self):
        return len(self.entity_types) * self.layers

    def channel(self, entity_type, layer):
        return self.type_index[entity_type] * self.layers + layer

    def encode(self, entities, offsets):
        """Tags ``[tokens, channels]`` (int8) for entities over tokens with char ``offsets``.

        ``offsets`` is an ``[tokens, 2]`` array of character spans (special tokens: 0, 0).
        Entities that do not fit (deeper than ``layers``, unknown type, no token, or
        overlapping another in their channel) are left out: that is the scheme's ceiling.
        """
        tags = np.zeros((len(offsets), self.channels), dtype=np.int8)
        starts, ends = offsets[:, 0], offsets[:, 1]
        real = ends > starts
        # Outer (longer) entities first, so that they take the lower layers.
        for entity in sorted(entities, key=lambda e: (e.start, -e.end)):
            if entity.type not in self.type_index:
                continue
            covered = np.flatnonzero(real & (starts < entity.end) & (ends > entity.start))
            if not len(covered):
                continue
            first, last = covered[0], covered[-1]
            for layer in range(self.layers):
                column = tags[first : last + 1, self.channel(entity.type, layer)]
                if not column.any():
                    column[0] = B
                    column[1:] = I
                    break
        return tags

    def decode(self, tags, offsets, text):
        """Entities from tags ``[tokens, channels]``; spans index ``text`` exactly."""
        entities = set()
        for channel in range(tags.shape[1]):
            column = tags[:, channel]
            if not column.any():
                continue
            entity_type = self.entity_types[channel // self.layers]
            for first, last in tag_runs(column):
                entity = self.entity_at(entity_type, first, last, offsets, text)
                if entity is not None:
                    entities.add(entity)
        return sorted(entities, key=lambda e: (e.start, -e.end, e.type))

    @staticmethod
    def entity_at(entity_type, first, last, offsets, text):
        """The entity a run of tokens ``first..last`` decodes to (None if it covers no character)."""
        span = _char_span(offsets, first, last, text)
        return None if span is None else Entity(entity_type, (span,))


def tag_runs(column):
    """Token runs ``(first, last)`` of B I* (an I after O opens a run too)."""
    runs, start = [], None
    for index, tag in enumerate(column.tolist()):
        if tag == B or (tag == I and start is None):
            if start is not None:
                runs.append((start, index - 1))
            start = index
        elif tag == O and start is not None:
            runs.append((start, index - 1))
            start = None
    if start is not None:
        runs.append((start, len(column) - 1))
    return runs


# Characters that show nothing and that an entity never starts or ends with: trimmed from its
# edges as spaces are (zero-width space, non-joiner and joiner, word joiner, byte order mark,
# soft hyphen, the direction marks). Inside an entity they stay.
INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f\u180e")


def _blank(char):
    return char.isspace() or char in INVISIBLE


def _char_span(offsets, first, last, text):
    start, end = int(offsets[first, 0]), int(offsets[last, 1])
    # Sub-word offsets include the space that "▁" stands for: trim it.
    while start < end and _blank(text[start]):
        start += 1
    while end > start and _blank(text[end - 1]):
        end -= 1
    if end <= start:
        return None
    # Entities are made of whole words: a run that starts or ends inside a word
    # ("пров" of "провёл") takes the whole word. Only 4 of 45k NEREL train entity
    # edges lie inside a word (letters or digits on both sides).
    while start > 0 and text[start - 1].isalnum() and text[start].isalnum():
        start -= 1
    while end < len(text) and text[end - 1].isalnum() and text[end].isalnum():
        end += 1
    start, end = grapheme_span(text, start, end)
    # A joiner or a soft hyphen extends the cluster before it: widening took it back in.
    while end > start and text[end - 1] in INVISIBLE:
        end -= 1
    return start, end


GRAPHEME = regex.compile(r"\X")
GRAPHEME_REACH = 64  # characters looked at around an edge; no real cluster is longer


def grapheme_span(text, start, end):
    """Widen ``[start, end)`` to whole grapheme clusters: a span never keeps half of a flag
    (two regional indicators) or a letter without its combining stress mark ("Йо" + U+0301)."""
    return _cluster_at(text, start)[0], _cluster_at(text, end - 1)[1]


def _alone(char):
    """True for a character that never joins a grapheme cluster with a neighbour: ASCII (but a
    carriage return, which takes a line feed), Latin-1 and Latin Extended letters and Cyrillic
    (but its combining marks). No Extend, ZWJ, SpacingMark, Prepend, regional indicator or
    Hangul is among them: between two such characters there is always a cluster boundary."""
    point = ord(char)
    return (point < 0x300 and char != "\r") or (0x400 <= point < 0x530 and not 0x483 <= point <= 0x489)


def _cluster_at(text, index):
    """The ``(start, end)`` of the grapheme cluster holding ``text[index]``."""
    # Most characters of Russian news stand alone: no search for them (the search is the cost).
    if _alone(text[index]) and (index == 0 or _alone(text[index - 1])) and (
            index + 1 == len(text) or _alone(text[index + 1])):
        return index, index + 1
    lo = max(0, index - GRAPHEME_REACH)
    # Start the search at a line break or the text's start when one is near: clusters never span one.
    newline = text.rfind("\n", lo, index)
    lo = newline + 1 if newline >= 0 else lo
    for match in GRAPHEME.finditer(text, lo, min(len(text), index + GRAPHEME_REACH)):
        if match.start() <= index < match.end():
            return match.span()
    return index, index + 1
