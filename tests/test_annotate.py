"""``nerelproc annotate`` end to end, on a tiny model trained and exported here (the tests
that need no model run without torch too)."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson
import pytest

from nerelproc.io.document import parse_entity_line
from nerelproc.io.readers import read_documents
from nerelproc.io.writers import write_jsonl
from blocking import without

ROOT = Path(__file__).resolve().parents[1]


def load_documents(path):
    return list(read_documents(path))


def annotate_command(args, model):
    return [sys.executable, "-m", "nerelproc", "annotate", *map(str, args), "--model", str(model), "--quiet"]


def annotate(args, model, env=None, **kwargs):
    return subprocess.run(annotate_command(args, model), capture_output=True, env=env, cwd=ROOT, **kwargs)


def run_until(command, moment, sig=signal.SIGKILL, seconds=120):
    """Start ``command`` and send it ``sig`` as soon as ``moment(seconds since the start)`` is
    true (asked every millisecond). Returns (exit status, stderr): the status is ``-sig`` if
    the signal ended the run, the run's own if it ended first."""
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    started = time.monotonic()
    while process.poll() is None and time.monotonic() - started < seconds:
        if moment(time.monotonic() - started):
            process.send_signal(sig)
            break
        time.sleep(0.001)
    _, stderr = process.communicate()
    return process.returncode, stderr.decode()


def line_count(path):
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def counted_bytes(sidecar):
    """How many bytes of the partial its sidecar counts as finished (None: no sidecar)."""
    try:
        return orjson.loads(sidecar.read_bytes())["bytes"]
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None


def short_texts(count, template="Москва {}."):
    return b"".join(orjson.dumps({"id": i, "text": template.format(i)}) + b"\n" for i in range(count))


def snapshot(folder):
    """{path: (bytes, mtime)} of every file below ``folder``: what a run must not touch. Lock
    files are left out: a run may take (and remove) the one a killed run left."""
    return {p: (p.read_bytes(), p.lstat().st_mtime_ns) for p in sorted(Path(folder).rglob("*"))
            if (p.is_file() or p.is_symlink()) and p.suffix != ".lock"}


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
            assert obj["relations"] == []  # the input's R-lines never pass through; this model finds none
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


