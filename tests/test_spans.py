"""The span head: the numpy runtime against its torch twin, window ownership, word edges,
how candidates become a document's nested entities, and training on cached states."""

import numpy as np
import pytest
from needs import need

from nerelproc.io.document import Document, Entity
from nerelproc.runtime import spans
from nerelproc.runtime.windows import plan_windows
from tiny_model import random_head, with_span_head


def test_window_scoring_gives_every_candidate_its_plain_logits():
    rng = np.random.default_rng(0)
    head = random_head(rng)
    states = rng.normal(size=(30, 12)).astype(np.float32)
    can_start, can_end = rng.random(30) < 0.7, rng.random(30) < 0.7
    first, last = spans.window_spans(can_start, can_end, (3, 25), head.max_width)
    assert len(first) and (first >= 3).all() and (first < 25).all() and (last < 30).all()
    assert can_start[first].all() and can_end[last].all() and (last - first < head.max_width).all()
    probs = spans.softmax(head.logits(states, first, last))
    types, f, l, scores = spans.window_span_entities(head, states, can_start, can_end, (3, 25), floor=0.0)
    assert np.array_equal(f, first) and np.array_equal(l, last)
    assert np.array_equal(types, probs[:, 1:].argmax(1))
    np.testing.assert_allclose(scores, probs[:, 1:].max(1), rtol=1e-5)
    kept = spans.window_span_entities(head, states, can_start, can_end, (3, 25), floor=0.5)
    assert np.array_equal(kept[3], scores[scores >= 0.5])


def test_a_window_shorter_than_the_widest_span_is_scored_whole():
    """A headline of a few tokens: every span of it, none wider than the window."""
    rng = np.random.default_rng(3)
    head = random_head(rng, max_width=5)
    for n in (1, 3, 5):
        states = rng.normal(size=(n, 12)).astype(np.float32)
        every = np.ones(n, bool)
        types, first, last, scores = spans.window_span_entities(head, states, every, every, (0, n), floor=0.0)
        assert len(first) == n * (n + 1) // 2 and (last < n).all()
        np.testing.assert_allclose(scores, spans.softmax(head.logits(states, first, last))[:, 1:].max(1), rtol=1e-5)


def test_the_numpy_head_computes_what_the_torch_head_does():
    need("torch")
    import torch

    from nerelproc.training.spans import SpanModel

    torch.manual_seed(0)
    model = SpanModel(hidden=12, n_types=4, width=8, max_width=5).eval()
    with torch.no_grad():  # a trained head's parameters are not the initial ones (bias 0)
        for parameter in model.parameters():
            parameter.normal_()
    states = np.random.default_rng(1).normal(size=(40, 12)).astype(np.float16)  # cached states are float16
    first, last = spans.window_spans(np.ones(40, bool), np.ones(40, bool), (0, 40), 5)
    with torch.no_grad():
        expected = model(torch.from_numpy(states), torch.from_numpy(first), torch.from_numpy(last)).numpy()
    head = model.export()
    np.testing.assert_allclose(head.logits(states.astype(np.float32), first, last), expected, rtol=1e-4, atol=1e-4)
    types, f, l, scores = spans.window_span_entities(head, states.astype(np.float32), np.ones(40, bool),
                                                     np.ones(40, bool), (0, 40), floor=0.0)
    probs = torch.softmax(torch.from_numpy(expected), 1).numpy()
    np.testing.assert_allclose(scores, probs[np.arange(len(f)), types + 1], rtol=1e-4, atol=1e-6)


def test_a_saved_head_loads_the_same(tmp_path):
    head = random_head(np.random.default_rng(2))
    head.save(tmp_path / spans.SPANS_FILE)
    loaded = spans.SpanHead.load(tmp_path / spans.SPANS_FILE)
    for name in spans.SPAN_PARAMS:
        assert np.array_equal(getattr(loaded, name), getattr(head, name))
    assert loaded.max_width == 5 and loaded.n_types == 4


