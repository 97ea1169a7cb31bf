"""Normal forms against hand-written ones: NEREL dev's sample, and outside news sentences.

    python -m experiments.name_forms            # prints the tables, writes reports/names_forms.json
    python -m experiments.name_forms --sample   # prints the dev sample's rows (doc id, T-id, type, surface)

``reports/names_dev_gold.tsv`` holds the sample (drawn by ``--sample``: seed 2026, every type
in proportion to its dev count with at least 3, PERSON 75 and ORGANIZATION 50) with the
expected normal form of each mention written by hand; ``reports/names_news_gold.tsv`` the
outside sentences, their mentions and expected forms. Value types (DATE, TIME, ...) keep
their text by definition, so the overall figure is also given without them.
"""

import argparse
import csv
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

from nerelproc.names import VALUE_TYPES, normal_form

ROOT = Path(__file__).resolve().parents[1]
DEV = Path("/work/shared/nerel/jsonl/dev.jsonl")
DEV_GOLD = ROOT / "reports/names_dev_gold.tsv"
NEWS_GOLD = ROOT / "reports/names_news_gold.tsv"
OUT = ROOT / "reports/names_forms.json"
SEED, SIZE = 2026, 230
OVER = {"PERSON": 75, "ORGANIZATION": 50}


def sample(path=DEV):
    """The dev mentions to check by hand, drawn with a fixed seed."""
    by_type = defaultdict(list)
    for line in open(path, encoding="utf-8"):
        doc = json.loads(line)
        for entity in doc["entities"]:
            entity_id, body, surface = entity.split("\t")
            by_type[body.split()[0]].append((doc["id"], entity_id, body.split()[0], surface))
    rest = sum(len(v) for k, v in by_type.items() if k not in OVER)
    quota = {k: OVER.get(k, max(3, round(len(v) / rest * SIZE))) for k, v in by_type.items()}
    rng = random.Random(SEED)
    rows = []
    for entity_type in sorted(by_type):
        rows += rng.sample(by_type[entity_type], min(quota[entity_type], len(by_type[entity_type])))
    return rows


def read_gold(path):
    with open(path, encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE))


def evaluate(rows):
    per_type, misses = defaultdict(lambda: [0, 0]), []
    for row in rows:
        got = normal_form(row["surface"], row["type"])
        counts = per_type[row["type"]]
        counts[1] += 1
        if got == row["expected"]:
            counts[0] += 1
        else:
            misses.append({"type": row["type"], "surface": row["surface"], "expected": row["expected"], "got": got})
    total = [sum(c[0] for c in per_type.values()), sum(c[1] for c in per_type.values())]
    names = [sum(c[0] for t, c in per_type.items() if t not in VALUE_TYPES),
             sum(c[1] for t, c in per_type.items() if t not in VALUE_TYPES)]
    return {
        "accuracy": total[0] / total[1],
        "accuracy_without_values": names[0] / names[1],
        "mentions": total[1],
        "per_type": {t: {"correct": c[0], "mentions": c[1], "accuracy": c[0] / c[1]} for t, c in sorted(per_type.items())},
        "misses": misses,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", action="store_true", help="print the dev sample and exit")
    args = parser.parse_args(argv)
    if args.sample:
        for row in sample():
            print("\t".join(row))
        return 0
    dev_rows, news_rows = read_gold(DEV_GOLD), read_gold(NEWS_GOLD)
    drawn = [tuple(r) for r in sample()]
    if [(r["doc_id"], r["entity_id"], r["type"], r["surface"]) for r in dev_rows] != drawn:
        print("reports/names_dev_gold.tsv is not the drawn sample", file=sys.stderr)
        return 1
    started = time.process_time()
    result = {"dev": evaluate(dev_rows), "news": evaluate(news_rows)}
    result["cpu_seconds"] = round(time.process_time() - started, 3)
    for name in ("dev", "news"):
        r = result[name]
        print(f"{name}: {r['accuracy']:.4f} exact over {r['mentions']} mentions "
              f"({r['accuracy_without_values']:.4f} without the value types)")
        if name == "dev":
            for entity_type, c in r["per_type"].items():
                print(f"  {entity_type:18} {c['correct']:3}/{c['mentions']:3}  {c['accuracy']:.3f}")
        for miss in r["misses"]:
            print(f"  miss {miss['type']}: {miss['surface']!r} -> {miss['got']!r}, expected {miss['expected']!r}")
    OUT.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