@pytest.mark.parametrize("model", ["tiny_model", "tiny_relation_model"])
def test_a_job_killed_at_any_moment_resumes_to_the_same_bytes(model, request, nerel_dir, tmp_path):
    """A nightly job that always passes --resume, killed again and again: in its start-up and
    model load, half-way through a buffer (records written, not yet counted), right after a
    buffer; by SIGKILL and by SIGTERM. After every kill, each record of the partial is
    accounted for by its sidecar, no --resume is refused, and the last run writes the bytes
    of an uninterrupted one."""
    tiny_model = request.getfixturevalue(model)  # without relations, and with R-lines in every record
    texts = [s for d in load_documents(nerel_dir / "jsonl" / "train.jsonl")[:40]
             for s in re.split(r"(?<=[.!?])\s+", d.text) if 20 <= len(s) <= 160]
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"".join(orjson.dumps({"id": i, "text": t}) + b"\n" for i, t in enumerate(texts)))
    reference = annotate([source, "-o", tmp_path / "whole.jsonl", "--threads", 1], tiny_model)
    assert reference.returncode == 0, reference.stderr.decode()
    written = [orjson.loads(line) for line in (tmp_path / "whole.jsonl").read_bytes().splitlines()]
    assert any(r["relations"] for r in written) == (model == "tiny_relation_model")
    target, partial, sidecar = tmp_path / "out.jsonl", tmp_path / ".out.jsonl.partial", tmp_path / ".out.jsonl.partial.json"
    # 30 sentences a buffer: about 11 kB of output, more than a file buffer, so a buffer's first
    # records reach the disk before the buffer is finished and counted
    command = annotate_command([source, "-o", target, "--buffer", 30, "--threads", 1, "--resume"], tiny_model)

    def size():
        try:
            return partial.stat().st_size
        except FileNotFoundError:
            return None

    def after(seconds):
        return lambda: lambda elapsed: elapsed >= seconds

    def before_its_first_record():
        assert not partial.exists()
        return lambda elapsed: partial.exists()

    def half_way_through_a_buffer():
        before = (size(), counted_bytes(sidecar))  # what the last kill left is not this run's doing

        def moment(elapsed):
            now = (size(), counted_bytes(sidecar))
            return now != before and (now[0] or 0) > (now[1] or 0)  # records past the count (or no count)
        return moment

    def right_after_a_buffer():
        before = counted_bytes(sidecar) or 0
        return lambda elapsed: (counted_bytes(sidecar) or 0) > before

    # Moments by the clock fall in the imports, the model load or the first buffer, as fast as
    # the machine is; the others are seen on disk. The first partial ever comes first: a kill by
    # the clock may land after the output is opened when the machine is busy.
    kills = [("output opened", before_its_first_record, signal.SIGKILL),
             ("start-up", after(0.05), signal.SIGKILL),
             ("first buffer", half_way_through_a_buffer, signal.SIGKILL),
             *[("start-up, model load", after(seconds), signal.SIGKILL) for seconds in (0.2, 0.4, 0.6)],
             ("in a buffer", half_way_through_a_buffer, signal.SIGKILL),
             ("between buffers", right_after_a_buffer, signal.SIGKILL),
             ("in a buffer", half_way_through_a_buffer, signal.SIGTERM),
             ("between buffers", right_after_a_buffer, signal.SIGTERM),
             ("in a buffer", half_way_through_a_buffer, signal.SIGKILL)]
    for moment, when, sig in kills:
        status, stderr = run_until(command, when(), sig)
        assert status == -sig, f"killed {moment}: the run ended by itself ({status}): {stderr}"
        assert not target.exists(), "a killed run must not leave a complete-looking output"
        if line_count(partial):  # records on disk: a sidecar says what they are and how many are whole
            done = counted_bytes(sidecar)
            assert done is not None and done <= partial.stat().st_size, moment
            assert done == 0 or partial.read_bytes()[done - 1:done] == b"\n", moment
    assert line_count(partial) > 0  # the kills above left work to resume
    resumed = subprocess.run(command, capture_output=True, cwd=ROOT)
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert "resuming after" in resumed.stderr.decode()
    assert target.read_bytes() == (tmp_path / "whole.jsonl").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl", "whole.jsonl"]


def test_resume_starts_over_when_nothing_was_finished(tiny_model, tmp_path):
    """What a run killed before its first buffer was counted leaves: an empty partial (no
    sidecar, as an older nerelproc left it), half a record, or the sidecar a run on another
    input wrote before its first buffer. --resume starts from the beginning and says so."""
    source, other = tmp_path / "in.jsonl", tmp_path / "other.jsonl"
    source.write_bytes(short_texts(40))
    other.write_bytes(short_texts(400, "Река {} течёт."))
    reference = annotate([source, "-o", tmp_path / "whole.jsonl"], tiny_model)
    target, partial, sidecar = tmp_path / "out.jsonl", tmp_path / ".out.jsonl.partial", tmp_path / ".out.jsonl.partial.json"

    def killed_in_its_first_buffer():
        status, _ = run_until(annotate_command([other, "-o", target, "--buffer", 400], tiny_model),
                              lambda elapsed: partial.exists())
        assert status == -signal.SIGKILL and counted_bytes(sidecar) == 0

    for left in (lambda: partial.write_bytes(b""), lambda: partial.write_bytes(b'{"id": 0, "te'),
                 killed_in_its_first_buffer):
        left()
        result = annotate([source, "-o", target, "--resume"], tiny_model)
        stderr = result.stderr.decode()
        assert result.returncode == 0, stderr
        assert stderr.count("starting from the beginning") == 1 and "--resume" in stderr
        assert target.read_bytes() == (tmp_path / "whole.jsonl").read_bytes()
        assert not partial.exists() and not sidecar.exists()
        target.unlink()
    assert reference.returncode == 0


