"""Relation figures of a model on NEREL test, and the speed cost of its relation head.

    python benchmarks/relations.py [--model models/nerel-e5-small-int8] [--threads 2]

Quality, through the commands a user runs: ``nerelproc annotate`` on the test texts, scored
strictly by ``nerelproc score`` (label and both arguments' type and spans exact); end to end
(the model's own entities) and with ``--given-entities`` on the gold entities; per label for
the 10 most frequent test labels; CLS with the relation head and without it (the model
directory copied without ``relation_thresholds``). Speed: docs/s of the predictor over the
test texts with the relation head and without it, in one process, alternated (A B A B) and
the better of two passes each, after a warm-up. Writes ``benchmarks/relations.json`` and
``benchmarks/relations.md``.
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def annotate_and_score(model, gold, out, *flags, threads=2):
    subprocess.run(["nerelproc", "annotate", str(gold), "-o", str(out), "--model", str(model), "--quiet",
                    "--threads", str(threads), *flags], check=True)
    result = subprocess.run(["nerelproc", "score", str(out), str(gold), "--json"], check=True, capture_output=True)
    return json.loads(result.stdout)


def without_relations(model, out_dir):
    shutil.copytree(model, out_dir)
    config = json.loads((out_dir / "nerelproc.json").read_text("utf-8"))
    for key in ("relation_thresholds", "relation_thresholds_given", "relation_rule", "relations"):
        config.pop(key, None)
    (out_dir / "nerelproc.json").write_text(json.dumps(config, indent=1, ensure_ascii=False))
    (out_dir / "relations.npz").unlink(missing_ok=True)
    return out_dir


def speed(model, texts, threads, passes=2):
    from nerelproc.runtime.bundle import load_predictor

    with_head = load_predictor(model, "ct2", threads)
    predictors = {"with": with_head, "without": with_head.with_options(relation_head=None)}

    def timed(predictor=with_head):
        started = time.perf_counter()
        for start in range(0, len(texts), 64):
            predictor.predict(texts[start : start + 64])
        return time.perf_counter() - started

    timed()  # warm-up
    seconds = {"with": [], "without": []}
    for _ in range(passes):
        for name in ("with", "without"):
            seconds[name].append(timed(predictors[name]))
    return {name: round(len(texts) / min(values), 2) for name, values in seconds.items()}


def reachable(model, gold):
    """``(gold relations, those whose two arguments lie whole in one window, at most 64 tokens
    apart)``: the recall ceiling of the relation head's candidate pairs."""
    from tokenizers import Tokenizer

    from nerelproc.io.readers import read_documents
    from nerelproc.runtime.bundle import Bundle
    from nerelproc.runtime.pairs import MAX_DISTANCE, entity_token_spans
    from nerelproc.runtime.windows import encode, plan_windows
    from nerelproc.training.relations import gold_relations

    bundle, tokenizer = Bundle.load(model), Tokenizer.from_file(str(Path(model) / "tokenizer.json"))
    total = within = 0
    for document in read_documents(gold):
        encoded = encode(tokenizer, document.text)
        windows = plan_windows(len(encoded.ids), bundle.max_length, bundle.stride)
        spans = dict(zip((e.key for e in document.entities),
                         entity_token_spans(document.entities, encoded.offsets, list(bundle.entity_types))))
        for _, head, tail in gold_relations(document)[0]:
            total += 1
            a, b = spans.get(head), spans.get(tail)
            if a is None or b is None or max(0, a[1] - b[2], b[1] - a[2]) > MAX_DISTANCE:
                continue
            within += any(w.start <= min(a[1], b[1]) and max(a[2], b[2]) < w.end for w in windows)
    return total, within