def test_each_span_of_a_long_document_is_scored_once_by_the_window_owning_its_start():
    rng = np.random.default_rng(3)
    n, max_width = 1300, 6
    head = random_head(rng, max_width=max_width)
    can_start, can_end = rng.random(n) < 0.8, rng.random(n) < 0.8
    windows = plan_windows(n)
    assert len(windows) > 2
    states = [rng.normal(size=(w.end - w.start, 12)).astype(np.float32) for w in windows]
    _, first, last, _ = spans.document_span_entities(head, states, windows, can_start, can_end, floor=0.0)
    everything = set(zip(*spans.window_spans(can_start, can_end, (0, n), max_width)))
    assert len(first) == len(everything) and set(zip(first.tolist(), last.tolist())) == everything


def test_word_edges_skip_pieces_inside_words_and_bare_spaces():
    text = "Мэр Москвы (47,7 процента)"
    # the bundled tokenizer's pieces: "М", "эр", " Москвы", " (", "47", ",", "7", " процента", ")"; then an empty one
    offsets = np.array([[0, 1], [1, 3], [3, 10], [10, 12], [12, 14], [14, 15], [15, 16], [16, 25], [25, 26], [26, 26]])
    can_start, can_end = spans.span_edges(text, offsets)
    assert can_start.tolist() == [True, False, True, True, True, True, True, True, True, False]
    assert can_end.tolist() == [False, True, True, True, True, True, True, True, True, False]


def test_crossing_spans_give_way_to_the_better_one_and_nesting_stays():
    first, last = np.array([0, 2, 3, 2, 6]), np.array([4, 7, 3, 3, 6])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    kept = spans.resolve_crossing(first, last, scores, max_width=8)
    assert sorted(kept) == [0, 2, 3, 4]  # [2, 7] crosses [0, 4]; the nested [3, 3], [2, 3], [6, 6] stay
    order = np.array([4, 2, 0, 3, 1])
    again = spans.resolve_crossing(first[order], last[order], scores[order], max_width=8)
    assert sorted(order[again].tolist()) == [0, 2, 3, 4]


def test_decoded_spans_index_the_text_exactly_without_edge_spaces():
    text = "Мэр Москвы Сергей Собянин"
    offsets = np.array([[0, 3], [3, 10], [10, 17], [17, 25]])  # "Мэр", " Москвы", " Сергей", " Собянин"
    candidates = (np.array([1, 0, 0, 1]), np.array([1, 2, 0, 2]), np.array([1, 3, 3, 2]),
                  np.array([0.9, 0.8, 0.3, 0.1]))
    entities = spans.decode_spans(candidates, 0.2, offsets, text, ["PERSON", "CITY"], max_width=4)
    assert entities == [Entity("PERSON", ((0, 25),)), Entity("CITY", ((4, 10),)), Entity("PERSON", ((11, 25),))]
    assert [text[e.start : e.end] for e in entities][1:] == ["Москвы", "Сергей Собянин"]
    nothing = (np.zeros(0, np.int64),) * 3 + (np.zeros(0),)
    assert spans.decode_spans(nothing, 0.5, offsets, text, ["PERSON", "CITY"], max_width=4) == []


