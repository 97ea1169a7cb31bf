"""``nerelproc annotate`` end to end, on a tiny model trained and exported here."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson
import pytest

pytest.importorskip("torch")
pytest.importorskip("ctranslate2")

from nerelproc.io.document import parse_entity_line  # noqa: E402
from nerelproc.training.data import load_documents  # noqa: E402
from nerelproc.io.writers import write_jsonl  # noqa: E402
from blocking import without  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def annotate(args, model, env=None, **kwargs):
    command = [sys.executable, "-m", "nerelproc", "annotate", *map(str, args), "--model", str(model), "--quiet"]
    return subprocess.run(command, capture_output=True, env=env, cwd=ROOT, **kwargs)


def kill_once_written(command, partial, lines):
    """Start ``command`` and SIGKILL it as soon as ``partial`` holds ``lines`` lines (or after 120 s)."""
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and (not partial.exists() or partial.read_bytes().count(b"\n") < lines):
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()


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
        b"   ",  # 8 blank line: skipped, not written
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
    assert len(out) == len(lines) - 1  # every line but the blank one
    errors = {o["line"]: o["error"] for o in out if "text" not in o}
    assert set(errors) == {2, 3, 4, 5, 10}
    assert "JSON" in errors[2] and "text" in errors[3] and "text" in errors[5] and "UTF-8" in errors[4]
    assert out[2] == {"id": "c", "line": 3, "error": errors[3]}
    assert out[1]["line"] == 2 and out[1]["id"] is None
    assert out[3]["id"] == "d"  # readable although the line is not UTF-8
    stderr = result.stderr.decode()
    for number in errors:
        assert f"line {number} " in stderr
    assert "10 documents: 5 annotated, 5 failed; 1 blank lines skipped" in stderr
    assert out[0]["id"] == "a" and out[0]["source"] == "feed-1" and out[0]["text"] == good.text
    assert out[5]["id"] == 6
    assert out[6]["entities"] == [] and "relation_types" in out[6]
    assert "line 9" in stderr and out[7]["id"] == "i"  # the bad gold entity is reported, text annotated
    for obj in out:
        if "text" in obj:
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
    kill_once_written(command, partial, lines=20)
    assert not target.exists(), "a killed run must not leave a complete-looking output"
    assert 0 < partial.read_bytes().count(b"\n") < len(docs) * 4
    resumed = annotate([*args, "-o", target, "--resume"], tiny_model)
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert "resuming after" in resumed.stderr.decode()
    assert target.read_bytes() == (tmp_path / "whole.jsonl").read_bytes()


NO_TORCH = without(("torch", "transformers"))


def test_annotation_needs_no_torch(tiny_model, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(orjson.dumps({"id": "x", "text": "Мэр Москвы Сергей Собянин открыл парк."}) + b"\n")
    command = [sys.executable, "-c", NO_TORCH, "annotate", str(source), "-o", str(tmp_path / "out.jsonl"),
               "--model", str(tiny_model), "--quiet"]
    result = subprocess.run(command, capture_output=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr.decode()
    assert read_lines(tmp_path / "out.jsonl")[0]["id"] == "x"


RUNTIME_NO_TORCH = without(("torch", "transformers"), then="""
import importlib, pkgutil, sys
import nerelproc.io, nerelproc.runtime, nerelproc.evaluation
for package in (nerelproc.io, nerelproc.runtime, nerelproc.evaluation):
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
from nerelproc import Annotator, Document, score_documents
import nerelproc.training.calibration  # `nerelproc calibrate` tunes an int8 model without torch
print(len(list(pkgutil.iter_modules(nerelproc.runtime.__path__))))
""")


def test_the_runtime_imports_no_torch():
    """Every module of nerelproc.io, .runtime and .evaluation, and training.calibration, imports
    with torch and transformers blocked."""
    result = subprocess.run([sys.executable, "-c", RUNTIME_NO_TORCH], capture_output=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr.decode()
    assert int(result.stdout) >= 8  # windows, tagging, heads, predictor, encoders, bundle, annotate, api


def test_windows_are_encoded_several_at_a_time_and_stored_in_order(tiny_model, nerel_dir):
    """--threads N: N encoder calls at once (one core each), and an output equal to one
    worker's to the bit."""
    import threading
    import time

    from nerelproc.runtime.bundle import load_predictor

    texts = [d.text for d in load_documents(nerel_dir / "jsonl" / "dev.jsonl")[:6]]
    parallel = load_predictor(tiny_model, threads=3)
    assert parallel.workers == 3
    encode, lock, running, most = parallel.encode_batch, threading.Lock(), [0], [0]

    def counted(inputs):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.01)  # long enough for the others to start
        try:
            return encode(inputs)
        finally:
            with lock:
                running[0] -= 1

    parallel.encode_batch = counted
    got = parallel.predict(texts)
    expected = load_predictor(tiny_model, threads=1).predict(texts)
    assert most[0] == 3
    assert [p.entities for p in got] == [p.entities for p in expected]
    assert np.array_equal(np.stack([p.relation_scores for p in got]), np.stack([p.relation_scores for p in expected]))


