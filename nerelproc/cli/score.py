"""``nerelproc score PRED GOLD [--json]``: NER, CLS and relation figures of predictions against gold."""

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
    """
    import orjson

    from nerelproc.io.readers import read_documents
    from nerelproc.evaluation.score import format_report, score_documents

    if pred == "-" and gold == "-":
        raise click.UsageError("PRED and GOLD cannot both be stdin")
    scores = score_documents(read_documents(pred), read_documents(gold))
    if as_json:
        click.echo(orjson.dumps(scores, option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(format_report(scores), nl=False)
