"""The mentions of one entity within a document, grouped, each group named by its fullest form.

Mentions are compared by their normal forms, lower-cased, «ё» as «е», Latin letters spelt
in Cyrillic («Mali» = «Мали»), hyphens as spaces. Two mentions of one type go together when
- their words agree up to their endings (the first five letters less a final vowel:
  «Путин»/«Путина», «Россия»/«российский», «швея»/«швеи»);
- PERSON: one is a surname or a first name alone and the other a fuller name that ends or
  starts with it («Путин», «Владимир Путин»; «Максим», «Максим Дадашев»). Of several fuller
  names with that surname («Барак Обама», «Мишель Обама») the one named first takes it;
  two fuller names go together when their surnames agree and their first names agree in
  full or by the initial («В. Зворыкин», «Владимир Козьмич Зворыкин»);
- ORGANIZATION and other named things: one is the initials of the other's words, function
  words aside («ЕС», «Европейский союз»; «ФБК», «Фонд борьбы с коррупцией»).

Places (CITY, COUNTRY, STATE_OR_PROVINCE, LOCATION, DISTRICT) are one family: NEREL types one
place as CITY in one sentence and STATE_OR_PROVINCE in another («Гонконг», «Гессен»), and
«японский» is a COUNTRY mention of Japan. They go together across these types when their
normal forms are the same, when both are names of one place in ``PLACE_NAMES`` («США»,
«американский»), or when an adjective shares most first letters (three at least) with one
place named in one word («уфимский», «Уфа»). No other types are joined: a person and the
company named after them stay apart. Values (DATE, NUMBER, ...) go together only when
written the same. A group's type is its mentions' most frequent type; its name the fullest
normal form among them (more words, then more letters, then the first).
"""

import re
from collections import Counter
from itertools import combinations

from nerelproc.names.normal import VALUE_TYPES  # a value goes with another only where written the same

PLACE_TYPES = frozenset({"CITY", "COUNTRY", "STATE_OR_PROVINCE", "LOCATION", "DISTRICT"})
ACRONYM_TYPES = frozenset({"ORGANIZATION", "COUNTRY", "FACILITY", "LAW", "EVENT", "AWARD", "PRODUCT",
                           "STATE_OR_PROVINCE"})
FUNCTION_WORDS = frozenset({"и", "в", "во", "на", "по", "с", "со", "к", "о", "об", "для", "за", "из", "от", "при",
                            "the", "of", "and"})
NAME_EXTRAS = frozenset({"младший", "старший", "мл", "ст", "jr", "sr", "джуниор"})  # not a part of the name itself
# places whose other names share no stem with them, each name as a normal form lower-cased
PLACE_NAMES = (
    ("сша", "соединенные штаты", "соединенные штаты америки", "америка", "американский", "usa"),
    ("россия", "рф", "российская федерация", "российский"),
    ("великобритания", "британия", "соединенное королевство", "британский", "uk"),
    ("ссср", "советский союз", "советский"),
    ("германия", "фрг", "немецкий"),
    ("китай", "кнр", "китайский"),
    ("северная корея", "кндр", "северокорейский"),
    ("южная корея", "республика корея", "южнокорейский"),
    ("нидерланды", "голландия", "голландский", "нидерландский"),
    ("беларусь", "белоруссия", "белорусский", "рб"),
    ("армения", "ра", "армянский"),
    ("оаэ", "объединенные арабские эмираты", "эмираты"),
    ("санкт-петербург", "петербург", "спб", "питер", "петербургский"),
)
PLACE_ALIASES = {name.replace("-", " "): n for n, names in enumerate(PLACE_NAMES) for name in names}
ADJECTIVE_ENDINGS = ("ский", "цкий", "ской", "ный", "кий", "ий", "ый")
VOWELS = "аеиоуыэюяйь"
STEM = 5  # letters of a word that carry its stem, wherever normal forms disagree on an ending


