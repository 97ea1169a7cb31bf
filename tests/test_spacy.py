"""The ``nerelproc`` spaCy component on a blank Russian pipeline, with the bundled model and
three short NEREL test texts: Spans at ``annotate``'s offsets, nested ones included;
``doc.ents`` the outermost layer; the relation types in ``doc.cats``; ``nlp.pipe`` batched
and equal to one by one; ``to_disk``/``spacy.load``; displaCy's span view. Without spaCy
these tests skip, unless CI is set: then they fail."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest

try:
    import spacy
    from spacy import displacy
except ImportError:
    message = "the spaCy tests need spaCy (pip install 'nerelproc[spacy]')"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)  # in CI the spaCy tests must run
    pytest.skip(message, allow_module_level=True)

from nerelproc.evaluation.score import outermost
from nerelproc.runtime.api import Annotation, Entity

from nerelproc.integrations.spacy import (
    RELATIONS_KEY, NerelprocComponent, displacy_colors, is_token_aligned, outermost_spans,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def texts(nerel_dir):
    docs = [orjson.loads(line) for line in (nerel_dir / "jsonl" / "test.jsonl").read_bytes().splitlines()]
    return [doc["text"] for doc in sorted(docs, key=lambda doc: len(doc["text"]))[:3]]


@pytest.fixture(scope="module")
def nlp():
    """A blank Russian pipeline with a component before ours, as a ru_core_news model would have."""
    nlp = spacy.blank("ru")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("nerelproc", config={"threads": 1})
    return nlp


@pytest.fixture(scope="module")
def component(nlp):
    return nlp.get_pipe("nerelproc")


@pytest.fixture(scope="module")
def results(component, texts):
    """What ``annotate`` gives for each text: the reference."""
    return list(component.annotator.annotate_many(texts))


@pytest.fixture(scope="module")
def docs(nlp, texts):
    return [nlp(text) for text in texts]


def key(item, label=None):
    """(start, end, type) of a Span or of ``annotate``'s Entity."""
    if isinstance(item, Entity):
        return item.start, item.end, item.type
    return item.start_char, item.end_char, label or item.label_


def keys(spans):
    return set(map(key, spans))


def view(doc):
    """Everything the component writes on a Doc, as plain values."""
    return (sorted(keys(doc.spans["nerel"])), sorted(keys(doc.ents)), doc.cats, doc._.relation_types,
            [(r.type, r.head.start_char, r.head.end_char, r.tail.start_char, r.tail.end_char, r.probability)
             for r in doc._.relations])


