"""Relations: the window-by-window relation head, how a document's R-lines are decided and
written, ``--given-entities``, and ``nerelproc train-relations``."""

import shutil

import numpy as np
import orjson
import pytest
import regex
from needs import need
from tiny_model import add_relation_head, finding_entities

from nerelproc.runtime import relations


def test_a_pair_keeps_its_best_score_over_windows_whatever_their_order():
    first = (np.array([0, 1]), np.array([1, 0]), np.array([3, 3]), np.array([0.5, -1.0]))
    second = (np.array([0]), np.array([1]), np.array([3]), np.array([2.0]))
    keys_first, keys_second = ["x", "y"], ["x", "y"]
    one, two = {}, {}
    relations.keep_best(one, keys_first, first)
    relations.keep_best(one, keys_second, second)
    relations.keep_best(two, keys_second, second)
    relations.keep_best(two, keys_first, first)
    relations.keep_best(two, keys_first, None)  # a window without pairs
    assert one == two == {("x", "y", 3): 2.0, ("y", "x", 3): -1.0}


def test_a_relation_needs_its_label_threshold_and_both_entities_in_the_output():
    labels = ["A", "B", "C"]
    scores = {("x", "y", 0): 0.0, ("x", "y", 2): 3.0, ("y", "x", 1): 3.0, ("x", "gone", 2): 5.0}
    thresholds = np.array([0.6, 0.5, 0.9])  # sigmoid(0) = 0.5 < 0.6; sigmoid(3) = 0.953
    decided = relations.decide(scores, {"x": 0, "y": 1}, thresholds, labels)
    assert [(h, t, label) for h, t, label, _ in decided] == [(0, 1, "C"), (1, 0, "B")]
    assert decided[0][3] == pytest.approx(1 / (1 + np.exp(-3.0)))
    assert relations.format_relation_line(2, "WORKS_AS", "T4", "T2") == "R2\tWORKS_AS Arg1:T4 Arg2:T2"


def test_the_context_of_a_pair_is_the_max_over_the_tokens_between_its_entities():
    states = np.random.default_rng(0).normal(size=(120, 6)).astype(np.float32)
    first, last = np.array([0, 3, 4, 10, 90, 2]), np.array([1, 8, 4, 10, 99, 2])
    a, b = (grid.ravel() for grid in np.meshgrid(np.arange(6), np.arange(6), indexing="ij"))
    context = relations.context_features(states, first, last, a, b)
    for row, (i, j) in enumerate(zip(a, b)):
        lo, hi = (last[i] + 1, first[j]) if last[i] < first[j] else (last[j] + 1, first[i])
        expected = states[lo:hi].max(0) if hi > lo else np.zeros(6)  # touching, overlapping, nested: none
        assert np.array_equal(context[row], expected), (i, j)


def test_two_names_match_by_a_shared_stem_or_as_initials():
    surfaces = ["Барак Обама", "Обамы", "ООН", "Организация Объединённых Наций", "Москва", "ЁЖ", "ежовый жук",
                "обамы", "Ёж"]
    a, b = np.array([0, 1, 2, 3, 0, 5, 2, 1, 5]), np.array([1, 0, 3, 2, 4, 6, 4, 7, 8])
    assert relations.name_match(surfaces, a, b).tolist() == [1, 1, 2, 2, 0, 2, 0, 5, 4]


def test_a_pair_layout_says_which_argument_comes_first_and_which_holds_the_other():
    first, last = np.array([0, 5, 5, 6, 8]), np.array([2, 9, 6, 6, 12])
    a, b = np.array([0, 1, 2, 1, 3, 1, 2]), np.array([1, 0, 1, 3, 1, 4, 2])
    assert relations.pair_layout(first, last, a, b).tolist() == [
        relations.ARG1_FIRST, relations.ARG2_FIRST, relations.ARG1_INSIDE, relations.ARG2_INSIDE,
        relations.ARG1_INSIDE, relations.CROSSING, relations.ARG1_INSIDE]


