"""``nerelproc export``: a training run to the int8 CPU runtime."""

import click

from nerelproc.cli._app import main


@main.command()
@click.argument("run_dir")
@click.option("-o", "--output", required=True, help="Model directory to write (replaced if it exists).")
@click.option("--quantization", default="int8", show_default=True,
              help="CTranslate2 quantization: int8, int8_float32, float32, ...")
@click.option("--checkpoint", is_flag=True,
              help="Export the run's last checkpoint (e.g. after train --stop-after N), not its selected model.")
def export(run_dir, output, quantization, checkpoint):
    """Convert RUN_DIR (written by `nerelproc train`) for `nerelproc annotate`."""
    from nerelproc.training.export import export as run_export

    path = run_export(run_dir, output, quantization, checkpoint)
    click.echo(str(path))