DIGRAPHS = (("sch", "ш"), ("sh", "ш"), ("ch", "ч"), ("th", "т"), ("ph", "ф"), ("zh", "ж"), ("kh", "х"),
            ("ck", "к"), ("ts", "ц"), ("ee", "и"), ("oo", "у"), ("ou", "у"))
LATIN = str.maketrans({"a": "а", "b": "б", "c": "к", "d": "д", "e": "е", "f": "ф", "g": "г", "h": "х", "i": "и",
                       "j": "дж", "k": "к", "l": "л", "m": "м", "n": "н", "o": "о", "p": "п", "q": "к", "r": "р",
                       "s": "с", "t": "т", "u": "у", "v": "в", "w": "в", "x": "кс", "y": "й", "z": "з",
                       "ä": "е", "ö": "е", "ü": "ю", "é": "е", "è": "е", "á": "а", "ó": "о", "í": "и", "ñ": "н"})


def cyrillic(text):
    """Latin letters spelt as Russian news spells them, roughly: «Schäfer» -> «шефер»."""
    if not re.search("[a-zäöüéèáóíñ]", text):
        return text
    for latin, russian in DIGRAPHS:
        text = text.replace(latin, russian)
    return text.translate(LATIN)


class Mention:
    __slots__ = ("id", "type", "normal", "words", "initials", "key", "position")

    def __init__(self, mention_id, mention_type, normal, position):
        self.id, self.type, self.normal, self.position = mention_id, mention_type, normal, position
        # compared in Cyrillic, hyphens as spaces: «Mali» = «Мали», «JAY-Z» = «Jay Z»
        text = cyrillic(normal.lower().replace("ё", "е"))
        found = [(m.group(1), bool(m.group(2))) for m in re.finditer(r"(\w+)(\.?)", text)]
        self.words = [word for word, _ in found]
        # «В.», «Дж.», «А. М.»: a first name or patronymic by its first letters
        self.initials = {word for word, dot in found if len(word) == 1 or (dot and len(word) <= 3)}
        self.key = " ".join(self.words)


def group_mentions(mentions):
    """``mentions``: ``[(id, type, normal form)]`` in text order. Returns
    ``[{"name", "type", "mentions": [ids]}]``, groups in the order of their first mention."""
    items = [Mention(i, t, n, k) for k, (i, t, n) in enumerate(mentions)]
    parent = list(range(len(items)))

    def find(k):
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    def union(a, b):
        a, b = find(a), find(b)
        if a != b:
            parent[max(a, b)] = min(a, b)

    by_key = {}
    for k, item in enumerate(items):
        if not item.words:
            continue
        family = "PLACE" if item.type in PLACE_TYPES else item.type
        first = by_key.setdefault((family, item.key), k)
        union(first, k)
    same_type = {}
    for k, item in enumerate(items):
        if item.words:
            same_type.setdefault(item.type, []).append(k)
    for entity_type, members in same_type.items():
        if entity_type in VALUE_TYPES:
            continue
        if entity_type == "PERSON":
            _join_surnames(items, members, union)
            _join_full_names(items, members, union)
        _join_stems(items, members, union)
        if entity_type in ACRONYM_TYPES:
            _join_acronyms(items, members, union)
    _join_places(items, [k for k, item in enumerate(items) if item.type in PLACE_TYPES and item.words], union)
    groups = {}
    for k in range(len(items)):
        groups.setdefault(find(k), []).append(items[k])
    return [_group(members) for _, members in sorted(groups.items())]


def _join_surnames(items, members, union):
    """A surname or a first name alone (initials aside) joins the fuller name that ends or
    starts with it; of several fuller names with that surname, the one named first."""
    full = {}  # (position, stem) -> the fuller names, first mentioned first
    for k in members:
        names = _name_words(items[k])
        if len(names) >= 2:
            for place, word in ((-1, names[-1]), (0, names[0])):
                owners = full.setdefault((place, _stem(word)), [])
                if k not in owners:
                    owners.append(k)
    for k in members:
        names = _name_words(items[k])
        if len(names) != 1 or len(names) != len(items[k].words):
            continue  # initials are matched with the first names (_join_full_names)
        for place in (-1, 0):
            owners = full.get((place, _stem(names[0])))
            if owners:
                union(k, owners[0])  # dev: the first owner 0.876 F1, none when several 0.850
                break