def test_a_head_trained_on_cached_states_finds_the_gold_spans():
    need("torch")
    from nerelproc.training.spans import candidates_of, span_predictions, train_span_head, training_windows

    # Three words a document; the middle word's state says its type, a span head must learn it.
    rng = np.random.default_rng(4)
    types = ["CITY", "PERSON"]
    words = ["Мир", "Москва", "Пётр"]
    documents, records = [], []
    for d in range(12):
        picks = rng.integers(0, 3, size=6)
        text = " ".join(words[p] for p in picks)
        starts = np.cumsum([0] + [len(words[p]) + 1 for p in picks[:-1]])
        offsets = np.stack([starts, starts + [len(words[p]) for p in picks]], 1)
        states = np.eye(3, dtype=np.float32)[picks] + rng.normal(scale=0.05, size=(6, 3)).astype(np.float32)
        entities = [Entity(types[p - 1], ((int(s), int(e)),)) for p, (s, e) in zip(picks, offsets) if p]
        documents.append(Document(str(d), text, entities))
        records.append({"windows": [(0, 6, 0, 6)], "states": [states.astype(np.float16)], "offsets": offsets})
    examples, missed = training_windows(records, documents, types, max_width=3)
    assert missed == 0 and sum(int((e[3] > 0).sum()) for e in examples) == sum(len(d.entities) for d in documents)
    model = train_span_head(examples, 3, 2, epochs=30, seed=0, evaluate=lambda epoch, model: None,
                            log=lambda message: None, width=16, max_width=3, learning_rate=3e-2)
    head = model.export()
    found = candidates_of(head, records, [d.text for d in documents])
    predicted = span_predictions(found, records, documents, types, 0.5, max_width=3)
    assert [p.entities for p in predicted] == [sorted(d.entities, key=lambda e: e.start) for d in documents]


def test_a_bundle_with_a_span_threshold_annotates_through_its_span_head(tiny_relation_model, nerel_dir, tmp_path):
    """The entities are the span head's, window by window as ``document_span_entities`` scores
    them, whatever the batching; the relation head reads them (annotate end to end too)."""
    import subprocess
    import sys

    from nerelproc.io.readers import read_documents
    from nerelproc.io.writers import write_jsonl
    from nerelproc.runtime.bundle import load_predictor

    docs = list(read_documents(nerel_dir / "jsonl" / "dev.jsonl"))[:3]
    model_dir = tmp_path / "model"
    head = with_span_head(tiny_relation_model, model_dir, threshold=0.6)
    predictor = load_predictor(model_dir, threads=1)
    assert predictor.span_head is not None and predictor.span_threshold == 0.6
    predicted = predictor.predict([d.text for d in docs])
    for doc, prediction in zip(docs, predicted):
        states = {}
        for document, k, window_states in predictor.windows_of(doc.text):
            states[k] = window_states.copy()
        assert len(states) > 1  # windows of 62 tokens: ownership matters
        ks = sorted(states)
        edges = spans.span_edges(doc.text, document.encoded.offsets)
        candidates = spans.document_span_entities(head, [states[k] for k in ks], [document.windows[k] for k in ks],
                                                  *edges)
        expected = spans.decode_spans(candidates, 0.6, document.encoded.offsets, doc.text,
                                      predictor.scheme.entity_types, head.max_width)
        assert expected and prediction.entities == expected
        assert all(h < len(expected) and t < len(expected) for h, t, _, _ in prediction.relations)
    assert any(p.relations for p in predicted)
    batched = predictor.with_options(batch_windows=8).predict([d.text for d in docs])
    assert [(p.entities, p.relations) for p in batched] == [(p.entities, p.relations) for p in predicted]
    assert predictor.predict([docs[1].text])[0].entities == predicted[1].entities

    write_jsonl(docs, tmp_path / "in.jsonl")
    command = [sys.executable, "-m", "nerelproc", "annotate", str(tmp_path / "in.jsonl"), "-o",
               str(tmp_path / "out.jsonl"), "--model", str(model_dir), "--quiet"]
    assert subprocess.run(command, capture_output=True).returncode == 0
    written = list(read_documents(tmp_path / "out.jsonl"))
    assert [[(e.type, e.spans) for e in d.entities] for d in written] == \
        [[(e.type, e.spans) for e in p.entities] for p in predicted]


