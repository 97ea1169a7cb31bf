"""The grid's unfinished runs on a lent GPU, in one call of the device kit (``../shared/device``).

    bash ../shared/device/prepare.sh                                   # the kit's .device/
    python -m experiments.multitask.device prepare experiments/multitask/grid_full.json [--retrain-unkept]
    # one device call: bash .device/multitask.sh 420   (carry .device; a 560 s limit)
    python -m experiments.multitask.device collect experiments/multitask/grid_full.json OUT_FOLDER
    bash ../shared/device/restore.sh

``prepare`` writes ``.device/multitask.txt``, one line per run that ``python -m
experiments.multitask`` would train here (``NAME-sSEED`` and its ``nerelproc train`` options,
``--test`` the kit's test split), and ``.device/multitask.sh``, which runs them with the kit's
``grid.sh`` and brings back what makes a run's record here: each run's ``metrics.json``,
``metrics.jsonl``, ``test_predictions.jsonl`` and ``train_config.json`` in ``runs.tar.gz``,
and the GPU's name (``gpu.txt``). The runs train the grid's own encoder (``--encoder default``): the kit's
unpacked copy of it, which matches the one built here byte for byte, is put where ``default``
is looked for, so a row's ``config_matches_grid`` holds.

``collect`` puts each finished run's folder under the grid's ``runs_root`` (it never replaces
a run that has finished there), notes where it ran (``sittings.jsonl``: the GPU), and records
every finished run and writes the report, as ``--analyse-only`` does. A run the kit's time
limit cut off has no ``metrics.json``: it is left out, and named.
"""

import json
import shlex
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

import click

from experiments.multitask.runner import SITTINGS, Grid, parse_run_name, run_name, train_options, unfinished

KIT = Path(".device")
LINES = "multitask.txt"
SCRIPT = "multitask.sh"
RECORD_FILES = ("metrics.json", "metrics.jsonl", "test_predictions.jsonl", "train_config.json")
# how a run is computed, not what: the kit sets these for the GPU machine
LEFT_TO_THE_KIT = ("--threads", "--device", "--cache-dir")

RUNNER = """#!/usr/bin/env bash
# Runs THERE (the GPU machine), from the project root: bash .device/{script} TRAIN_SECONDS
# Written by python -m experiments.multitask.device prepare; each line of .device/{lines} is a run.
set -u
K=$(cd "$(dirname "$0")" && pwd); SECS=${{1:-420}}
export PYTHONPATH=$PWD NERELPROC_HOME=/tmp/nerelproc-home
# the kit's unpacked encoder is the grid's "default" one: put it where "default" is looked for
[ -f /tmp/enc/config.json ] || python3 $K/unpack_encoder.py . $K/enc /tmp/enc 2>&1 | tail -1
mkdir -p $NERELPROC_HOME/encoders && ln -sfn /tmp/enc $NERELPROC_HOME/encoders/e5-small-ru
bash $K/grid.sh $K/{lines} $SECS
python3 -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" > /tmp/grid/gpu.txt
(cd /tmp/grid && tar czf $OUT/runs.tar.gz gpu.txt $(ls -d */run/{{{files}}} 2>/dev/null))
"""


def device_lines(grid, runs):
    """``NAME-sSEED options`` per run: the options that give its TrainConfig, with the grid's own
    encoder, and the kit's test split so that the run scores itself there."""
    lines = []
    for name, seed in runs:
        options = train_options(grid, name, seed)
        pairs = [(flag, value) for flag, value in zip(options[::2], options[1::2]) if flag not in LEFT_TO_THE_KIT]
        pairs += [("--encoder", "default"), ("--test", f"{KIT}/data/test.jsonl")]
        lines.append(" ".join([run_name(name, seed), *(f"{flag} {shlex.quote(value)}" for flag, value in pairs)]))
    return lines