def figures(scores):
    micro = scores["re"]["micro"]
    return {"p": round(micro["p"], 4), "r": round(micro["r"], 4), "f1": round(micro["f1"], 4),
            "support": micro["support"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "models" / "nerel-e5-small-int8"))
    parser.add_argument("--gold", default=str(ROOT.parent / "shared" / "nerel" / "jsonl" / "test.jsonl"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "benchmarks"))
    args = parser.parse_args()
    model, gold = Path(args.model), Path(args.gold)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print("annotate + score: end to end ...", file=sys.stderr)
        end_to_end = annotate_and_score(model, gold, tmp / "e2e.jsonl", threads=args.threads)
        print("annotate + score: given entities ...", file=sys.stderr)
        given = annotate_and_score(model, gold, tmp / "given.jsonl", "--given-entities", threads=args.threads)
        print("annotate + score: without the relation head ...", file=sys.stderr)
        plain = annotate_and_score(without_relations(model, tmp / "plain"), gold, tmp / "plain.jsonl",
                                   threads=args.threads)
        texts = [json.loads(line)["text"] for line in open(gold, encoding="utf-8")]
        print("speed ...", file=sys.stderr)
        docs_per_second = speed(model, texts, args.threads)
    per_label = given["re"]["per_label"]
    top = sorted(per_label, key=lambda label: -per_label[label]["support"])[:10]
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "model": str(model.relative_to(ROOT) if model.is_relative_to(ROOT) else model),
        "threads": args.threads,
        "relations_end_to_end": figures(end_to_end),
        "relations_given_entities": figures(given),
        "per_label": {label: {"end_to_end_f1": round(end_to_end["re"]["per_label"][label]["f1"], 4),
                              "given_entities_f1": round(per_label[label]["f1"], 4),
                              "support": per_label[label]["support"]} for label in top},
        "cls": {name: {"micro": round(s["cls"]["micro"]["f1"], 4), "macro": round(s["cls"]["macro"]["f1"], 4)}
                for name, s in (("with relations", end_to_end), ("without the relation head", plain))},
        "ner_nested_f1": {"with relations": round(end_to_end["ner"]["micro"]["f1"], 4),
                          "without the relation head": round(plain["ner"]["micro"]["f1"], 4)},
        "reachable": dict(zip(("gold", "within_a_window_and_64_tokens"), reachable(model, gold))),
        "docs_per_second": docs_per_second,
        "speed_ratio": round(docs_per_second["with"] / docs_per_second["without"], 3),
    }
    out = Path(args.out)
    (out / "relations.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "relations.md").write_text(markdown(report), "utf-8")
    print(json.dumps(report, indent=1))


def markdown(r):
    e, g = r["relations_end_to_end"], r["relations_given_entities"]
    lines = [
        "# Relations on NEREL test",
        "",
        f"`python benchmarks/relations.py --model {r['model']} --threads {r['threads']}` ({r['date']}); "
        "`nerelproc annotate` + `nerelproc score`, strict match (label and both arguments' type and spans).",
        "",
        "| entities | P | R | F1 | gold relations |",
        "| --- | --- | --- | --- | --- |",
        f"| predicted (end to end) | {e['p']:.4f} | {e['r']:.4f} | **{e['f1']:.4f}** | {e['support']} |",
        f"| gold (`--given-entities`) | {g['p']:.4f} | {g['r']:.4f} | **{g['f1']:.4f}** | {g['support']} |",
        "",
        "The 10 most frequent test labels (F1):",
        "",
        "| label | support | end to end | given entities |",
        "| --- | --- | --- | --- |",
        *(f"| {label} | {v['support']} | {v['end_to_end_f1']:.4f} | {v['given_entities_f1']:.4f} |"
          for label, v in r["per_label"].items()),
        "",
        "| | with relations | without the relation head |",
        "| --- | --- | --- |",
        f"| CLS micro-F1 | {r['cls']['with relations']['micro']:.4f} | {r['cls']['without the relation head']['micro']:.4f} |",
        f"| CLS macro-F1 | {r['cls']['with relations']['macro']:.4f} | {r['cls']['without the relation head']['macro']:.4f} |",
        f"| NER nested micro-F1 | {r['ner_nested_f1']['with relations']:.4f} | "
        f"{r['ner_nested_f1']['without the relation head']:.4f} |",
        f"| docs/s ({r['threads']} threads) | {r['docs_per_second']['with']} | {r['docs_per_second']['without']} |",
        "",
        f"Speed with relations / without: {r['speed_ratio']:.3f}. Candidate pairs: "
        f"{r['reachable']['within_a_window_and_64_tokens']} of {r['reachable']['gold']} gold relations have both "
        "arguments whole in one window, at most 64 tokens apart (the recall ceiling).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
