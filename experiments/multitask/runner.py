"""The joint-vs-separate experiment: a grid of training runs (configurations x seeds), run by run.

A grid file (``experiments/multitask/grid.json``) names the data, shared ``TrainConfig``
overrides, the configurations (name -> overrides), the seeds and a runs root. Each run
lives in ``RUNS_ROOT/NAME-sSEED``; it is finished when ``metrics.json`` exists. Running
the grid trains what is unfinished, resuming from a checkpoint where one exists, so the
grid continues across sittings (our machines cut work off after 3 hours). As soon as a
run finishes, its row goes into the per-run table (``reports/multitask_runs.csv``) and its
test predictions, compacted, and its dev history into ``reports/multitask/runs/`` (module
``predictions``): those files are the run's record, to commit on their own, and they
outlive the run folder. A row whose run folder is gone stays in the table. The analysis
(``report``) runs at the end.
"""

import csv
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from nerelproc.evaluation.score import HEADLINE, HEADLINE_LABELS, dig

# (table column, label, path into a score_documents dict)
METRICS = tuple((f"test_{name}_f1", HEADLINE_LABELS[name], path) for name, path in HEADLINE.items())
COLUMNS = (
    "run", "config", "seed", "hosts", "cpus", "device", "threads", "best_epoch", "epochs_run", "seconds_per_epoch",
    "train_seconds", "setup_seconds", *(column for column, _, _ in METRICS), "dev_selection",
    "sigma_ner", "sigma_cls", "config_matches_grid", "finished",
)
SITTINGS = "sittings.jsonl"
# Fields that do not change what is learned; a difference there is not a stale run.
IGNORED_FIELDS = ("threads", "extra", "device", "cache_dir", "checkpoint_every")  # how, not what, a run computes ("extra": old runs)


def _log(message):
    tqdm.write(message, file=sys.stderr)


class Grid:
    """A parsed grid file; relative paths in it are relative to ``base`` (from the file's folder)."""

    def __init__(self, path, runs_root=None, report=None):
        self.path = Path(path)
        self.spec = json.loads(self.path.read_text("utf-8"))
        self.base = Path(os.path.normpath(self.path.parent / self.spec.get("base", ".")))
        self.configs = self.spec["configs"]
        self.seeds = [int(seed) for seed in self.spec["seeds"]]
        # command-line overrides are relative to the working directory, as usual
        self.runs_root = Path(runs_root) if runs_root else self.resolve(self.spec.get("runs_root", "runs/multitask"))
        self.report = Path(report) if report else self.resolve(self.spec.get("report", "reports/multitask.md"))

    def resolve(self, path):
        path = Path(path)
        return path if path.is_absolute() else self.base / path

    def data(self, split):
        return self.resolve(self.spec["data"][split])

    @property
    def table(self):
        return self.report.with_name(self.report.stem + "_runs.csv")

    @property
    def figures(self):
        return self.report.with_suffix("")  # reports/multitask.md -> reports/multitask/

    @property
    def kept(self):
        """Where finished runs' records are kept: compact test predictions and dev histories."""
        return self.figures / "runs"

    @property
    def quality(self):
        return self.resolve(self.spec.get("quality", "benchmarks/quality.json"))

    @property
    def speed(self):
        return self.resolve(self.spec.get("speed", "benchmarks/results.json"))

    def plan(self, only=()):
        """``[(config, seed)]`` in grid order; ``only`` filters by run name ``NAME-sSEED``."""
        # Seed-major: a whole first replicate of every configuration comes before any second seed.
        runs = [(name, seed) for seed in self.seeds for name in self.configs]
        if not only:
            return runs
        wanted = [parse_run_name(name) for name in only]
        unknown = [run_name(*run) for run in wanted if run[0] not in self.configs]
        if unknown:
            raise ValueError(f"not in the grid: {', '.join(unknown)} (configurations: {', '.join(self.configs)})")
        return wanted

    def run_dir(self, name, seed):
        return self.runs_root / run_name(name, seed)

    def config(self, name, seed):
        """The ``TrainConfig`` of one run: defaults < shared < configuration < seed."""
        from nerelproc.training.config import TrainConfig

        options = {**self.spec.get("shared", {}), **self.configs[name], "seed": seed}
        for key in ("tasks", "weights"):  # JSON lists -> the tuples TrainConfig uses
            if key in options:
                options[key] = tuple(options[key])
        if options.get("cache_dir"):
            options["cache_dir"] = str(self.resolve(options["cache_dir"]))
        try:
            return TrainConfig(**options)
        except TypeError as error:
            raise ValueError(f"configuration {name!r}: {error}") from None


