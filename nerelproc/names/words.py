"""A mention as words and what lies between them, and which words never change.

Only words change in a normal form; spaces, punctuation and quotes stay, so a phrase is
split into parts that join back to the text exactly.
"""

import re
from dataclasses import dataclass, replace

TOKEN = re.compile(r"\w+(?:[-‐‑]\w+)*|\s+|[^\w\s]")
CYRILLIC_WORD = re.compile(r"[а-яё]+(?:[-‐‑][а-яё]+)*")
OPENING_QUOTES = "«„“"
CLOSING_QUOTES = "»”"


@dataclass(frozen=True)
class Part:
    text: str
    word: bool = False  # a word (else space or punctuation)
    frozen: bool = False  # a word that stays as written

    @property
    def lower(self):
        return self.text.lower()

    def replaced(self, form):
        """This word written as ``form`` (pymorphy's lower-case form), in the text's spelling."""
        if not form:
            return self
        return replace(self, text=respell(self.text, form))


def tokens(surface):
    """The parts of ``surface``; white space runs become one space, ends trimmed."""
    surface = re.sub(r"\s+", " ", surface).strip()
    parts, seen_word, quoted = [], False, False
    for match in TOKEN.finditer(surface):
        text = match.group()
        if text[0].isspace() or not (text[0].isalnum() or text[0] == "_"):
            if text in OPENING_QUOTES or (text == '"' and not quoted):
                quoted = seen_word  # quotes around the whole phrase do not freeze it
            elif text in CLOSING_QUOTES or text == '"':
                quoted = False
            parts.append(Part(text))
            continue
        initial = len(text) == 1 and text.isupper() and surface[match.end() : match.end() + 1] == "."
        parts.append(Part(text, True, quoted or initial or is_frozen(text)))
        seen_word = True
    return parts


def is_frozen(word):
    """A word that never declines here: not Cyrillic, has digits, or an abbreviation in capitals."""
    if not CYRILLIC_WORD.fullmatch(word.lower()):
        return True
    letters = word.replace("-", "")
    return len(letters) > 1 and letters.isupper()


def respell(original, form):
    """``form`` in the spelling of ``original``: its capitals, and «е» where it has no «ё»."""
    if "ё" not in original.lower():
        form = form.replace("ё", "е")
    # keep the text's own letters as far as the two agree, then the new ending
    same = 0
    for a, b in zip(original.lower(), form):
        if a != b:
            break
        same += 1
    rest = form[same:]
    if original[same - 1 : same].isupper() and original.isupper():
        rest = rest.upper()
    # a capital after a hyphen in the text ("Южно-Китайский") stays a capital
    return original[:same] + rest


def join(parts):
    return "".join(part.text for part in parts)
