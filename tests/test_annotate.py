"""``nerelproc annotate`` end to end, on a tiny model trained and exported here."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

pytest.importorskip("torch")
pytest.importorskip("ctranslate2")

from nerelproc.document import parse_entity_line  # noqa: E402
from nerelproc.train import TrainConfig, load_documents, run  # noqa: E402
from nerelproc.writers import write_jsonl  # noqa: E402
from tiny_model import build_tiny_encoder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, nerel_dir):
    from nerelproc.export import export

    root = tmp_path_factory.mktemp("tiny_annotate")
    docs = load_documents(nerel_dir / "jsonl" / "dev.jsonl")
    build_tiny_encoder([d.text for d in docs[:30]], root / "encoder")
    write_jsonl(docs[:6], root / "train.jsonl")
    write_jsonl(docs[6:9], root / "dev.jsonl")
    config = TrainConfig(encoder=str(root / "encoder"), epochs=1, max_length=64, threads=1, lr=1e-3)
    run(config, root / "train.jsonl", root / "dev.jsonl", root / "run")
    return export(root / "run", root / "model")


def annotate(args, model, env=None, **kwargs):
    command = [sys.executable, "-m", "nerelproc", "annotate", *map(str, args), "--model", str(model), "--quiet"]
    return subprocess.run(command, capture_output=True, env=env, cwd=ROOT, **kwargs)


def read_lines(path):
    return [orjson.loads(line) for line in Path(path).read_bytes().splitlines()]


def test_bad_input_loses_nothing(tiny_model, nerel_dir, tmp_path):
    good = load_documents(nerel_dir / "jsonl" / "test.jsonl")[0]
    lines = [
        orjson.dumps({"id": "a", "text": good.text, "source": "feed-1"}),  # 1 raw, extra field
        b"{not json",  # 2
        orjson.dumps({"id": "c", "text": 42}),  # 3 text not a string
        b'{"id": "d", "text": "\xff\xfe broken utf-8"}',  # 4 invalid UTF-8
        orjson.dumps({"id": "e"}),  # 5 no text
        orjson.dumps({"text": "Владимир Путин посетил Москву."}),  # 6 no id: the line number
        orjson.dumps({"id": "g", "text": ""}),  # 7 empty text
        b"",  # 8 empty line
        orjson.dumps({"id": "i", "text": "Тест", "entities": ["T1\tPERSON 0 99\tТест"]}),  # 9 bad gold entity
        orjson.dumps([1, 2]),  # 10 not an object
        orjson.dumps({"id": "k", "text": good.text, "entities": good.entities and [
            f"T1\t{good.entities[0].type} {good.entities[0].start} {good.entities[0].end}\t"
            f"{good.text[good.entities[0].start:good.entities[0].end]}"]}),  # 11 NEREL line
    ]
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    result = annotate([source, "-o", tmp_path / "out.jsonl", "--buffer", 3], tiny_model)
    assert result.returncode == 3, result.stderr.decode()
    out = read_lines(tmp_path / "out.jsonl")
    assert len(out) == len(lines)
    errors = {i + 1: o["error"] for i, o in enumerate(out) if "error" in o}
    assert set(errors) == {2, 3, 4, 5, 8, 10}
    assert "JSON" in errors[2] and "text" in errors[3] and "text" in errors[5]
    assert out[2] == {"id": "c", "line": 3, "error": errors[3]}
    assert out[1]["line"] == 2 and out[1]["id"] is None
    stderr = result.stderr.decode()
    for number in errors:
        assert f"line {number} " in stderr
    assert out[0]["id"] == "a" and out[0]["source"] == "feed-1" and out[0]["text"] == good.text
    assert out[5]["id"] == 6
    assert out[6]["entities"] == [] and "relation_types" in out[6]
    assert "line 9" in stderr and out[8]["id"] == "i"  # the bad gold entity is reported, text annotated
    for obj in out:
        if "error" not in obj:
            assert set(obj) >= {"id", "text", "entities", "relation_types"}
            assert "relations" not in obj
            for line in obj["entities"]:
                parse_entity_line(line, obj["text"])  # raises unless text[start:end] == surface


def test_all_ok_exits_zero_and_strict_stops(tiny_model, nerel_dir, tmp_path):
    write_jsonl(load_documents(nerel_dir / "jsonl" / "dev.jsonl")[:3], tmp_path / "in.jsonl")
    result = annotate([tmp_path / "in.jsonl", "-o", tmp_path / "out.jsonl", "--scores"], tiny_model)
    assert result.returncode == 0, result.stderr.decode()
    out = read_lines(tmp_path / "out.jsonl")
    assert len(out) == 3 and len(out[0]["relation_scores"]) == 49
    (tmp_path / "bad.jsonl").write_bytes((tmp_path / "in.jsonl").read_bytes() + b"oops\n")
    result = annotate([tmp_path / "bad.jsonl", "-o", tmp_path / "strict.jsonl", "--strict"], tiny_model)
    assert result.returncode == 3 and not (tmp_path / "strict.jsonl").exists()


def test_stdout_is_only_data(tiny_model, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"id": 1, "text": "\xd0\x9c\xd0\xbe\xd1\x81\xd0\xba\xd0\xb2\xd0\xb0"}\n')
    result = annotate([source], tiny_model)
    assert result.returncode == 0
    assert [orjson.loads(line)["id"] for line in result.stdout.splitlines()] == [1]


def test_brat_in_and_out(tiny_model, nerel_dir, tmp_path):
    result = annotate([nerel_dir / "brat" / "dev", "-o", str(tmp_path / "brat") + "/"], tiny_model)
    assert result.returncode == 0, result.stderr.decode()
    assert len(list((tmp_path / "brat").glob("*.ann"))) == len(list((nerel_dir / "brat" / "dev").glob("*.ann")))


def test_kill_and_resume_is_byte_identical(tiny_model, nerel_dir, tmp_path):
    docs = load_documents(nerel_dir / "jsonl" / "train.jsonl")[:60]
    write_jsonl(docs * 4, tmp_path / "in.jsonl", relations=False)
    args = [tmp_path / "in.jsonl", "--buffer", 8, "--threads", 1]
    reference = annotate([*args, "-o", tmp_path / "whole.jsonl"], tiny_model)
    assert reference.returncode == 0, reference.stderr.decode()

    target = tmp_path / "resumed.jsonl"
    partial = tmp_path / ".resumed.jsonl.partial"
    command = [sys.executable, "-m", "nerelproc", "annotate", *map(str, args), "-o", str(target),
               "--model", str(tiny_model), "--quiet"]
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and (not partial.exists() or partial.read_bytes().count(b"\n") < 20):
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not target.exists(), "a killed run must not leave a complete-looking output"
    assert 0 < partial.read_bytes().count(b"\n") < len(docs) * 4
    resumed = annotate([*args, "-o", target, "--resume"], tiny_model)
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert "resuming after" in resumed.stderr.decode()
    assert target.read_bytes() == (tmp_path / "whole.jsonl").read_bytes()


NO_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers"):
            raise ImportError(f"{name} is blocked in this test")
sys.meta_path.insert(0, Block())
from nerelproc.cli import main
main()
"""


