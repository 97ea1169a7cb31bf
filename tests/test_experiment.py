"""The multi-task study (``python -m experiments.multitask``): a tiny grid end to end (resumable, skips finished runs) and the bootstrap."""

import csv
import json
import sys
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from needs import need

ROOT = Path(__file__).resolve().parents[1]

need("torch")  # the study trains: a skip without torch, a failure under CI
need("transformers")

from click.testing import CliRunner  # noqa: E402

sys.path.insert(0, str(ROOT))  # the study lives in the checkout (experiments/), not in the package
from experiments.multitask.cli import main  # noqa: E402
from experiments.multitask.runner import Grid, parse_run_name  # noqa: E402
from experiments.multitask.report import (document_counts, f1, fmt, headline, paired_bootstrap,  # noqa: E402
                                         seeded_verdict, verdict)
from nerelproc.evaluation.score import score_documents  # noqa: E402
from nerelproc.training.data import load_documents  # noqa: E402
from nerelproc.io.writers import write_jsonl  # noqa: E402


@pytest.fixture(scope="module")
def grid_file(tmp_path_factory, nerel_dir, tiny_encoder):
    root = tmp_path_factory.mktemp("grid")
    docs = load_documents(nerel_dir / "jsonl" / "dev.jsonl")
    for split, part in (("train", docs[:6]), ("dev", docs[6:10]), ("test", docs[10:14])):
        write_jsonl(part, root / f"{split}.jsonl")
    spec = {
        "base": ".",  # relative paths below are relative to the grid file's folder
        "data": {"train": "train.jsonl", "dev": "dev.jsonl", "test": "test.jsonl"},
        "runs_root": "runs",
        "report": "reports/multitask.md",
        "quality": "benchmarks/quality.json",
        "seeds": [1],
        "min_seeds": 1,  # a verdict from one seed, to check how it is computed
        "shared": {"encoder": str(tiny_encoder), "epochs": 1, "max_length": 64, "threads": 1, "lr": 1e-3},
        "configs": {"joint": {"tasks": ["ner", "cls"]}, "ner-only": {"tasks": ["ner"]}, "cls-only": {"tasks": ["cls"]}},
        "comparisons": {"ner": {"single": "ner-only", "joint": ["joint"]},
                        "cls": {"single": "cls-only", "joint": ["joint"]}},
        "bootstrap": {"resamples": 200, "seed": 0},
        "qualitative_docs": 4,
    }
    path = root / "grid.json"
    path.write_text(json.dumps(spec))
    return path


