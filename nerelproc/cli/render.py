"""``nerelproc render INPUT -o review.html [--gold GOLD]``: a review page of annotated documents."""

import os
import sys
from itertools import islice

import click

from nerelproc.cli._app import main


@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, allow_dash=True))
@click.option("-o", "--output", required=True, help="The HTML file to write (one self-contained page).")
@click.option("--gold", type=click.Path(exists=True), default=None,
              help="Gold JSONL or BRAT folder: mark entities and labels correct, spurious or missed, with F1.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N documents of INPUT.")
@click.option("--types", default=None, metavar="T1,T2,...", help="Only these entity types (and score only them).")
@click.option("--title", default=None, help="Page title (default: from INPUT's name).")
def render(input_path, output, gold, limit, types, title):
    """Draw INPUT's entities and relation types (JSONL or a BRAT folder) as one HTML page.

    Nested entities are drawn inside their parents; with --gold each entity and label
    gets a verdict, each document its NER and CLS F1, and the document list sorts by F1.
    """
    from nerelproc.io.readers import read_documents
    from nerelproc.analysis.render import default_title, pair_with_gold, render_page
    from nerelproc.io.schema import entity_types
    from nerelproc.io.writers import atomic_output

    def warn(message):
        click.echo(f"nerelproc render: {message}", err=True)

    only = {name.strip() for name in types.split(",") if name.strip()} if types else None
    for name in sorted((only or set()) - set(entity_types())):
        warn(f"--types: {name} is not a NEREL entity type")
    documents = islice(read_documents(input_path), limit)
    if gold is None:
        pairs = [(document, None) for document in documents]
    else:
        pairs = pair_with_gold(documents, read_documents(gold), warn)
    if not pairs:
        warn(f"no documents in {input_path}")
        sys.exit(1)
    page = render_page(pairs, title=title or default_title(input_path), source=input_path, types=only)
    with atomic_output(output) as file:
        file.write(page.encode("utf-8"))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(output, 0o666 & ~umask)  # atomic_output's temporary file is private; a page is for sharing
    click.echo(f"nerelproc render: {len(pairs)} documents -> {output} ({len(page.encode('utf-8')) / 1e6:.1f} MB)",
               err=True)
