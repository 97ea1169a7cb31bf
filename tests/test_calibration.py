"""Tuning a model's decisions on dev (training/calibration.py, `nerelproc calibrate`)."""

import json
import shutil

import numpy as np
import orjson
import pytest
from click.testing import CliRunner

from nerelproc.cli import main
from nerelproc.io.document import Document, Entity
from nerelproc.runtime.predictor import Prediction
from nerelproc.training.calibration import O_BIAS_GRID, decisions
from nerelproc.training.thresholds import MODES

LABELS = ["WORKS_AS", "LOCATED_IN"]


class BiasStub:
    """A predictor whose NER output depends on the O bias as a real one would: a doubtful,
    wrong entity disappears from 0.5 on, a doubtful right one from 1.0 on."""

    pair_head = None  # the CLS probabilities do not depend on the O bias

    def finish(self, encoded, o_bias):
        text = encoded
        entities = [Entity("PERSON", ((0, 4),))]
        if o_bias < 0.5:
            entities.append(Entity("CITY", ((5, 9),)))  # wrong
        if o_bias < 1.0:
            entities.append(Entity("DATE", ((10, 14),)))  # right
        return Prediction(entities, self.relation_scores(text), [], LABELS)

    def relation_scores(self, encoded):
        return np.array([0.8, 0.2])


def test_the_bias_with_the_best_dev_f1_wins_and_ties_go_to_the_smaller():
    entities = [Entity("PERSON", ((0, 4),)), Entity("DATE", ((10, 14),))]
    gold = [Document(str(i), "Анна было 2020 года", entities, relation_types=["WORKS_AS"]) for i in range(4)]
    o_bias, thresholds, tuning = decisions(BiasStub(), [d.text for d in gold], gold, LABELS)
    f1 = tuning["ner_o_bias_dev_nested_f1"]
    assert f1["0.0"] < 1.0 and f1["0.5"] == f1["0.75"] == 1.0 and f1["1.0"] < 1.0
    assert o_bias == 0.5  # 0.5 and 0.75 tie: the smaller bias
    assert tuning["mode"] in MODES and len(thresholds) == len(LABELS)


def test_calibrate_writes_the_decisions_that_annotate_then_uses(tiny_model, nerel_dir, tmp_path):
    model = shutil.copytree(tiny_model, tmp_path / "model")
    dev = tmp_path / "dev.jsonl"
    lines = (nerel_dir / "jsonl" / "dev.jsonl").read_bytes().splitlines()[6:9]
    dev.write_bytes(b"\n".join(lines) + b"\n")
    result = CliRunner().invoke(main, ["calibrate", str(model), "--dev", str(dev), "--threads", "1"])
    assert result.exit_code == 0, result.output
    config = json.loads((model / "nerelproc.json").read_text())
    assert config["ner_o_bias"] in O_BIAS_GRID
    recorded = config["calibration"]["ner_o_bias_dev_nested_f1"]
    assert set(recorded) == {str(b) for b in O_BIAS_GRID}
    assert config["thresholds_tuning"]["mode"] in MODES
    # annotate with the calibrated model reproduces the dev F1 recorded for the chosen bias
    out = tmp_path / "out.jsonl"
    annotate = ["annotate", str(dev), "-o", str(out), "--model", str(model), "--threads", "1", "--quiet"]
    assert CliRunner().invoke(main, annotate).exit_code == 0  # one thread, as calibrate ran
    scored = CliRunner().invoke(main, ["score", str(out), str(dev), "--json"])
    nested = orjson.loads(scored.output)["ner"]["micro"]["f1"]
    assert round(nested, 4) == recorded[str(config["ner_o_bias"])]


def test_selection_takes_the_cross_validated_cls_figure_when_thresholds_were_tuned():
    from nerelproc.training.evaluate import selection_score

    scores = {"ner": {"micro": {"f1": 0.7}}, "cls": {"micro": {"f1": 0.9}, "macro": {"f1": 0.8}}}
    tuning = {"mode": "shrunk", "cv": {"global": 0.5, "shrunk": 0.6, "per_label": 0.4}}
    assert selection_score(scores, ("ner", "cls")) == pytest.approx((0.7 + 0.85) / 2)  # in-sample
    assert selection_score(scores, ("ner", "cls"), tuning) == pytest.approx((0.7 + 0.6) / 2)
    assert selection_score(scores, ("ner",), tuning) == pytest.approx(0.7)
