"""Groups of mentions against NEREL's Wikidata links: pairwise F1 over the linked mentions.

    python -m experiments.name_groups                # dev: prints the table
    python -m experiments.name_groups --split test   # the held-out figure (run once, after dev)

Gold entities are given. Within a document, every pair of mentions that carry a Wikidata
link (NULL links left out) is a positive pair when they link the same item (a mention with
several links: when they share one), a negative pair otherwise; a pair is predicted positive
when ``annotate_names`` puts both mentions in one group. Two baselines, same type and the
same lower-cased text or the same first five letters, are scored the same way. Results go to
``reports/names_groups_<split>.json``.
"""

import argparse
import itertools
import json
import sys
import time
from collections import Counter
from pathlib import Path

from nerelproc.io.readers import read_jsonl
from nerelproc.names import annotate_names
from nerelproc.names.morphology import analyzer

ROOT = Path(__file__).resolve().parents[1]
DATA = Path("/work/shared/nerel/jsonl")


def links(document):
    """``{T-id: {items}}`` of a document's non-NULL Wikidata links to its entities."""
    ids = {entity.id for entity in document.entities}
    items = {}
    for line in document.links:
        fields = line.split("\t")
        if not line.startswith("N") or len(fields) < 2:
            continue
        parts = fields[1].split()
        if len(parts) < 3 or parts[1] not in ids or parts[2].endswith(":NULL"):
            continue
        items.setdefault(parts[1], set()).add(parts[2])
    return items


def count_pairs(linked, same_group, counts):
    for a, b in itertools.combinations(sorted(linked), 2):
        gold = bool(linked[a] & linked[b])
        predicted = same_group(a, b)
        counts["tp"] += gold and predicted
        counts["fp"] += predicted and not gold
        counts["fn"] += gold and not predicted


def scores(counts):
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    return {"p": tp / (tp + fp) if tp + fp else 1.0, "r": tp / (tp + fn) if tp + fn else 1.0,
            "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0, "tp": tp, "fp": fp, "fn": fn}


def evaluate(split):
    methods = {"names": Counter(), "baseline_lower_text": Counter(), "baseline_five_letters": Counter()}
    cpu = 0.0
    documents = [record.document for record in read_jsonl(DATA / f"{split}.jsonl") if record.ok]
    analyzer()  # the dictionaries load once per process (about 0.1 s), not counted per document
    for document in documents:
        started = time.process_time()
        _, groups = annotate_names(document.text, document.entities)
        cpu += time.process_time() - started
        group_of = {mention: n for n, group in enumerate(groups) for mention in group["mentions"]}
        entity = {e.id: (e.type, e.surface(document.text).lower()) for e in document.entities}
        linked = links(document)
        count_pairs(linked, lambda a, b: group_of[a] == group_of[b], methods["names"])
        count_pairs(linked, lambda a, b: entity[a] == entity[b], methods["baseline_lower_text"])
        count_pairs(linked, lambda a, b: entity[a][0] == entity[b][0] and entity[a][1][:5] == entity[b][1][:5],
                    methods["baseline_five_letters"])
    result = {name: scores(counts) for name, counts in methods.items()}
    result["documents"] = len(documents)
    result["cpu_ms_per_document"] = round(1000 * cpu / max(1, len(documents)), 3)
    started = time.process_time()  # again, every word's parses now cached
    for document in documents:
        annotate_names(document.text, document.entities)
    result["cpu_ms_per_document_seen_words"] = round(1000 * (time.process_time() - started) / max(1, len(documents)), 3)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="dev", choices=("dev", "test"))
    args = parser.parse_args(argv)
    result = evaluate(args.split)
    for name in ("names", "baseline_lower_text", "baseline_five_letters"):
        s = result[name]
        print(f"{args.split} {name:22} P {s['p']:.4f}  R {s['r']:.4f}  F1 {s['f1']:.4f}  "
              f"(tp {s['tp']}, fp {s['fp']}, fn {s['fn']})")
    print(f"{result['documents']} documents, names {result['cpu_ms_per_document']} ms CPU per document, "
          f"every word new to the process; {result['cpu_ms_per_document_seen_words']} ms again, words seen")
    out = ROOT / f"reports/names_groups_{args.split}.json"
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
