"""``nerelproc calibrate MODEL --dev DEV``: tune a model's decisions on dev, weights untouched."""

import click

from nerelproc.cli._app import main


@main.command()
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--dev", "dev_path", required=True, type=click.Path(exists=True),
              help="Gold documents to tune on (NEREL dev): JSONL or a BRAT folder.")
@click.option("--threads", default=0, help="Windows encoded at once, one core each (0: one per core).")
@click.option("--seed", default=13, show_default=True, help="Seed of the cross-validation halvings.")
def calibrate(model_dir, dev_path, threads, seed):
    """Tune MODEL_DIR's NER decoder O bias (or its span head's threshold) and CLS thresholds on
    DEV; rewrite its nerelproc.json.

    The encoder runs once over DEV; each O bias (span threshold) only re-decodes. What was measured for
    each candidate is kept in nerelproc.json ("calibration", "thresholds_tuning").
    """
    import sys
    from pathlib import Path

    from tqdm import tqdm

    from nerelproc.io.readers import read_documents
    from nerelproc.runtime.bundle import Bundle, load_predictor
    from nerelproc.training.calibration import decisions, encode_in_chunks, set_decisions

    predictor = load_predictor(model_dir, threads=threads)
    gold = list(read_documents(dev_path))
    if not gold:
        raise ValueError(f"{dev_path}: no documents to tune on")
    encoded = encode_in_chunks(predictor, tqdm(gold, desc="encoding dev", unit="doc", file=sys.stderr))
    o_bias, thresholds, tuning = decisions(predictor, encoded, gold, predictor.labels, seed)
    bundle = set_decisions(Bundle.load(model_dir), thresholds, tuning, f"{Path(dev_path).name} ({len(gold)} documents)")
    bundle.save(model_dir)
    if "span_threshold" in tuning:
        curve = ", ".join(f"{t}: {f:.4f}" for t, f in tuning["span_threshold_dev_nested_f1"].items())
        click.echo(f"span threshold {tuning['span_threshold']} (dev nested F1 by threshold: {curve})", err=True)
    else:
        curve = ", ".join(f"{b}: {f:.4f}" for b, f in tuning["ner_o_bias_dev_nested_f1"].items())
        click.echo(f"NER O bias {o_bias} (dev nested F1 by bias: {curve})", err=True)
    cv = ", ".join(f"{mode} {value:.4f}" for mode, value in tuning["cv"].items())
    click.echo(f"CLS thresholds: {tuning['mode']} (2-fold CV, mean of micro and macro F1: {cv})", err=True)