def test_numpy_blas_runs_on_one_thread_while_the_encoder_runs(tiny_model):
    """Idle BLAS threads spin between the heads' small products and take the cores from the
    encoder's (annotate was 25% slower on 2 cores): one thread while encoding, then as before."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from nerelproc.runtime.bundle import load_predictor

    def blas_threads():
        return [library["num_threads"] for library in threadpool_info() if library["user_api"] == "blas"]

    predictor = load_predictor(tiny_model, threads=1)
    encode, seen = predictor.encode_batch, []

    def watched(inputs):
        seen.append(blas_threads())
        return encode(inputs)

    predictor.encode_batch = watched
    with threadpool_limits(2, user_api="blas"):
        before = blas_threads()
        predictor.predict(["Анна Иванова живёт в Москве."])
        after = blas_threads()
    assert before and before == after == [2] * len(before)
    assert seen and all(threads == [1] * len(before) for threads in seen)


def test_a_megabyte_document_is_annotated_whole(tiny_model, nerel_dir):
    from nerelproc.runtime.bundle import load_predictor

    texts = [d.text for d in load_documents(nerel_dir / "jsonl" / "dev.jsonl")]
    text = "\n\n".join(texts)
    text = (text * (1_000_000 // len(text) + 1))[:1_000_000]
    predictor = load_predictor(tiny_model, threads=1)
    seen = []

    def first_token_of_each_window_is_an_entity(states):
        seen.append(len(states))
        log_probs = np.full((len(states), predictor.scheme.channels, 3), -30.0, dtype=np.float32)
        log_probs[:, :, 0] = 0.0  # O, certain
        log_probs[0, 0] = (-30.0, 0.0, -30.0)  # B on channel 0
        return log_probs

    predictor.heads.ner_log_probs = first_token_of_each_window_is_an_entity
    [prediction] = predictor.predict([text])
    encoded = predictor._plan(text).encoded
    assert sum(seen) == len(encoded.ids) > 100_000  # every token, from exactly one window
    assert len(prediction.entities) > 0.9 * len(seen)  # a window starting on a bare space piece gives none
    assert max(e.end for e in prediction.entities) > 990_000  # the end was annotated too
    assert all(0 <= e.start < e.end <= len(text) for e in prediction.entities)


def test_a_huge_document_never_holds_its_encoder_states_whole(tiny_model, nerel_dir):
    """Peak numpy memory of predicting one long document stays below one copy of its states
    (the runtime before issue 11 held every window's states plus a merged copy: twice that)."""
    import tracemalloc

    from nerelproc.runtime.bundle import load_predictor

    text = "\n\n".join(d.text for d in load_documents(nerel_dir / "jsonl" / "dev.jsonl"))[:300_000]
    predictor = load_predictor(tiny_model, threads=1)
    # Like a trained model, sure of O almost everywhere (the decoder keeps only uncertain tags;
    # a random tiny model is unsure of everything). The real model: benchmarks/memory.json.
    predictor.heads.ner_bias[0::3] += 20.0
    tokens = len(predictor._plan(text).encoded.ids)
    hidden = predictor.heads.ner_weight.shape[0]

    def peak_of(work):
        tracemalloc.start()
        try:
            work()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    tokenising = peak_of(lambda: predictor._plan(text))  # the tokenizer's own lists, not the model's states
    predicting = peak_of(lambda: predictor.predict([text]))
    assert predicting - tokenising < tokens * hidden * 4, (predicting, tokenising, tokens * hidden * 4)


# -- the reliability issue (11): batch independence, no silent loss, one readable line ----------


def test_output_does_not_depend_on_batch_buffer_threads_or_neighbours(tiny_model, nerel_dir, tmp_path):
    docs = load_documents(nerel_dir / "jsonl" / "test.jsonl")[:12]
    write_jsonl(docs, tmp_path / "in.jsonl", relations=False)
    runs = {
        "default": [],
        "batch16": ["--batch-size", 16, "--buffer", 5],
        "threads1": ["--threads", 1, "--buffer", 1],
    }
    outputs = {}
    for name, extra in runs.items():
        result = annotate([tmp_path / "in.jsonl", "-o", tmp_path / f"{name}.jsonl", "--scores", *extra], tiny_model)
        assert result.returncode == 0, result.stderr.decode()
        outputs[name] = (tmp_path / f"{name}.jsonl").read_bytes().splitlines()
    assert outputs["batch16"] == outputs["default"] == outputs["threads1"]
    # Each document alone, and all of them shuffled: the same line for the same document.
    by_id = {orjson.loads(line)["id"]: line for line in outputs["default"]}
    order = [docs[i] for i in (7, 2, 11, 0, 5, 9, 1, 10, 3, 8, 6, 4)]
    write_jsonl(order, tmp_path / "shuffled.jsonl", relations=False)
    result = annotate([tmp_path / "shuffled.jsonl", "-o", tmp_path / "s.jsonl", "--scores", "--batch-size", 16],
                      tiny_model)
    assert result.returncode == 0
    assert (tmp_path / "s.jsonl").read_bytes().splitlines() == [by_id[d.id] for d in order]
    for document in docs[:3]:
        write_jsonl([document], tmp_path / "one.jsonl", relations=False)
        annotate([tmp_path / "one.jsonl", "-o", tmp_path / "one_out.jsonl", "--scores"], tiny_model)
        assert (tmp_path / "one_out.jsonl").read_bytes().splitlines() == [by_id[document.id]]


def test_brat_output_keeps_every_document_and_its_labels(tiny_model, nerel_dir, tmp_path):
    docs = load_documents(nerel_dir / "jsonl" / "test.jsonl")[:3]
    lines = [orjson.dumps({"id": d.id, "text": d.text}) for d in docs]
    lines += [orjson.dumps({"id": "dup", "text": "Первый текст."}), orjson.dumps({"id": "dup", "text": "Второй."})]
    lines += [orjson.dumps({"id": bad, "text": "Москва."}) for bad in ("a/b", "..", "x\ny")]
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "brat"
    result = annotate([tmp_path / "in.jsonl", "-o", f"{out}/"], tiny_model)
    stderr = result.stderr.decode()
    assert result.returncode == 3, stderr
    assert "Traceback" not in stderr and "duplicate id 'dup'" in stderr
    assert (out / "dup.txt").read_text() == "Первый текст."  # never overwritten
    failed = [orjson.loads(line) for line in (out / "errors.jsonl").read_bytes().splitlines()]
    assert [(e["line"], e["id"]) for e in failed] == [(5, "dup"), (6, "a/b"), (7, ".."), (8, "x\ny")]
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".txt") == sorted(f"{d.id}.txt" for d in docs) + ["dup.txt"]
    assert not list(tmp_path.rglob("*.tmp")) and not (tmp_path / "a").exists()
    assert "8 documents: 4 annotated, 4 failed" in stderr
    # The relation types travel with the BRAT files: scoring them equals scoring the JSONL.
    write_jsonl(docs, tmp_path / "gold.jsonl")
    annotate([tmp_path / "gold.jsonl", "-o", tmp_path / "pred.jsonl"], tiny_model)
    annotate([tmp_path / "gold.jsonl", "-o", f"{tmp_path / 'pred_brat'}/"], tiny_model)
    score = lambda pred: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "nerelproc", "score", str(pred), str(tmp_path / "gold.jsonl"), "--json"],
        capture_output=True, cwd=ROOT).stdout
    from_jsonl, from_brat = orjson.loads(score(tmp_path / "pred.jsonl")), orjson.loads(score(tmp_path / "pred_brat"))
    assert from_brat["cls"] == from_jsonl["cls"] and from_brat["ner"] == from_jsonl["ner"]
    assert from_jsonl["cls"]["micro"]["support"] > 0


