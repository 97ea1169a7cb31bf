"""The entity-pair CLS head: which pairs it scores, its numpy and torch twins, what it trains on,
how the runtime mixes it in, and ``nerelproc train-pairs``."""

import shutil

import numpy as np
import pytest
from needs import need

from nerelproc.runtime import pairs



def test_pairs_are_ordered_distinct_and_at_most_64_tokens_apart():
    a, b, distance = pairs.candidate_pairs(np.array([0, 3, 90]), np.array([1, 3, 95]))
    assert sorted(zip(a.tolist(), b.tolist())) == [(0, 1), (1, 0)]  # 90 is 87 tokens from 3
    assert distance.tolist() == [2, 2]  # 3 - 1 = 2 tokens: the bucket of 2
    assert len(pairs.candidate_pairs(np.array([0, 64]), np.array([0, 64]))[0]) == 2
    assert len(pairs.candidate_pairs(np.array([0, 65]), np.array([0, 65]))[0]) == 0
    a, b, distance = pairs.candidate_pairs(np.array([0, 2]), np.array([5, 3]))  # nested: distance 0
    assert distance.tolist() == [0, 0]


def test_an_entity_is_its_mean_state_then_its_first():
    states = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    features = pairs.entity_features(states, np.array([2, 7]), np.array([4, 7]))
    assert np.allclose(features[0], np.concatenate([states[2:5].mean(0), states[2]]), atol=1e-6)
    assert np.allclose(features[1], np.concatenate([states[7], states[7]]))


def test_tag_spans_are_the_runs_of_each_channel_with_its_type():
    tags = np.zeros((8, 4), np.int8)  # 2 types x 2 layers
    tags[1:4, 0] = [1, 2, 2]  # type 0, layer 0: tokens 1-3
    tags[2, 1] = 1  # type 0, layer 1: token 2 (nested)
    tags[5:7, 3] = [2, 2]  # type 1, layer 1: an I after O opens a run
    types, first, last = pairs.tag_spans(tags, layers=2)
    assert sorted(zip(types.tolist(), first.tolist(), last.tolist())) == [(0, 1, 3), (0, 2, 2), (1, 5, 6)]
    assert [len(x) for x in pairs.tag_spans(np.zeros((3, 4), np.int8), 2)] == [0, 0, 0]


def test_the_numpy_head_computes_what_the_torch_head_trains():
    torch = need("torch")
    from nerelproc.training.pairs import PairModel

    torch.manual_seed(0)
    model = PairModel(n_types=5, n_labels=7, hidden=16, width=24).eval()
    rng = np.random.default_rng(0)
    features, types = rng.normal(size=(6, 32)).astype(np.float32), rng.integers(0, 5, 6)
    a, b, distance = pairs.candidate_pairs(np.arange(6) * 20, np.arange(6) * 20 + 3)
    with torch.no_grad():
        expected = model(*(torch.from_numpy(x) for x in (features, types, a, b, distance))).numpy()
    assert np.allclose(model.export().logits(features, types, a, b, distance), expected, atol=1e-5)


def test_gold_pairs_are_the_entities_whole_in_a_window_labelled_from_the_r_lines():
    need("torch")  # the training module
    from nerelproc.io.document import Document, Entity
    from nerelproc.runtime.windows import Encoded, Window
    from nerelproc.training.pairs import gold_entities, in_window

    text = "ab " * 100  # token i is characters 3i..3i+2
    encoded = Encoded(np.arange(100), np.array([(3 * i, 3 * i + 2) for i in range(100)]))
    entities = [Entity("PERSON", ((0, 5),), "T1"), Entity("PROFESSION", ((9, 11),), "T2"),
                Entity("CITY", ((270, 272),), "T3"), Entity("CITY", ((2, 3),), "T4"),  # T4: in a gap, no token
                Entity("AWARD", ((6, 8),), "T5")]  # a type the model does not know
    relations = ["R1\tWORKS_AS Arg1:T1 Arg2:T2", "R2\tPLACE_RESIDES_IN Arg1:T1 Arg2:T3",
                 "R3\tAWARDED_WITH Arg1:T1 Arg2:T5"]
    document = Document("d", text, entities, relations)
    spans, links = gold_entities(document, encoded, ["PERSON", "PROFESSION", "CITY"], ["WORKS_AS", "PLACE_RESIDES_IN"])
    assert spans == {"T1": (0, 0, 1), "T2": (1, 3, 3), "T3": (2, 90, 90)}
    assert links == [(0, "T1", "T2"), (1, "T1", "T3")]
    types, first, last, labels = in_window(spans, links, Window(0, 60, 0, 60))
    assert (types.tolist(), first.tolist(), last.tolist(), labels) == ([0, 1], [0, 3], [1, 3], {(0, 1): [0]})
    types, first, last, labels = in_window(spans, links, Window(40, 100, 40, 100))  # T3 alone, at 50
    assert (types.tolist(), first.tolist(), labels) == ([2], [50], {})


