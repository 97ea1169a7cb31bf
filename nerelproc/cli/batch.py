"""``nerelproc batch``: the nightly command over feed folders (incremental, cron-safe, optional Dask)."""

import re
import sys

import click

from nerelproc.cli._app import main

EXIT_STATUS_HELP = """
Exit status: 0 every input file annotated (or skipped as unchanged) and every record
annotated; 3 all files done, but some records failed (each has an error record in its
place); 1 a fatal error, or some input file could not be annotated at all (no output
for it; the next run retries it); 2 a usage error, before anything is written (among
them an output that would land on an input: an input inside OUT_DIR, or OUT_DIR reaching
an input through a link); 4 another run holds OUT_DIR (its lock file OUT_DIR/.lock): this
run did nothing. Killed (SIGTERM: 143, SIGKILL: 137), a run keeps the files it finished;
the next run resumes the interrupted one to the same bytes.
"""

SIZE = re.compile(r"^\s*(\d+)\s*([kmg]?)i?b?\s*$", re.IGNORECASE)


class ByteSize(click.ParamType):
    name = "SIZE"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        match = SIZE.match(str(value))
        if not match or int(match.group(1)) < 1:
            self.fail(f"{value!r} is not a size like 4M, 512K or 1048576", param, ctx)
        return int(match.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[match.group(2).lower()]


@main.command(epilog=EXIT_STATUS_HELP)
@click.argument("inputs", nargs=-1, required=True, metavar="INPUTS...")
@click.option("-o", "--output", "out_dir", required=True, metavar="OUT_DIR",
              help="Output folder: one output per input at the same relative path, and manifest.json.")
@click.option("--model", default=None,
              help="A bundled model by name, default or fast (smaller and faster), or a model directory.")
@click.option("--backend", type=click.Choice(["auto", "ct2", "torch"]), default="auto", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True,
              help="Windows per encoder call (the output does not depend on it).")
@click.option("--buffer", type=click.IntRange(min=1), default=256, show_default=True, help="Documents read ahead.")
@click.option("--threads", type=click.IntRange(min=0), default=0,
              help="Windows encoded at once, one core each (per worker with --dask); "
                   "0: all cores, shared out among the workers.")
@click.option("--scores", is_flag=True, help="Also write relation_scores.")
@click.option("--keep-input", is_flag=True, help="Keep the input's annotations (input_entities, input_relations, input_links).")
@click.option("--no-names", "no_names", is_flag=True, help="Leave out the entities' normal forms and groups (normal, groups).")
@click.option("--ignore-model-change", is_flag=True,
              help="Do not re-annotate files done with another model or other --scores/--keep-input/--backend.")
@click.option("--checksum", is_flag=True,
              help="Check every input's and output's sha256 instead of trusting unchanged size and mtime.")
@click.option("--dask", "dask_spec", default=None, metavar="local:N|tcp://HOST:PORT",
              help="Spread the work over Dask: N local worker processes, or an existing scheduler "
                   "(needs pip install 'nerelproc[dask]').")
@click.option("--part-size", type=ByteSize(), default="4M", show_default=True,
              help="With --dask: files larger than this are split into line ranges of about this size.")
@click.option("--min-age", type=click.FloatRange(min=0), default=0, metavar="SECONDS",
              help="Leave for a later run the inputs modified less than SECONDS ago (still being written).")
@click.option("--dry-run", is_flag=True, help="Only say which files would be annotated, and why.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def batch(inputs, out_dir, model, backend, batch_size, buffer, threads, scores, keep_input, no_names,
          ignore_model_change, checksum, dask_spec, part_size, min_age, dry_run, quiet):
    """Annotate the new and changed *.jsonl / *.jsonl.gz files of INPUTS (folders, searched
    recursively; quoted globs; files) into OUT_DIR, incrementally: OUT_DIR/manifest.json says
    what was done with which model, and a rerun annotates only new or changed inputs."""
    from nerelproc.jobs.batch import run_batch
    from nerelproc.jobs.batch_dask import MissingExtra
    from nerelproc.jobs.batch_manifest import one_line
    from nerelproc.jobs.exits import EXIT_FATAL, EXIT_LOCKED, EXIT_USAGE, UsageError
    from nerelproc.jobs.lock import Locked

    say = lambda message: click.echo(f"nerelproc batch: {message}", err=True)  # noqa: E731
    try:
        result = run_batch(inputs, out_dir, model, backend=backend, threads=threads, batch_size=batch_size,
                           buffer=buffer, scores=scores, keep_input=keep_input, names=not no_names,
                           ignore_model_change=ignore_model_change, checksum=checksum, dask=dask_spec,
                           part_size=part_size, min_age=min_age, progress=not quiet, dry_run=dry_run)
    except Locked as error:
        say(str(error))
        sys.exit(EXIT_LOCKED)
    except UsageError as error:
        say(str(error))
        sys.exit(EXIT_USAGE)
    except MissingExtra as error:
        say(str(error))
        sys.exit(EXIT_FATAL)
    except ModuleNotFoundError:
        raise  # the CLI says which extra to install
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        say(one_line(error))
        sys.exit(EXIT_FATAL)
    if dry_run:
        waiting = f", {len(result.waiting)} left for later (--min-age)" if result.waiting else ""
        say(f"{result.files} input files: {len(result.planned)} to annotate, {len(result.skipped)} unchanged{waiting}")
        sys.exit(0)
    say(result.summary())
    sys.exit(result.exit_code)