def test_resume_refuses_a_partial_of_another_input(tiny_model, nerel_dir, tmp_path):
    docs = load_documents(nerel_dir / "jsonl" / "dev.jsonl")
    write_jsonl(docs[:20], tmp_path / "a.jsonl", relations=False)
    write_jsonl(docs[20:30], tmp_path / "b.jsonl", relations=False)
    target = tmp_path / "r.jsonl"
    # an interrupted run on A: its partial and sidecar, as a kill would leave them
    annotate([tmp_path / "a.jsonl", "-o", target, "--buffer", 5], tiny_model)
    partial, sidecar = tmp_path / ".r.jsonl.partial", tmp_path / ".r.jsonl.partial.json"
    target.rename(partial)
    state = orjson.loads(annotate_state(tmp_path / "a.jsonl", tiny_model, tmp_path))
    sidecar.write_bytes(orjson.dumps(state))
    result = annotate([tmp_path / "b.jsonl", "-o", target, "--buffer", 5, "--resume"], tiny_model)
    assert result.returncode == 2 and "another input" in result.stderr.decode()
    assert not target.exists() and partial.exists()
    # the same path with other content (same records count and size would not help either)
    (tmp_path / "a.jsonl").write_bytes((tmp_path / "b.jsonl").read_bytes())
    result = annotate([tmp_path / "a.jsonl", "-o", target, "--resume"], tiny_model)
    assert result.returncode == 2 and "--resume" in result.stderr.decode() and not target.exists()
    result = annotate([tmp_path / "a.jsonl", "-o", target, "--resume", "--scores"], tiny_model)
    assert result.returncode == 2