def with_pair_head(tiny_model, tmp_path, weight, seed=0):
    """A copy of the tiny model with a random pair head (its torch twin returned too)."""
    torch = need("torch")
    from nerelproc.runtime.bundle import PAIRS_FILE, Bundle
    from nerelproc.training.pairs import PairModel

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model, model_dir)
    bundle = Bundle.load(model_dir)
    torch.manual_seed(seed)
    twin = PairModel(len(bundle.entity_types), len(bundle.relation_types), hidden=bundle.hidden_size).eval()
    twin.export().save(model_dir / PAIRS_FILE)
    bundle.pair_weight = weight
    bundle.save(model_dir)
    return model_dir, twin


def test_the_runtime_mixes_the_cls_head_with_the_max_over_the_windows_pairs(tiny_model, nerel_dir, tmp_path):
    """What annotate computes is what train-pairs chose on: the CLS head's probabilities
    averaged with the torch head's max over each window's predicted entity pairs."""
    from nerelproc.runtime.bundle import load_predictor
    from nerelproc.training.data import load_documents
    from nerelproc.training.pairs import collect, document_probs

    def loaded(model_dir, batch_windows=1):
        predictor = load_predictor(model_dir, threads=1, batch_windows=batch_windows)
        predictor.heads.ner_bias[0::3] -= 4.0  # the tiny model finds no entity; this one finds ~80 a document
        return predictor

    docs = load_documents(nerel_dir / "jsonl" / "dev.jsonl")[:4]
    model_dir, twin = with_pair_head(tiny_model, tmp_path, weight=0.7)
    with_pairs = loaded(model_dir)
    assert with_pairs.pair_head is not None
    runtime = np.stack([p.relation_scores for p in with_pairs.predict([d.text for d in docs])])
    alone = loaded(tiny_model)
    found, cls = collect(alone, docs, gold=False)
    assert len(found.parts["a"]) > len(docs)  # several windows of 62 tokens a document, each with pairs
    expected = 0.3 * cls + 0.7 * document_probs(twin, found.tensors(), len(docs))
    assert np.allclose(runtime, expected, atol=1e-5)
    assert not np.allclose(runtime, cls, atol=1e-3)
    # the same document in a batch of windows, or alone: the same scores
    batched = loaded(model_dir, batch_windows=8)
    assert np.array_equal(np.stack([p.relation_scores for p in batched.predict([d.text for d in docs])]), runtime)
    assert np.array_equal(with_pairs.predict([docs[2].text])[0].relation_scores, runtime[2])


def test_calibrate_tunes_the_thresholds_on_the_pairs_of_the_o_bias_it_chooses(tiny_model, nerel_dir, tmp_path,
                                                                             monkeypatch):
    """The pair head reads the entities decoded under the O bias: when calibrate changes the
    bias, the thresholds are tuned on what annotate computes under the new one."""
    from nerelproc.runtime.bundle import load_predictor
    from nerelproc.training import calibration
    from nerelproc.training.data import load_documents

    def loaded(o_bias):
        predictor = load_predictor(model_dir, threads=1, o_bias=o_bias)
        predictor.heads.ner_bias[0::3] -= 4.0  # entities to pair (see above)
        return predictor

    docs = load_documents(nerel_dir / "jsonl" / "dev.jsonl")[:4]
    model_dir, _ = with_pair_head(tiny_model, tmp_path, weight=0.7)
    tuned_on = []

    def recording_tune(probs, gold, seed):
        tuned_on.append(probs)
        return [0.5] * 49, "global", {}

    monkeypatch.setattr(calibration, "tune", recording_tune)
    # Which bias a random model's F1 prefers varies with the CPU's kernels: every bias ties
    # here, so the tie rule picks the grid's smallest, away from the largest we start at.
    monkeypatch.setattr(calibration, "ner_f1", lambda predictions, gold_docs: 0.0)
    predictor = loaded(max(calibration.O_BIAS_GRID))
    encoded = calibration.encode_in_chunks(predictor, docs)
    stale = np.stack([predictor.relation_scores(e) for e in encoded])
    o_bias, _, _ = calibration.decisions(predictor, encoded, docs, predictor.labels)
    assert o_bias == min(calibration.O_BIAS_GRID)
    fresh = np.stack([p.relation_scores for p in loaded(o_bias).predict([d.text for d in docs])])
    assert not np.allclose(fresh, stale, atol=1e-4)  # the bias moves the pairs' probabilities
    assert np.array_equal(tuned_on[0], fresh)


