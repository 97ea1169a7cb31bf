"""The normal form of an entity mention: the phrase in the nominative, as a list would give it.

«Андреем Травниковым» -> «Андрей Травников», «Новосибирской области» -> «Новосибирская
область», «губернатором Новосибирской области» -> «губернатор Новосибирской области».

- Values (DATE, TIME, MONEY, NUMBER, PERCENT, AGE, ORDINAL) keep their text: they are
  counted by value, and a numeral phrase has no list form a reader would agree on.
- PERSON: every part of the name (first name, patronymic, surname) goes to the
  nominative, all parts in one gender and one case chosen together (``person.py``).
- FAMILY named by a surname goes to the plural nominative («Скрипалей» -> «Скрипали»).
- Every other type is a noun phrase: its head (the first noun) and the adjectives before
  it go to the nominative, keeping the head's number; what follows the head (genitive
  dependents, prepositional phrases, quoted names) stays as written. A lone adjective
  («британской», «Лондонский») gives its dictionary form (masculine singular).
- A word that does not decline stays as written: Latin or other non-Cyrillic script,
  numbers, abbreviations in capitals (ООН), indeclinable words (Перу), words in quotes after
  the head. A phrase that starts with a preposition or a verb («подал в отставку») is kept.
- The spelling of the text is kept: capitals of each word, «е» where the text has no «ё»;
  runs of white space become one space.
"""

import re
from functools import lru_cache

from nerelproc.names.morphology import inflect, parses
from nerelproc.names.person import person_form
from nerelproc.names.words import join, tokens

# types whose head is a person or people: «политика» is a politician here, not politics
ANIMATE_TYPES = frozenset({"PROFESSION", "NATIONALITY", "FAMILY", "PERSON"})
VALUE_TYPES = frozenset({"DATE", "TIME", "MONEY", "NUMBER", "PERCENT", "AGE", "ORDINAL"})

ADJECTIVES = {"ADJF", "PRTF"}
HARD_CONSONANTS = "бвгджзклмнпрстфхцчшщ"


def normal_form(surface, entity_type=None):
    """The normal form of one mention (``surface`` as in the text, ``entity_type`` a NEREL type)."""
    return _normal_form(surface, entity_type)


@lru_cache(maxsize=100_000)
def _normal_form(surface, entity_type):
    if entity_type in VALUE_TYPES:
        return re.sub(r"\s+", " ", surface).strip()
    parts = tokens(surface)
    if not parts:
        return ""
    # a person's name in lower case is an adjective made from it («сталинских»): a phrase
    if entity_type == "PERSON" and not parts[0].text[:1].islower():
        return join(person_form(parts))
    if entity_type == "FAMILY" and parts[0].text[:1].isupper():
        return join(family_form(parts))
    # a family is named in the plural («клан Шаймиевых» aside): its head is read so
    return join(phrase_form(parts, animate=entity_type in ANIMATE_TYPES, plural=entity_type == "FAMILY"))


def phrase_form(parts, animate=False, plural=False):
    """The parts (``words.tokens``) of a noun phrase with its head and adjectives in the nominative."""
    words = [i for i, part in enumerate(parts) if part.word]
    if not words:
        return parts
    first = parts[words[0]]
    if first.frozen:
        return parts
    # the run of declinable words the head is looked for in: up to the first frozen word
    run = []
    for i in words:
        if parts[i].frozen:
            break
        run.append(i)
    choice = _choose_head(parts, run, animate, plural)
    if choice is None:
        return parts
    head, head_parse, adjective_parses = choice
    out = list(parts)
    if head is None:  # adjectives alone: their dictionary forms
        for i, parse in adjective_parses:
            out[i] = parts[i].replaced(_adjective_lemma(parse))
        return out
    case = head_parse.tag.case
    if case != "nomn":
        out[head] = parts[head].replaced(inflect(head_parse, frozenset({"nomn"})))
    for i, parse in adjective_parses:
        if parse.tag.case != "nomn":
            out[i] = parts[i].replaced(inflect(parse, frozenset({"nomn"})))
    if case != "nomn":
        _inflect_after_head(parts, out, words, head, head_parse)
    return out


# a family by its surname, genitive plural -> nominative plural: Романовых, Скрипалей, Тюдоров
FAMILY_ENDINGS = (("ых", "ы"), ("их", "и"), ("ей", "и"), ("ов", "ы"), ("ев", "ы"))