def annotate_state(source, model, tmp_path):
    """The sidecar a run on ``source`` leaves after its first buffer: run it with --strict on a copy
    that fails at record 6, so that the first buffer of 5 is checkpointed and the run stops."""
    lines = Path(source).read_bytes().splitlines()
    work = tmp_path / "state"
    work.mkdir(exist_ok=True)
    (work / "in.jsonl").write_bytes(b"\n".join(lines[:5] + [b"broken"] + lines[5:]) + b"\n")
    copy = Path(source)
    process = annotate([work / "in.jsonl", "-o", work / "o.jsonl", "--buffer", 5], model)
    assert process.returncode == 3
    # Re-create what a run on the real input would have written after 5 records.
    state = {
        "identity": {
            "input": str(copy.resolve()), "input_size": copy.stat().st_size,
            "model": _model_identity(model), "options": {"backend": "auto", "scores": False, "keep_input": False},
        },
        "bytes": len(b"".join(line + b"\n" for line in (work / "o.jsonl").read_bytes().splitlines()[:5])),
        "stats": {"records": 5, "written": 5, "failed": 0, "blank": 0, "sha256": _digest(lines[:5])},
    }
    return orjson.dumps(state)


def _model_identity(model):
    from nerelproc.runtime.bundle import model_identity

    return model_identity(model)


