"""An experiment: which word rules should case restoration (``casing.restore_case``) use?

    nice -n 10 python -m experiments.case_rules --model models/nerel-e5-small-int8

Each rule decides, for a lower-cased word, whether the encoder reads it in lower case, with a
capital or in capitals; sentence starts are capitalised by every rule. The model annotates NEREL
dev lower-cased and upper-cased with each rule in ``casing._word_case``'s place, and
``nerelproc score``'s nested F1 is kept (``experiments/case_probe.py``'s figures). The rules:

- ``best parse``: pymorphy3's best parse is a name (Name, Surn, Patr, Geox, Orgn, Trad) of
  probability 0.3 or more; abbreviations (Abbr, up to 5 letters) in capitals;
- ``name probability T``: the probability of a name summed over the word's parses is T or more;
- ``+ lexicon``: first, the words NEREL train writes with a capital in mid-sentence at least as
  often as without, seen so at least twice (3,188 words);
- ``+ Latin``: a Latin word of up to 3 letters in capitals, a longer one with a capital;
- ``+ unknown``: a Russian word pymorphy3's dictionary does not know with a capital.

``casing.py`` ships the rule chosen here. Writes ``reports/case_rules.json``.
"""

import argparse
import json
import sys
from collections import Counter
from functools import lru_cache
from pathlib import Path

from experiments.case_probe import CASES, DATA, cased, figures
from nerelproc.io.readers import read_documents
from nerelproc.names.morphology import parses
from nerelproc.runtime import casing
from nerelproc.runtime.bundle import load_predictor

REPORT = Path("reports/case_rules.json")
RULES = ("best parse", "name probability 0.3", "name probability 0.5", "+ lexicon, name probability 0.5",
         "+ lexicon, name probability 0.3", "+ lexicon, name probability 0.2", "+ lexicon, 0.3, + Latin",
         "+ lexicon, 0.3, + unknown", "+ lexicon, 0.3, + Latin, + unknown", "name probability 0.3, + Latin, + unknown")


def capitals_of(documents):
    """Lower-cased words written with a capital in mid-sentence at least as often as not (twice or more)."""
    capital, lower = Counter(), Counter()
    for document in documents:
        text = document.text
        for match in casing.WORD.finditer(text):
            word = match.group()
            if match.start() == 0 or casing.SENTENCE_START.search(text, max(0, match.start() - 8), match.start()):
                continue
            if len(word) > 1 and word.isupper():
                continue
            (capital if word[0].isupper() else lower)[word.lower()] += 1
    return frozenset(w for w in capital if capital[w] >= 2 and capital[w] >= lower[w])


def word_rule(rule, capitals):
    threshold = 0.2 if "0.2" in rule else 0.5 if "0.5" in rule else 0.3
    russian = lambda word: any("а" <= c <= "я" or c == "ё" for c in word)  # noqa: E731

    @lru_cache(maxsize=None)
    def word_case(word):
        if "lexicon" in rule and word in capitals:
            return "title"
        if not russian(word):
            return ("upper" if len(word) <= 3 else "title") if "Latin" in rule else "lower"
        found = parses(word)
        if "Abbr" in found[0].tag and len(word) <= 5:
            return "upper"
        if "unknown" in rule and not found[0].is_known:
            return "title"
        if rule == "best parse":
            named = any(name in found[0].tag for name in casing.NAME_TAGS) and found[0].score >= 0.3
        else:
            named = sum(p.score for p in found if any(name in p.tag for name in casing.NAME_TAGS)) >= threshold
        return "title" if named else "lower"

    return word_case


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models/nerel-e5-small-int8")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    capitals = capitals_of(read_documents(args.data / "train.jsonl"))
    dev = list(read_documents(args.data / "dev.jsonl"))
    predictor = load_predictor(args.model, threads=args.threads).with_options(restore_case=True)
    shipped, result = casing._word_case, {"model": args.model, "lexicon_words": len(capitals), "rules": {}}
    try:
        for rule in RULES:
            casing._word_case = word_rule(rule, capitals)
            result["rules"][rule] = {case: figures(predictor, cased(dev, CASES[case]))["nested"]
                                     for case in ("lower", "upper")}
            print(f"{rule:45s} {json.dumps(result['rules'][rule])}", file=sys.stderr)
        casing._word_case = shipped
        result["rules"]["shipped (casing.py)"] = {case: figures(predictor, cased(dev, CASES[case]))["nested"]
                                                  for case in ("lower", "upper")}
    finally:
        casing._word_case = shipped
    REPORT.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", "utf-8")
    print(json.dumps(result, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
