"""``nerelproc eda DATA_DIR -o reports/eda [--tokenizer tokenizer.json]``."""

import click

from nerelproc.cli._app import main


@main.command()
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", default="reports/eda", show_default=True, type=click.Path(file_okay=False),
              help="Folder for README.md, summary.json and the PNG plots.")
@click.option("--tokenizer", type=click.Path(exists=True, dir_okay=False),
              help="A tokenizer.json (HF tokenizers) to count model tokens per document.")
def eda(data_dir, output, tokenizer):
    """Exploratory report of a corpus: DATA_DIR holds {train,dev,test}.jsonl or BRAT {train,dev,test}/.

    Writes a Markdown report with plots: lengths, entity types, nesting, discontinuous
    entities, relation-type prevalence (the CLS labels), co-occurrence, per-split table.
    """
    import sys

    from nerelproc.analysis.eda import write_report

    command = f"nerelproc eda {data_dir} -o {output}" + (f" --tokenizer {tokenizer}" if tokenizer else "")
    summary = write_report(
        data_dir, output, tokenizer,
        on_problem=lambda message: print(f"nerelproc: {message}", file=sys.stderr),
        command=command,
    )
    figures = summary["all"]
    click.echo(
        f"{output}/README.md: {figures['documents']} documents, {figures['entities']} entities, "
        f"nested {figures['nested_share']:.1%}, flat-BIO ceiling {figures['flat_bio_ceiling']:.1%}, "
        f"per-type ceiling {figures['per_type_bio_ceiling']:.1%}, "
        f"{figures['relation_types_per_doc']:.1f} relation types/doc"
    )
