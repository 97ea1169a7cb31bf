"""reports/names.md from the figures the name experiments wrote.

    python -m experiments.name_forms
    python -m experiments.name_groups && python -m experiments.name_groups --split test
    python -m experiments.name_report     # writes reports/names.md
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "reports"
ANNOTATION_DOCS_PER_S = 10.95  # README's speed of `nerelproc annotate`, the bundled int8 model


def load(name):
    return json.loads((REPORTS / name).read_text(encoding="utf-8"))


def sentences():
    rows = (REPORTS / "names_news_gold.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return len({row.split("\t")[0] for row in rows})


def main():
    forms, dev, test = load("names_forms.json"), load("names_groups_dev.json"), load("names_groups_test.json")
    lines = [
        "# Names: normal forms and groups of mentions",
        "",
        "Figures written by `python -m experiments.name_forms` (`names_forms.json`) and",
        "`python -m experiments.name_groups [--split test]` (`names_groups_dev.json`,",
        "`names_groups_test.json`); this page by `python -m experiments.name_report`.",
        "",
        "## Normal forms",
        "",
        f"Exact match with a hand-written normal form. NEREL dev: {forms['dev']['mentions']} mentions drawn with a",
        "fixed seed (every type in proportion, at least 3, PERSON and ORGANIZATION over-represented;",
        "`reports/names_dev_gold.tsv`), the rules tuned on them. Outside news:",
        f"{forms['news']['mentions']} mentions in {sentences()} news-like sentences written for this check",
        "(`reports/names_news_gold.tsv`), not used for tuning. Value types (DATE, TIME, MONEY, NUMBER,",
        "PERCENT, AGE, ORDINAL) keep their text by definition, so they are exact by construction;",
        "the figure without them is given too.",
        "",
        "| set | mentions | exact | without value types |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, label in (("dev", "NEREL dev sample"), ("news", "outside news")):
        r = forms[name]
        lines.append(f"| {label} | {r['mentions']} | {r['accuracy']:.3f} | {r['accuracy_without_values']:.3f} |")
    lines += ["", "Per type on the NEREL dev sample:", "", "| type | correct / mentions | exact |", "| --- | ---: | ---: |"]
    for entity_type, c in forms["dev"]["per_type"].items():
        lines.append(f"| {entity_type} | {c['correct']} / {c['mentions']} | {c['accuracy']:.3f} |")
    for name, label in (("dev", "NEREL dev"), ("news", "outside news")):
        lines += ["", f"Misses, {label}:", ""]
        lines += [f"- {m['type']}: «{m['surface']}» → «{m['got']}», expected «{m['expected']}»"
                  for m in forms[name]["misses"]] or ["- none"]
    lines += [
        "",
        "## Groups",
        "",
        "Pairwise over the mentions that NEREL links to Wikidata (NULL links left out), within a",
        "document, gold entities given: a pair is positive when both mentions link one item. Tuned on",
        "dev; test run once.",
        "",
        "| split | method | P | R | F1 |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    names = {"names": "`annotate_names` groups", "baseline_lower_text": "same type, same lower-cased text",
             "baseline_five_letters": "same type, same first five letters"}
    for split, result in (("dev", dev), ("test", test)):
        for key, label in names.items():
            s = result[key]
            lines.append(f"| {split} | {label} | {s['p']:.3f} | {s['r']:.3f} | {s['f1']:.3f} |")
    lines += [
        "",
        "## Cost",
        "",
        "Normal forms and groups together, CPU per document (`time.process_time`), each split in a",
        "fresh process, the dictionaries loaded before timing (about 0.1 s, once per process):",
        "",
        "| split | words new to the process | the same documents again |",
        "| --- | ---: | ---: |",
        f"| dev | {dev['cpu_ms_per_document']} ms | {dev['cpu_ms_per_document_seen_words']} ms |",
        f"| test | {test['cpu_ms_per_document']} ms | {test['cpu_ms_per_document_seen_words']} ms |",
        "",
        "A long feed sits between the two columns: its names repeat. The int8 model annotates",
        f"{ANNOTATION_DOCS_PER_S} NEREL test documents a second on 2 cores (README, `python benchmarks/run.py`),",
        f"{1000 / ANNOTATION_DOCS_PER_S:.0f} ms each; names, run after it on one core, add at most",
        f"{100 * max(dev['cpu_ms_per_document'], test['cpu_ms_per_document']) * ANNOTATION_DOCS_PER_S / 1000:.1f}% to that time.",
        "",
    ]
    (REPORTS / "names.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
