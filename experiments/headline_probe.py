"""An experiment: do a model's document labels (``relation_types``) hold on short texts?

    nice -n 10 python -m experiments.headline_probe --split dev --model models/nerel-e5-small-int8 [--write]

The probe: each document of a NEREL split cut to its first line (the headline: the text up to the
first "\\n"); its gold labels are the types of the gold relations whose two arguments lie inside
that line (a headline with no relation keeps an empty set). The model annotates the headlines
through ``annotate``'s own predictor, and the labels of each candidate rule are scored micro over
documents x labels:

- ``annotate``: what ``annotate`` writes with the model as it is (its ``short_text_chars``, if any);
- ``relation_types``: the bundle's ``relation_rule`` on every text (its CLS thresholds met with
  its relations), as before ``short_text_chars``;
- ``union`` / ``filter``: the CLS labels plus / only the relations' types;
- ``relations``: the types of the R-lines alone; ``agreed``: the CLS labels that a relation holds;
  ``relations + CLS over t``: the relations' types and the CLS labels of probability t or more;
- ``short_text_chars N``: the relations' types on a text shorter than N characters, the bundle's
  rule on a longer one (``Predictor(short_text_chars=N)``).

On dev the whole documents are annotated too (``--whole``, the default on dev), and each
``short_text_chars`` candidate is scored there with ``nerelproc score``'s CLS micro/macro F1.
``--write`` (dev only) puts the chosen N in the model's ``nerelproc.json``: the best dev headline
micro-F1 among the candidates whose whole-document CLS micro and macro do not fall below the
bundle's rule (a tie goes to the smaller N: fewer texts change). With a span head, the headlines
are then annotated at each span threshold of ``SPAN_GRID`` for texts under N characters, and
``--write`` also puts the one of the best headline F1 in ``short_text_span_threshold`` (a tie
goes to the model's own ``span_threshold``). Writes ``reports/headline_probe.json`` (the model's
and the split's section).
"""

import argparse
import json
import sys
from pathlib import Path

from nerelproc.evaluation.score import dig, label_matrix, multilabel_scores, score_documents
from nerelproc.io.document import Document
from nerelproc.io.readers import read_documents
from nerelproc.runtime.bundle import Bundle, load_predictor
from nerelproc.training.calibration import encode_in_chunks

DATA = Path(__file__).resolve().parents[2] / "shared" / "nerel" / "jsonl"
REPORT = Path("reports/headline_probe.json")
# characters; NEREL's headlines run up to ~130, its whole documents from ~430
SHORT_TEXT_GRID = (0, 50, 100, 150, 200, 300, 400)
CONFIDENT_GRID = (0.5, 0.6, 0.7, 0.8, 0.9)  # CLS probabilities kept beside the relations on a headline
SPAN_GRID = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)  # a short text's span threshold


def headline(document):
    """The document cut to its first line, with the gold relations whose two arguments lie in it."""
    cut = document.text.find("\n")
    cut = len(document.text) if cut < 0 else cut
    inside = {e.id for e in document.entities if e.end <= cut}
    relations = []
    for line in document.relations:
        fields = line.split("\t")[1].split()
        args = [a.split(":", 1)[1] for a in fields[1:3]]
        if all(a in inside for a in args):
            relations.append(line)
    entities = [e for e in document.entities if e.id in inside]
    return Document(document.id, document.text[:cut], entities, relations)


def parts(predictor, encoded):
    """Per document: (text length, CLS labels over the thresholds, the relations' types)."""
    out = []
    for e in encoded:
        p = predictor.finish(e)
        cls = {label for label, score, t in zip(p.labels, p.relation_scores, predictor.thresholds) if score >= t}
        out.append((len(e.text), cls, {r[2] for r in p.relations}, dict(zip(p.labels, p.relation_scores))))
    return out


def candidates(rule):
    """{name: (length, CLS labels, relation types) -> labels}."""
    by_rule = {"union": lambda cls, rel: cls | rel, "filter": lambda cls, rel: cls}
    rules = {"relation_types": lambda n, cls, rel, sure: by_rule[rule](cls, rel),
             "union": lambda n, cls, rel, sure: cls | rel,
             "filter": lambda n, cls, rel, sure: cls,
             "relations": lambda n, cls, rel, sure: rel,
             "agreed": lambda n, cls, rel, sure: cls & rel}
    for t in CONFIDENT_GRID:
        rules[f"relations + CLS over {t}"] = (
            lambda n, cls, rel, scores, t=t: rel | {label for label, score in scores.items() if score >= t})
    for chars in SHORT_TEXT_GRID[1:]:
        rules[f"short_text_chars {chars}"] = (
            lambda n, cls, rel, sure, chars=chars: rel if n < chars else by_rule[rule](cls, rel))
    return rules


def micro(gold_sets, pred_sets, labels):
    scores = multilabel_scores(label_matrix(gold_sets, labels), label_matrix(pred_sets, labels), labels)
    return {k: round(scores["micro"][k], 4) for k in ("p", "r", "f1")}


def probe(predictor, annotator, documents, rule):
    heads = [headline(d) for d in documents]
    got = parts(predictor, encode_in_chunks(predictor, heads))
    gold = [set(h.relation_labels()) for h in heads]
    empty = [not g for g in gold]
    out = {"documents": len(heads), "headlines_without_relation": sum(empty), "rules": {}}
    rules = {name: [decide(*g) for g in got] for name, decide in candidates(rule).items()}
    # what `annotate` writes with the model as it is (its short_text_chars, if any)
    rules["annotate"] = [set(p.relation_types) for p in annotator.predict([h.text for h in heads])]
    for name, predicted in rules.items():
        out["rules"][name] = {**micro(gold, predicted, predictor.labels),
                              "labels_without_relation": sum(len(p) for p, e in zip(predicted, empty) if e)}
    return out