def test_sentence_ends_between_two_entities_are_counted_by_tokens():
    text = "Иван Петров. Он работает\nв Москве! Здесь?"
    words = [(m.start(), m.end()) for m in regex.finditer(r"\w+|[^\w\s]", text)]
    offsets = np.array(words)
    breaks = relations.sentence_breaks(text, offsets)
    assert [text[s:e] for (s, e), b in zip(words, breaks) if b] == ["Он", "в", "Здесь"]
    first, last = np.array([0, 3, 5, 8]), np.array([1, 3, 6, 8])  # Иван Петров, Он, в Москве, Здесь
    a, b = np.array([0, 1, 0, 3, 0, 2]), np.array([1, 0, 2, 0, 3, 2])
    assert relations.sentences_between(breaks, first, last, a, b).tolist() == [1, 1, 2, 3, 3, 0]


def test_a_window_keeps_the_pairs_over_the_floor_only():
    torch = need("torch")
    from nerelproc.runtime.pairs import candidate_pairs, entity_features
    from nerelproc.training.relations import RelationModel

    torch.manual_seed(0)
    model = RelationModel(n_types=3, n_labels=4, hidden=8, width=16).eval()
    head = model.export()
    states = np.random.default_rng(0).normal(size=(30, 8)).astype(np.float32)
    types, first, last = np.array([0, 1, 2]), np.array([0, 5, 20]), np.array([2, 5, 24])
    surfaces = ["Барак Обама", "Обамы", "ООН"]
    a, b, label, logit = relations.window_relations(head, states, types, first, last, 0.0, surfaces)

    pa, pb, distance = candidate_pairs(first, last)
    with torch.no_grad():
        full = model(*(torch.from_numpy(x) for x in (entity_features(states, first, last), types, pa, pb, distance,
                                                     relations.context_features(states, first, last, pa, pb),
                                                     relations.name_match(surfaces, pa, pb),
                                                     relations.pair_layout(first, last, pa, pb),
                                                     np.zeros(len(pa), np.int64)))).numpy()
    expected = {(pa[p], pb[p], k): full[p, k] for p in range(len(pa)) for k in range(4) if full[p, k] >= 0}
    assert {(x, y, k): v for x, y, k, v in zip(a, b, label, logit)} == pytest.approx(expected, abs=1e-5)
    assert 0 < len(expected) < full.size


def test_a_label_never_seen_between_two_entity_types_is_never_given_to_them(tmp_path):
    torch = need("torch")
    from nerelproc.runtime.pairs import candidate_pairs
    from nerelproc.training.relations import RelationModel, allowed_labels

    torch.manual_seed(0)
    model = RelationModel(n_types=2, n_labels=3, hidden=8, width=16).eval()
    types = torch.tensor([0, 1, 1])
    y = torch.zeros(2, 3)
    y[0, 2] = 1  # entity 0 (type 0) -> entity 1 (type 1) holds label 2
    tensors = {"types": types, "a": torch.tensor([0, 2]), "b": torch.tensor([1, 0]), "y": y}
    allowed = allowed_labels(tensors, 2, 3)
    assert np.argwhere(allowed).tolist() == [[0, 1, 2]]
    model.export(allowed).save(tmp_path / "relations.npz")
    head = relations.RelationHead.load(tmp_path / "relations.npz")
    states = np.random.default_rng(0).normal(size=(12, 8)).astype(np.float32)
    first, last, kinds = np.array([0, 4, 8]), np.array([1, 5, 9]), np.array([0, 1, 1])
    a, b, distance = candidate_pairs(first, last)
    surfaces = ["a", "b", "c"]
    masked = head.window_logits(states, kinds, first, last, a, b, distance, surfaces)
    plain = model.export().window_logits(states, kinds, first, last, a, b, distance, surfaces)
    keep = (kinds[a] == 0) & (kinds[b] == 1)
    assert np.allclose(masked[keep, 2], plain[keep, 2]) and keep.any()
    assert (masked[:, :2] == relations.NOT_ALLOWED).all() and (masked[~keep, 2] == relations.NOT_ALLOWED).all()


def with_entities(tiny_model, model_dir):
    """A copy of the tiny model that finds entities."""
    shutil.copytree(tiny_model, model_dir)
    return finding_entities(model_dir)


def with_relation_head(tiny_model, tmp_path, threshold=0.5, rule="union", seed=0):
    """A copy of the tiny model, finding entities, with a random relation head (its torch twin
    returned too)."""
    need("torch")
    model_dir = with_entities(tiny_model, tmp_path / f"model-{rule}-{threshold}")
    return model_dir, add_relation_head(model_dir, threshold, rule, seed)


def loaded(model_dir, batch_windows=1):
    from nerelproc.runtime.bundle import load_predictor

    return load_predictor(model_dir, threads=1, batch_windows=batch_windows)


