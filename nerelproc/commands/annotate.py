"""``nerelproc annotate``: the nightly batch job. Imports no torch, no transformers."""

import sys
from itertools import islice

import click

from nerelproc.cli import main

EXIT_STATUS_HELP = """
Exit status: 0 all records annotated; 3 finished, but some records failed (each has an
error line in its place and a message on stderr); 1 a fatal error (no output file is
created); 2 a usage error.
"""


@main.command(epilog=EXIT_STATUS_HELP)
@click.argument("input_path", metavar="INPUT")
@click.option("-o", "--output", default="-", show_default=True,
              help="JSONL file, '-' for stdout, or a BRAT folder (with --format brat or a trailing '/').")
@click.option("--format", "output_format", type=click.Choice(["auto", "jsonl", "brat"]), default="auto")
@click.option("--model", default=None, help="Model directory (default: the bundled model).")
@click.option("--backend", type=click.Choice(["auto", "ct2", "torch"]), default="auto", show_default=True,
              help="Encoder runtime; torch needs the train extra and a model with encoder/.")
@click.option("--batch-size", default=2, show_default=True,
              help="Windows per encoder call (small batches were fastest on a 2-core AVX2 CPU).")
@click.option("--buffer", default=256, show_default=True, help="Documents read ahead and sorted by length.")
@click.option("--threads", default=0, help="CPU threads for the encoder (0: all cores).")
@click.option("--scores", is_flag=True, help="Also write relation_scores (probability per relation type).")
@click.option("--keep-input", is_flag=True,
              help="Keep the input's annotations as input_entities, input_relations, input_links.")
@click.option("--strict", is_flag=True, help="Stop at the first bad record (exit 3, no output file).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run into the same OUTPUT file.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def annotate(input_path, output, output_format, model, backend, batch_size, buffer, threads, scores,
             keep_input, strict, resume, quiet):
    """Annotate INPUT (JSONL, a BRAT folder, a text file, or '-' for stdin) with entities and relation types."""
    from tqdm import tqdm

    from nerelproc.annotate import (EXIT_FATAL, EXIT_OK, EXIT_SOME_FAILED, BratOutput, JsonlOutput, Options,
                                    StrictStop, annotate_records)
    from nerelproc.readers import read_records
    from nerelproc.runtime import load_predictor

    report = lambda message: tqdm.write(f"nerelproc annotate: {message}", file=sys.stderr)  # noqa: E731
    try:
        predictor = load_predictor(model, backend=backend, threads=threads, batch_windows=batch_size)
        records = read_records(input_path)
    except (FileNotFoundError, ValueError, OSError) as error:
        click.echo(f"nerelproc annotate: {error}", err=True)
        sys.exit(EXIT_FATAL)
    brat = output_format == "brat" or (output_format == "auto" and output != "-" and output.endswith("/"))
    out = BratOutput(output) if brat else JsonlOutput(output, resume=resume, buffer=buffer)
    if out.skip:
        report(f"resuming after {out.skip} records already written")
        records = islice(records, out.skip, None)
    options = Options(buffer=buffer, scores=scores, keep_input=keep_input, strict=strict)
    progress = tqdm(desc="annotate", unit="doc", file=sys.stderr, disable=quiet, initial=out.skip)
    try:
        stats = annotate_records(records, predictor, options, out, report, progress)
    except StrictStop as stop:
        out.abandon()
        click.echo(f"nerelproc annotate: --strict: stopped at {stop}", err=True)
        sys.exit(EXIT_SOME_FAILED)
    except BaseException:
        out.flush()  # a resumable partial file stays behind
        raise
    finally:
        progress.close()
    out.close()
    failed = stats.failed + out.failed_before
    if failed:
        click.echo(f"nerelproc annotate: {failed} of {stats.written + out.skip} records failed", err=True)
        sys.exit(EXIT_SOME_FAILED)
    sys.exit(EXIT_OK)