def prepare(grid, kit=KIT, only=(), retrain_unkept=False):
    """Write the kit's run lines and runner for the runs to train; return those runs' names."""
    if not (kit / "grid.sh").exists() or not (kit / "enc").is_dir():
        raise click.ClickException(f"{kit}/ has no kit: run bash ../shared/device/prepare.sh first")
    runs = unfinished(grid, only, retrain_unkept)
    (kit / LINES).write_text("".join(line + "\n" for line in device_lines(grid, runs)), "utf-8")
    (kit / SCRIPT).write_text(RUNNER.format(script=SCRIPT, lines=LINES, files=",".join(RECORD_FILES)), "utf-8")
    return [run_name(*run) for run in runs]


def collect(grid, results):
    """Put the finished runs of ``results`` (a folder with ``runs.tar.gz``, or the archive) in
    place; return ``(placed, cut_off)`` run names."""
    archive = Path(results)
    archive = archive / "runs.tar.gz" if archive.is_dir() else archive
    placed, cut_off = [], []
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")
        gpu = (Path(tmp) / "gpu.txt").read_text("utf-8").strip() if (Path(tmp) / "gpu.txt").exists() else ""
        for folder in sorted(p for p in Path(tmp).iterdir() if p.is_dir()):
            name, seed = parse_run_name(folder.name)
            run = folder / "run"
            if not (run / "metrics.json").exists():
                cut_off.append(folder.name)
                continue
            out = grid.run_dir(name, seed)
            if (out / "metrics.json").exists():
                raise click.ClickException(f"{out} holds a finished run already; move it away to take the device's")
            out.mkdir(parents=True, exist_ok=True)
            for file in RECORD_FILES:
                if (run / file).exists():
                    shutil.copyfile(run / file, out / file)
            # what a second of the run is worth: the GPU's name (none: the kit ran on a CPU)
            sitting = {"host": "device", "cpu": f"GPU: {gpu}" if gpu else "device kit, no GPU",
                       "device": "cuda" if gpu else "cpu", "resumed_after_epoch": 0}
            with open(out / SITTINGS, "a", encoding="utf-8") as file:
                file.write(json.dumps(sitting, ensure_ascii=False) + "\n")
            placed.append(folder.name)
    return placed, cut_off


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """The grid's unfinished runs in one call of the device kit (see the module's docstring)."""


@main.command("prepare")
@click.argument("grid_file", metavar="GRID.json", type=click.Path(exists=True, dir_okay=False))
@click.option("--only", multiple=True, metavar="NAME-sSEED", help="Only these runs (repeatable).")
@click.option("--retrain-unkept", is_flag=True, help="Also runs in the table whose test predictions are not kept.")
@click.option("--kit", default=str(KIT), show_default=True, help="The kit's folder (bash ../shared/device/prepare.sh).")
def prepare_command(grid_file, only, retrain_unkept, kit):
    """Write the kit's run lines and runner for GRID.json's unfinished runs."""
    runs = prepare(Grid(grid_file), Path(kit), only, retrain_unkept)
    click.echo(f"{len(runs)} runs: {', '.join(runs) or 'none'}", err=True)
    click.echo(f"device call: bash {kit}/{SCRIPT} 420 (carry {kit}; a 560 s limit)", err=True)
    if not runs:
        sys.exit(1)


@main.command("collect")
@click.argument("grid_file", metavar="GRID.json", type=click.Path(exists=True, dir_okay=False))
@click.argument("results", type=click.Path(exists=True))
def collect_command(grid_file, results):
    """Place the device's finished runs (RESULTS: the call's files, or runs.tar.gz) and report."""
    from experiments.multitask.report import analyse

    grid = Grid(grid_file)
    placed, cut_off = collect(grid, results)
    click.echo(f"placed: {', '.join(placed) or 'none'}", err=True)
    if cut_off:
        click.echo(f"cut off by the time limit, not recorded: {', '.join(cut_off)}", err=True)
    paths = analyse(grid, grid_file)
    for key in ("report", "table", "figures"):
        click.echo(paths[key])
    sys.exit(0 if placed and not cut_off else 1)


if __name__ == "__main__":
    main(prog_name="python -m experiments.multitask.device")
