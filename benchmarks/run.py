"""Quality and speed of the shipped model on NEREL test; writes benchmarks/README.md.

    python benchmarks/run.py --model models/nerel-e5-small-int8 --run runs/default

Quality: ``nerelproc annotate`` on the test texts alone (id + text), then
``nerelproc score`` against gold, for the int8 CT2 model and for its fp32 torch
original (the run's ``best/``, with the shipped model's decisions and pair head, if any). Speed: each setup in a fresh subprocess (so load
time and peak RSS are its own), over the same texts, same thread count:

- ``int8-joint``: CT2 int8 encoder, both heads (what ``annotate`` runs), and without the pair
  head when the model has one;
- ``fp32-joint``: torch fp32 encoder, both heads;
- ``int8-separate``: the pipeline the project replaces: a NER model, then a CLS
  model, each a full encoder pass. Single-task models are given with ``--ner-model``
  / ``--cls-model``; without them the joint model is loaded twice and each copy
  runs one head, which costs the same compute as two single-task models of that size;
- ``slovnet``: natasha's slovnet NER (PER/LOC/ORG only), if natasha is installed.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(setup, model, run, texts_path, threads, ner_model=None, cls_model=None):
    """Runs in its own process: load, annotate every text, report timings and peak RSS."""
    texts = [json.loads(line)["text"] for line in open(texts_path, encoding="utf-8")]
    started = time.perf_counter()
    if setup == "slovnet":
        from natasha import Doc, NewsEmbedding, NewsNERTagger, Segmenter

        segmenter, tagger = Segmenter(), NewsNERTagger(NewsEmbedding())

        def annotate_all():
            for text in texts:
                doc = Doc(text)
                doc.segment(segmenter)
                doc.tag_ner(tagger)
    else:
        from nerelproc.runtime.bundle import load_predictor

        if setup == "int8-joint":
            predictors = [(load_predictor(model, "ct2", threads), "both")]
        elif setup == "int8-joint-without-pairs":
            predictors = [(load_predictor(model, "ct2", threads, pair_head=False), "both")]
        elif setup == "int8-joint-without-relations":
            predictors = [(load_predictor(model, "ct2", threads, relation_head=False), "both")]
        elif setup == "int8-joint-batch16":
            predictors = [(load_predictor(model, "ct2", threads, batch_windows=16), "both")]
        elif setup == "int8-joint-mixed-batches":
            predictors = [(MixedLengthBatches(load_predictor(model, "ct2", threads)), "both")]
        elif setup == "fp32-joint":
            predictors = [(load_predictor(Path(run) / "best", "torch", threads), "both")]
        elif setup == "int8-separate":
            predictors = [(load_predictor(ner_model or model, "ct2", threads, tasks=("ner",)), "ner"),
                          (load_predictor(cls_model or model, "ct2", threads, tasks=("cls",)), "cls")]
        else:
            raise ValueError(setup)


        def annotate_all():
            for predictor, _ in predictors:
                for start in range(0, len(texts), 64):
                    predictor.predict(texts[start : start + 64])
    load_seconds = time.perf_counter() - started
    annotate_all()  # warm-up pass: first-call allocations are not throughput
    started = time.perf_counter()
    annotate_all()
    seconds = time.perf_counter() - started
    return {
        "setup": setup,
        "docs": len(texts),
        "chars": sum(map(len, texts)),
        "load_seconds": round(load_seconds, 2),
        "seconds": round(seconds, 2),
        "docs_per_second": round(len(texts) / seconds, 2),
        "chars_per_second": round(sum(map(len, texts)) / seconds),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


class MixedLengthBatches:
    """The runtime before batch independence (for its speed only): all windows of a buffer
    sorted by length and run two at a time, padded to the longer one, so that a window's
    states depended on its batch neighbour."""

    def __init__(self, predictor):
        self.predictor = predictor

    def predict(self, texts):
        p = self.predictor
        documents = [p._plan(text) for text in texts]
        jobs = sorted(((d, k) for d, doc in enumerate(documents) for k in range(len(doc.windows))),
                      key=lambda job: documents[job[0]].windows[job[1]].end - documents[job[0]].windows[job[1]].start)
        p._encode_batches(documents, [jobs[start : start + 2] for start in range(0, len(jobs), 2)])  # only the batching differs
        return [p.finish(document) for document in documents]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "nerelproc", *map(str, args)], check=False,
                          capture_output=True, cwd=ROOT)


def with_decisions(original, model, out_dir):
    """The fp32 original (links to its files) with the shipped model's heads added on the frozen
    encoder (span, pair and relation heads) and every decision (thresholds, O bias, short texts,
    casing; `nerelproc calibrate` may have retuned them on the int8 model): int8 vs fp32 then
    compares the encoder's weights alone."""
    from nerelproc.runtime.bundle import CONFIG_FILE, OPTIONAL, PAIRS_FILE, Bundle
    from nerelproc.runtime.relations import RELATIONS_FILE
    from nerelproc.runtime.spans import SPANS_FILE

    target = Path(out_dir) / "fp32"
    target.mkdir()
    for path in Path(original).iterdir():
        if path.name != CONFIG_FILE:
            (target / path.name).symlink_to(path.resolve())
    bundle, shipped = Bundle.load(original), Bundle.load(model)
    bundle.thresholds, bundle.thresholds_tuning = shipped.thresholds, shipped.thresholds_tuning
    for name in set(OPTIONAL) - {"train_config", "log_vars", "quantization", "exported_from"}:
        setattr(bundle, name, getattr(shipped, name))
    for name in (SPANS_FILE, PAIRS_FILE, RELATIONS_FILE):  # the same heads, on fp32 states
        if (Path(model) / name).exists() and not (target / name).exists():
            (target / name).symlink_to((Path(model) / name).resolve())
    bundle.save(target)
    return target