def family_form(parts):
    """A family named by its surname: the capitalised words up to the first other word, in
    the plural nominative («Скрипалей» -> «Скрипали»); «клан Шаймиевых» is a phrase."""
    out = list(parts)
    for i, part in enumerate(parts):
        if not part.word:
            continue
        if part.frozen or not part.text[:1].isupper():
            break
        for ending, plural in FAMILY_ENDINGS:
            if part.lower.endswith(ending) and len(part.text) > len(ending) + 2:
                out[i] = part.replaced(part.lower[: -len(ending)] + plural)
                break
    return out


def _choose_head(parts, run, animate=False, plural=False):
    """``(head index, head parse, [(index, adjective parse)])`` of the words ``run``, or None
    when the phrase does not start with an adjective or a noun (a verb, an adverb, a
    preposition). ``head`` is None when the run holds adjectives only."""
    lead = []  # (index, its adjective parses)
    for i in run:
        options = parses(parts[i].lower)
        top = options[0].tag.POS
        if lead and top != "NOUN" and _agrees_with_lead(options, lead):
            top = "NOUN"  # «Уральской стали»: after adjectives, a noun that agrees beats a verb
        if top in ADJECTIVES:
            lead.append((i, [p for p in options if p.tag.POS in ADJECTIVES]))
            continue
        if top == "NOUN":
            if not options[0].is_known and parts[i].lower[-1] in HARD_CONSONANTS and not lead:
                return None  # an unknown word ending in a consonant is a nominative (Спитфайр)
            return _agreeing(options, lead, i, animate, plural)
        break
    return _lone_adjectives(lead) if lead else None


def _agrees_with_lead(options, lead):
    return any(
        p.tag.POS == "NOUN" and all(any(_agrees(a, p) for a in adjectives) for _, adjectives in lead)
        for p in options
    )


def _lone_adjectives(lead):
    return None, None, [(i, adjectives[0]) for i, adjectives in lead]


def _agreeing(options, lead, head, animate=False, plural=False):
    """The noun parse of the head and the adjective parses that agree with it, best first."""
    nouns = [p for p in options if p.tag.POS == "NOUN"]
    if animate:
        nouns = [p for p in nouns if p.tag.animacy == "anim"] or nouns
    if plural:
        nouns = [p for p in nouns if p.tag.number == "plur"] or nouns
    elif not nouns[0].is_known and any(p.tag.case == "nomn" for p in nouns):
        # pymorphy3 guesses the case of a word it does not know (Калорама, Спитфайр):
        # where the nominative is among its guesses, the word stays as written
        nouns = [p for p in nouns if p.tag.case == "nomn"]
    best = None
    for noun in nouns:
        chosen, score = [], noun.score
        for i, adjectives in lead:
            match = [a for a in adjectives if _agrees(a, noun)]
            if not match:
                break
            chosen.append((i, match[0]))
            score += match[0].score
        else:
            if best is None or score > best[0] + 1e-9:
                best = (score, noun, chosen)
    if best is None:  # no reading agrees: the head's best reading, adjectives by case
        noun = nouns[0]
        chosen = []
        for i, adjectives in lead:
            match = [a for a in adjectives if a.tag.case == noun.tag.case] or adjectives
            chosen.append((i, match[0]))
        return head, noun, chosen
    return head, best[1], best[2]


def _agrees(adjective, noun):
    a, n = adjective.tag, noun.tag
    if a.case != n.case and not (n.case == "accs" and a.case in ("nomn", "gent")) and not (
        {a.case, n.case} <= {"loct", "loc2"} or {a.case, n.case} <= {"gent", "gen2"}
    ):
        return False
    if a.number != n.number:
        return False
    if n.number == "sing" and n.gender in ("masc", "femn", "neut") and a.gender != n.gender:
        return False
    return True


def _inflect_after_head(parts, out, words, head, head_parse):
    """A participle right after the head, set off by a comma, agrees with it
    («беспорядков, сопровождавшихся насилием»): it goes to the nominative too."""
    position = words.index(head)
    if position + 1 >= len(words):
        return
    nxt = words[position + 1]
    between = "".join(parts[k].text for k in range(head + 1, nxt))
    if between.strip() != "," or parts[nxt].frozen:
        return
    for parse in parses(parts[nxt].lower):
        if parse.tag.POS == "PRTF" and _agrees(parse, head_parse):
            out[nxt] = parts[nxt].replaced(inflect(parse, frozenset({"nomn"})))
            return


def _adjective_lemma(parse):
    return inflect(parse, frozenset({"nomn", "sing", "masc"}))

