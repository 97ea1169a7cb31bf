"""The joint-vs-single verdict over seeds and documents, the seed-to-seed spread, and the
record each finished run leaves (``experiments/multitask``): on synthetic runs, no training."""

import csv
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the study lives in the checkout (experiments/), not in the package

from experiments.multitask import stability  # noqa: E402
from experiments.multitask.predictions import load, store, stored_path  # noqa: E402
from experiments.multitask.runner import (COLUMNS, Grid, parse_run_name, read_table, record_run,  # noqa: E402
                                         run_grid, write_table)
from experiments.multitask.report import analyse, document_counts, f1  # noqa: E402
from nerelproc.io.document import Document  # noqa: E402
from nerelproc.io.writers import write_jsonl  # noqa: E402
from nerelproc.training.data import load_documents  # noqa: E402

CONFIGS = ("joint", "ner-only", "cls-only")


# ------------------------------------------------------------------------------ spread


def test_a_spread_needs_two_seeds_and_is_never_zero_for_one():
    one = stability.spread([0.8])
    assert one.n == 1 and one.std is None and one.range is None
    assert stability.describe(one) == "undefined (1 seed)"
    assert stability.describe(stability.spread([])) == stability.describe(stability.spread([None])) == "—"
    three = stability.spread([0.80, 0.82, 0.84])
    assert three.std == pytest.approx(0.02) and three.range == pytest.approx(0.04)
    assert stability.describe(three) == "0.0200 (range 0.0400, 3 seeds)"
    assert stability.spread([0.80, 0.90, 0.84]).std == pytest.approx(np.std([0.8, 0.9, 0.84], ddof=1))


def test_per_label_f1_and_the_sign_test():
    gold = [{"A"}, {"A", "B"}, set()]
    pred = [{"A"}, {"B", "C"}, {"A"}]
    scores = stability.label_f1(pred, gold, ["A", "B"])
    assert scores["A"] == pytest.approx(2 * 1 / (2 * 1 + 1 + 1))  # tp 1, fp 1, fn 1
    assert scores["B"] == 1.0
    assert stability.sign_test(10, 0) == pytest.approx(2 / 1024)
    assert stability.sign_test(5, 5) == 1.0 and stability.sign_test(0, 0) == 1.0
    assert stability.sign_test(2, 8) == stability.sign_test(8, 2) == pytest.approx(2 * 56 / 1024)


def _label_tables(seeds, labels, noise, rng):
    """``{seed: {label: F1}}`` around fixed per-label values, ``noise`` apart from seed to seed."""
    base = {label: 0.5 + 0.04 * i for i, label in enumerate(labels)}
    return {seed: {label: base[label] + noise * rng.standard_normal() for label in labels} for seed in seeds}


def test_label_spreads_say_which_configuration_moves_less():
    rng, labels = np.random.default_rng(0), [f"L{i}" for i in range(12)]
    steady, shaky = _label_tables((1, 2, 3), labels, 0.002, rng), _label_tables((1, 2, 3), labels, 0.05, rng)
    joint_steady = stability.label_spreads(steady, shaky)
    assert joint_steady["labels"] == 12 and joint_steady["joint_smaller"] == 12 and joint_steady["p"] < 0.05
    assert joint_steady["median_joint"] < joint_steady["median_single"]
    assert stability.stability_words(joint_steady) == "more stable"
    joint_shaky = stability.label_spreads(shaky, steady)
    assert joint_shaky["joint_larger"] == 12 and stability.stability_words(joint_shaky) == "less stable"
    alike = stability.label_spreads(_label_tables((1, 2, 3), labels, 0.03, rng),
                                    _label_tables((1, 2, 3), labels, 0.03, np.random.default_rng(1)))
    assert stability.stability_words(alike) == "no difference shown"
    # two seeds: a spread, but no words; one seed: no spread at all
    two = stability.label_spreads({s: steady[s] for s in (1, 2)}, {s: shaky[s] for s in (1, 2)})
    assert two["joint_smaller"] == 12 and stability.stability_words(two) is None
    assert stability.label_spreads({1: steady[1]}, shaky) is None


