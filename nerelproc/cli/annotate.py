"""``nerelproc annotate``: the nightly batch job. Imports no torch, no transformers."""

import sys
from pathlib import Path

import click

from nerelproc.cli._app import main, one_line

EXIT_STATUS_HELP = """
Exit status: 0 all records annotated; 3 finished, but some records failed (each has an
error record in its place and a message on stderr), or --strict stopped at one (no output
file); 1 a fatal error: a bad model, an unreadable input, a full disk (no output file; a
partial one stays for --resume); 2 a usage error, before anything is read or written
(among them an OUTPUT that is the input, and a --resume refused: its partial belongs to
another input, model or options); 4 another run is writing OUTPUT (it holds .NAME.lock
beside it, or FOLDER/.lock): this run did nothing. Killed (SIGTERM: 143, SIGKILL: 137), a
run leaves its partial output, and --resume continues it to the bytes of an uninterrupted
run, or starts from the beginning when nothing was finished.
"""


@main.command(epilog=EXIT_STATUS_HELP)
@click.argument("input_path", metavar="INPUT")
@click.option("-o", "--output", default="-", show_default=True,
              help="JSONL file (NAME.jsonl.gz: gzipped), '-' for stdout, or a BRAT folder "
                   "(with --format brat or a trailing '/').")
@click.option("--format", "output_format", type=click.Choice(["auto", "jsonl", "brat"]), default="auto")
@click.option("--model", default=None,
              help="A bundled model by name, default or fast (smaller and faster), or a model directory.")
@click.option("--backend", type=click.Choice(["auto", "ct2", "torch"]), default="auto", show_default=True,
              help="Encoder runtime; torch needs the train extra and a model with encoder/.")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True,
              help="Windows per encoder call; only windows of equal length share a call, so the "
                   "output does not depend on it (one at a time measured fastest on 2 cores).")
@click.option("--buffer", type=click.IntRange(min=1), default=256, show_default=True,
              help="Documents read ahead.")
@click.option("--threads", type=click.IntRange(min=0), default=0, help="Windows encoded at once, one CPU core each (0: one per core).")
@click.option("--scores", is_flag=True, help="Also write relation_scores (probability per relation type).")
@click.option("--keep-input", is_flag=True,
              help="Keep the input's annotations as input_entities, input_relations, input_links.")
@click.option("--given-entities", is_flag=True,
              help="Keep the input's T-lines as the entities (ids, types, spans unchanged) and predict "
                   "the relations between them and the document's relation types.")
@click.option("--no-names", "no_names", is_flag=True,
              help="Leave out the entities' normal forms and groups (normal, groups; BRAT AnnotatorNotes).")
@click.option("--strict", is_flag=True, help="Stop at the first bad record (exit 3, no output file).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run into the same OUTPUT file.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def annotate(input_path, output, output_format, model, backend, batch_size, buffer, threads, scores,
             keep_input, given_entities, no_names, strict, resume, quiet):
    """Annotate INPUT (JSONL, .jsonl.gz, a BRAT folder, a text file, or '-' for stdin)."""
    from tqdm import tqdm

    from nerelproc.io.readers import read_records
    from nerelproc.jobs.annotate import (BratOutput, Options, StrictStop, annotate_records, check_output_path,
                                         output_lock)
    from nerelproc.jobs.exits import EXIT_FATAL, EXIT_LOCKED, EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE
    from nerelproc.jobs.lock import Locked
    from nerelproc.jobs.resume import ResumeMismatch, open_output, output_identity
    from nerelproc.runtime.api import Annotator
    from nerelproc.runtime.bundle import model_identity, resolve_model

    say = lambda message: click.echo(f"nerelproc annotate: {message}", err=True)  # noqa: E731
    report = lambda message: tqdm.write(f"nerelproc annotate: {message}", file=sys.stderr)  # noqa: E731
    brat = output_format == "brat" or (output_format == "auto" and output != "-" and output.endswith("/"))
    problem = check_output_path(output, brat, input_path)
    if problem is None and resume and (brat or output == "-"):
        problem = "--resume needs a JSONL output file"
    if problem:
        say(problem)
        sys.exit(EXIT_USAGE)
    if output != "-":  # one run per output: a second one stops here, before it reads or writes anything
        try:
            click.get_current_context().with_resource(output_lock(output, brat))  # held until the command ends
        except Locked as error:
            say(str(error))
            sys.exit(EXIT_LOCKED)
        except OSError as error:
            say(one_line(error))
            sys.exit(EXIT_FATAL)

    # Everything that can fail before the work starts fails here, with one line and no output file.
    options = Options(buffer=buffer, scores=scores, keep_input=keep_input, strict=strict,
                      given_entities=given_entities, names=not no_names)
    stats = digest = None
    try:
        model_dir = resolve_model(model)
        records = read_records(input_path)
        annotator = Annotator.load(model_dir, threads=threads, backend=backend, batch_windows=batch_size)
        if brat:
            out = BratOutput(output)
        else:
            identity = output_identity("-" if input_path == "-" else str(Path(input_path).resolve()),
                                       model_identity(model_dir), backend, options,
                                       input_size=None if input_path == "-" else _size(Path(input_path)))
            out, records, stats, digest = open_output(output, identity, lambda: records, resume=resume)
    except ResumeMismatch as error:
        say(f"--resume: {error}")
        sys.exit(EXIT_USAGE)
    except ModuleNotFoundError:
        raise  # the CLI says which extra to install
    except (OSError, ValueError, KeyError) as error:
        say(one_line(error))
        sys.exit(EXIT_FATAL)

    if out.restarted:
        report(f"--resume: {out.restarted}; starting from the beginning")
    if stats is not None:
        report(f"resuming after {stats.written} records already written")
    progress = tqdm(desc="annotate", unit="doc", file=sys.stderr, disable=quiet,
                    initial=stats.written if stats else 0)
    try:
        stats = annotate_records(records, annotator.predictor, options, out, report, progress, stats, digest)
        out.close()
    except StrictStop as stop:
        out.abandon()
        say(f"--strict: stopped at {stop}")
        sys.exit(EXIT_SOME_FAILED)
    except OSError as error:  # a full disk, a vanished folder: the partial file stays for --resume
        say(f"cannot write the output: {one_line(error)}")
        sys.exit(EXIT_FATAL)
    finally:
        progress.close()
    say(stats.summary())
    sys.exit(EXIT_SOME_FAILED if stats.failed else EXIT_OK)


def _size(path):
    return path.stat().st_size if path.is_file() else None