def _digest(lines):
    from nerelproc.runtime.annotate import InputDigest
    from nerelproc.io.readers import Record

    digest = InputDigest()
    for line in lines:
        digest.update(Record(0, source=line + b"\n"))
    return digest.hexdigest()


def test_user_field_named_error_is_not_a_failure_after_resume(tiny_model, tmp_path):
    lines = [orjson.dumps({"id": i, "text": f"Москва {i}.", "error": "user data"}) for i in range(12)]
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    target, partial = tmp_path / "out.jsonl", tmp_path / ".out.jsonl.partial"
    command = [sys.executable, "-m", "nerelproc", "annotate", str(tmp_path / "in.jsonl"), "-o", str(target),
               "--buffer", "2", "--model", str(tiny_model), "--quiet"]
    whole = subprocess.run(command, capture_output=True, cwd=ROOT)
    assert whole.returncode == 0, whole.stderr.decode()
    reference = target.read_bytes()
    target.unlink()
    kill_once_written(command, partial, lines=4)
    resumed = subprocess.run(command + ["--resume"], capture_output=True, cwd=ROOT)
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert target.read_bytes() == reference


@pytest.mark.parametrize("option", [("--buffer", "0"), ("--buffer", "-1"), ("--batch-size", "0"),
                                    ("--threads", "-3")])
def test_bad_options_are_usage_errors(tiny_model, tmp_path, option):
    (tmp_path / "in.jsonl").write_bytes(b'{"text": "x"}\n')
    result = annotate([tmp_path / "in.jsonl", "-o", tmp_path / "out.jsonl", *option], tiny_model)
    assert result.returncode == 2 and b"Traceback" not in result.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_output_path_problems_are_found_before_the_work(tiny_model, tmp_path):
    (tmp_path / "in.jsonl").write_bytes(b'{"text": "x"}\n')
    (tmp_path / "folder").mkdir()
    result = annotate([tmp_path / "in.jsonl", "-o", tmp_path / "folder"], tiny_model)
    assert result.returncode == 2 and b"is a folder" in result.stderr and b"Traceback" not in result.stderr
    assert list((tmp_path / "folder").iterdir()) == []
    (tmp_path / "file").write_text("")
    result = annotate([tmp_path / "in.jsonl", "-o", tmp_path / "file" / "out.jsonl"], tiny_model)
    assert result.returncode == 1 and b"Traceback" not in result.stderr
    assert len(result.stderr.decode().strip().splitlines()) == 1


def test_empty_inputs_say_zero_documents(tiny_model, tmp_path):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "no_txt").mkdir()
    for source in (tmp_path / "empty.jsonl", tmp_path / "no_txt"):
        result = annotate([source, "-o", tmp_path / "out.jsonl"], tiny_model)
        assert result.returncode == 0 and b"0 documents" in result.stderr


def test_gzip_feeds_in_and_out_any_case(tiny_model, nerel_dir, tmp_path):
    import gzip

    docs = load_documents(nerel_dir / "jsonl" / "dev.jsonl")[:3]
    write_jsonl(docs, tmp_path / "plain.jsonl", relations=False)
    data = (tmp_path / "plain.jsonl").read_bytes() + b"\n"  # a trailing blank line, as concatenations leave
    (tmp_path / "NEWS.JSONL").write_bytes(data)
    (tmp_path / "feed.jsonl.gz").write_bytes(gzip.compress(data))
    reference = annotate([tmp_path / "plain.jsonl", "-o", tmp_path / "ref.jsonl"], tiny_model)
    assert reference.returncode == 0
    for name in ("NEWS.JSONL", "feed.jsonl.gz"):
        result = annotate([tmp_path / name, "-o", tmp_path / "out.jsonl.gz"], tiny_model)
        assert result.returncode == 0, result.stderr.decode()
        assert b"1 blank lines skipped" in result.stderr
        assert gzip.decompress((tmp_path / "out.jsonl.gz").read_bytes()) == (tmp_path / "ref.jsonl").read_bytes()