# ------------------------------------------------------------- seeds × documents test


def _counts(rng, docs, recall):
    gold = rng.integers(5, 30, docs)
    tp = rng.binomial(gold, recall)
    fp = rng.binomial(gold, 1 - recall)
    return np.stack([tp, fp, gold - tp], 1)


def test_the_verdict_words_follow_the_seed_document_bootstrap():
    rng = np.random.default_rng(2)
    better = [(_counts(rng, 90, 0.85), _counts(rng, 90, 0.6)) for _ in range(3)]
    result = stability.seed_document_bootstrap(better, resamples=1000, seed=0)
    assert result["delta"] == pytest.approx(np.mean(result["per_seed"])) and result["delta"] > 0.1
    assert result["per_seed"][0] == pytest.approx(float(f1(better[0][0].sum(0)) - f1(better[0][1].sum(0))))
    assert result["p"] < 0.05 and result["ci"][0] > 0 and stability.verdict_words(result) == "helps"
    worse = stability.seed_document_bootstrap([(b, a) for a, b in better], resamples=1000, seed=0)
    assert stability.verdict_words(worse) == "hurts" and worse["ci"][1] < 0
    noise = [(_counts(rng, 90, 0.7), _counts(rng, 90, 0.7)) for _ in range(3)]
    assert stability.verdict_words(stability.seed_document_bootstrap(noise, seed=0)) == "no difference shown"


def test_seeds_that_disagree_leave_no_finding_where_documents_alone_would():
    """Two seeds where joint is clearly better, one where it is clearly worse: resampling the
    documents alone calls the mean delta significant, resampling the seeds too does not."""
    rng = np.random.default_rng(4)
    pairs = [(_counts(rng, 90, 0.8), _counts(rng, 90, 0.7)), (_counts(rng, 90, 0.8), _counts(rng, 90, 0.7)),
             (_counts(rng, 90, 0.65), _counts(rng, 90, 0.8))]
    documents_only = stability.seed_document_bootstrap(pairs, seed=0, resample_seeds=False)
    both = stability.seed_document_bootstrap(pairs, seed=0)
    assert documents_only["delta"] == both["delta"] > 0
    assert documents_only["p"] < 0.05 and stability.verdict_words(documents_only) == "helps"
    assert both["p"] > 0.2 and stability.verdict_words(both) == "no difference shown"


def test_no_test_and_no_words_before_three_paired_seeds():
    rng = np.random.default_rng(5)
    joint = {s: _counts(rng, 40, 0.9) for s in (1, 2, 3)}
    single = {s: _counts(rng, 40, 0.5) for s in (1, 2, 3)}
    assert stability.assess(joint, single, 3, 3)["words"] == "helps"
    two = stability.assess({s: joint[s] for s in (1, 2)}, {s: single[s] for s in (1, 2)}, 2, 2)
    assert two == {"words": None, "seeds": [1, 2], "test": None}
    # three finished seeds each, but one run's predictions are not kept: two paired seeds
    unkept = stability.assess({s: joint[s] for s in (2, 3)}, single, 3, 3)
    assert unkept["words"] is None and unkept["seeds"] == [2, 3]
    assert stability.missing([(c, s) for s in (1, 2, 3) for c in CONFIGS], {"joint-s1", "cls-only-s1", "joint-s2"},
                             {"joint-s2"}, ("joint", "cls-only")) == (
        ["cls-only-s2", "joint-s3", "cls-only-s3"], ["joint-s1", "cls-only-s1"])


# ------------------------------------------------------------ the report, synthetic runs


