"""A text shorter than a bundle's ``short_text_chars`` gets its relations' types as labels."""

from needs import need
from test_relations import loaded, with_relation_head

from nerelproc.io.document import Document, Entity


def _short_and_long(nerel_dir):
    from nerelproc.training.data import load_documents

    documents = load_documents(nerel_dir / "jsonl" / "dev.jsonl")[:4]
    return [d.text[:120] for d in documents], [d.text for d in documents]


def _one_relation_label(tiny_model, tmp_path, texts):
    """A tiny model whose CLS gives every label and whose relations are of one label only, so
    that the rule's labels and the CLS labels differ whatever the tiny model learnt."""
    from nerelproc.runtime.bundle import Bundle

    model_dir, _ = with_relation_head(tiny_model, tmp_path, threshold=0.01)
    found = [r[2] for p in loaded(model_dir).predict(texts) for r in p.relations]
    assert found, "the random relation head finds no pair at all"
    bundle = Bundle.load(model_dir)
    bundle.thresholds = [0.0] * len(bundle.relation_types)
    bundle.relation_thresholds = [0.01 if label == found[0] else 2.0 for label in bundle.relation_types]
    bundle.save(model_dir)
    return model_dir


def _with_key(model_dir, chars):
    from nerelproc.runtime.bundle import Bundle

    bundle = Bundle.load(model_dir)
    bundle.short_text_chars = chars
    bundle.save(model_dir)
    return model_dir


def test_a_short_text_gets_the_types_of_its_relations_and_a_long_one_is_unchanged(tiny_model, tmp_path, nerel_dir):
    need("ctranslate2")
    short, long = _short_and_long(nerel_dir)
    model_dir = _one_relation_label(tiny_model, tmp_path, short)
    before_short, before_long = loaded(model_dir).predict(short), loaded(model_dir).predict(long)
    _with_key(model_dir, 121)
    after_short, after_long = loaded(model_dir).predict(short), loaded(model_dir).predict(long)
    assert any(p.relations for p in after_short)
    for before, after in zip(before_short, after_short):
        assert after.relation_types == sorted({r[2] for r in after.relations})
        assert (after.entities, after.relations) == (before.entities, before.relations)
    # the CLS labels the rule leaves out on the short texts
    assert any(set(b.relation_types) - set(a.relation_types) for b, a in zip(before_short, after_short))
    for before, after in zip(before_long, after_long):
        assert (after.entities, after.relations, after.relation_types) == (
            before.entities, before.relations, before.relation_types)


def test_a_bundle_without_the_key_keeps_the_cls_labels_on_a_short_text(tiny_model, tmp_path, nerel_dir):
    need("ctranslate2")
    short, _ = _short_and_long(nerel_dir)
    model_dir, _ = with_relation_head(tiny_model, tmp_path, threshold=0.3)
    predictor = loaded(model_dir)
    assert predictor.short_text_chars == 0
    for p in predictor.predict(short):
        cls = {label for label, score, t in zip(p.labels, p.relation_scores, predictor.thresholds) if score >= t}
        assert set(p.relation_types) == cls | {r[2] for r in p.relations}  # the union rule, as before


def test_the_option_overrides_the_bundle_and_a_model_without_relation_head_ignores_it(tiny_model, tmp_path, nerel_dir):
    need("ctranslate2")
    short, _ = _short_and_long(nerel_dir)
    model_dir = _one_relation_label(tiny_model, tmp_path, short)
    keyed = loaded(_with_key(model_dir, 121))
    assert keyed.short_text_chars == 121
    off = keyed.with_options(short_text_chars=0)
    assert [p.relation_types for p in off.predict(short)] != [p.relation_types for p in keyed.predict(short)]
    from nerelproc.runtime.bundle import load_predictor

    without_head = load_predictor(model_dir, threads=1, relation_head=False)
    assert without_head.short_text_chars == 0 and any(p.relation_types for p in without_head.predict(short))


def test_the_headline_probe_keeps_the_relations_inside_the_first_line():
    from experiments.headline_probe import headline

    text = "Иванов возглавил ООО Ромашка\nПетров родился в Москве."
    entities = [Entity("PERSON", ((0, 6),), "T1"), Entity("ORGANIZATION", ((17, 28),), "T2"),
                Entity("PERSON", ((29, 35),), "T3"), Entity("CITY", ((46, 52),), "T4")]
    relations = ["R1\tWORKPLACE Arg1:T1 Arg2:T2\t", "R2\tPLACE_OF_BIRTH Arg1:T3 Arg2:T4\t",
                 "R3\tKNOWS Arg1:T1 Arg2:T3\t"]
    cut = headline(Document("1", text, entities, relations))
    assert cut.text == "Иванов возглавил ООО Ромашка"
    assert cut.relation_labels() == ["WORKPLACE"] and [e.id for e in cut.entities] == ["T1", "T2"]
    assert headline(Document("2", "\nТекст", [], [])).text == ""