MISSING_TORCH = without(("torch", "transformers"))


@pytest.mark.parametrize("command", [["train", "--train", "x", "--dev", "y", "-o", "z"], ["export", "run", "-o", "m"],
                                     ["annotate", "in.jsonl", "--backend", "torch"]])
def test_missing_extras_are_named(tiny_model, tmp_path, command):
    (tmp_path / "in.jsonl").write_bytes(b'{"text": "x"}\n')
    (tmp_path / "run" / "best" / "encoder").mkdir(parents=True)
    (tmp_path / "run" / "best" / "nerelproc.json").write_text("{}")
    if command[0] == "annotate":
        command = command + ["--model", str(tiny_model.parent / "run" / "best"), "-o", "out.jsonl"]  # has encoder/
    result = subprocess.run([sys.executable, "-c", MISSING_TORCH, *command], capture_output=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    stderr = result.stderr.decode()
    assert result.returncode == 1 and "Traceback" not in stderr, stderr
    assert "pip install 'nerelproc[train]'" in stderr


def test_a_bad_path_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "nerelproc", "export", str(tmp_path), "-o", str(tmp_path / "m")],
                            capture_output=True, cwd=ROOT)
    assert result.returncode == 1 and result.stderr.decode().count("\n") == 1, result.stderr.decode()
    assert "not a training output" in result.stderr.decode()


def test_the_python_api_gives_what_the_cli_writes(tiny_model, nerel_dir, tmp_path):
    from nerelproc import Annotator, Entity

    docs = load_documents(nerel_dir / "jsonl" / "test.jsonl")[:4]
    items = [{"id": d.id, "text": d.text, "source": "feed"} for d in docs]
    (tmp_path / "in.jsonl").write_bytes(b"".join(orjson.dumps(item) + b"\n" for item in items))
    assert annotate([tmp_path / "in.jsonl", "-o", tmp_path / "out.jsonl", "--scores"], tiny_model).returncode == 0
    written = read_lines(tmp_path / "out.jsonl")
    annotator = Annotator.load(tiny_model, threads=1)
    results = list(annotator.annotate_many(items, buffer=3))
    assert [r.to_json() for r in results] == written
    for result, line in zip(results, written):
        assert len(result.entities) == len(line["entities"])
        assert all(isinstance(e, Entity) and result.text[e.start : e.end] == e.text for e in result.entities)
        assert result.relation_types == line["relation_types"]
    single = annotator.annotate(docs[0].text)
    assert single.entities == results[0].entities and single.id == 1
    bad = list(annotator.annotate_many([{"id": "no text"}, "Москва"]))
    assert bad[0].error and bad[0].id == "no text" and bad[1].error is None


def test_export_writes_the_model_card_and_a_bundle_the_runtime_reads(tiny_model):
    import json

    from nerelproc.runtime.bundle import Bundle

    metrics = json.loads((tiny_model.parent / "run" / "metrics.json").read_text("utf-8"))
    test = metrics["test"]
    card = (tiny_model / "MODEL_CARD.md").read_text("utf-8")
    assert "from `nerelproc train --test`" in card
    for row in (
        f"| NER nested micro-F1 | {test['ner']['micro']['f1']:.4f} |",
        f"| NER flat F1 (seqeval, outermost) | {test['ner']['flat']['f1']:.4f} |",
        f"| NER PER/LOC/ORG micro-F1 | {test['ner']['coarse']['micro']['f1']:.4f} |",
        f"| CLS micro-F1 | {test['cls']['micro']['f1']:.4f} |",
        f"| CLS macro-F1 | {test['cls']['macro']['f1']:.4f} |",
        f"| CLS samples-F1 | {test['cls']['samples']['f1']:.4f} |",
        f"Best epoch {metrics['best_epoch']} of {metrics['epochs_run']}; ",
    ):
        assert row in card
    bundle = Bundle.load(tiny_model)
    trained = Bundle.load(tiny_model.parent / "run" / "best")
    assert bundle.quantization == "int8" and bundle.exported_from == str(tiny_model.parent / "run")
    assert bundle.thresholds == trained.thresholds and len(bundle.thresholds) == len(bundle.relation_types) == 49
    assert bundle.train_config == trained.train_config and bundle.train_config["max_length"] == 64
    assert sorted(path.name for path in tiny_model.iterdir()) == [
        "MODEL_CARD.md", "ct2", "heads.npz", "nerelproc.json", "tokenizer.json"]