def test_resume_refuses_records_that_no_sidecar_accounts_for(tiny_model, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(short_texts(400))
    target, partial, sidecar = tmp_path / "out.jsonl", tmp_path / ".out.jsonl.partial", tmp_path / ".out.jsonl.partial.json"
    status, _ = run_until(annotate_command([source, "-o", target, "--buffer", 5], tiny_model),
                          lambda elapsed: (counted_bytes(sidecar) or 0) > 0)
    assert status == -signal.SIGKILL
    done = counted_bytes(sidecar)
    # a partial cut shorter than its sidecar says, and one with no sidecar at all
    partial.write_bytes(partial.read_bytes()[:done - 3])
    for _ in range(2):
        before = snapshot(tmp_path)
        result = annotate([source, "-o", target, "--resume"], tiny_model)
        stderr = result.stderr.decode()
        assert result.returncode == 2 and "no sidecar says what they belong to" in stderr, stderr
        assert "run without --resume" in stderr and snapshot(tmp_path) == before
        sidecar.unlink(missing_ok=True)


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
import nerelproc.io, nerelproc.runtime, nerelproc.evaluation, nerelproc.jobs
for package in (nerelproc.io, nerelproc.runtime, nerelproc.evaluation, nerelproc.jobs):
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
from nerelproc import Annotator, Document, score_documents
import nerelproc.training.calibration  # `nerelproc calibrate` tunes an int8 model without torch
print(len(list(pkgutil.iter_modules(nerelproc.runtime.__path__))))
""")


def test_the_runtime_imports_no_torch():
    """Every module of nerelproc.io, .runtime, .jobs and .evaluation, and training.calibration,
    imports with torch and transformers blocked."""
    result = subprocess.run([sys.executable, "-c", RUNTIME_NO_TORCH], capture_output=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr.decode()
    assert int(result.stdout) >= 8  # windows, tagging, decoding, heads, predictor, encoders, bundle, api, output


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

    got = parallel.with_options(encode_batch=counted).predict(texts)
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

    predictor = predictor.with_options(encode_batch=watched)
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
    (every window's states plus a merged copy of them would be twice that)."""
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
    encoding = peak_of(lambda: predictor.encode_documents([text]))  # the windows' states come and go here
    assert encoding - tokenising < tokens * hidden * 4, (encoding, tokenising, tokens * hidden * 4)


# -- reliability: batch independence, no silent loss, one readable line ---------------------------


@pytest.mark.parametrize("model", ["tiny_model", "tiny_relation_model"])
def test_output_does_not_depend_on_batch_buffer_threads_or_neighbours(model, request, nerel_dir, tmp_path):
    tiny_model = request.getfixturevalue(model)  # without relations, and with R-lines in every record
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
    assert any(orjson.loads(line)["relations"] for line in outputs["default"]) == (model == "tiny_relation_model")
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


def test_resume_refuses_a_partial_of_another_input_model_or_options(tiny_model, tmp_path):
    """One refusal for each thing a partial belongs to: the input's path, its size, the model,
    the options that change the output, and the records it was made from. Each leaves the
    partial as it was, and the right run then resumes it."""
    source, copy = tmp_path / "a.jsonl", tmp_path / "copy.jsonl"
    data = short_texts(400, "Город {:03d} стоит на реке.")
    source.write_bytes(data)
    copy.write_bytes(data)
    reference = annotate([source, "-o", tmp_path / "whole.jsonl"], tiny_model)
    assert reference.returncode == 0
    other_model = tmp_path / "model2"
    shutil.copytree(tiny_model, other_model)
    (other_model / "nerelproc.json").write_bytes((other_model / "nerelproc.json").read_bytes() + b"\n")
    target, partial, sidecar = tmp_path / "r.jsonl", tmp_path / ".r.jsonl.partial", tmp_path / ".r.jsonl.partial.json"
    args = ["-o", target, "--buffer", 5]
    status, _ = run_until(annotate_command([source, *args], tiny_model),
                          lambda elapsed: (counted_bytes(sidecar) or 0) > 0)
    assert status == -signal.SIGKILL
    done, state = counted_bytes(sidecar), sidecar.read_bytes()
    finished, written = partial.read_bytes()[:done], orjson.loads(state)["stats"]["written"]

    cases = [
        ("another input ", [copy, *args], tiny_model, data),  # the same bytes at another path
        ("another input_size ", [source, *args], tiny_model, data + short_texts(1)),
        ("another model ", [source, *args], other_model, data),
        ("another options ", [source, *args, "--scores"], tiny_model, data),
        (f"first {written} records differ", [source, *args], tiny_model, data.replace(b"000", b"999", 1)),
    ]
    for refusal, run_args, model, content in cases:
        source.write_bytes(content)
        result = annotate(["--resume", *run_args], model)
        stderr = result.stderr.decode()
        assert result.returncode == 2 and refusal in stderr and "--resume" in stderr, (refusal, stderr)
        assert not target.exists() and sidecar.read_bytes() == state
        assert partial.read_bytes()[:done] == finished
    source.write_bytes(data)
    resumed = annotate(["--resume", source, *args], tiny_model)
    assert resumed.returncode == 0 and f"resuming after {written} records" in resumed.stderr.decode()
    assert target.read_bytes() == (tmp_path / "whole.jsonl").read_bytes()


def test_user_field_named_error_is_not_a_failure_after_resume(tiny_model, tmp_path):
    lines = [orjson.dumps({"id": i, "text": f"Москва {i}.", "error": "user data"}) for i in range(300)]
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    target, partial = tmp_path / "out.jsonl", tmp_path / ".out.jsonl.partial"
    command = annotate_command([tmp_path / "in.jsonl", "-o", target, "--buffer", 2], tiny_model)
    whole = subprocess.run(command, capture_output=True, cwd=ROOT)
    assert whole.returncode == 0, whole.stderr.decode()
    reference = target.read_bytes()
    target.unlink()
    status, _ = run_until(command, lambda elapsed: line_count(partial) >= 4)
    assert status == -signal.SIGKILL, "the run ended before it could be killed"
    assert 4 <= line_count(partial) < len(lines)
    resumed = subprocess.run(command + ["--resume"], capture_output=True, cwd=ROOT)
    stderr = resumed.stderr.decode()
    assert resumed.returncode == 0, stderr
    assert "resuming after" in stderr and "0 failed" in stderr
    assert target.read_bytes() == reference


def test_an_output_that_is_the_input_is_refused_before_anything_is_read(tmp_path):
    """However the path is spelt, or linked: exit 2 and every file as it was. No model is
    needed to see it (the one named does not exist)."""
    gold = tmp_path / "gold.jsonl"
    gold.write_bytes(orjson.dumps({"id": "a", "text": "Москва.", "entities": ["T1\tCITY 0 6\tМосква"],
                                   "relations": [], "links": []}) + b"\n")
    brat = tmp_path / "brat"
    brat.mkdir()
    (brat / "a.txt").write_text("Москва.")
    (brat / "a.ann").write_text("T1\tCITY 0 6\tМосква\n")
    os.link(gold, tmp_path / "hard.jsonl")
    (tmp_path / "link.jsonl").symlink_to(gold)
    (tmp_path / ".out.jsonl.partial").write_bytes(gold.read_bytes())  # the partial output of out.jsonl
    cases = [
        [gold, "-o", gold],
        [gold, "-o", tmp_path / "." / "gold.jsonl"],
        [os.path.relpath(gold, ROOT), "-o", gold],  # relative (the run's folder is ROOT) and absolute
        [gold, "-o", tmp_path / "link.jsonl"],  # a symbolic link to it
        [gold, "-o", tmp_path / "hard.jsonl"],  # a hard link: the same device and inode
        [gold, "-o", gold, "--resume"],
        [tmp_path / ".out.jsonl.partial", "-o", tmp_path / "out.jsonl"],
        [brat, "-o", f"{brat}/"],  # BRAT files written over the BRAT input
        [brat, "-o", brat, "--format", "brat"],
    ]
    before = snapshot(tmp_path)
    for args in cases:
        result = annotate(args, tmp_path / "no-model")
        stderr = result.stderr.decode()
        assert result.returncode == 2 and "would overwrite the input" in stderr, (args, stderr)
        assert stderr.count("\n") == 1 and "Traceback" not in stderr
        assert snapshot(tmp_path) == before, args
    assert not (tmp_path / "no-model").exists() and not list(tmp_path.glob(".*.lock"))


def test_a_second_run_on_the_same_output_exits_4_and_touches_nothing(tiny_model, tmp_path):
    """The lock names its holder, goes with it however it dies (SIGKILL here), and is not
    taken for stdout."""
    source, tonight = tmp_path / "in.jsonl", tmp_path / "tonight.jsonl"
    source.write_bytes(short_texts(300))
    tonight.write_bytes(short_texts(5, "Река {}."))
    reference = annotate([source, "-o", tmp_path / "whole.jsonl"], tiny_model)
    assert reference.returncode == 0
    target, sidecar = tmp_path / "out" / "out.jsonl", tmp_path / "out" / ".out.jsonl.partial.json"
    first = subprocess.Popen(annotate_command([source, "-o", target, "--buffer", 2], tiny_model), cwd=ROOT,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not counted_bytes(sidecar) and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.001)
        first.send_signal(signal.SIGSTOP)  # it holds the lock and writes nothing while we look
        assert first.poll() is None, "the first run ended before the second one started"
        before = snapshot(tmp_path)
        for spelling in (target, os.path.relpath(target, ROOT)):
            started = time.monotonic()
            second = annotate([tonight, "-o", spelling], tiny_model)
            stderr = second.stderr.decode()
            assert second.returncode == 4, stderr
            assert f"another nerelproc run is writing {spelling} (pid {first.pid} on {socket.gethostname()} since " \
                in stderr and stderr.count("\n") == 1
            assert time.monotonic() - started < 30 and snapshot(tmp_path) == before
        to_stdout = annotate([tonight], tiny_model)  # '-o -' takes no lock
        assert to_stdout.returncode == 0 and len(to_stdout.stdout.splitlines()) == 5
        first.send_signal(signal.SIGKILL)
    finally:
        first.kill()
        first.wait()
    resumed = annotate([source, "-o", target, "--buffer", 2, "--resume"], tiny_model)
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert "resuming after" in resumed.stderr.decode()
    assert target.read_bytes() == (tmp_path / "whole.jsonl").read_bytes()
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.jsonl"]  # no lock file left


def test_a_truncated_gzip_writes_the_records_before_the_cut_and_says_where_it_ends(tiny_model, tmp_path):
    """A feed still being written, or cut in transfer: the records read before the cut are
    annotated, the cut gets an error record, one stderr line names the file and the line, exit 3."""
    import gzip

    source = tmp_path / "feed.jsonl.gz"
    packed = gzip.compress(short_texts(300, "Москва {}. " + "Вчера в Казани открыли парк. " * 30))
    source.write_bytes(packed[: len(packed) // 2])
    result = annotate([source, "-o", tmp_path / "out.jsonl"], tiny_model)
    stderr = result.stderr.decode()
    assert result.returncode == 3, stderr
    *annotated, cut = read_lines(tmp_path / "out.jsonl")
    assert annotated and [r["id"] for r in annotated] == list(range(len(annotated)))
    assert all("entities" in r for r in annotated)
    line = len(annotated) + 1
    assert cut["line"] == line and "error" in cut
    [message] = [m for m in stderr.splitlines() if "cut short" in m]
    assert message.startswith(f"nerelproc annotate: line {line} (id None): {source} is cut short or corrupt "
                              f"at line {line}, nothing after it read (EOFError")
    assert "Aborted" not in stderr and "Traceback" not in stderr


def test_input_from_stdin(tiny_model, nerel_dir, tmp_path):
    write_jsonl(load_documents(nerel_dir / "jsonl" / "dev.jsonl")[:3], tmp_path / "in.jsonl", relations=False)
    data = (tmp_path / "in.jsonl").read_bytes()
    from_file = annotate([tmp_path / "in.jsonl", "-o", tmp_path / "file.jsonl"], tiny_model)
    from_stdin = annotate(["-", "-o", tmp_path / "stdin.jsonl"], tiny_model, input=data)
    through = annotate(["-"], tiny_model, input=data)  # stdin to stdout
    for result in (from_file, from_stdin, through):
        assert result.returncode == 0 and b"3 documents: 3 annotated" in result.stderr, result.stderr.decode()
    assert (tmp_path / "stdin.jsonl").read_bytes() == (tmp_path / "file.jsonl").read_bytes() == through.stdout
    assert len(through.stdout.splitlines()) == 3


def test_strict_stops_at_a_bad_record_in_the_middle(tiny_model, tmp_path):
    good = [orjson.dumps({"id": i, "text": f"Москва {i}."}) for i in range(8)]
    lines = good[:3] + [b"{broken"] + good[3:6] + [orjson.dumps({"id": "no text"})] + good[6:]
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    result = annotate([tmp_path / "in.jsonl", "-o", tmp_path / "out.jsonl", "--buffer", 2, "--strict"], tiny_model)
    stderr = result.stderr.decode()
    assert result.returncode == 3, stderr
    assert "--strict: stopped at line 4 " in stderr and "line 8" not in stderr and "documents" not in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]  # no output, no partial, no lock


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
        ids = [entity.split("\t", 1)[0] for entity in line["entities"]]
        assert [e.normal for e in result.entities] == [line["normal"][i] for i in ids]
        by_id = dict(zip(ids, result.entities))
        assert [(g.name, g.type, list(g.mentions)) for g in result.groups] == \
            [(g["name"], g["type"], [by_id[m] for m in g["mentions"]]) for g in line["groups"]]
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
        assert set(a) == set(b) == {"id", "text", "entities", "relations", "relation_types", "normal", "groups",
                                    "relation_scores", "relation_probabilities"}
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


NAMED_TEXT = "Андреем Травниковым недовольны в Новосибирской области. Травников ответил."
NAMED_ENTITIES = ["T1\tPERSON 0 19\tАндреем Травниковым", "T2\tSTATE_OR_PROVINCE 33 54\tНовосибирской области",
                  "T5\tPERSON 56 65\tТравников"]


def check_names(line):
    """``normal`` and ``groups`` of an output line agree with its entities: one form per T-line
    (the form ``normal_form`` gives its surface), each T-line in exactly one group, typed as one
    of its mentions."""
    from nerelproc.names import normal_form

    entities = {e.id: e for e in map(parse_entity_line, line["entities"])}
    assert set(line["normal"]) == set(entities)
    for entity_id, entity in entities.items():
        assert line["normal"][entity_id] == normal_form(entity.surface(line["text"]), entity.type)
    mentions = [m for group in line["groups"] for m in group["mentions"]]
    assert sorted(mentions) == sorted(entities)
    for group in line["groups"]:
        assert group["type"] in {entities[m].type for m in group["mentions"]}
        assert group["name"] in {line["normal"][m] for m in group["mentions"]}


def test_jsonl_output_names_each_entity_and_groups_its_mentions(tiny_relation_model, nerel_dir, tmp_path):
    tiny_model = tiny_relation_model  # the tiny model made to find entities
    docs = load_documents(nerel_dir / "jsonl" / "test.jsonl")[:4]
    (tmp_path / "in.jsonl").write_bytes(b"".join(orjson.dumps({"id": d.id, "text": d.text}) + b"\n" for d in docs))
    assert annotate([tmp_path / "in.jsonl", "-o", tmp_path / "out.jsonl"], tiny_model).returncode == 0
    written = read_lines(tmp_path / "out.jsonl")
    assert sum(len(line["entities"]) for line in written) > 0
    for line in written:
        assert list(line)[-2:] == ["normal", "groups"]
        check_names(line)
    assert annotate([tmp_path / "in.jsonl", "-o", tmp_path / "bare.jsonl", "--no-names"], tiny_model).returncode == 0
    bare = read_lines(tmp_path / "bare.jsonl")
    assert bare == [{k: v for k, v in line.items() if k not in ("normal", "groups")} for line in written]


def test_given_entities_get_their_normal_forms_and_groups(tiny_model, nerel_dir, tmp_path):
    gold = (nerel_dir / "jsonl" / "dev.jsonl").read_bytes().splitlines()[:2]
    named = orjson.dumps({"id": "named", "text": NAMED_TEXT, "entities": NAMED_ENTITIES})
    (tmp_path / "in.jsonl").write_bytes(b"\n".join([*gold, named]) + b"\n")
    result = annotate([tmp_path / "in.jsonl", "-o", tmp_path / "out.jsonl", "--given-entities"], tiny_model)
    assert result.returncode == 0, result.stderr.decode()
    written = read_lines(tmp_path / "out.jsonl")
    for line, source in zip(written, gold):
        assert line["entities"] == orjson.loads(source)["entities"]
        check_names(line)
    assert written[2]["normal"] == {"T1": "Андрей Травников", "T2": "Новосибирская область", "T5": "Травников"}
    assert written[2]["groups"] == [
        {"name": "Андрей Травников", "type": "PERSON", "mentions": ["T1", "T5"]},
        {"name": "Новосибирская область", "type": "STATE_OR_PROVINCE", "mentions": ["T2"]},
    ]


def test_brat_output_carries_the_normal_forms_as_annotator_notes(tiny_model, nerel_dir, tmp_path):
    gold = (nerel_dir / "jsonl" / "dev.jsonl").read_bytes().splitlines()[:2]
    named = orjson.dumps({"id": "named", "text": NAMED_TEXT, "entities": NAMED_ENTITIES})
    (tmp_path / "in.jsonl").write_bytes(b"\n".join([*gold, named]) + b"\n")
    for output in (tmp_path / "out.jsonl", f"{tmp_path / 'brat'}/"):
        result = annotate([tmp_path / "in.jsonl", "-o", output, "--given-entities"], tiny_model)
        assert result.returncode == 0, result.stderr.decode()
    ann = (tmp_path / "brat" / "named.ann").read_text().splitlines()
    assert ann[-3:] == ["#1\tAnnotatorNotes T1\tАндрей Травников", "#2\tAnnotatorNotes T2\tНовосибирская область",
                        "#3\tAnnotatorNotes T5\tТравников"]
    written = {line["id"]: line for line in read_lines(tmp_path / "out.jsonl")}
    read_back = {d.id: d for d in load_documents(tmp_path / "brat")}
    assert set(read_back) == set(written)
    for doc_id, document in read_back.items():
        assert document.normal == written[doc_id]["normal"] and document.normal
        assert not document.links  # the notes are read as normal forms, not kept as other lines
    # and again through annotate: the BRAT folder in, its T-lines given, the same names out
    result = annotate([tmp_path / "brat", "-o", tmp_path / "again.jsonl", "--given-entities"], tiny_model)
    assert result.returncode == 0, result.stderr.decode()
    for line in read_lines(tmp_path / "again.jsonl"):
        assert (line["normal"], line["groups"]) == (written[line["id"]]["normal"], written[line["id"]]["groups"])


def test_the_python_api_gives_normal_forms_and_groups_of_entities():
    from nerelproc import Annotator, Group

    annotator = Annotator.load(threads=1)
    result = annotator.annotate({"text": NAMED_TEXT, "entities": NAMED_ENTITIES}, given_entities=True)
    assert [e.normal for e in result.entities] == ["Андрей Травников", "Новосибирская область", "Травников"]
    first, region, second = result.entities
    assert result.groups == [Group("Андрей Травников", "PERSON", (first, second)),
                             Group("Новосибирская область", "STATE_OR_PROVINCE", (region,))]
    assert all(mention is entity for mention, entity in zip(result.groups[0].mentions, (first, second)))
    line = result.to_json()
    assert line["groups"][0]["mentions"] == ["T1", "T5"] and line["normal"]["T5"] == "Травников"
    bare = annotator.annotate(NAMED_TEXT, names=False)
    assert bare.groups == [] and all(e.normal is None for e in bare.entities) and "normal" not in bare.to_json()
