"""``nerelproc train-relations MODEL --train TRAIN --dev DEV``: add the relation head to a model."""

import click

from nerelproc.cli._app import main


@main.command("train-relations")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--train", "train_path", required=True, type=click.Path(exists=True),
              help="Gold documents with R-lines to train on (NEREL train): JSONL or a BRAT folder.")
@click.option("--dev", "dev_path", required=True, type=click.Path(exists=True),
              help="Gold documents to choose the epoch and tune the thresholds on (NEREL dev).")
@click.option("--epochs", default=16, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--threads", default=0, help="Windows encoded at once, one core each (0: one per core).")
@click.option("--width", default=512, show_default=True,
              help="Of the head's hidden layer: 256 makes relations.npz about half as large.")
def train_relations(model_dir, train_path, dev_path, epochs, seed, threads, width):
    """Train a relation head on MODEL_DIR's frozen encoder, tune its thresholds on DEV, and write
    relations.npz and the relation decisions into MODEL_DIR (needs torch).

    `annotate` then writes R-lines between each document's entities
    (nerelproc/runtime/relations.py). The encoder and the other heads are untouched.
    """
    from nerelproc.io.readers import read_documents
    from nerelproc.training.relations import train_relations as run

    train_docs, dev_docs = list(read_documents(train_path)), list(read_documents(dev_path))
    if not train_docs or not dev_docs:
        raise click.UsageError("--train and --dev must hold documents")
    run(model_dir, train_docs, dev_docs, epochs=epochs, seed=seed, threads=threads,
        log=lambda message: click.echo(message, err=True), width=width)