def run_name(name, seed):
    return f"{name}-s{seed}"


def parse_run_name(text):
    name, sep, seed = text.rpartition("-s")
    if not sep or not seed.isdigit():
        raise ValueError(f"run names look like NAME-sSEED, e.g. joint-uncertainty-s1; got {text!r}")
    return name, int(seed)


# ------------------------------------------------------------------------------ running


def run_grid(grid, only=(), log=_log, retrain_unkept=False):
    """Train every unfinished run of the plan; return ``(trained, skipped)`` run names.

    ``retrain_unkept``: also train again a run that is in the table but whose test predictions
    are not kept (its folder is gone): its row is replaced by the new run's when it finishes."""
    from nerelproc.training.config import CHECKPOINT
    from nerelproc.training.run import run

    trained, skipped = [], []
    plan = grid.plan(only)
    recorded = {row["run"] for row in read_table(grid.table)}
    for name, seed in tqdm(plan, desc="grid", file=sys.stderr, unit="run"):
        out, label = grid.run_dir(name, seed), run_name(name, seed)
        done, unkept = _finished(grid, name, seed, recorded, retrain_unkept)
        if done:
            log(f"{label}: finished, skipped" + (" (its test predictions are not kept: --retrain-unkept "
                                                 "trains it again)" if unkept else ""))
            skipped.append(label)
            continue
        config = grid.config(name, seed)
        _check_same_config(out, config)
        resume = (out / CHECKPOINT).exists()
        if not resume and (out / "metrics.jsonl").exists():
            # cut off between logging epoch 1 and its checkpoint: train.run would append to it
            (out / "metrics.jsonl").unlink()
        log(f"{label}: {'resuming' if resume else 'starting'} in {out}")
        _record_sitting(out, config, resume)
        run(config, grid.data("train"), grid.data("dev"), out, test_path=grid.data("test"), resume=resume)
        trained.append(label)
        # at once, not at the end of the grid: a finished run survives a cut-off later on
        files = record_run(grid, name, seed)
        log(f"{label}: finished; its record: {', '.join(map(str, files))}")
    return trained, skipped


def _finished(grid, name, seed, recorded, retrain_unkept=False):
    """``(finished, unkept)`` for one run: finished when its folder here has its metrics or the
    table has its row (a run in the table is finished even where its folder is not here: another
    machine's), unless ``retrain_unkept`` and its test predictions are not kept."""
    from experiments.multitask.predictions import stored_path

    label = run_name(name, seed)
    unkept = label in recorded and not stored_path(grid.kept, label).exists()
    done = (grid.run_dir(name, seed) / "metrics.json").exists() or (
        label in recorded and not (retrain_unkept and unkept))
    return done, unkept


def unfinished(grid, only=(), retrain_unkept=False):
    """``[(config, seed)]``: the runs of the plan that ``run_grid`` would train, in its order."""
    recorded = {row["run"] for row in read_table(grid.table)}
    return [(name, seed) for name, seed in grid.plan(only)
            if not _finished(grid, name, seed, recorded, retrain_unkept)[0]]


def keep_run(grid, name, seed):
    """Copy a finished run's test predictions (compacted) and dev history beside the report;
    return the files written ([] for a run not finished here)."""
    from experiments.multitask.predictions import history_path, store, store_history, stored_path

    out, label = grid.run_dir(name, seed), run_name(name, seed)
    if not (out / "metrics.json").exists():
        return []
    kept = []
    if (out / "test_predictions.jsonl").exists():
        kept.append(store(out / "test_predictions.jsonl", stored_path(grid.kept, label)))
    if (out / "metrics.jsonl").exists():
        kept.append(store_history(out / "metrics.jsonl", history_path(grid.kept, label)))
    return kept