def whole(predictor, documents, rule):
    """Each ``short_text_chars`` candidate's CLS micro/macro F1 on the whole documents."""
    got = parts(predictor, encode_in_chunks(predictor, documents))
    out = {}
    for name, decide in candidates(rule).items():
        if name != "relation_types" and not name.startswith("short_text_chars"):
            continue
        predicted = [Document(d.id, d.text, relation_types=sorted(decide(*g))) for d, g in zip(documents, got)]
        scores = score_documents(predicted, documents, warn=lambda message: None)
        out[name] = {"cls_micro": round(dig(scores, ("cls", "micro", "f1")), 4),
                     "cls_macro": round(dig(scores, ("cls", "macro", "f1")), 4)}
    return out


def choose(result):
    """The N to write: see the module's docstring; 0 when no candidate beats the rule."""
    base_whole = result["whole"]["relation_types"]
    best, best_f1 = 0, result["headlines"]["rules"]["relation_types"]["f1"]
    for chars in SHORT_TEXT_GRID[1:]:
        name = f"short_text_chars {chars}"
        held = all(result["whole"][name][k] >= base_whole[k] for k in ("cls_micro", "cls_macro"))
        if held and result["headlines"]["rules"][name]["f1"] > best_f1:
            best, best_f1 = chars, result["headlines"]["rules"][name]["f1"]
    return best


def span_thresholds(annotator, documents, chars):
    """With a span head: the headlines' ``relation_types`` F1 at each short-text span threshold
    (under ``short_text_chars`` ``chars``); None without one."""
    if annotator.span_head is None or not chars:
        return None
    heads = [headline(d) for d in documents]
    gold = [set(h.relation_labels()) for h in heads]
    out = {}
    for threshold in sorted({*SPAN_GRID, annotator.span_threshold}):
        predictor = annotator.with_options(short_text_chars=chars, short_text_span_threshold=threshold)
        predicted = [set(p.relation_types) for p in predictor.predict([h.text for h in heads])]
        out[str(threshold)] = micro(gold, predicted, predictor.labels)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="dev", choices=("dev", "test"))
    parser.add_argument("--model", default="models/nerel-e5-small-int8")
    parser.add_argument("--data", default=str(DATA), help="folder with NEREL's {split}.jsonl")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--whole", action=argparse.BooleanOptionalAction, default=None,
                        help="also score the whole documents (default: on dev)")
    parser.add_argument("--write", action="store_true", help="write the chosen short_text_chars (dev only)")
    args = parser.parse_args(argv)
    if args.write and args.split != "dev":
        parser.error("--write chooses on dev only")
    documents = list(read_documents(Path(args.data) / f"{args.split}.jsonl"))
    # the model's own labels and relations, before any short-text rule: the candidates are computed here
    annotator = load_predictor(args.model, threads=args.threads)
    predictor = annotator.with_options(relation_rule="union", short_text_chars=0)
    rule = Bundle.load(args.model).relation_rule or "union"
    result = {"model": args.model, "relation_rule": rule,
              "short_text_chars": Bundle.load(args.model).short_text_chars,
              "headlines": probe(predictor, annotator, documents, rule)}
    if args.whole if args.whole is not None else args.split == "dev":
        result["whole"] = whole(predictor, documents, rule)
        result["chosen_short_text_chars"] = choose(result)
    chars = result.get("chosen_short_text_chars", result["short_text_chars"])
    result["short_text_span_thresholds"] = span_thresholds(annotator, documents, chars)
    if result["short_text_span_thresholds"]:
        grid = result["short_text_span_thresholds"]  # the best F1; a tie goes to the model's own threshold
        best = max(grid, key=lambda t: (grid[t]["f1"], float(t) == annotator.span_threshold))
        result["chosen_short_text_span_threshold"] = float(best)
        print(f"{args.split} headlines: relation_types F1 by short-text span threshold "
              + ", ".join(f"{t} {row['f1']:.3f}" for t, row in grid.items()), file=sys.stderr)
    report = json.loads(REPORT.read_text("utf-8")) if REPORT.exists() else {}
    report.setdefault(Path(args.model).name, {})[args.split] = result
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", "utf-8")
    for name, row in result["headlines"]["rules"].items():
        extra = result.get("whole", {}).get(name)
        extra = f"  whole CLS micro {extra['cls_micro']:.4f} macro {extra['cls_macro']:.4f}" if extra else ""
        print(f"{args.split} headlines  {name:26s} P {row['p']:.3f} R {row['r']:.3f} F1 {row['f1']:.3f}  "
              f"labels on headlines without relation {row['labels_without_relation']}{extra}")
    print(f"{result['headlines']['headlines_without_relation']} of {result['headlines']['documents']} "
          "headlines hold no relation", file=sys.stderr)
    if args.write:
        chars = result["chosen_short_text_chars"]
        bundle = Bundle.load(args.model)
        bundle.short_text_chars = chars or None
        bundle.short_text_span_threshold = result.get("chosen_short_text_span_threshold")
        bundle.short_texts = {"chosen_on": f"{args.split}.jsonl ({len(documents)} documents)",
                              "dev_headline_f1": {k: v["f1"] for k, v in result["headlines"]["rules"].items()},
                              "dev_whole_cls": result["whole"]}
        if result["short_text_span_thresholds"]:
            bundle.short_texts["dev_headline_f1_by_span_threshold"] = {
                t: row["f1"] for t, row in result["short_text_span_thresholds"].items()}
        bundle.save(args.model)
        print(f"short_text_chars {chars or None} written to {Path(args.model) / 'nerelproc.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
