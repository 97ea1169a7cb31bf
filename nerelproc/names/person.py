"""Person names in the nominative: the parts agree, so one gender and one case fit them all.

Each word offers readings (gender, case, nominative form, weight) from pymorphy3's first
names, patronymics and surnames, from the regular Russian surname endings (-ов/-ев/-ин/-ын,
-ский/-цкий; a surname ending in a consonant declines for a man only), and "as written"
(any gender, any case: Мурси, Занончелли, Кацер for a woman). The gender and case with the
most weight over all words win, and each word takes its best reading under them:
«Александру Бондареву» is a man in the dative («Александр Бондарев»), «Ксенией Кацер» a
woman in the instrumental («Ксения Кацер»).
"""

import re
from functools import lru_cache

from nerelproc.names.morphology import inflect, parses

NAME_TAGS = ("Name", "Surn", "Patr")
CASES = ("nomn", "gent", "datv", "accs", "ablt", "loct")
GENDERS = ("masc", "femn")
CASE_NAMES = {"gen2": "gent", "loc2": "loct", "acc2": "accs", "voct": "nomn"}  # pymorphy3's second cases
NOMINATIVE = frozenset({"nomn"})
AS_WRITTEN = 0.05  # the weight of keeping a word: less than any real reading
RULE = 0.4  # a surname ending's reading
GUESS = 0.5  # pymorphy3's guesses for words it does not know count half

# (ending, gender, cases, what replaces the ending)
SURNAME_ENDINGS = []
for _stem in ("ов", "ев", "ёв", "ин", "ын"):
    SURNAME_ENDINGS += [
        (_stem, "masc", ("nomn",), _stem),
        (_stem + "а", "masc", ("gent", "accs"), _stem),
        (_stem + "а", "femn", ("nomn",), _stem + "а"),
        (_stem + "у", "masc", ("datv",), _stem),
        (_stem + "у", "femn", ("accs",), _stem + "а"),
        (_stem + "ым", "masc", ("ablt",), _stem),
        (_stem + "е", "masc", ("loct",), _stem),
        (_stem + "ой", "femn", ("gent", "datv", "ablt", "loct"), _stem + "а"),
    ]
for _stem in ("ск", "цк"):
    SURNAME_ENDINGS += [
        (_stem + "ий", "masc", ("nomn",), _stem + "ий"),
        (_stem + "ого", "masc", ("gent", "accs"), _stem + "ий"),
        (_stem + "ому", "masc", ("datv",), _stem + "ий"),
        (_stem + "им", "masc", ("ablt",), _stem + "ий"),
        (_stem + "ом", "masc", ("loct",), _stem + "ий"),
        (_stem + "ая", "femn", ("nomn",), _stem + "ая"),
        (_stem + "ой", "femn", ("gent", "datv", "ablt", "loct"), _stem + "ая"),
        (_stem + "ую", "femn", ("accs",), _stem + "ая"),
    ]
CONSONANT_FINAL = re.compile(r".*[бвгджзклмнпрстфхцчшщ]$")
# the locative «-е» is left out: foreign names end in «-е» (Сидибе, Буфье) far more often
CONSONANT_ENDINGS = (("а", ("gent", "accs")), ("у", ("datv",)), ("ом", ("ablt",)), ("ем", ("ablt",)))
FOREIGN_FINALS = "еиоэ"


def person_form(parts):
    """The parts (``words.tokens``) of a person's name with every name word in the nominative."""
    words = [i for i, part in enumerate(parts) if part.word and not part.frozen]
    if not words:
        return parts
    readings = [_readings(parts[i].lower) for i in words]
    best = None
    for gender in GENDERS:
        for case in CASES:
            score, chosen = 0.0, []
            for options in readings:
                fits = [r for r in options if r[0] in (gender, None) and r[1] in (case, None)]
                top = max(fits, key=lambda r: r[3]) if fits else None
                score += top[3] if top else 0.0
                chosen.append(top)
            # ties go to the nominative, then to the first gender listed
            if best is None or score > best[0] + 1e-9:
                best = (score, chosen)
    out = list(parts)
    for i, reading in zip(words, best[1]):
        if reading is not None and reading[2] is not None:
            form = reading[2]
            out[i] = parts[i].replaced(form if isinstance(form, str) else inflect(form, NOMINATIVE))
    return out


@lru_cache(maxsize=100_000)
def _readings(word):
    """``[(gender or None, case or None, nominative form or None to keep, weight)]`` of a word;
    a form may be a pymorphy3 parse still to be put in the nominative."""
    readings = [(None, None, None, AS_WRITTEN)]
    for parse in parses(word):
        tag = parse.tag
        if tag.POS != "NOUN" or tag.number != "sing":
            continue
        named = any(name in tag for name in NAME_TAGS)
        if parse.is_known and not named:
            continue  # a common noun (Дом, Кит) is a name here only as written
        if not parse.is_known and word[-1:] in FOREIGN_FINALS:
            continue  # an unknown name in «-е», «-и», «-о» is foreign (Цвангираи, Сидибе): it stays
        weight = parse.score * (1.0 if parse.is_known else GUESS)
        form = parse if tag.case != "nomn" else word  # inflected only if chosen: paradigms cost
        genders = GENDERS if "ms-f" in tag or tag.gender is None else (tag.gender,)
        case = CASE_NAMES.get(tag.case, tag.case)
        for gender in genders:
            readings.append((gender, case, form, weight))
    for ending, gender, cases, nominative in SURNAME_ENDINGS:
        if word.endswith(ending) and len(word) > len(ending) + 1:
            form = word[: -len(ending)] + nominative
            readings += [(gender, case, form, RULE) for case in cases]
    if CONSONANT_FINAL.match(word):
        readings.append(("masc", "nomn", word, RULE / 2))
    for ending, cases in CONSONANT_ENDINGS:
        stem = word[: -len(ending)]
        if word.endswith(ending) and len(stem) > 2 and CONSONANT_FINAL.match(stem):
            readings += [("masc", case, stem, RULE / 2) for case in cases]
    return readings
