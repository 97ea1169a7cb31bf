"""``python -m experiments.multitask GRID.json``: the multi-task grid, run by run, then its report."""

import sys

import click

@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("grid_file", metavar="GRID.json", type=click.Path(exists=True, dir_okay=False))
@click.option("--only", multiple=True, metavar="NAME-sSEED",
              help="Run only these runs (repeatable), e.g. --only joint-uncertainty-s1.")
@click.option("--report", default=None, help="Report path (default: the grid's, reports/multitask.md); "
              "the run table and plots go beside it (NAME_runs.csv, NAME/).")
@click.option("--runs-root", default=None, help="Folder of the run folders (default: the grid's runs_root).")
@click.option("--analyse-only", is_flag=True, help="Train nothing; write the report from the finished runs.")
@click.option("--retrain-unkept", is_flag=True, help="Also train again finished runs whose test predictions "
              "are not kept beside the report (the verdict needs them); each one's row is replaced when it finishes.")
def main(grid_file, only, report, runs_root, analyse_only, retrain_unkept):
    """Train every unfinished (configuration, seed) run of GRID.json, then analyse.

    A run is finished when RUNS_ROOT/NAME-sSEED/metrics.json exists or the run table has its
    row, and is skipped; an interrupted one resumes from its checkpoint (as `nerelproc train
    --resume`). As soon as a run finishes, its row goes into the run table and its test
    predictions and dev history beside the report (NAME/runs/): its record, to commit on its
    own. The report covers whatever has finished and lists what is missing.
    """
    from experiments.multitask.runner import Grid, run_grid
    from experiments.multitask.report import analyse

    try:
        grid = Grid(grid_file, runs_root=runs_root, report=report)
        if not analyse_only:
            run_grid(grid, only, retrain_unkept=retrain_unkept)
    except (ValueError, RuntimeError) as error:
        click.echo(f"experiments.multitask: {error}", err=True)
        sys.exit(2)
    paths = analyse(grid, grid_file)
    for key in ("report", "table", "figures"):
        click.echo(paths[key])
