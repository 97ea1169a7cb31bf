"""The joint-vs-separate experiment: a grid of training runs (configurations x seeds), run by run.

A grid file (``experiments/multitask/grid.json``) names the data, shared ``TrainConfig``
overrides, the configurations (name -> overrides), the seeds and a runs root. Each run
lives in ``RUNS_ROOT/NAME-sSEED``; it is finished when ``metrics.json`` exists. Running
the grid trains what is unfinished, resuming from a checkpoint where one exists, so the
grid continues across sittings (our machines cut work off after 3 hours). After each
finished run the per-run table (``reports/multitask_runs.csv``) is rewritten from the
run folders, so it is always exactly "what has finished"; the analysis
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
    "run", "config", "seed", "hosts", "device", "threads", "best_epoch", "epochs_run", "seconds_per_epoch",
    "train_seconds", "setup_seconds", *(column for column, _, _ in METRICS), "dev_selection",
    "sigma_ner", "sigma_cls", "config_matches_grid", "finished",
)
SITTINGS = "sittings.jsonl"
# Fields that do not change what is learned; a difference there is not a stale run.
IGNORED_FIELDS = ("threads", "extra", "device", "cache_dir")  # how, not what, a run computes ("extra": old runs)


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


def run_grid(grid, only=(), log=_log):
    """Train every unfinished run of the plan; return ``(trained, skipped)`` run names."""
    from nerelproc.training.config import CHECKPOINT
    from nerelproc.training.run import run

    trained, skipped = [], []
    plan = grid.plan(only)
    for name, seed in tqdm(plan, desc="grid", file=sys.stderr, unit="run"):
        out, label = grid.run_dir(name, seed), run_name(name, seed)
        if (out / "metrics.json").exists():
            log(f"{label}: finished, skipped")
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
        write_table(grid)  # after every finished run: the table survives a cut-off later on
    return trained, skipped


def _comparable(config_dict):
    """A config as JSON types, without the fields that do not change results."""
    clean = json.loads(json.dumps(config_dict))
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
    """Where this sitting runs: host, what torch sees, the code's git head."""
    import torch

    return {
        "host": socket.gethostname(),
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


def table_rows(grid):
    rows = (run_row(grid, name, seed) for name, seed in grid.plan())
    return [row for row in rows if row is not None]


def write_table(grid):
    """Rewrite the per-run CSV from the run folders (idempotent: a finished run is one row)."""
    from nerelproc.io.writers import atomic_output

    rows = table_rows(grid)
    with atomic_output(grid.table, mode="w") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({key: "" if value is None else value for key, value in row.items()} for row in rows)
    return rows


def train_command(grid, name, seed):
    """The equivalent ``nerelproc train`` command line of one run (for the report)."""
    from nerelproc.training.config import TrainConfig

    config, default = asdict(grid.config(name, seed)), asdict(TrainConfig())
    flag = {"weighting": "--loss-weighting", "batch_windows": "--batch-size"}
    parts = [
        "nerelproc train",
        f"--train {grid.spec['data']['train']}",
        f"--dev {grid.spec['data']['dev']}",
        f"--test {grid.spec['data']['test']}",
        f"-o {grid.spec.get('runs_root', 'runs/multitask')}/{run_name(name, seed)}",
    ]
    for key, value in config.items():
        if key == "max_train_docs" or value == default[key]:
            continue  # no CLI flag for these; defaults need none
        text = ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
        parts.append(f"{flag.get(key, '--' + key.replace('_', '-'))} {text}")
    return " ".join(parts) + " --resume"