def _system(gold, config, seed):
    """Synthetic test predictions: joint finds every CLS label in every seed; cls-only drops
    every label of an alphabetical third of them, a different third each seed (so joint is better
    and steadier); both NER configurations drop the same entity per document (no difference)."""
    docs = []
    for i, d in enumerate(gold):
        entities = [e for k, e in enumerate(sorted(d.entities, key=lambda e: e.key)) if k != i % 3]
        labels = d.relation_labels()
        if config == "cls-only":
            labels = [label for k, label in enumerate(labels) if (k + seed) % 3 != 0]
        docs.append(Document(d.id, d.text, entities if config != "cls-only" else [],
                             relation_types=labels if config != "ner-only" else []))
    return docs


def _row(grid, config, seed, predictions, gold):
    counts = document_counts(predictions, gold)
    tasks = grid.config(config, seed).tasks
    row = {column: "" for column in COLUMNS}
    row.update(run=f"{config}-s{seed}", config=config, seed=seed, hosts="elsewhere", device="cpu", threads=2,
               best_epoch=1, epochs_run=1, seconds_per_epoch=10.0, train_seconds=20.0, config_matches_grid="yes",
               test_ner_f1=round(float(f1(counts["ner"].sum(0))), 4) if "ner" in tasks else 0.0,
               test_cls_micro_f1=round(float(f1(counts["cls"].sum(0))), 4) if "cls" in tasks else 0.0,
               test_cls_macro_f1=0.5 + 0.01 * seed if "cls" in tasks else 0.0)
    return row