def record_run(grid, name, seed):
    """Keep a finished run: its predictions and history beside the report, its row in the table.
    Returns the files that make up its record (what to commit for this run)."""
    kept = keep_run(grid, name, seed)
    write_table(grid)
    return [grid.table, *kept]


def record_all(grid):
    """``record_run`` for every finished run folder here (for runs that finished before the
    runner kept predictions, and for an analysis after runs trained elsewhere were copied in)."""
    for name, seed in grid.plan():
        keep_run(grid, name, seed)
    return write_table(grid)


def _comparable(config_dict):
    """A config as JSON types, without the fields that do not change results; a field it lacks
    (saved before the field existed) has its default, which is what such a run did."""
    from nerelproc.training.config import TrainConfig

    clean = json.loads(json.dumps({**asdict(TrainConfig()), **config_dict}))
    return {key: value for key, value in clean.items() if key not in IGNORED_FIELDS}


def _check_same_config(out, config):
    """Refuse to resume a run whose grid entry changed: its schedule and history would not match."""
    saved = out / "train_config.json"
    if not saved.exists():
        return
    before, now = _comparable(json.loads(saved.read_text("utf-8"))), _comparable(asdict(config))
    changed = sorted(key for key in set(before) | set(now) if before.get(key) != now.get(key))
    if changed:
        raise RuntimeError(
            f"{out} was started with other settings ({', '.join(changed)}); delete it to rerun with the grid's"
        )


def where():
    """Where this sitting runs: host, CPU model, what torch sees, the code's git head."""
    import torch

    from nerelproc.machine import cpu_model

    return {
        "host": socket.gethostname(),
        "cpu": cpu_model(),
        "cuda_available": bool(torch.cuda.is_available()),
        "torch": torch.__version__,
        "git": _git_head(),
    }


def _git_head():
    try:
        result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=10).stdout.strip()
        return result.stdout.strip() + ("+dirty" if dirty else "") if result.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _record_sitting(out, config, resume):
    import torch

    out.mkdir(parents=True, exist_ok=True)
    metrics = out / "metrics.jsonl"
    record = {
        **where(),
        "device": ("cuda" if torch.cuda.is_available() else "cpu") if config.device == "auto" else config.device,
        "threads": config.threads or torch.get_num_threads(),
        "resumed_after_epoch": sum(1 for _ in open(metrics, "rb")) if resume and metrics.exists() else 0,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    with open(out / SITTINGS, "a", encoding="utf-8") as file:
        file.write(json.dumps(record, ensure_ascii=False) + "\n")


# -------------------------------------------------------------------------------- table


def read_jsonl(path):
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def run_row(grid, name, seed):
    """One table row for a finished run, or None."""
    out = grid.run_dir(name, seed)
    if not (out / "metrics.json").exists():
        return None
    results = json.loads((out / "metrics.json").read_text("utf-8"))
    history, sittings = read_jsonl(out / "metrics.jsonl"), read_jsonl(out / SITTINGS)
    config = results["config"]
    last = history[-1] if history else {}
    # σ's mean something only where they were trained: joint runs with uncertainty weighting
    sigma = last.get("sigma", {}) if len(config["tasks"]) > 1 and config["weighting"] == "uncertainty" else {}
    matches = _comparable(config) == _comparable(asdict(grid.config(name, seed)))
    row = {
        "run": run_name(name, seed),
        "config": name,
        "seed": seed,
        "hosts": ";".join(dict.fromkeys(s["host"] for s in sittings)) or "unknown",
        # host names say little on rented machines ("vm"); the CPU says what a second is worth
        "cpus": ";".join(dict.fromkeys(s.get("cpu") or "unknown" for s in sittings)) or "unknown",
        "device": ";".join(dict.fromkeys(s.get("device", "cpu") for s in sittings)) or "unknown",
        "threads": ";".join(dict.fromkeys(str(s.get("threads", "")) for s in sittings)),
        "best_epoch": results["best_epoch"],
        "epochs_run": results["epochs_run"],
        "seconds_per_epoch": round(results["seconds_per_epoch"], 1),
        "train_seconds": round(results["train_seconds"], 1),
        # data preparation and the frozen-layer cache, last sitting only (train.py keeps no more)
        "setup_seconds": _round(results.get("setup_seconds_last_sitting"), 1),
        **{column: _round(dig(results.get("test"), path)) for column, _, path in METRICS},
        "dev_selection": _round(results["dev"]["selection"]),
        "sigma_ner": _round(sigma.get("ner")),
        "sigma_cls": _round(sigma.get("cls")),
        "config_matches_grid": "yes" if matches else "no",
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime((out / "metrics.json").stat().st_mtime)),
    }
    return row


