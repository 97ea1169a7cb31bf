"""``nerelproc score PRED GOLD [--json]``: NER, CLS and relation figures of predictions against gold."""

import sys

import click

from nerelproc.cli._app import main


@main.command()
@click.argument("pred", type=click.Path(exists=True, allow_dash=True))
@click.argument("gold", type=click.Path(exists=True, allow_dash=True))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
def score(pred, gold, as_json):
    """Score predictions PRED against GOLD (JSONL files or BRAT folders).

    Documents are matched by id: gold documents without a prediction count as empty
    predictions, predictions not in gold are ignored (both warned on stderr).
    Metrics: nested NER exact match (micro, per type), a flat seqeval view, a
    PER/LOC/ORG view, multi-label CLS over the 49 relation types, and relations (RE,
    "re" in --json): an R-line matches when its label and both arguments' type and
    spans are exact. R-lines whose arguments are not T-lines are counted, not scored.

    Exit status: 0; 3 when some record of PRED or GOLD could not be read (each is said on
    stderr and left out; the figures are printed all the same), as annotate exits when some
    input was unusable.
    """
    import orjson

    from nerelproc.evaluation.score import format_report, score_documents
    from nerelproc.io.readers import read_documents
    from nerelproc.jobs.exits import EXIT_OK, EXIT_SOME_FAILED

    if pred == "-" and gold == "-":
        raise click.UsageError("PRED and GOLD cannot both be stdin")
    unreadable = {pred: 0, gold: 0}

    def count(source):
        return lambda record: unreadable.__setitem__(source, unreadable[source] + 1)

    scores = score_documents(read_documents(pred, on_unreadable=count(pred)),
                             read_documents(gold, on_unreadable=count(gold)))
    if as_json:
        click.echo(orjson.dumps(scores, option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(format_report(scores), nl=False)
    skipped = [f"{n} in {source}" for source, n in unreadable.items() if n]
    if skipped:
        click.echo(f"nerelproc score: unreadable records left out: {', '.join(skipped)}", err=True)
    sys.exit(EXIT_SOME_FAILED if skipped else EXIT_OK)
