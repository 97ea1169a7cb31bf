"""The bundled models: the default one annotates the bundled examples (README quick start, first
command), the fast one is smaller; both are found by name and shipped by pip."""

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from nerelproc.io.document import parse_entity_line
from nerelproc.runtime.bundle import default_model_dir

ROOT = Path(__file__).resolve().parents[1]


def test_bundled_models_are_found_by_name_and_small():
    from nerelproc.runtime.bundle import resolve_model

    for name, folder, limit in (("default", "nerel-e5-small-int8", 60), ("fast", "nerel-e5-small-fast-int8", 40)):
        model = resolve_model(name)
        assert model == ROOT / "models" / folder
        size = sum(path.stat().st_size for path in model.rglob("*") if path.is_file())
        assert size <= limit * 10**6, (name, size)
    assert default_model_dir() == resolve_model(None) == resolve_model("default")
    assert resolve_model(str(ROOT / "models")) == ROOT / "models"
    with pytest.raises(FileNotFoundError, match="neither a bundled model"):
        resolve_model("no-such-model")


def test_the_fast_model_has_fewer_layers_and_gives_the_same_outputs():
    from nerelproc.runtime.bundle import load_predictor, resolve_model

    from nerelproc.runtime.bundle import Bundle

    kept = Bundle.load(resolve_model("fast")).train_config["encoder_layers"]  # of the default model's 12
    assert 0 < kept < 12
    assert (resolve_model("fast") / "ct2" / "model.bin").stat().st_size < (
        resolve_model("default") / "ct2" / "model.bin").stat().st_size
    text = "Президент России Владимир Путин провёл встречу с главой Сбербанка Германом Грефом в Москве."
    fast = load_predictor(resolve_model("fast"), threads=1).predict([text])[0]
    assert {e.type for e in fast.entities} & {"PERSON", "COUNTRY", "CITY", "ORGANIZATION"}
    assert fast.relation_scores.shape == (49,) and fast.relation_types
    assert all(0 <= h < len(fast.entities) and 0 <= t < len(fast.entities) for h, t, _, _ in fast.relations)


def test_quick_start_annotates_the_examples(tmp_path):
    out = tmp_path / "annotated.jsonl"
    result = subprocess.run([sys.executable, "-m", "nerelproc", "annotate", "examples/news.jsonl", "-o", str(out)],
                            cwd=ROOT, capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b""
    inputs = [orjson.loads(line) for line in (ROOT / "examples" / "news.jsonl").read_bytes().splitlines()]
    outputs = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [o["id"] for o in outputs] == [i["id"] for i in inputs]
    assert all(o["source"] == i["source"] for o, i in zip(outputs, inputs))
    entities = [parse_entity_line(line, o["text"]) for o in outputs for line in o["entities"]]
    assert len(entities) >= len(outputs)  # a trained model finds something in five news texts
    assert {e.type for e in entities} & {"PERSON", "CITY", "COUNTRY", "ORGANIZATION", "DATE"}
    assert all(o["relation_types"] for o in outputs)


def test_the_bundle_owns_nerelproc_json_and_round_trips_it(tmp_path):
    from nerelproc.runtime.bundle import CONFIG_FILE, Bundle

    model = default_model_dir()
    bundle = Bundle.load(model)
    assert bundle.quantization == "int8" and len(bundle.relation_types) == len(bundle.thresholds) == 49
    assert bundle.train_config["tasks"] == bundle.tasks and bundle.extra == {}
    bundle.save(tmp_path)
    assert (tmp_path / CONFIG_FILE).read_bytes() == (model / CONFIG_FILE).read_bytes()


def test_pip_install_ships_every_file_of_the_bundled_models():
    """setup.cfg's data_files name each file the runtime reads (``pip install .`` copies only those)."""
    import configparser

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = {line.strip() for value in config["options.data_files"].values() for line in value.split("\n") if line.strip()}
    files = {str(path.relative_to(ROOT)) for path in (ROOT / "models").rglob("*") if path.is_file()}
    assert files == listed


def test_the_bundled_model_loads_the_pair_head_its_config_names():
    from nerelproc.runtime.bundle import PAIRS_FILE, Bundle, load_predictor

    model = default_model_dir()
    predictor = load_predictor(model, threads=1)
    assert (predictor.pair_head is not None) == bool(Bundle.load(model).pair_weight) == (model / PAIRS_FILE).exists()
