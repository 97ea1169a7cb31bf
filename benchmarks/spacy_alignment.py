"""How ``annotate``'s entities land on spaCy's tokens, over the NEREL test texts: how many
start and end on token boundaries (their Span is exact), how many are widened to whole
tokens (and how many of those merge with another Span), how many are left out, and the share of the token-aligned ones that are in
``doc.spans["nerel"]`` with the same type and offsets. Also checks that ``nlp.pipe`` gives
what ``nlp(text)`` gives one by one. Writes reports/spacy_alignment.json.

    python benchmarks/spacy_alignment.py --threads 2
"""

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import orjson
import spacy

from nerelproc.integrations.spacy import is_token_aligned

ROOT = Path(__file__).resolve().parents[1]


def doc_view(doc):
    """Everything the component writes on a Doc, as plain values (to compare two runs)."""
    return {
        "spans": [(s.start_char, s.end_char, s.label_) for s in doc.spans["nerel"]],
        "ents": [(s.start_char, s.end_char, s.label_) for s in doc.ents],
        "cats": doc.cats,
        "relation_types": doc._.relation_types,
        "relations": [(r.type, r.head.start_char, r.head.end_char, r.tail.start_char, r.tail.end_char, r.probability)
                      for r in doc._.relations],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model directory (default: the bundled one)")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "nerel" / "jsonl" / "test.jsonl"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", default=str(ROOT / "reports" / "spacy_alignment.json"))
    args = parser.parse_args()

    texts = [orjson.loads(line)["text"] for line in Path(args.data).read_bytes().splitlines() if line.strip()]
    nlp = spacy.blank("ru")
    nlp.add_pipe("nerelproc", config={"model": args.model, "threads": args.threads})
    annotator = nlp.get_pipe("nerelproc").annotator
    results = list(annotator.annotate_many(texts))
    docs = list(nlp.pipe(texts, batch_size=args.batch_size))

    counts, by_type, examples = Counter(), Counter(), []
    for text, result, doc in zip(texts, results, docs):
        spans = {(s.start_char, s.end_char, s.label_) for s in doc.spans["nerel"]}
        counts["ents"] += len(doc.ents)
        counts["spans"] += len(doc.spans["nerel"])
        for entity in result.entities:
            counts["entities"] += 1
            if is_token_aligned(doc, entity):
                counts["token_aligned"] += 1
                counts["token_aligned_in_spans"] += (entity.start, entity.end, entity.type) in spans
                continue
            span = doc.char_span(entity.start, entity.end, alignment_mode="expand")
            counts["left_out" if span is None else "expanded"] += 1
            by_type[entity.type] += 1
            if span is not None and len(examples) < 30:
                examples.append({"type": entity.type, "entity": entity.text, "span": span.text,
                                 "context": text[max(entity.start - 20, 0) : entity.end + 20]})
        counts["relations"] += len(getattr(result, "relations", None) or [])
        counts["relations_on_doc"] += len(doc._.relations)

    print(f"{len(docs)} documents: nlp.pipe vs nlp(text) one by one", file=sys.stderr)
    one_by_one = [doc_view(nlp(text)) for text in texts]
    pipe_equals = sum(doc_view(doc) == view for doc, view in zip(docs, one_by_one))

    report = {
        "command": "python benchmarks/spacy_alignment.py --threads 2",
        "data": "NEREL test (jsonl/test.jsonl), texts only",
        "spacy": spacy.__version__,
        "model": str(annotator.model_dir.name),
        "documents": len(texts),
        "entities": counts["entities"],
        "token_aligned": counts["token_aligned"],
        "not_token_aligned": counts["expanded"] + counts["left_out"],
        "expanded_to_tokens": counts["expanded"],
        "left_out": counts["left_out"],
        # entities of one type widened to the same tokens: one Span for them all
        "expanded_merged_with_another_span": counts["entities"] - counts["left_out"] - counts["spans"],
        "spans": counts["spans"],
        "not_token_aligned_share": round((counts["expanded"] + counts["left_out"]) / max(counts["entities"], 1), 4),
        "token_aligned_in_spans": counts["token_aligned_in_spans"],
        "token_aligned_in_spans_share": round(counts["token_aligned_in_spans"] / max(counts["token_aligned"], 1), 4),
        "doc_ents": counts["ents"],
        "relations": counts["relations"],
        "relations_on_doc": counts["relations_on_doc"],
        "pipe_equals_one_by_one": f"{pipe_equals}/{len(texts)}",
        "pipe_batch_size": args.batch_size,
        "not_token_aligned_by_type": dict(by_type.most_common()),
        "not_token_aligned_examples": examples,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", "utf-8")
    print(f"wrote {args.out}: {report['token_aligned_in_spans_share']:.2%} of the token-aligned entities in "
          f"doc.spans; {report['not_token_aligned']} of {report['entities']} not token-aligned", file=sys.stderr)


if __name__ == "__main__":
    main()