def test_add_pipe_finds_the_component_through_the_entry_point():
    code = ("import sys, spacy; nlp = spacy.blank('ru'); nlp.add_pipe('nerelproc', config={'threads': 1});"
            "print(nlp.pipe_names, 'nerelproc.integrations.spacy' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["['nerelproc']", "True"]


def test_token_aligned_entities_have_spans_at_annotates_offsets(docs, results):
    aligned = 0
    for doc, result in zip(docs, results):
        spans = keys(doc.spans["nerel"])
        exact = {(e.start, e.end, e.type) for e in result.entities if is_token_aligned(doc, e)}
        aligned += len(exact)
        widened = {key(doc.char_span(e.start, e.end, alignment_mode="expand"), e.type)
                   for e in result.entities if not is_token_aligned(doc, e)}
        assert exact <= spans and spans == exact | widened
    assert aligned > 30


def test_nested_entities_are_in_the_span_group(docs):
    nested = [(inner, outer) for doc in docs for outer in doc.spans["nerel"] for inner in doc.spans["nerel"]
              if inner is not outer and outer.start <= inner.start and inner.end <= outer.end
              and (inner.start, inner.end) != (outer.start, outer.end)]
    assert nested


def test_ents_are_the_outermost_non_overlapping_spans(docs, results):
    for doc, result in zip(docs, results):
        ents = list(doc.ents)
        assert ents
        assert all(a.end <= b.start for a, b in zip(ents, ents[1:]))  # sorted, no token shared
        assert keys(ents) <= keys(doc.spans["nerel"])
        if all(is_token_aligned(doc, e) for e in result.entities):
            assert keys(ents) == {(e.start, e.end, e.type) for e in outermost(result.entities)}
        # nothing in the span group lies outside every kept entity
        for span in doc.spans["nerel"]:
            assert any(span.start < ent.end and ent.start < span.end for ent in ents)


def test_cats_hold_every_relation_type_probability(docs, results, component):
    labels = component.annotator.predictor.labels
    assert len(labels) == 49
    for doc, result in zip(docs, results):
        assert list(doc.cats) == list(labels)
        assert doc.cats == pytest.approx(result.relation_scores)
        assert doc._.relation_types == result.relation_types


def test_relations_are_spans_of_the_doc(docs, results):
    for doc, result in zip(docs, results):
        relations = [r for r in getattr(result, "relations", []) if is_token_aligned(doc, r.head)
                     and is_token_aligned(doc, r.tail)]
        assert [(r.type, key(r.head), key(r.tail), r.probability) for r in relations] == \
            [(r.type, key(r.head), key(r.tail), r.probability) for r in doc._.relations]
    assert any(doc._.relations for doc in docs)  # the bundled model's relation head found some


def test_relations_and_labels_survive_doc_to_bytes(component):
    """A result with relations (``annotate``'s head and tail entities) becomes Spans that a
    serialised Doc keeps: the component stores them as plain lists."""
    text = "Мэр Москвы Сергей Собянин открыл станцию."
    mayor, city, person = Entity("PROFESSION", 0, 10, "Мэр Москвы"), Entity("CITY", 4, 10, "Москвы"), \
        Entity("PERSON", 11, 25, "Сергей Собянин")
    relation = SimpleNamespace(type="WORKS_AS", head=person, tail=mayor, probability=0.9)
    result = Annotation(1, text, [mayor, city, person], ["WORKS_AS"], {"WORKS_AS": 0.9})
    result.relations = [relation]
    doc = component.set_annotations(spacy.blank("ru")(text), result)
    copy = spacy.tokens.Doc(doc.vocab).from_bytes(doc.to_bytes())
    for d in (doc, copy):
        [found] = d._.relations
        assert (found.type, found.head.text, found.head.label_, found.tail.text, found.tail.label_) == \
            ("WORKS_AS", "Сергей Собянин", "PERSON", "Мэр Москвы", "PROFESSION")
        assert found.probability == pytest.approx(0.9)
        assert d._.relation_types == ["WORKS_AS"]
    assert copy.user_data[RELATIONS_KEY] == doc.user_data[RELATIONS_KEY]


def test_entities_inside_a_token_widen_to_it_and_merge(component):
    """"1908—2011" is one spaCy token: its two DATEs become one Span over the token; a span
    between tokens keeps its exact offsets."""
    text = "Анджела Морано (1908—2011) умерла."
    entities = [Entity("PERSON", 0, 14, text[0:14]), Entity("DATE", 16, 20, "1908"), Entity("DATE", 21, 25, "2011")]
    doc = spacy.blank("ru")(text)
    assert [is_token_aligned(doc, e) for e in entities] == [True, False, False]
    component.set_annotations(doc, Annotation(1, text, entities, [], {}))
    assert [(s.text, s.label_, s.start_char, s.end_char) for s in doc.spans["nerel"]] == \
        [("Анджела Морано", "PERSON", 0, 14), ("1908—2011", "DATE", 16, 25)]


def test_an_earlier_components_entities_are_kept_unless_overwrite_ents(component, texts, results):
    ruler = spacy.blank("ru")
    ruler.add_pipe("entity_ruler").add_patterns([{"label": "LOC", "pattern": "Москва"}])
    text = "Москва приняла Сергея Собянина."
    result = component.annotator.annotate(text)
    assert result.entities
    kept = NerelprocComponent("nerelproc", component.annotator)
    assert [(e.text, e.label_) for e in kept(ruler(text)).ents] == [("Москва", "LOC")]
    overwrite = NerelprocComponent("nerelproc", component.annotator, overwrite_ents=True)
    assert keys(overwrite(ruler(text)).ents) == {(e.start, e.end, e.type) for e in outermost(result.entities)}
    untouched = NerelprocComponent("nerelproc", component.annotator, set_ents=False)
    doc = untouched(spacy.blank("ru")(text))
    assert not doc.ents and doc.spans["nerel"]


def test_the_span_key_is_configurable(component, texts, results):
    doc = NerelprocComponent("nerelproc", component.annotator, span_key="ner")(spacy.blank("ru")(texts[0]))
    assert "nerel" not in doc.spans and len(doc.spans["ner"]) == len(results[0].entities)


def test_pipe_batches_through_annotate_many_and_equals_one_by_one(nlp, component, texts, docs, monkeypatch):
    sizes, annotate_many = [], component.annotator.annotate_many

    def counting(items, **kwargs):
        items = list(items)
        sizes.append(len(items))
        return annotate_many(items, **kwargs)

    monkeypatch.setattr(component.annotator, "annotate_many", counting)
    piped = list(nlp.pipe(texts, batch_size=2))
    assert sizes == [2, 1]
    assert [view(doc) for doc in piped] == [view(doc) for doc in docs]


def test_pipe_with_worker_processes_equals_one_process(tmp_path):
    """Each forked worker of ``nlp.pipe(n_process=2)`` loads its own model (the parent's encoder
    threads are not in the fork: using or freeing the parent's model would wait forever)."""
    code = (
        "import spacy\n"
        "nlp = spacy.blank('ru'); nlp.add_pipe('nerelproc', config={'threads': 1})\n"
        "texts = ['Мэр Москвы Сергей Собянин открыл станцию.', 'Владимир Путин прилетел в Казань.'] * 2\n"
        "view = lambda d: (d.cats, d._.relation_types, [(s.start, s.end, s.label_) for s in d.spans['nerel']])\n"
        "one = [view(d) for d in nlp.pipe(texts)]\n"
        "assert one == [view(d) for d in nlp.pipe(texts, n_process=2, batch_size=1)]\n"
        "print(len(one[0][2]))\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the workers too
        process.communicate()
        pytest.fail("nlp.pipe(n_process=2) did not finish in 120 s")
    assert process.returncode == 0, err
    assert int(out) > 0


def test_to_disk_and_spacy_load_reference_the_model(nlp, texts, docs, tmp_path):
    nlp.to_disk(tmp_path / "pipeline")
    saved = sum(path.stat().st_size for path in (tmp_path / "pipeline").rglob("*") if path.is_file())
    assert saved < 2**20 and not (tmp_path / "pipeline" / "nerelproc").exists()  # referenced, not copied
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.pipe_names == ["sentencizer", "nerelproc"]
    assert loaded.get_pipe("nerelproc").annotator.model_dir == nlp.get_pipe("nerelproc").annotator.model_dir
    assert loaded.config["components"]["nerelproc"]["span_key"] == "nerel"
    assert view(loaded(texts[0])) == view(docs[0])


def test_a_missing_model_directory_is_a_one_line_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no nerelproc model in"):
        spacy.blank("ru").add_pipe("nerelproc", config={"model": str(tmp_path / "nowhere")})


def test_displacy_renders_the_nested_span_group(docs):
    doc = docs[0]
    html = displacy.render(doc, style="span", options={"spans_key": "nerel", "colors": displacy_colors()})
    # one label box per Span, nested ones included (an inner Span's label sits on its own row)
    labels = re.findall(r"z-index: 10;[^>]*>\s*([A-Z_]+)\s*</span>", html)
    assert sorted(labels) == sorted(span.label_ for span in doc.spans["nerel"])
    assert displacy_colors()["PERSON"] in html


def test_outermost_spans_never_share_a_token(component):
    doc = spacy.blank("ru")("1908—2011 год")
    spans = [doc.char_span(0, 9, "DATE"), doc.char_span(0, 13, "DATE"), doc.char_span(10, 13, "DATE")]
    assert keys(outermost_spans(spans)) == {(0, 13, "DATE")}


def test_spans_carry_normal_forms_and_the_doc_its_groups(docs, results, component):
    for doc, result in zip(docs, results):
        forms = {key(e): e.normal for e in result.entities}
        assert doc.spans["nerel"] and all(span._.normal == forms[key(span)] for span in doc.spans["nerel"]
                                          if key(span) in forms)
        assert all(span._.normal is not None for span in doc.ents)
        assert [(g["name"], g["type"], [key(s) for s in g["mentions"]]) for g in doc._.groups] == \
            [(g.name, g.type, [key(e) for e in g.mentions]) for g in result.groups]
    # given entities, one person named twice: one group, its mentions Spans of the Doc; kept by to_bytes
    text = "Андреем Травниковым недовольны. Травников ответил."
    result = component.annotator.annotate(
        {"text": text, "entities": ["T1\tPERSON 0 19\tАндреем Травниковым", "T2\tPERSON 32 41\tТравников"]},
        given_entities=True)
    doc = component.set_annotations(spacy.blank("ru")(text), result)
    copy = spacy.tokens.Doc(doc.vocab).from_bytes(doc.to_bytes())
    for d in (doc, copy):
        assert [s._.normal for s in d.spans["nerel"]] == ["Андрей Травников", "Травников"]
        [group] = d._.groups
        assert (group["name"], group["type"]) == ("Андрей Травников", "PERSON")
        assert [(s.text, s.label_) for s in group["mentions"]] == [("Андреем Травниковым", "PERSON"),
                                                                  ("Травников", "PERSON")]
    assert spacy.blank("ru")("Москва")[:1]._.normal is None  # a Span the component did not set