def _round(value, digits=4):
    return None if value is None else round(float(value), digits)


def _cell(text):
    """A CSV cell back to what ``run_row`` wrote: '' -> None, numbers -> int/float, else text."""
    if text is None or text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_table(path):
    """The rows of a per-run CSV, typed as ``run_row`` makes them; [] if there is none."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, encoding="utf-8", newline="") as file:
        rows = [{key: _cell(value) for key, value in row.items()} for row in csv.DictReader(file)]
    for row in rows:
        row["run"], row["config"] = str(row["run"]), str(row["config"])
    return rows


def table_rows(grid):
    """Every finished run: rows from the run folders here, then rows of the table whose folder is
    not here (finished on another machine), in plan order; runs outside the plan last."""
    recorded = {row["run"]: row for row in read_table(grid.table)}
    rows = []
    for name, seed in grid.plan():
        row = run_row(grid, name, seed) or recorded.get(run_name(name, seed))
        if row is not None:
            rows.append(row)
    planned = {row["run"] for row in rows}
    return rows + [row for run, row in recorded.items() if run not in planned]


def write_table(grid):
    """Rewrite the per-run CSV: one row per finished run; a row is never dropped (idempotent)."""
    from nerelproc.io.writers import atomic_output

    rows = table_rows(grid)
    # columns this code does not know (a table written by a newer runner) are kept, not refused:
    # refusing them would leave a finished run out of the table
    fields = [*COLUMNS, *dict.fromkeys(key for row in rows for key in row if key not in COLUMNS)]
    with atomic_output(grid.table, mode="w") as file:
        writer = csv.DictWriter(file, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows({key: "" if value is None else value for key, value in row.items()} for row in rows)
    return rows


def train_options(grid, name, seed):
    """``nerelproc train`` options (``["--flag", "value", ...]``) that give one run's TrainConfig,
    the data and output aside: those that differ from the defaults."""
    from nerelproc.training.config import TrainConfig

    config, default = asdict(grid.config(name, seed)), asdict(TrainConfig())
    flag = {"weighting": "--loss-weighting", "batch_windows": "--batch-size"}
    options = []
    for key, value in config.items():
        if key == "max_train_docs" or value == default[key]:
            continue  # no CLI flag for these; defaults need none
        name = flag.get(key, "--" + key.replace("_", "-"))
        if isinstance(value, bool):  # an on/off flag whose default is off
            options.append(name)
            continue
        text = ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
        options += [name, text]
    return options


def train_command(grid, name, seed):
    """The equivalent ``nerelproc train`` command line of one run (for the report)."""
    parts = [
        "nerelproc train",
        f"--train {grid.spec['data']['train']}",
        f"--dev {grid.spec['data']['dev']}",
        f"--test {grid.spec['data']['test']}",
        f"-o {grid.spec.get('runs_root', 'runs/multitask')}/{run_name(name, seed)}",
    ]
    options = train_options(grid, name, seed)
    parts += [f"{flag} {value}" for flag, value in zip(options[::2], options[1::2])]
    return " ".join(parts) + " --resume"
