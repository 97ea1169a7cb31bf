"""pymorphy3, loaded once on first use, with each word's parses cached.

Names repeat within a document and across a feed, so a word is parsed once per process;
the dictionaries load lazily so that importing nerelproc stays cheap.
"""

from functools import lru_cache

_analyzer = None


def analyzer():
    global _analyzer
    if _analyzer is None:
        import pymorphy3  # the dictionaries come with pymorphy3-dicts-ru

        _analyzer = pymorphy3.MorphAnalyzer()
    return _analyzer


@lru_cache(maxsize=200_000)
def parses(word):
    """pymorphy3's parses of a lower-cased word, best first."""
    return tuple(analyzer().parse(word))


@lru_cache(maxsize=200_000)
def inflect(parse, grammemes):
    """The word form of ``parse`` with ``grammemes`` (a frozenset), or None."""
    form = parse.inflect(set(grammemes))
    return form.word if form is not None else None
