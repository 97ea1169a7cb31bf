"""An experiment: how much does a model lose on lower-cased and all-caps text, with and without
case restoration (``casing.restore_case``)?

    nice -n 10 python -m experiments.case_probe --split dev --model models/nerel-e5-small-int8 [--write]

Each document of a NEREL split is annotated as written, lower-cased and upper-cased
(``str.lower``/``str.upper`` keep every offset of Russian and Latin text, so the gold annotation
stays valid), once with the bundle's encoder reading the text as given and once with the text
re-cased first; ``nerelproc score``'s figures are kept for each: nested and PER/LOC/ORG F1, CLS
micro/macro, relations end to end. Outside NEREL, the same three cases on the news sentences of
``reports/names_news_gold.tsv`` (written for the names check, never used for tuning anything
here): the share of their typed mentions found with the right type and span (recall only: those
mentions are not every entity of the sentences). ``--write`` (dev only) sets the bundle's ``restore_case`` when
dev says it pays: lower and upper nested F1 both higher with it, and as-written F1 unchanged.
Writes ``reports/case_probe.json`` (the split's and the model's section).
"""

import argparse
import json
import sys
import time
from pathlib import Path

from nerelproc.evaluation.score import HEADLINE, dig, score_documents
from nerelproc.io.document import Document
from nerelproc.io.readers import read_documents
from nerelproc.runtime.bundle import Bundle, load_predictor
from nerelproc.runtime.relations import format_relation_line

DATA = Path(__file__).resolve().parents[2] / "shared" / "nerel" / "jsonl"
REPORT = Path("reports/case_probe.json")
CASES = {"as written": lambda text: text, "lower": str.lower, "upper": str.upper}
FIGURES = {"nested": HEADLINE["ner"], "per_loc_org": HEADLINE["coarse"], "cls_micro": HEADLINE["cls_micro"],
           "cls_macro": HEADLINE["cls_macro"], "relations": ("re", "micro", "f1")}


def cased(documents, change):
    return [Document(d.id, change(d.text), d.entities, d.relations, relation_types=d.relation_types)
            for d in documents]


def predicted_documents(predictor, documents):
    out = []
    for document, p in zip(documents, predictor.predict([d.text for d in documents])):
        entities = [type(e)(e.type, e.spans, f"T{n}") for n, e in enumerate(p.entities, 1)]
        relations = [format_relation_line(n, label, entities[head].id, entities[tail].id)
                     for n, (head, tail, label, _) in enumerate(p.relations, 1)]
        out.append(Document(document.id, document.text, entities, relations, relation_types=p.relation_types))
    return out


def figures(predictor, documents, chunk=16):
    start, cpu = time.perf_counter(), time.process_time()
    predicted = []
    for i in range(0, len(documents), chunk):
        predicted += predicted_documents(predictor, documents[i : i + chunk])
    scores = score_documents(predicted, documents, warn=lambda message: None)
    out = {name: round(float(dig(scores, path, 0.0)), 4) for name, path in FIGURES.items()}
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out


def outside_recall(predictor, path):
    """Per case, the share of the typed mentions of ``path`` (sentence, type, surface) found."""
    rows = [line.split("\t") for line in path.read_text("utf-8").splitlines()[1:] if line.strip()]
    sentences = sorted({row[0] for row in rows})
    gold = {(row[0], row[1], row[0].find(row[2]), row[0].find(row[2]) + len(row[2])) for row in rows}
    out = {}
    for case, change in CASES.items():
        found = set()
        for sentence, p in zip(sentences, predictor.predict([change(s) for s in sentences])):
            found |= {(sentence, e.type, e.start, e.end) for e in p.entities}
        out[case] = round(len(gold & found) / len(gold), 4)
    out["mentions"], out["sentences"] = len(gold), len(sentences)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="dev", choices=("dev", "test"))
    parser.add_argument("--model", default="models/nerel-e5-small-int8")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--outside", type=Path, default=Path("reports/names_news_gold.tsv"))
    parser.add_argument("--write", action="store_true", help="set the bundle's restore_case from dev")
    args = parser.parse_args(argv)
    documents = list(read_documents(args.data / f"{args.split}.jsonl"))
    annotator = load_predictor(args.model, threads=args.threads)
    result = {}
    for restore in (False, True):
        predictor = annotator.with_options(restore_case=restore)
        key = "restored" if restore else "as given"
        result[key] = {}
        for case, change in CASES.items():
            result[key][case] = figures(predictor, cased(documents, change))
            print(f"{key:9} {case:10} {json.dumps(result[key][case])}", file=sys.stderr)
        result[key]["outside recall"] = outside_recall(predictor, args.outside)
        print(f"{key:9} outside    {json.dumps(result[key]['outside recall'])}", file=sys.stderr)
    for key in result:
        base = result[key]["as written"]["nested"]
        result[key]["nested_lost"] = {case: round(base - result[key][case]["nested"], 4) for case in ("lower", "upper")}
    pays = (all(result["restored"][c]["nested"] > result["as given"][c]["nested"] for c in ("lower", "upper"))
            and abs(result["restored"]["as written"]["nested"] - result["as given"]["as written"]["nested"]) < 1e-9)
    result["restore_pays_on_this_split"] = pays
    print(json.dumps(result, indent=1))
    report = json.loads(REPORT.read_text("utf-8")) if REPORT.exists() else {}
    report.setdefault(Path(args.model).name, {})[args.split] = result
    REPORT.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", "utf-8")
    if args.write:
        if args.split != "dev":
            parser.error("--write chooses on dev only")
        bundle = Bundle.load(args.model)
        bundle.restore_case = pays
        bundle.casing = {"chosen_on": "dev", "nested": {k: result[k] for k in ("as given", "restored")},
                         "command": "python -m experiments.case_probe --split dev --write"}
        bundle.save(args.model)


if __name__ == "__main__":
    main()