def test_annotation_needs_no_torch(tiny_model, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(orjson.dumps({"id": "x", "text": "Мэр Москвы Сергей Собянин открыл парк."}) + b"\n")
    command = [sys.executable, "-c", NO_TORCH, "annotate", str(source), "-o", str(tmp_path / "out.jsonl"),
               "--model", str(tiny_model), "--quiet"]
    result = subprocess.run(command, capture_output=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr.decode()
    assert read_lines(tmp_path / "out.jsonl")[0]["id"] == "x"


def test_a_megabyte_document_is_annotated_whole(tiny_model, nerel_dir):
    from nerelproc.runtime import load_predictor

    texts = [d.text for d in load_documents(nerel_dir / "jsonl" / "dev.jsonl")]
    text = "\n\n".join(texts)
    text = (text * (1_000_000 // len(text) + 1))[:1_000_000]
    predictor = load_predictor(tiny_model, threads=1, batch_windows=64)
    [(encoded, states)] = predictor.states([text])
    assert len(states) == len(encoded.ids) > 100_000
    assert encoded.offsets[-1, 1] >= len(text.rstrip())
    [prediction] = predictor.predict([text[-5000:]])  # decoding works on the same path
    for entity in prediction.entities:
        assert 0 <= entity.start < entity.end <= 5000
