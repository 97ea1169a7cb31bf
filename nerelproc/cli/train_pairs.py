"""``nerelproc train-pairs MODEL --train TRAIN --dev DEV``: add the entity-pair CLS head to a model."""

import click

from nerelproc.cli._app import main


@main.command("train-pairs")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--train", "train_path", required=True, type=click.Path(exists=True),
              help="Gold documents with R-lines to train on (NEREL train): JSONL or a BRAT folder.")
@click.option("--dev", "dev_path", required=True, type=click.Path(exists=True),
              help="Gold documents to choose the epoch, the weight and the thresholds on (NEREL dev).")
@click.option("--epochs", default=16, show_default=True, help="Epochs of the pair head (about 15 s each on NEREL here).")
@click.option("--seed", default=0, show_default=True)
@click.option("--threads", default=0, help="Windows encoded at once, one core each (0: one per core).")
def train_pairs(model_dir, train_path, dev_path, epochs, seed, threads):
    """Train a pair head on MODEL_DIR's frozen encoder; if it beats the CLS head alone on DEV,
    write pairs.npz, its weight and the new CLS thresholds into MODEL_DIR (needs torch).

    The document's CLS probability becomes the CLS head's averaged with the max over its
    entity pairs' (nerelproc/runtime/pairs.py). The encoder weights are untouched.
    """
    from nerelproc.io.readers import read_documents
    from nerelproc.training.pairs import train_pairs as run

    train_docs, dev_docs = list(read_documents(train_path)), list(read_documents(dev_path))
    if not train_docs or not dev_docs:
        raise click.UsageError("--train and --dev must hold documents")
    run(model_dir, train_docs, dev_docs, epochs=epochs, seed=seed, threads=threads,
        log=lambda message: click.echo(message, err=True))
