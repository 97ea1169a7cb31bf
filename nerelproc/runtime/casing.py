"""Case restoration: all-caps and all-lower text given the case of ordinary news before it
meets the encoder.

The encoder learned Russian names from their capitals: on lower-cased news it misses many of
them, and all-caps text falls apart into short sub-words it rarely saw. So a text (or a line)
written in one case is re-cased word by word: a name (pymorphy3's Name, Surn, Patr, Geox,
Orgn, Trad), a Russian word the dictionary does not know and a Latin word get a capital, an
abbreviation (pymorphy3's Abbr, a Latin word of up to three letters) is written in capitals,
the first word of a sentence is capitalised, and every other word is written in lower case. Only the encoder sees the re-cased text: it has the same
length, character for character, so every offset, and every entity's text, still comes from the
original. Text that is written in both cases is left exactly as it is.
"""

import re
from functools import lru_cache

from nerelproc.names.morphology import parses

WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
# A sentence starts at the text's start, after a line break, or after . ! ? … and a space
# (quotes and brackets between them allowed).
SENTENCE_START = re.compile(r"(?:^|\n|[.!?…][\s«\"“„(\[]*\s)[\s«\"“„(\[—–-]*$")
NAME_TAGS = ("Name", "Surn", "Patr", "Geox", "Orgn", "Trad")
MIN_LETTERS = 12  # fewer cased letters than this, a line says nothing about its case
CAPS_SHARE = 0.9  # a line whose cased letters are this much upper case is an all-caps line
NAME_SCORE = 0.3  # pymorphy3's probability of a name over which a word is capitalised (chosen on dev)
LATIN_ACRONYM = 3  # a Latin word this short is written in capitals, a longer one capitalised


def restore_case(text):
    """``text`` re-cased where it is written in one case (same length), or ``text`` itself."""
    if not any(c.isupper() for c in text):
        return _recase(text, 0, len(text)) if _letters(text) >= MIN_LETTERS else text
    pieces, changed, start = [], False, 0
    for line in text.splitlines(keepends=True):
        if _letters(line) >= MIN_LETTERS and _upper_share(line) >= CAPS_SHARE:
            pieces.append(_recase(text, start, start + len(line)))
            changed = True
        else:
            pieces.append(line)
        start += len(line)
    return "".join(pieces) if changed else text


def _letters(text):
    return sum(1 for c in text if c.islower() or c.isupper())


def _upper_share(text):
    cased = _letters(text)
    return sum(1 for c in text if c.isupper()) / cased if cased else 0.0


def _recase(text, start, end):
    out = list(text[start:end])
    for match in WORD.finditer(text, start, end):
        word = match.group()
        form = _word_case(word.lower())
        if form == "lower" and SENTENCE_START.search(text, max(0, match.start() - 8), match.start()):
            form = "title"
        if match.start() == 0:
            form = "title" if form == "lower" else form
        cased = {"upper": word.upper(), "title": word[:1].upper() + word[1:].lower(), "lower": word.lower()}[form]
        if len(cased) == len(word):  # a letter whose other case is longer (ß → SS) keeps its own
            out[match.start() - start : match.end() - start] = cased
    return "".join(out)


@lru_cache(maxsize=200_000)
def _word_case(word):
    """"upper", "title" or "lower" for a lower-cased word."""
    if not any("а" <= c <= "я" or c == "ё" for c in word):  # Latin: acronyms (BBC) and brand names (Google)
        return "upper" if len(word) <= LATIN_ACRONYM else "title"
    found = parses(word)
    if "Abbr" in found[0].tag and len(word) <= 5:
        return "upper"
    if not found[0].is_known:  # a word the dictionary lacks is most often a foreign name
        return "title"
    # the probability that the word is a name, summed over its parses ("шойгу" spreads over cases)
    if sum(p.score for p in found if any(name in p.tag for name in NAME_TAGS)) >= NAME_SCORE:
        return "title"
    return "lower"