def _join_full_names(items, members, union):
    """Two fuller names with one surname whose first names agree, in full or by the initial:
    «В. Зворыкин», «Владимир Козьмич Зворыкин»; «Виталий Костомаров», «Виталий Григорьевич Костомаров»."""
    named = [(k, [w for w in items[k].words if w not in NAME_EXTRAS]) for k in members]
    named = [(k, words) for k, words in named if len(words) >= 2 and words[-1] not in items[k].initials]
    for (a, first), (b, second) in combinations(named, 2):
        if _stem(first[-1]) != _stem(second[-1]):
            continue
        x, y = first[0], second[0]
        if x in items[a].initials or y in items[b].initials:
            agree = x.startswith(y) or y.startswith(x)
        else:
            agree = _stem(x) == _stem(y)
        if agree:
            union(a, b)


def _name_words(item):
    return [w for w in item.words if w not in item.initials and w not in NAME_EXTRAS]


def _join_places(items, members, union):
    """A place's other names (PLACE_NAMES), and an adjective with the place it is made from
    («японский», «Япония»; «уфимский», «Уфа»): the one-word place its first letters share
    most with, at least three (two for a three-letter place)."""
    first_of = {}
    for k in members:
        place = PLACE_ALIASES.get(items[k].key)
        if place is not None:
            union(first_of.setdefault(place, k), k)
    places = [k for k in members if len(items[k].words) == 1 and not items[k].words[0].endswith(ADJECTIVE_ENDINGS)]
    for k in members:
        words = items[k].words
        if len(words) != 1 or not words[0].endswith(ADJECTIVE_ENDINGS):
            continue
        best, best_shared = [], 0
        for place in places:
            name = items[place].words[0]
            shared = _shared_prefix(words[0], name)
            if shared >= min(3, len(name) - 1):
                if shared > best_shared:
                    best, best_shared = [place], shared
                elif shared == best_shared:
                    best.append(place)
        if best and len({items[b].key for b in best}) == 1:
            union(k, best[0])


def _shared_prefix(a, b):
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _join_stems(items, members, union):
    """Mentions whose words agree letter for letter up to their endings."""
    seen = {}
    for k in members:
        key = tuple(_stem(w) for w in items[k].words)
        if key in seen:
            union(seen[key], k)
        else:
            seen[key] = k


def _join_acronyms(items, members, union):
    """A one-word mention that spells the initials of a longer one's words."""
    short = {}
    for k in members:
        words = items[k].words
        if len(words) == 1 and 2 <= len(words[0]) <= 6:
            short.setdefault(words[0], []).append(k)
    if not short:
        return
    for k in members:
        words = [w for w in items[k].words if w not in FUNCTION_WORDS]
        if len(words) < 2:
            continue
        initials = "".join(w[0] for w in words)
        for target in short.get(initials, ()):
            union(target, k)


def _stem(word):
    """A word's first letters less a final vowel: «Месси», «Мессии»; «швея», «швеи»; «Россия», «российский»."""
    word = word[:STEM]
    if len(word) >= 4 and word[-1] in VOWELS:
        return word[:-1]
    return word


def _group(members):
    counts = Counter(m.type for m in members)
    group_type = max(counts, key=lambda t: (counts[t], -min(m.position for m in members if m.type == t)))
    named = [m for m in members if m.type == group_type] or members
    name = max(named, key=_fullness).normal
    return {"name": name, "type": group_type, "mentions": [m.id for m in members]}


def _fullness(mention):
    """The fullest form: more words, then more letters, then the earlier mention."""
    letters = sum(len(w) for w in mention.words)
    return (len([w for w in mention.words if len(w) > 1]), letters, -mention.position)