@pytest.fixture
def dev_docs(nerel_dir):
    from nerelproc.training.data import load_documents

    return load_documents(nerel_dir / "jsonl" / "dev.jsonl")[:4]


def test_relations_are_between_the_documents_own_entities_and_do_not_depend_on_batching(
        tiny_model, tmp_path, dev_docs):
    need("ctranslate2")
    model_dir, _ = with_relation_head(tiny_model, tmp_path)
    predictor = loaded(model_dir)
    predictions = predictor.predict([d.text for d in dev_docs])
    assert sum(len(p.relations) for p in predictions) > len(dev_docs)
    for p in predictions:
        assert all(0 <= h < len(p.entities) and 0 <= t < len(p.entities) and h != t for h, t, _, _ in p.relations)
        assert {label for _, _, label, _ in p.relations} <= set(p.relation_types)  # the union rule
        assert len({(h, t, label) for h, t, label, _ in p.relations}) == len(p.relations)
    batched = loaded(model_dir, batch_windows=8).predict([d.text for d in dev_docs])
    alone = predictor.predict([dev_docs[2].text])[0]
    assert [p.relations for p in batched] == [p.relations for p in predictions]
    assert alone.relations == predictions[2].relations
    without = loaded(with_entities(tiny_model, tmp_path / "plain")).predict([d.text for d in dev_docs])
    assert [p.entities for p in without] == [p.entities for p in predictions]  # the head adds, changes nothing


def test_a_model_s_single_partner_labels_keep_one_pair_per_argument(tiny_model, tmp_path, dev_docs):
    need("ctranslate2")
    from nerelproc.runtime.bundle import Bundle

    model_dir, _ = with_relation_head(tiny_model, tmp_path, threshold=0.0)
    texts = [d.text for d in dev_docs]
    free = loaded(model_dir).predict(texts)
    bundle = Bundle.load(model_dir)
    bundle.relation_single = {"arg1": list(bundle.relation_types), "arg2": []}
    bundle.save(model_dir)
    single = loaded(model_dir).predict(texts)
    heads = lambda p: [(h, label) for h, _, label, _ in p.relations]
    assert any(len(set(heads(p))) < len(heads(p)) for p in free)  # without it, a head has several tails
    assert sum(len(set(heads(s))) == len(heads(s)) for s in single) > sum(len(set(heads(f))) == len(heads(f))
                                                                        for f in free)
    for f, s in zip(free, single):
        assert set(heads(s)) == set(heads(f))
        # a head keeps its best-scored pair only; pairs tied with it stand too (the int8 kernels
        # of some CPUs give two pairs of the tiny model the same logit), as `best_partner_only` says
        best = {}
        for h, t, label, probability in f.relations:
            best[h, label] = max(probability, best.get((h, label), 0.0))
        assert all(probability == best[h, label] for h, _, label, probability in s.relations)


def test_the_filter_rule_keeps_only_relations_whose_type_is_a_label(tiny_model, tmp_path, dev_docs):
    need("ctranslate2")
    union = loaded(with_relation_head(tiny_model, tmp_path, rule="union")[0]).predict([d.text for d in dev_docs])
    kept = loaded(with_relation_head(tiny_model, tmp_path, rule="filter")[0]).predict([d.text for d in dev_docs])
    alone = loaded(with_entities(tiny_model, tmp_path / "plain")).predict([d.text for d in dev_docs])
    for u, f, a in zip(union, kept, alone):
        assert f.relation_types == a.relation_types  # the CLS decision alone
        assert f.relations == [r for r in u.relations if r[2] in a.relation_types]
    assert sum(len(f.relations) for f in kept) < sum(len(u.relations) for u in union)