def test_keep_input_gives_back_the_input_annotations(tiny_model, nerel_dir, tmp_path):
    gold = load_documents(nerel_dir / "jsonl" / "dev.jsonl")[:3]
    write_jsonl(gold, tmp_path / "in.jsonl")
    assert annotate([tmp_path / "in.jsonl", "-o", tmp_path / "out.jsonl", "--keep-input"], tiny_model).returncode == 0
    assert annotate([tmp_path / "in.jsonl", "-o", tmp_path / "plain.jsonl"], tiny_model).returncode == 0
    out, plain = read_lines(tmp_path / "out.jsonl"), read_lines(tmp_path / "plain.jsonl")
    source = read_lines(tmp_path / "in.jsonl")
    for kept, bare, document, line in zip(out, plain, gold, source):
        assert [parse_entity_line(e, document.text) for e in kept["input_entities"]] == document.entities
        assert kept["input_entities"] == line["entities"] and kept["input_relations"] == document.relations
        assert kept["input_links"] == document.links
        assert {k: v for k, v in kept.items() if not k.startswith("input_")} == bare  # predictions unchanged
        assert not any(k.startswith("input_") for k in bare)


def test_the_torch_backend_reads_a_training_output(tiny_model, nerel_dir, tmp_path):
    write_jsonl(load_documents(nerel_dir / "jsonl" / "dev.jsonl")[:3], tmp_path / "in.jsonl", relations=False)
    best = tiny_model.parent / "run" / "best"
    result = annotate([tmp_path / "in.jsonl", "-o", tmp_path / "torch.jsonl", "--backend", "torch", "--scores"], best)
    assert result.returncode == 0, result.stderr.decode()
    assert annotate([tmp_path / "in.jsonl", "-o", tmp_path / "ct2.jsonl", "--scores"], tiny_model).returncode == 0
    torch_out, ct2_out = read_lines(tmp_path / "torch.jsonl"), read_lines(tmp_path / "ct2.jsonl")
    assert [o["id"] for o in torch_out] == [o["id"] for o in ct2_out]
    for a, b in zip(torch_out, ct2_out):
        assert set(a) == set(b) == {"id", "text", "entities", "relation_types", "relation_scores"}
        for line in a["entities"]:
            parse_entity_line(line, a["text"])  # NEREL T-lines that fit the text
        assert list(a["relation_scores"]) == list(b["relation_scores"])  # the same labels, in order


def test_the_ct2_backend_without_ct2_is_one_line(tiny_model, tmp_path):
    (tmp_path / "in.jsonl").write_text('{"id": "a", "text": "Тест"}\n')
    best = tiny_model.parent / "run" / "best"
    result = annotate([tmp_path / "in.jsonl", "-o", tmp_path / "out.jsonl", "--backend", "ct2"], best)
    stderr = result.stderr.decode()
    assert result.returncode == 1 and stderr.startswith("nerelproc annotate: ") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr and not (tmp_path / "out.jsonl").exists()
    assert "has no ct2/" in stderr and "--backend torch" in stderr