@pytest.fixture()
def synthetic_grid(tmp_path, nerel_dir):
    """A grid of 3 configurations × 3 seeds whose runs finished elsewhere: their rows in the
    table and their kept predictions, no run folder."""
    gold = load_documents(nerel_dir / "jsonl" / "dev.jsonl")[:12]
    write_jsonl(gold, tmp_path / "test.jsonl")
    spec = {
        "base": ".", "data": {"train": "test.jsonl", "dev": "test.jsonl", "test": "test.jsonl"},
        "runs_root": "runs", "report": "reports/grid.md", "quality": "none.json", "speed": "none.json",
        "seeds": [1, 2, 3], "shared": {"epochs": 1},
        "configs": {"joint": {"tasks": ["ner", "cls"]}, "ner-only": {"tasks": ["ner"]}, "cls-only": {"tasks": ["cls"]}},
        "comparisons": {"ner": {"single": "ner-only", "joint": ["joint"]},
                        "cls": {"single": "cls-only", "joint": ["joint"]}},
        "verdict_test": "seeds_and_documents", "bootstrap": {"resamples": 300, "seed": 0}, "qualitative_docs": 2,
    }
    (tmp_path / "grid.json").write_text(json.dumps(spec))
    grid = Grid(tmp_path / "grid.json")
    rows = []
    for seed in grid.seeds:
        for config in CONFIGS:
            predictions = _system(gold, config, seed)
            write_jsonl(predictions, tmp_path / "p.jsonl", relations=False)
            store(tmp_path / "p.jsonl", stored_path(grid.kept, f"{config}-s{seed}"))
            rows.append(_row(grid, config, seed, predictions, gold))
    grid.table.parent.mkdir(parents=True, exist_ok=True)
    with open(grid.table, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return grid


def _drop(grid, *runs, keep_row=False):
    """Take runs out of the record: their kept predictions, and their rows unless ``keep_row``."""
    for run in runs:
        stored_path(grid.kept, run).unlink()
    if not keep_row:
        rows = [row for row in read_table(grid.table) if row["run"] not in runs]
        with open(grid.table, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)


def _line(report, start):
    return next(line for line in report.splitlines() if line.startswith(start))


def test_the_report_gives_the_verdicts_and_the_stability_with_three_seeds(synthetic_grid):
    grid = synthetic_grid
    table_before = grid.table.read_bytes()
    verdicts = analyse(grid)["verdicts"]
    report = grid.report.read_text()
    assert grid.table.read_bytes() == table_before  # rows whose run folders are elsewhere are kept as they are
    assert verdicts == {"ner:joint": "inconclusive", "cls:joint": "confirmed"}
    assert _line(report, "**NER (nested micro-F1): ").startswith(
        "**NER (nested micro-F1): no difference shown (inconclusive); no difference, within chance** (joint vs "
        "ner-only: mean Δ +0.0000 over 3/3 seeds, seeds × documents bootstrap p = 1.000")
    assert _line(report, "**CLS (micro-F1): ").startswith("**CLS (micro-F1): joint training helps (confirmed)**")
    assert "| CLS (micro-F1) | joint vs cls-only | 3 | +" in report and "| **helps** |" in report
    stability_part = report.split("## Stability across seeds")[1].split("## Timing")[0]
    assert "**CLS stability: jointly trained CLS is more stable** (joint vs cls-only)." in stability_part
    assert "| CLS micro-F1 | 0.0000 (range 0.0000, 3 seeds) | 0.0" in stability_part  # joint finds every label
    assert "| CLS macro-F1 | 0.0100 (range 0.0200, 3 seeds) | 0.0100 (range 0.0200, 3 seeds) |" in stability_part
    assert "undefined (" not in stability_part and "| —" not in stability_part.split("### Every")[0]
    assert "waits for" not in report
    assert "Finished runs: 9 of 9. None missing." in report


def test_times_are_compared_between_runs_on_one_cpu_only(synthetic_grid):
    grid = synthetic_grid
    rows = read_table(grid.table)
    for row in rows:  # seed 1 on a slow CPU; the others on a fast one, joint as long as one single-task run
        slow = str(row["seed"]) == "1"
        row.update(cpus="Slow CPU" if slow else "Fast CPU", train_seconds=900.0 if slow else 100.0,
                   seconds_per_epoch=90.0 if slow else 10.0)
    with open(grid.table, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    analyse(grid)
    timing = grid.report.read_text().split("## Timing")[1].split("## Plots")[0]
    assert "| joint | Fast CPU | 2 | 10.0 | 100 | 200 |" in timing
    assert "| joint | Slow CPU | 1 | 90.0 | 900 | 900 |" in timing
    assert "on Fast CPU: cls-only + ner-only = 200 s; one joint model: joint 100 s (0.50×)" in timing
    assert "on Slow CPU: cls-only + ner-only = 1800 s; one joint model: joint 900 s (0.50×)" in timing


def test_the_verdict_turns_when_the_data_does(synthetic_grid):
    grid = synthetic_grid
    gold = load_documents(grid.data("test"))
    # cls-only now finds every label and joint drops a third of them, a different third each seed
    for seed in grid.seeds:
        joint, cls_only = _system(gold, "joint", seed), _system(gold, "cls-only", seed)
        swapped = {"joint": [Document(j.id, j.text, j.entities, relation_types=c.relation_types)
                             for j, c in zip(joint, cls_only)],
                   "cls-only": [Document(j.id, j.text, [], relation_types=j.relation_types) for j in joint]}
        for config, predictions in swapped.items():
            write_jsonl(predictions, grid.base / "p.jsonl", relations=False)
            store(grid.base / "p.jsonl", stored_path(grid.kept, f"{config}-s{seed}"))
    rows = read_table(grid.table)
    for row in rows:
        if row["config"] != "ner-only":
            predictions = load(stored_path(grid.kept, row["run"]), gold)
            row["test_cls_micro_f1"] = round(float(f1(document_counts(predictions, gold)["cls"].sum(0))), 4)
    with open(grid.table, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    assert analyse(grid)["verdicts"]["cls:joint"] == "refuted"
    report = grid.report.read_text()
    assert _line(report, "**CLS (micro-F1): ").startswith("**CLS (micro-F1): joint training hurts (refuted)**")
    assert "**CLS stability: jointly trained CLS is less stable**" in report


def test_fewer_than_three_seeds_give_no_verdict_and_name_the_missing_runs(synthetic_grid):
    grid = synthetic_grid
    _drop(grid, "cls-only-s3")
    analyse(grid)
    report = grid.report.read_text()
    assert "helps" not in _line(report, "**CLS (micro-F1): ")
    assert _line(report, "**CLS (micro-F1): ").startswith("**CLS (micro-F1): no verdict yet (too few seeds)")
    assert "Missing: cls-only-s3 (not started)." in report
    assert "**CLS stability: no verdict** (joint vs cls-only): it needs 3 seeds of each with their test " \
           "predictions kept. Not finished: cls-only-s3. Finished without kept predictions: none." in report
    assert "CLS (micro-F1) waits for: not finished: cls-only-s3" in report
    # a finished run whose predictions are not kept blocks the verdict too, and is named
    _drop(grid, "ner-only-s2", keep_row=True)
    analyse(grid)
    report = grid.report.read_text()
    assert _line(report, "**NER (nested micro-F1): ").startswith("**NER (nested micro-F1): no verdict yet")
    assert "finished without kept predictions: ner-only-s2." in report
    assert "`--retrain-unkept` trains them again): ner-only-s2." in report


def test_one_seed_has_no_spread_and_no_verdict(synthetic_grid):
    grid = synthetic_grid
    _drop(grid, *(f"{config}-s{seed}" for seed in (2, 3) for config in CONFIGS))
    analyse(grid)
    report = grid.report.read_text()
    stability_part = report.split("## Stability across seeds")[1].split("## Timing")[0]
    assert "| CLS micro-F1 | undefined (1 seed) | undefined (1 seed) |" in stability_part
    assert "| CLS macro-F1 | undefined (1 seed) | undefined (1 seed) |" in stability_part
    assert "0.0000" not in stability_part
    assert "The per-label spread needs 2 or more seeds of each with their predictions kept; there are 1 and 1." \
        in stability_part
    assert "**CLS stability: no verdict**" in stability_part and "CLS is more stable" not in stability_part
    for task in ("NER (nested micro-F1)", "CLS (micro-F1)"):
        assert _line(report, f"**{task}: ").startswith(f"**{task}: no verdict yet (too few seeds)")
    assert "| NER (nested micro-F1) | joint vs ner-only | 1 | — | — | — | — | no verdict (too few seeds) |" \
        in report


# --------------------------------------------------------------- a finished run's record


def _finish(grid, name, seed, gold):
    """What ``nerelproc train`` leaves in a run folder at the end, with synthetic predictions."""
    from nerelproc.evaluation.score import score_documents

    out = grid.run_dir(name, seed)
    out.mkdir(parents=True, exist_ok=True)
    predictions = _system(gold, name, seed)
    write_jsonl(predictions, out / "test_predictions.jsonl", relations=False)
    history = [{"epoch": 1, "selection": 0.5, "sigma": {}, "dev_ner_f1": 0.5, "dev_flat_f1": 0.5,
                "dev_cls_micro_f1": 0.5, "dev_cls_macro_f1": 0.4}]
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
    results = {"config": asdict(grid.config(name, seed)), "best_epoch": 1, "epochs_run": 1, "seconds_per_epoch": 5.0,
               "train_seconds": 6.0, "dev": history[0], "test": score_documents(predictions, gold, warn=lambda m: None)}
    (out / "metrics.json").write_text(json.dumps(results))
    return predictions


def test_a_run_is_recorded_when_it_finishes_and_outlives_its_folder(synthetic_grid, monkeypatch):
    import shutil

    from needs import need

    need("torch")  # the runner records where it ran with torch's view of the machine
    grid = synthetic_grid
    gold = load_documents(grid.data("test"))
    _drop(grid, "joint-s3", "cls-only-s3")
    predictions = _finish(grid, "joint", 3, gold)
    files = record_run(grid, "joint", 3)
    assert files[0] == grid.table and stored_path(grid.kept, "joint-s3") in files
    assert [row["run"] for row in read_table(grid.table)][-2:] == ["joint-s3", "ner-only-s3"]  # plan order
    kept = load(stored_path(grid.kept, "joint-s3"), gold)
    for task in ("ner", "cls"):  # the kept copy scores as the run's own predictions
        assert np.array_equal(document_counts(kept, gold)[task], document_counts(predictions, gold)[task])
    row = next(r for r in read_table(grid.table) if r["run"] == "joint-s3")
    shutil.rmtree(grid.run_dir("joint", 3))  # the machine is gone: the row stays
    assert next(r for r in write_table(grid) if r["run"] == "joint-s3") == row

    # the runner skips what the table holds, resumes a run with a checkpoint, records each run at once
    import nerelproc.training.run as training

    calls = []

    def fake_run(config, train, dev, out, test_path=None, resume=False):
        calls.append((Path(out).name, resume, [r["run"] for r in read_table(grid.table)]))
        _finish(grid, *parse_run_name(Path(out).name), gold)

    monkeypatch.setattr(training, "run", fake_run)
    grid.run_dir("cls-only", 3).mkdir(parents=True)
    (grid.run_dir("cls-only", 3) / "checkpoint.pt").write_bytes(b"")
    trained, skipped = run_grid(grid, log=lambda message: None)
    assert trained == ["cls-only-s3"] and len(skipped) == 8
    assert calls == [("cls-only-s3", True, [r["run"] for r in read_table(grid.table) if r["run"] != "cls-only-s3"])]
    assert "cls-only-s3" in {r["run"] for r in read_table(grid.table)}
    assert stored_path(grid.kept, "cls-only-s3").exists()

    # a recorded run without kept predictions is trained again only when asked
    stored_path(grid.kept, "ner-only-s1").unlink()
    calls.clear()
    assert run_grid(grid, log=lambda message: None)[0] == []
    monkeypatch.setattr(training, "run", lambda config, train, dev, out, test_path=None, resume=False:
                        calls.append((Path(out).name, resume)))
    run_grid(grid, log=lambda message: None, retrain_unkept=True)
    assert calls == [("ner-only-s1", False)]


def test_a_table_column_this_runner_does_not_know_is_kept(synthetic_grid):
    """A table written by a newer runner (one more column) takes this runner's rows too."""
    grid = synthetic_grid
    rows = read_table(grid.table)
    for row in rows:
        row["newer"] = "x"
    with open(grid.table, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=[*COLUMNS, "newer"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    written = write_table(grid)
    assert len(written) == 9 and all(row["newer"] == "x" for row in read_table(grid.table))


@pytest.mark.parametrize("grid_file", ["grid.json", "grid_full.json"])
def test_a_grids_records_are_not_ignored_by_git(grid_file):
    # the records are what outlives the machine: an ignore rule would drop them from every commit
    import shutil
    import subprocess

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    grid = Grid(ROOT / "experiments" / "multitask" / grid_file)
    records = [grid.table, grid.report, stored_path(grid.kept, "joint-uncertainty-s1"), grid.figures / "scatter.png"]
    ignored = subprocess.run(["git", "check-ignore", *map(str, records)], cwd=ROOT, capture_output=True, text=True)
    assert ignored.returncode == 1, f"ignored by git: {ignored.stdout}"
    run_folder = subprocess.run(["git", "check-ignore", "-q", str(grid.run_dir("joint-uncertainty", 1))], cwd=ROOT)
    assert run_folder.returncode == 0  # run folders (checkpoints) stay out of git


# ------------------------------------------------------------------------ on a lent GPU


def _kit(tmp_path):
    kit = tmp_path / ".device"
    (kit / "enc").mkdir(parents=True)
    (kit / "grid.sh").write_text("")
    return kit


def test_the_device_lines_train_each_unfinished_run_as_the_grid_says(synthetic_grid, tmp_path, monkeypatch):
    import shlex

    from click.testing import CliRunner
    from needs import need

    need("torch")  # nerelproc train's module
    import nerelproc.training.run as training
    from experiments.multitask import device
    from experiments.multitask.runner import _comparable
    from nerelproc.cli import main as cli

    grid = synthetic_grid
    _drop(grid, "joint-s3", "cls-only-s3")
    _drop(grid, "ner-only-s1", keep_row=True)  # in the table, its predictions not kept
    kit = _kit(tmp_path)
    assert device.prepare(grid, kit) == ["joint-s3", "cls-only-s3"]
    assert device.prepare(grid, kit, retrain_unkept=True) == ["ner-only-s1", "joint-s3", "cls-only-s3"]
    lines = (kit / device.LINES).read_text().splitlines()
    script = (kit / device.SCRIPT).read_text()
    assert "bash $K/grid.sh $K/multitask.txt $SECS" in script and "*/run/{metrics.json,metrics.jsonl," in script

    configs = []
    monkeypatch.setattr(training, "run", lambda config, *args, **kwargs: configs.append(config))
    for line in lines:
        name, *options = shlex.split(line)
        # what the kit's grid.sh puts before a line's options
        kit_options = ["--encoder", "/tmp/enc", "--threads", "4", "--train", "t", "--dev", "d", "-o", "out"]
        result = CliRunner().invoke(cli, ["train", *kit_options, *options])
        assert result.exit_code == 0, result.output
        config = configs[-1]
        assert config.encoder == "default" and config.threads == 4  # the grid's encoder; the kit's threads
        assert _comparable(asdict(config)) == _comparable(asdict(grid.config(*parse_run_name(name))))
        assert options[options.index("--test") + 1] == ".device/data/test.jsonl"


def test_the_device_runs_are_placed_recorded_and_never_replace_one(synthetic_grid, tmp_path):
    import shutil
    import tarfile

    import click

    from experiments.multitask import device

    grid = synthetic_grid
    gold = load_documents(grid.data("test"))
    _drop(grid, "joint-s3", "cls-only-s3")
    staged = tmp_path / "staged"
    _finish(grid, "joint", 3, gold)
    shutil.move(str(grid.run_dir("joint", 3)), staged / "joint-s3" / "run")
    (staged / "cls-only-s3" / "run").mkdir(parents=True)  # cut off by the kit's time limit: no metrics.json
    (staged / "cls-only-s3" / "run" / "metrics.jsonl").write_text("")
    (staged / "gpu.txt").write_text("NVIDIA H100 80GB HBM3\n")
    with tarfile.open(tmp_path / "runs.tar.gz", "w:gz") as tar:
        for path in ("gpu.txt", "joint-s3", "cls-only-s3"):
            tar.add(staged / path, arcname=path)

    assert device.collect(grid, tmp_path) == (["joint-s3"], ["cls-only-s3"])
    assert not grid.run_dir("cls-only", 3).exists()
    write_table(grid)
    row = next(r for r in read_table(grid.table) if r["run"] == "joint-s3")
    assert row["cpus"] == "GPU: NVIDIA H100 80GB HBM3" and row["device"] == "cuda"
    assert row["config_matches_grid"] == "yes"
    with pytest.raises(click.ClickException, match="holds a finished run already"):
        device.collect(grid, tmp_path / "runs.tar.gz")


def test_an_on_off_setting_of_a_grid_is_one_train_flag(tmp_path, monkeypatch):
    from click.testing import CliRunner
    from needs import need

    need("torch")  # nerelproc train's module
    import nerelproc.training.run as training
    from experiments.multitask.runner import train_options
    from nerelproc.cli import main as cli

    spec = {"base": ".", "data": {"train": "t", "dev": "d", "test": "t"}, "seeds": [1], "shared": {"epochs": 1},
            "configs": {"spans": {"tasks": ["ner"], "span_head": True}, "tags": {"tasks": ["ner"]}}}
    (tmp_path / "grid.json").write_text(json.dumps(spec))
    grid = Grid(tmp_path / "grid.json")
    options = train_options(grid, "spans", 1)
    assert "--span-head" in options and "--span-head" not in train_options(grid, "tags", 1)
    configs = []
    monkeypatch.setattr(training, "run", lambda config, *args, **kwargs: configs.append(config))
    result = CliRunner().invoke(cli, ["train", "--train", "t", "--dev", "d", "-o", "out", *options])
    assert result.exit_code == 0, result.output
    assert configs[0] == grid.config("spans", 1)
