"""The bundled default model annotates the bundled examples (README quick start, first command)."""

import subprocess
import sys
from pathlib import Path

import orjson

from nerelproc.io.document import parse_entity_line
from nerelproc.runtime.bundle import default_model_dir

ROOT = Path(__file__).resolve().parents[1]


def test_bundled_model_is_found_and_small():
    model = default_model_dir()
    assert model == ROOT / "models" / "nerel-e5-small-int8"
    size = sum(path.stat().st_size for path in model.rglob("*") if path.is_file())
    assert size < 60 * 2**20


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


def test_pip_install_ships_every_file_of_the_bundled_model():
    """setup.cfg's data_files name each file the runtime reads (``pip install .`` copies only those)."""
    import configparser

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = {line.strip() for value in config["options.data_files"].values() for line in value.split("\n") if line.strip()}
    model = default_model_dir()
    files = {str(path.relative_to(ROOT)) for path in model.rglob("*") if path.is_file()}
    assert files == listed


def test_the_bundled_model_loads_the_pair_head_its_config_names():
    from nerelproc.runtime.bundle import PAIRS_FILE, Bundle, load_predictor

    model = default_model_dir()
    predictor = load_predictor(model, threads=1)
    assert (predictor.pair_head is not None) == bool(Bundle.load(model).pair_weight) == (model / PAIRS_FILE).exists()