def quality(model, run, gold, texts_path, out_dir, threads):
    results = {}
    fp32 = with_decisions(Path(run) / "best", model, out_dir)
    for name, options in (("int8", ["--model", model]), ("fp32", ["--model", fp32, "--backend", "torch"])):
        predictions = out_dir / f"test_{name}.jsonl"
        annotated = cli("annotate", texts_path, "-o", predictions, "--threads", threads, "--quiet", *options)
        if annotated.returncode != 0:
            raise RuntimeError(annotated.stderr.decode())
        scored = cli("score", predictions, gold, "--json")
        results[name] = json.loads(scored.stdout)
    return results


def figures(scores):
    from nerelproc.evaluation.score import headline

    names = {"ner": "ner_nested", "flat": "ner_flat", "coarse": "ner_per_loc_org"}  # the benchmark JSON's keys
    return {f"{names.get(name, name)}_f1": value for name, value in headline(scores).items()}


def markdown(report, command):
    from nerelproc.analysis.tables import markdown_table

    q = report["quality"]
    lines = [
        "# Benchmarks",
        "",
        f"Measured {report['date']} on {report['machine']}, {report['threads']} threads, "
        f"over the {report['speed'][0]['docs']} NEREL test texts ({report['speed'][0]['chars']:,} characters).",
        "",
        "Reproduce:",
        "",
        "```bash",
        command,
        "```",
        "",
        "## Quality on NEREL test (annotate on texts alone, then `nerelproc score`)",
        "",
    ]
    int8, fp32 = figures(q["int8"]), figures(q["fp32"])
    lines.append(markdown_table(
        ["metric", f"int8 CT2 ({Path(report['model']).name})", "fp32 torch", "int8 − fp32"],
        [[key, f"{int8[key]:.4f}", f"{fp32[key]:.4f}", f"{int8[key] - fp32[key]:+.4f}"] for key in int8],
    ))
    lines += ["", "## Speed", ""]
    lines.append(markdown_table(
        ["setup", "docs/s", "chars/s", "load s", "peak RSS MB"],
        [[row["setup"], row["docs_per_second"], f"{row['chars_per_second']:,}", row["load_seconds"],
          row["peak_rss_mb"]] for row in report["speed"]],
    ))
    lines += ["", "Ratios (same run):", ""]
    for name, value in report["ratios"].items():
        lines.append(f"- {name}: {value:.2f}×")
    lines += ["", report["note"], ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "models" / "nerel-e5-small-int8"))
    parser.add_argument("--run", default=str(ROOT / "runs" / "default"), help="training run (its best/ is fp32)")
    parser.add_argument("--gold", default=str(ROOT.parent / "shared" / "nerel" / "jsonl" / "test.jsonl"))
    parser.add_argument("--ner-model")
    parser.add_argument("--cls-model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "benchmarks"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--texts", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.model, args.run, args.texts, args.threads,
                                args.ner_model, args.cls_model)))
        return

    from nerelproc.runtime.bundle import Bundle

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        texts_path = Path(tmp) / "test_texts.jsonl"
        with open(args.gold, encoding="utf-8") as gold, open(texts_path, "w", encoding="utf-8") as texts:
            for line in gold:
                doc = json.loads(line)
                texts.write(json.dumps({"id": doc["id"], "text": doc["text"]}, ensure_ascii=False) + "\n")
        print("quality ...", file=sys.stderr)
        q = quality(args.model, args.run, args.gold, texts_path, Path(tmp), args.threads)
        setups = ["int8-joint", "int8-joint-batch16", "int8-joint-mixed-batches", "fp32-joint", "int8-separate"]
        if Bundle.load(args.model).pair_weight:
            setups.insert(1, "int8-joint-without-pairs")
        if Bundle.load(args.model).relation_thresholds is not None:
            setups.insert(1, "int8-joint-without-relations")
        try:
            import natasha  # noqa: F401

            setups.append("slovnet")
        except ImportError:
            pass
        speed = []
        for setup in setups:
            print(f"speed: {setup} ...", file=sys.stderr)
            command = [sys.executable, __file__, "--worker", setup, "--texts", texts_path, "--model", args.model,
                       "--run", args.run, "--threads", args.threads]
            command += ["--ner-model", args.ner_model] if args.ner_model else []
            command += ["--cls-model", args.cls_model] if args.cls_model else []
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
            result = subprocess.run(list(map(str, command)), capture_output=True, env=env, cwd=ROOT, check=True)
            speed.append(json.loads(result.stdout.splitlines()[-1]))
    by = {row["setup"]: row for row in speed}
    ratios = {
        "int8 joint / fp32 joint (docs/s)": by["int8-joint"]["docs_per_second"] / by["fp32-joint"]["docs_per_second"],
        "int8 joint / int8 separate NER+CLS (docs/s)":
            by["int8-joint"]["docs_per_second"] / by["int8-separate"]["docs_per_second"],
        "batch-independent (one window a call) / batch-dependent mixed-length pairs (docs/s)":
            by["int8-joint"]["docs_per_second"] / by["int8-joint-mixed-batches"]["docs_per_second"],
    }
    if "int8-joint-without-pairs" in by:
        ratios["with the pair head / without it (docs/s)"] = (
            by["int8-joint"]["docs_per_second"] / by["int8-joint-without-pairs"]["docs_per_second"])
    if "int8-joint-without-relations" in by:
        ratios["with the relation head / without it (docs/s)"] = (
            by["int8-joint"]["docs_per_second"] / by["int8-joint-without-relations"]["docs_per_second"])
    separate = "given single-task models" if args.ner_model else "the joint model loaded twice, one head each"
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "threads": args.threads,
        "model": args.model,
        "quality": q,
        "speed": speed,
        "ratios": ratios,
        "note": f"int8-joint is what `annotate` runs by default (one window per encoder call, as many calls at once as threads, one core each); "
                "int8-joint-without-pairs is the same without the entity-pair CLS head (`pairs.npz`), if the model has one; "
                "int8-joint-without-relations the same without the relation head (`relations.npz`), if it has one; "
                "int8-joint-batch16 batches up to 16 windows of equal length; int8-joint-mixed-batches is the "
                "runtime before batch independence (pairs of windows of any length, padded), timed for the cost "
                f"of the guarantee. int8-separate: {separate}. Throughput is the second of two passes over the texts "
                "(the first warms up); load time is process start to model ready.",
    }
    (out / "quality.json").write_text(json.dumps(q, indent=1))
    (out / "results.json").write_text(json.dumps(report, indent=1))
    command = "python benchmarks/run.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
        if v and k in ("model", "run", "ner_model", "cls_model", "threads"))
    if out.resolve() != (ROOT / "benchmarks").resolve():  # a candidate's figures, kept apart from the shipped model's
        command += f" --out {args.out}"
    text = markdown(report, command.replace(str(ROOT) + "/", ""))
    (out / "README.md").write_text(text, "utf-8")
    update_model_card(Path(args.model) / "MODEL_CARD.md", text)
    print(out / "README.md")


BEGIN, END = "<!-- benchmarks:begin -->", "<!-- benchmarks:end -->"


def update_model_card(path, text):
    """Put the benchmark figures into the model card, replacing an older copy."""
    if not path.exists():
        return
    card = path.read_text("utf-8")
    if BEGIN in card:
        card = card[: card.index(BEGIN)] + card[card.index(END) + len(END) :].lstrip("\n")
    section = text.replace("# Benchmarks", "## Benchmarks (`benchmarks/run.py`)", 1).replace("\n## ", "\n### ")
    section = section.replace("### Benchmarks", "## Benchmarks", 1)
    path.write_text(card.rstrip("\n") + f"\n\n{BEGIN}\n{section.rstrip()}\n{END}\n", "utf-8")


if __name__ == "__main__":
    main()
