"""One prediction loop, ``Predictor.pipe``, under every caller: a document whose prediction
raises gets an error in its place, and every other document comes out as without it, in
``annotate``, ``batch``, the Python API and spaCy's ``nlp.pipe``."""

import orjson
import pytest

CULPRIT = "Этот текст роняет модель."
TEXTS = [f"Анна Иванова живёт в Москве {i}." for i in range(7)]
TEXTS[3] = CULPRIT


@pytest.fixture
def failing(monkeypatch):
    """Planning the culprit's windows raises, as a model failing on one document would."""
    from nerelproc.runtime.predictor import Predictor

    plan = Predictor._plan

    def planned(self, text, given=None):
        if text == CULPRIT:
            raise MemoryError("window 2 of 2")
        return plan(self, text, given)

    return lambda: monkeypatch.setattr(Predictor, "_plan", planned)


def write_input(path):
    path.write_bytes(b"".join(orjson.dumps({"id": f"d{i}", "text": t}) + b"\n" for i, t in enumerate(TEXTS)))
    return path


def read_lines(path):
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_pipe_gives_the_failing_document_its_error_and_the_others_their_predictions(tiny_model, failing):
    from nerelproc.runtime.bundle import load_predictor
    from nerelproc.runtime.predictor import Failure

    predictor = load_predictor(tiny_model, threads=1)
    expected = predictor.predict(TEXTS[:3] + TEXTS[4:])
    failing()
    got = list(predictor.pipe(TEXTS + [None], buffer=3, on_error=Failure.of))
    assert got[3] == Failure("annotation failed: MemoryError: window 2 of 2") and got[7] is None
    assert [p.entities for p in got[:3] + got[4:7]] == [p.entities for p in expected]
    with pytest.raises(MemoryError):  # no handler: the error is raised, as spaCy's default does
        list(predictor.pipe(TEXTS, buffer=3))


def test_annotate_writes_an_error_record_for_the_failing_document_only(tiny_model, tmp_path, failing):
    from click.testing import CliRunner

    from nerelproc.cli import main

    source = write_input(tmp_path / "in.jsonl")

    def run(output):
        return CliRunner().invoke(main, ["annotate", str(source), "-o", str(output), "--model", str(tiny_model),
                                         "--buffer", "3", "--threads", "1", "--quiet"])

    assert run(tmp_path / "whole.jsonl").exit_code == 0
    failing()
    result = run(tmp_path / "out.jsonl")
    assert result.exit_code == 3, result.output
    out, whole = read_lines(tmp_path / "out.jsonl"), read_lines(tmp_path / "whole.jsonl")
    assert out[3] == {"id": "d3", "line": 4, "error": "annotation failed: MemoryError: window 2 of 2"}
    assert out[:3] + out[4:] == whole[:3] + whole[4:]
    assert "line 4 (id d3): annotation failed: MemoryError" in result.stderr
    assert "7 documents: 6 annotated, 1 failed" in result.stderr


def test_batch_writes_an_error_record_for_the_failing_document_only(tiny_model, tmp_path, failing):
    from nerelproc.jobs.batch import run_batch

    feeds = tmp_path / "feeds"
    feeds.mkdir()
    write_input(feeds / "a.jsonl")
    whole = run_batch([feeds], tmp_path / "whole", tiny_model, threads=1, buffer=3, report=lambda message: None)
    assert whole.exit_code == 0
    failing()
    messages = []
    result = run_batch([feeds], tmp_path / "out", tiny_model, threads=1, buffer=3, report=messages.append)
    assert result.exit_code == 3 and result.stats.failed == 1 and result.done == ["a.jsonl"]
    out, expected = read_lines(tmp_path / "out" / "a.jsonl"), read_lines(tmp_path / "whole" / "a.jsonl")
    assert out[3] == {"id": "d3", "line": 4, "error": "annotation failed: MemoryError: window 2 of 2"}
    assert out[:3] + out[4:] == expected[:3] + expected[4:]
    assert ["a.jsonl: line 4 (id d3): annotation failed: MemoryError: window 2 of 2"] == messages


def test_annotate_many_gives_the_failing_document_an_error_and_goes_on(tiny_model, failing):
    from nerelproc.runtime.api import Annotator

    annotator = Annotator.load(tiny_model, threads=1)
    whole = list(annotator.annotate_many(TEXTS, buffer=3))
    failing()
    results = list(annotator.annotate_many(TEXTS, buffer=3))
    assert [r.error for r in results] == [None] * 3 + ["annotation failed: MemoryError: window 2 of 2"] + [None] * 3
    assert results[3].to_json() == {"id": 4, "line": 4, "error": "annotation failed: MemoryError: window 2 of 2"}
    assert [r.to_json() for r in results[:3] + results[4:]] == [r.to_json() for r in whole[:3] + whole[4:]]
    assert annotator.annotate(TEXTS[3]).error.startswith("annotation failed: MemoryError")


def test_nlp_pipe_hands_only_the_failing_doc_to_the_error_handler(tiny_model, failing):
    spacy = pytest.importorskip("spacy")
    nlp = spacy.blank("ru")
    nlp.add_pipe("nerelproc", config={"model": str(tiny_model), "threads": 1})
    whole = [doc.spans["nerel"] for doc in nlp.pipe(TEXTS, batch_size=3)]
    failing()
    handled = []
    nlp.set_error_handler(lambda name, component, docs, error: handled.append(([d.text for d in docs], str(error))))
    docs = list(nlp.pipe(TEXTS, batch_size=3))
    assert handled == [([CULPRIT], "nerelproc: the text could not be annotated: annotation failed: MemoryError: "
                                   "window 2 of 2")]
    assert [doc.text for doc in docs] == TEXTS[:3] + TEXTS[4:]
    assert [[(s.start, s.end, s.label_) for s in doc.spans["nerel"]] for doc in docs] == \
        [[(s.start, s.end, s.label_) for s in spans] for spans in whole[:3] + whole[4:]]