def test_given_entities_are_kept_and_scored_as_the_torch_head_scores_them(tiny_model, tmp_path, dev_docs):
    """One window holds the whole short document: each given pair's probability is the
    sigmoid of the torch twin's logit on that window's states."""
    torch = need("torch")
    need("ctranslate2")
    from nerelproc.io.document import Entity
    from nerelproc.runtime.pairs import candidate_pairs, entity_features, entity_token_spans

    model_dir, twin = with_relation_head(tiny_model, tmp_path, threshold=0.0)
    predictor = loaded(model_dir)
    text = dev_docs[0].text[:150]
    given = [Entity("PERSON", ((0, 10),), "T7"), Entity("CITY", ((20, 30),), "T3"),
             Entity("ORGANIZATION", ((5, 12), (40, 50)), "T9"), Entity("NO_SUCH_TYPE", ((0, 4),), "T1")]
    prediction = predictor.predict([text], [given])[0]
    assert prediction.entities == given
    states, encode = [], predictor.encode_batch
    predictor.with_options(encode_batch=lambda inputs: states.append(encode(inputs)[0]) or [states[-1]]).predict(
        [text], [given])
    assert len(states) == 1  # one window
    spans = entity_token_spans(given[:3], predictor._plan(text).encoded.offsets, list(predictor.scheme.entity_types))
    types, first, last = (np.array([s[c] for s in spans]) for c in range(3))
    a, b, distance = candidate_pairs(first, last)
    with torch.no_grad():
        window = states[0][1:-1]
        surfaces = relations.window_surfaces(text, predictor._plan(text).encoded.offsets, first, last)
        breaks = relations.sentence_breaks(text, predictor._plan(text).encoded.offsets)
        logits = twin(*(torch.from_numpy(x) for x in (entity_features(window, first, last), types, a, b, distance,
                                                      relations.context_features(window, first, last, a, b),
                                                      relations.name_match(surfaces, a, b),
                                                      relations.pair_layout(first, last, a, b),
                                                      relations.sentences_between(breaks, first, last, a, b)))).numpy()
    expected = {(int(x), int(y), predictor.labels[k]): 1 / (1 + np.exp(-logits[p, k]))
                for p, (x, y) in enumerate(zip(a, b)) for k in range(logits.shape[1])}
    found = {(h, t, label): probability for h, t, label, probability in prediction.relations}
    assert found.keys() == expected.keys()  # threshold 0: every pair and label, never the unknown type
    assert all(found[key] == pytest.approx(expected[key], abs=1e-4) for key in found)


def test_annotate_writes_r_lines_naming_its_own_t_ids_and_brat_reads_them_back(tiny_model, tmp_path, nerel_dir):
    need("ctranslate2")
    from click.testing import CliRunner

    from nerelproc.cli import main
    from nerelproc.io.readers import read_documents

    model_dir, _ = with_relation_head(tiny_model, tmp_path, threshold=0.55)
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"".join((nerel_dir / "jsonl" / "dev.jsonl").read_bytes().splitlines(True)[:3]))
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(main, ["annotate", str(source), "-o", str(out), "--model", str(model_dir),
                                       "--scores", "--quiet"])
    assert result.exit_code == 0, result.output
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert any(r["relations"] for r in records)
    for record in records:
        ids = {line.split("\t")[0] for line in record["entities"]}
        numbers = []
        for line in record["relations"]:
            rid, body = line.split("\t")
            label, arg1, arg2 = body.split()
            numbers.append(rid)
            assert arg1.startswith("Arg1:") and arg2.startswith("Arg2:")
            assert {arg1[5:], arg2[5:]} <= ids and label in record["relation_types"]
        assert numbers == [f"R{n}" for n in range(1, len(numbers) + 1)]
        assert list(record["relation_probabilities"]) == numbers
        assert all(p >= 0.55 for p in record["relation_probabilities"].values())
    brat = tmp_path / "brat"
    result = CliRunner().invoke(main, ["annotate", str(source), "-o", f"{brat}/", "--model", str(model_dir),
                                       "--quiet"])
    assert result.exit_code == 0, result.output
    back = {d.id: d for d in read_documents(brat)}
    assert {r["id"]: r["relations"] for r in records} == {i: d.relations for i, d in back.items()}


def test_given_entities_from_the_command_line_keep_the_input_t_lines(tiny_model, tmp_path, nerel_dir):
    need("ctranslate2")
    from click.testing import CliRunner

    from nerelproc.cli import main

    model_dir, _ = with_relation_head(tiny_model, tmp_path, threshold=0.55)
    lines = (nerel_dir / "jsonl" / "dev.jsonl").read_bytes().splitlines(True)[:2]
    source = tmp_path / "gold.jsonl"
    source.write_bytes(b"".join(lines))
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(main, ["annotate", str(source), "-o", str(out), "--model", str(model_dir),
                                       "--given-entities", "--quiet"])
    assert result.exit_code == 0, result.output
    for line, written in zip(lines, out.read_bytes().splitlines()):
        gold, record = orjson.loads(line), orjson.loads(written)
        assert record["entities"] == gold["entities"]
        ids = {entity.split("\t")[0] for entity in gold["entities"]}
        assert record["relations"]
        assert all({arg.split(":")[1] for arg in r.split("\t")[1].split()[1:]} <= ids for r in record["relations"])