def test_a_pair_weight_of_zero_is_the_cls_head_alone_and_a_missing_pairs_file_an_error(tiny_model, tmp_path):
    from nerelproc.runtime.bundle import PAIRS_FILE, Bundle, load_predictor

    model_dir, _ = with_pair_head(tiny_model, tmp_path, weight=0.0)
    assert load_predictor(model_dir, threads=1).pair_head is None
    bundle = Bundle.load(model_dir)
    bundle.pair_weight = 0.5
    bundle.save(model_dir)
    (model_dir / PAIRS_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="pairs.npz"):
        load_predictor(model_dir, threads=1)


@pytest.mark.parametrize("weights", [(1.0,), (0.0,)])
def test_train_pairs_writes_a_head_only_when_a_mix_is_chosen(tiny_model, nerel_dir, tmp_path, weights):
    from nerelproc.runtime.bundle import PAIRS_FILE, Bundle, load_predictor
    from nerelproc.training.data import load_documents
    from nerelproc.training.pairs import train_pairs

    docs = load_documents(nerel_dir / "jsonl" / "dev.jsonl")
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model, model_dir)
    before = (model_dir / "nerelproc.json").read_bytes()
    choice = train_pairs(model_dir, docs[:6], docs[6:10], epochs=2, threads=1, weights=weights, log=lambda m: None)
    bundle = Bundle.load(model_dir)
    if weights == (0.0,):  # the CLS head alone can only win: nothing changes
        assert choice["weight"] == 0.0 and not (model_dir / PAIRS_FILE).exists()
        assert (model_dir / "nerelproc.json").read_bytes() == before
        return
    assert (choice["epoch"], choice["weight"]) == (2, 1.0)
    assert bundle.pair_weight == 1.0 and bundle.pairs == choice and (model_dir / PAIRS_FILE).exists()
    assert max(choice["dev_cv"].values()) == choice["dev_cv"]["epoch 2, weight 1.0"]
    assert bundle.thresholds_tuning["cv"][bundle.thresholds_tuning["mode"]] == choice["dev_cv"]["epoch 2, weight 1.0"]
    assert load_predictor(model_dir, threads=1).pair_head is not None


def test_train_pairs_keeps_a_span_models_threshold_and_its_dev_curve(tiny_model, nerel_dir, tmp_path):
    from nerelproc.runtime.bundle import Bundle
    from nerelproc.training.data import load_documents
    from nerelproc.training.pairs import train_pairs
    from tiny_model import with_span_head

    docs = load_documents(nerel_dir / "jsonl" / "dev.jsonl")
    model_dir = tmp_path / "model"
    with_span_head(tiny_model, model_dir, threshold=0.4)
    bundle = Bundle.load(model_dir)
    curve = {"0.35": 0.11, "0.4": 0.12, "0.45": 0.1}
    bundle.calibration = {"tuned_on": "dev", "span_threshold_dev_nested_f1": curve}
    bundle.save(model_dir)
    train_pairs(model_dir, docs[:6], docs[6:10], epochs=2, threads=1, weights=(1.0,), log=lambda m: None)
    after = Bundle.load(model_dir)
    assert after.pair_weight == 1.0 and after.span_threshold == 0.4
    assert after.calibration == {"tuned_on": "dev", "span_threshold_dev_nested_f1": curve}
    assert after.ner_o_bias == bundle.ner_o_bias