def invoke(*args):
    result = CliRunner().invoke(main, [*map(str, args)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def mtimes(root):
    return {p.parent.name: p.stat().st_mtime_ns for p in root.glob("*/metrics.json")}


@pytest.fixture(scope="module")
def grid_runs(grid_file):
    """The tiny grid run in two sittings, as the study runs: two runs, then the whole grid.
    What each sitting left (run mtimes, the report) is kept for the tests to check."""
    root, grid = grid_file.parent, Grid(grid_file)
    first = invoke(grid_file, "--only", "joint-s1", "--only", "ner-only-s1")
    seen = {"first_stdout": first.stdout, "first": mtimes(root / "runs"), "first_report": grid.report.read_text()}
    invoke(grid_file)
    seen.update(second=mtimes(root / "runs"), report=grid.report.read_text())
    return SimpleNamespace(grid=grid, root=root, **seen)


def test_grid_runs_run_by_run_and_reports(grid_runs):
    root, grid, first, second = grid_runs.root, grid_runs.grid, grid_runs.first, grid_runs.second
    grid_file = grid.path

    # a first sitting: two of the three runs
    assert str(grid.report) in grid_runs.first_stdout
    assert set(first) == {"joint-s1", "ner-only-s1"}
    assert "cls-only-s1 (not started)" in grid_runs.first_report

    # the whole grid: the finished runs are skipped, the third one trained
    assert set(second) == {"joint-s1", "ner-only-s1", "cls-only-s1"}
    assert all(second[name] == first[name] for name in first)

    rows = list(csv.DictReader(open(grid.table)))
    assert [row["run"] for row in rows] == ["joint-s1", "ner-only-s1", "cls-only-s1"]
    joint = rows[0]
    assert joint["device"] == "cpu" and joint["hosts"] and joint["config_matches_grid"] == "yes"
    assert joint["sigma_ner"] and not rows[1]["sigma_ner"]
    gold = load_documents(grid.data("test"))
    predictions = {}
    for row in rows:  # the table's figures are the scores of the run's own test predictions
        name, seed = parse_run_name(row["run"])
        predictions[name] = load_documents(grid.run_dir(name, seed) / "test_predictions.jsonl")
        scores = score_documents(predictions[name], gold, warn=lambda m: None)
        if row["test_ner_f1"]:
            assert float(row["test_ner_f1"]) == round(scores["ner"]["micro"]["f1"], 4)
        if row["test_cls_micro_f1"]:
            assert float(row["test_cls_micro_f1"]) == round(scores["cls"]["micro"]["f1"], 4)

    report = grid_runs.report
    assert "None missing." in report
    for task, single, column in (("ner", "ner-only", "test_ner_f1"), ("cls", "cls-only", "test_cls_micro_f1")):
        # the verdict recomputed from the predictions: one seed, so the mean delta is the table's delta
        a = document_counts(predictions["joint"], gold)[task]
        b = document_counts(predictions[single], gold)[task]
        boot = paired_bootstrap(a, b, resamples=200, seed=0)
        by_run = {row["run"]: float(row[column]) for row in rows}
        expected = verdict(by_run["joint-s1"] - by_run[f"{single}-s1"], boot)
        name = {"ner": "NER (nested micro-F1)", "cls": "CLS (micro-F1)"}[task]
        line = next(line for line in report.splitlines() if line.startswith(f"**{name}: "))
        words = headline(expected, by_run["joint-s1"] - by_run[f"{single}-s1"])
        assert line.startswith(f"**{name}: {words}** (joint vs {single}: ")
        assert f"bootstrap p = {fmt(boot['p'], 3)}" in line
    assert "## int8 vs fp32" in report and "Not measured yet" in report
    assert "## Inference cost" in report and "cls-only + ner-only = " in report and "Training cost of what a deployment needs, on " in report
    errors = report.split("### NER errors by kind")[1].split("## ")[0]
    assert "| joint | 1 |" in errors and "| ner-only | 1 |" in errors and "cls-only |" not in errors
    assert "joint minus ner-only, entities per kind: exact " in errors
    assert "--only joint-s1" in report and "## Where joint and single-task disagree most" in report
    runs_rows = {line.split(" | ")[0].strip("| "): line for line in report.split("## Runs")[1].splitlines()
                 if line.startswith("| ") and "-s1" in line}
    assert runs_rows["ner-only-s1"].count("(not trained)") == 2  # CLS micro and macro
    assert runs_rows["cls-only-s1"].count("(not trained)") == 1 and "(not trained)" not in runs_rows["joint-s1"]
    for png in ("scatter", "curves", "ner_deltas", "cls_deltas"):
        assert (grid.figures / f"{png}.png").stat().st_size > 1000

    # analysis only: nothing retrained; the int8 section reads the benchmark file
    (root / "benchmarks").mkdir(exist_ok=True)
    scores = {"ner": {"micro": {"f1": 0.8}, "flat": {"f1": 0.82}, "coarse": {"micro": {"f1": 0.9}}},
              "cls": {"micro": {"f1": 0.7}, "macro": {"f1": 0.5}, "samples": {"f1": 0.6}}}
    (root / "benchmarks" / "quality.json").write_text(json.dumps({"fp32": scores, "int8": scores}))
    speed = [{"setup": setup, "docs": 93, "docs_per_second": rate, "chars_per_second": 1000, "load_seconds": 0.3,
              "peak_rss_mb": 300} for setup, rate in (("int8-joint", 4.0), ("int8-separate", 2.0))]
    (root / "benchmarks" / "results.json").write_text(json.dumps({"speed": speed, "ratios": {"joint / separate": 2.0}}))
    invoke(grid_file, "--analyse-only")
    assert mtimes(root / "runs") == second
    report = grid.report.read_text()
    assert "From `" in report and "| int8-separate | 93 | 2.00 |" in report and "joint / separate: 2.00×" in report


def test_document_counts_agree_with_the_scorer(grid_runs):
    grid = grid_runs.grid
    out = grid.run_dir("joint", 1)
    gold = load_documents(grid.data("test"))
    predicted = load_documents(out / "test_predictions.jsonl")
    counts, scores = document_counts(predicted, gold), score_documents(predicted, gold, warn=lambda m: None)
    assert f1(counts["ner"].sum(0)) == pytest.approx(scores["ner"]["micro"]["f1"])
    assert f1(counts["cls"].sum(0)) == pytest.approx(scores["cls"]["micro"]["f1"])


def test_resuming_with_changed_settings_is_refused(grid_file, tmp_path):
    from experiments.multitask.runner import _check_same_config

    grid = Grid(grid_file)
    out = tmp_path / "run"
    out.mkdir()
    saved = {**asdict(grid.config("joint", 1)), "epochs": 7, "threads": 9}  # threads do not count
    (out / "train_config.json").write_text(json.dumps(saved))
    with pytest.raises(RuntimeError, match="epochs"):
        _check_same_config(out, grid.config("joint", 1))


def test_a_run_saved_before_a_setting_existed_has_that_settings_default(grid_file, tmp_path):
    """A train_config.json without a field added later (``span_head``) is the same setup as the
    grid's when the grid leaves that field at its default, and another one when it does not."""
    from experiments.multitask.runner import _check_same_config, _comparable

    grid = Grid(grid_file)
    config = asdict(grid.config("joint", 1))
    older = {key: value for key, value in config.items() if key != "span_head"}
    assert _comparable(older) == _comparable(config)
    out = tmp_path / "run"
    out.mkdir()
    (out / "train_config.json").write_text(json.dumps(older))
    _check_same_config(out, grid.config("joint", 1))
    assert _comparable(older) != _comparable({**config, "span_head": True})


def test_cases_show_the_documents_that_differ_with_a_diagnosis(nerel_dir):
    from nerelproc.io.document import Document
    from experiments.multitask.report import Run, case_section

    gold = load_documents(nerel_dir / "jsonl" / "dev.jsonl")[:12]

    def system(name, drop_person, drop_label):
        docs = {}
        for i, d in enumerate(gold):
            entities = [e for e in d.entities if not (i == 3 and drop_person and e.type == "PERSON")]
            labels = [label for label in d.relation_labels() if not (i == 5 and drop_label and label == "WORKS_AS")]
            docs[str(d.id)] = Document(d.id, d.text, entities, relation_types=labels)
        return Run(name, 1, (), {}, [], predictions=docs)

    assert "WORKS_AS" in gold[5].relation_labels() and any(e.type == "PERSON" for e in gold[3].entities)
    joint, ner_only, cls_only = system("joint", False, False), system("ner-only", True, False), \
        system("cls-only", False, True)
    text = case_section(gold, (joint, ner_only), (joint, cls_only), 10)
    assert text.count("### ") == 2 and f"document {gold[3].id}" in text and f"document {gold[5].id}" in text
    persons = len({e.key for e in gold[3].entities if e.type == "PERSON"})
    plural = "entity" if persons == 1 else "entities"
    assert f"Why: of the {persons} gold {plural} only joint gets right, ner-only misses {persons} (e.g. PERSON «" in text
    works_as = sum(line.split("\t")[1].startswith("WORKS_AS ") for line in gold[5].relations)
    assert f"Why: cls-only misses WORKS_AS ({works_as}×) that joint finds." in text


def test_run_names():
    assert parse_run_name("joint-uncertainty-s12") == ("joint-uncertainty", 12)
    with pytest.raises(ValueError):
        parse_run_name("joint-uncertainty")


def _counts(rng, docs, recall):
    gold = rng.integers(5, 30, docs)
    tp = rng.binomial(gold, recall)
    fp = rng.binomial(gold, 1 - recall)
    return np.stack([tp, fp, gold - tp], 1)


def test_bootstrap_identical_systems():
    a = _counts(np.random.default_rng(1), 90, 0.7)
    result = paired_bootstrap(a, a.copy(), resamples=1000, seed=0)
    assert result["delta"] == 0 and result["p"] == pytest.approx(1.0)


def test_bootstrap_clearly_better_system():
    rng = np.random.default_rng(2)
    better, worse = _counts(rng, 90, 0.85), _counts(rng, 90, 0.6)
    result = paired_bootstrap(better, worse, resamples=1000, seed=0)
    assert result["delta"] > 0.1 and result["p"] < 0.05 and result["ci"][0] > 0
    assert paired_bootstrap(worse, better, resamples=1000, seed=0)["p"] < 0.05
    assert verdict(0.2, result) == "confirmed"
    assert verdict(-0.2, {**result, "delta": -0.2}) == "refuted"
    assert verdict(0.2, {**result, "p": 0.3}) == "inconclusive"
    assert seeded_verdict(0.2, result, (3, 3)) == "confirmed"
    assert seeded_verdict(0.2, result, (3, 1)) == seeded_verdict(0.2, result, (2, 3)) == "too few seeds"


def test_bootstrap_noise_is_not_significant():
    rng = np.random.default_rng(3)
    a, b = _counts(rng, 90, 0.7), _counts(rng, 90, 0.7)
    result = paired_bootstrap(a, b, resamples=1000, seed=0)
    assert result["p"] > 0.05


def test_gradient_probe_measures_both_tasks_on_the_shared_layers(grid_runs):
    import subprocess

    grid, grid_file = grid_runs.grid, grid_runs.grid.path
    assert (grid.run_dir("joint", 1) / "checkpoint.pt").exists()
    out = grid.report.with_name("multitask_gradients.md")
    subprocess.run([sys.executable, "-m", "experiments.multitask.gradient_probe", str(grid_file), "--run", "joint-s1",
                    "--batches", "2", "--out", str(out)], check=True, capture_output=True, cwd=ROOT)
    result = json.loads(out.with_suffix(".json").read_text())
    start, end = result["start"], result["end"]
    assert start["sigma"] == {"ner": 1.0, "cls": 1.0} and end["after_epoch"] == 1
    for point in (start, end):
        assert point["batches"] == 2 and point["ner_norm"] > 0 and point["cls_norm"] > 0
        assert -1 <= point["cosine_min"] <= point["cosine_mean"] <= point["cosine_max"] <= 1
    assert start != end  # the trained weights pull differently from the initial ones
    invoke(grid_file, "--analyse-only")
    assert "How the two tasks pull on the shared layers" in grid.report.read_text()


def test_the_why_names_an_example_of_its_commonest_kind():
    from experiments.multitask.report import _kinds_by_count, _kinds_phrase

    kinds = ["missed"] * 3 + ["split"] * 3 + ["type"]
    assert _kinds_by_count(kinds)[0] == ("split", 3)  # a tie keeps the fixed order, as the phrase does
    assert _kinds_phrase(kinds) == "splits 3 into pieces, misses 3, types 1 differently"


@pytest.mark.parametrize("verdict_, delta, words", [
    ("confirmed", 0.02, "joint training helps (confirmed)"),
    ("refuted", -0.02, "joint training hurts (refuted)"),
    ("inconclusive", -0.0054, "no difference shown (inconclusive); joint lower by 0.0054, within chance"),
    ("inconclusive", 0.003, "no difference shown (inconclusive); joint higher by 0.0030, within chance"),
    ("too few seeds", -0.0054, "no verdict yet (too few seeds); so far joint lower by 0.0054"),
    ("too few seeds", 0.0339, "no verdict yet (too few seeds); so far joint higher by 0.0339"),
    ("not measured", None, "not measured"),
])
def test_a_headline_says_helps_or_hurts_only_when_the_test_says_so(verdict_, delta, words):
    assert headline(verdict_, delta) == words
    if delta is not None and delta < 0:
        assert "helps" not in headline(verdict_, delta)