def test_strict_candidates_count_a_swapped_argument_as_wrong():
    need("torch")  # the training module
    from nerelproc.io.document import Document, Entity
    from nerelproc.runtime.predictor import Prediction
    from nerelproc.training.relations import Candidates, tune_relations

    person, job = Entity("PERSON", ((0, 4),), "T1"), Entity("PROFESSION", ((5, 9),), "T2")
    gold = Document("d", "Петр врач", [person, job], ["R1\tWORKS_AS Arg1:T1 Arg2:T2", "R2\tWORKS_AS Arg1:T1 Arg2:T9"])
    entities = [Entity("PERSON", ((0, 4),)), Entity("PROFESSION", ((5, 9),))]
    predicted = Prediction(entities, None, [], [], [(0, 1, "WORKS_AS", 0.9), (1, 0, "WORKS_AS", 0.8)])
    candidates = Candidates([predicted], [gold], ["WORKS_AS", "OTHER"])
    assert candidates.hit.tolist() == [True, False]
    assert candidates.n_gold.tolist() == [[1, 0]]  # the R-line naming a missing T9 is not counted
    assert candidates.micro(np.array([0.5, 0.5])) == pytest.approx(2 / 3)
    assert candidates.micro(np.array([0.85, 0.5])) == pytest.approx(1.0)
    thresholds, mode, cv = tune_relations(candidates)
    assert set(cv) == {"global", "shrunk"} and thresholds[0] > 0.8


def test_train_relations_writes_a_head_and_its_decisions(tiny_model, tmp_path, nerel_dir):
    need("torch")
    need("ctranslate2")
    from nerelproc.runtime.bundle import Bundle, load_predictor
    from nerelproc.training.data import load_documents
    from nerelproc.training.relations import train_relations

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model, model_dir)
    docs = load_documents(nerel_dir / "jsonl" / "dev.jsonl")
    choice = train_relations(model_dir, docs[:4], docs[4:6], epochs=2, threads=1, log=lambda message: None)
    bundle = Bundle.load(model_dir)
    assert (model_dir / relations.RELATIONS_FILE).is_file()
    assert len(bundle.relation_thresholds) == len(bundle.relation_thresholds_given) == len(bundle.relation_types)
    assert bundle.relation_rule in ("union", "filter") and choice["epoch"] in (1, 2)
    assert load_predictor(model_dir, threads=1).relation_head is not None


def test_a_single_partner_argument_keeps_only_its_best_scored_pair():
    labels = ["WORKS_AS", "PARTICIPANT_IN"]
    gold = [{("WORKS_AS", "p1", "job1"), ("WORKS_AS", "p2", "job1"), ("PARTICIPANT_IN", "p1", "e1"),
             ("PARTICIPANT_IN", "p1", "e2")}, {("WORKS_AS", "p3", "job2")}]
    single = relations.single_partner_labels(gold, labels, share=0.9)
    assert single == {"arg1": ["WORKS_AS"], "arg2": ["PARTICIPANT_IN"]}
    flags = {arg: [label in names for label in labels] for arg, names in single.items()}
    best = {(0, 5, 0): 2.0, (0, 6, 0): 1.0, (1, 6, 0): 0.5,  # WORKS_AS: entity 0 keeps its best tail only
            (0, 7, 1): 1.0, (0, 8, 1): 3.0, (2, 8, 1): 3.0}  # PARTICIPANT_IN: tail 8 keeps both tied heads
    assert relations.best_partner_only(best, flags) == {(0, 5, 0): 2.0, (1, 6, 0): 0.5, (0, 7, 1): 1.0,
                                                        (0, 8, 1): 3.0, (2, 8, 1): 3.0}
    scores = {("a", "b", 0): 2.0, ("a", "c", 0): 1.0}
    assert [r[1] for r in relations.decide(scores, {"a": 0, "b": 1, "c": 2}, np.full(2, 0.5), labels, flags)] == [1]
    assert [r[1] for r in relations.decide(scores, {"a": 0, "b": 1, "c": 2}, np.full(2, 0.5), labels)] == [1, 2]