def test_a_bundle_naming_a_span_threshold_without_its_head_is_refused(tiny_model, nerel_dir, tmp_path):
    import subprocess
    import sys

    from nerelproc.runtime.bundle import load_predictor

    model_dir = tmp_path / "model"
    with_span_head(tiny_model, model_dir, threshold=0.5)
    (model_dir / spans.SPANS_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="has no spans.npz.*span_threshold 0.5"):
        load_predictor(model_dir, threads=1)
    command = [sys.executable, "-m", "nerelproc", "annotate", str(nerel_dir / "jsonl" / "dev.jsonl"), "-o",
               str(tmp_path / "out.jsonl"), "--model", str(model_dir), "--quiet"]
    result = subprocess.run(command, capture_output=True)
    assert result.returncode == 1 and b"spans.npz" in result.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_calibrate_tunes_the_span_threshold_that_annotate_then_uses(tiny_relation_model, nerel_dir, tmp_path):
    import json

    from click.testing import CliRunner

    from nerelproc.cli import main
    from nerelproc.io.readers import read_documents
    from nerelproc.runtime.bundle import load_predictor
    from nerelproc.training.calibration import SPAN_THRESHOLD_GRID, ner_f1

    model_dir = tmp_path / "model"
    with_span_head(tiny_relation_model, model_dir, threshold=0.9)  # off the grid: calibrate must move it
    o_bias = json.loads((model_dir / "nerelproc.json").read_text()).get("ner_o_bias")
    dev = tmp_path / "dev.jsonl"
    dev.write_bytes(b"\n".join((nerel_dir / "jsonl" / "dev.jsonl").read_bytes().splitlines()[6:9]) + b"\n")
    result = CliRunner().invoke(main, ["calibrate", str(model_dir), "--dev", str(dev), "--threads", "1"])
    assert result.exit_code == 0, result.output
    config = json.loads((model_dir / "nerelproc.json").read_text())
    assert config["span_threshold"] in SPAN_THRESHOLD_GRID and config.get("ner_o_bias") == o_bias
    recorded = config["calibration"]["span_threshold_dev_nested_f1"]
    assert set(recorded) == {str(t) for t in SPAN_THRESHOLD_GRID}
    assert recorded[str(config["span_threshold"])] == max(recorded.values())
    gold = list(read_documents(dev))
    predicted = load_predictor(model_dir, threads=1).predict([d.text for d in gold])
    assert round(ner_f1(predicted, gold), 4) == recorded[str(config["span_threshold"])]


def test_the_pair_head_can_keep_reading_the_tagging_heads_entities(tiny_model, nerel_dir, tmp_path):
    """``pair_entities: "tags"``: the CLS probabilities are the tagging model's, to the bit,
    while the entities are the span head's; without it the pair head reads the spans."""
    import shutil

    torch = need("torch")
    from tiny_model import finding_entities

    from nerelproc.io.readers import read_documents
    from nerelproc.runtime.bundle import PAIRS_FILE, Bundle, load_predictor
    from nerelproc.training.pairs import PairModel

    tagging = tmp_path / "tagging"
    shutil.copytree(tiny_model, tagging)
    finding_entities(tagging)
    bundle = Bundle.load(tagging)
    torch.manual_seed(0)
    PairModel(len(bundle.entity_types), len(bundle.relation_types), hidden=bundle.hidden_size).eval().export().save(
        tagging / PAIRS_FILE)
    bundle.pair_weight = 0.7
    bundle.save(tagging)
    with_span_head(tagging, tmp_path / "spans", threshold=0.6)
    kept = tmp_path / "kept"
    shutil.copytree(tmp_path / "spans", kept)
    bundle = Bundle.load(kept)
    bundle.pair_entities = "tags"
    bundle.save(kept)

    texts = [d.text for d in list(read_documents(nerel_dir / "jsonl" / "dev.jsonl"))[:3]]
    by_model = {name: load_predictor(tmp_path / name, threads=1).predict(texts)
                for name in ("tagging", "spans", "kept")}
    scores = {name: np.stack([p.relation_scores for p in predicted]) for name, predicted in by_model.items()}
    assert np.array_equal(scores["kept"], scores["tagging"])
    assert not np.allclose(scores["spans"], scores["tagging"], atol=1e-4)
    assert [p.entities for p in by_model["kept"]] == [p.entities for p in by_model["spans"]]
    assert [p.entities for p in by_model["kept"]] != [p.entities for p in by_model["tagging"]]
    with pytest.raises(ValueError, match="pair_entities"):
        load_predictor(kept, threads=1, pair_entities="spans")
