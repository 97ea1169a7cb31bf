"""Case restoration: one-case text re-cased for the encoder, offsets and texts untouched."""

from needs import need
from test_relations import loaded

from nerelproc.runtime.casing import restore_case

CAPS = "ПРЕЗИДЕНТ РОССИИ ВЛАДИМИР ПУТИН ВСТРЕТИЛСЯ С СЕРГЕЕМ ШОЙГУ В МОСКВЕ. ФСБ И BBC СООБЩИЛИ ОБ ЭТОМ."
LOWER = "президент россии владимир путин встретился в москве с главой газпрома. в сша заявили о google."


def test_all_caps_text_gets_names_capitals_abbreviations_and_sentence_starts():
    assert restore_case(CAPS) == (
        "Президент России Владимир Путин встретился с Сергеем Шойгу в Москве. ФСБ и BBC сообщили об этом.")


def test_lower_case_text_gets_names_and_sentence_starts_back():
    assert restore_case(LOWER) == (
        "Президент России Владимир Путин встретился в Москве с главой Газпрома. В США заявили о Google.")


def test_text_in_both_cases_is_left_as_it_is():
    text = "Глава МИД России Сергей Лавров прибыл в Женеву.\nПЕРЕГОВОРЫ продлятся два дня."
    assert restore_case(text) is text
    assert restore_case("коротко") == "коротко"  # too few letters to say what case a text is in


def test_only_an_all_caps_line_is_re_cased_in_a_text_written_in_both_cases():
    text = "ПУТИН ПРОВЕЛ ПЕРЕГОВОРЫ С ТРАМПОМ\nВладимир Путин и Дональд Трамп говорили час. СМИ молчат."
    head, body = restore_case(text).split("\n")
    assert head == "Путин провел переговоры с Трампом"
    assert body == text.split("\n")[1]


def test_every_character_keeps_its_place():
    for text in (CAPS, LOWER, "STRASSE ß İSTANBUL ǅ «ЦИТАТА» — ИВАНОВ!\nещё одна строка текста тут"):
        for variant in (text, text.lower(), text.upper()):
            restored = restore_case(variant)
            assert len(restored) == len(variant)
            assert all(a == b or a.lower() == b.lower() for a, b in zip(restored, variant))


def test_the_predictor_encodes_the_re_cased_text_and_reports_offsets_into_the_text_as_given(tiny_model, nerel_dir):
    need("ctranslate2")
    from nerelproc.training.data import load_documents

    texts = [d.text[:600] for d in load_documents(nerel_dir / "jsonl" / "dev.jsonl")[:3]]
    predictor = loaded(tiny_model)
    assert predictor.restore_case is False  # a bundle without the key: the text as given
    restoring = predictor.with_options(restore_case=True)
    for text in texts:
        for variant in (text.lower(), text.upper()):
            got = restoring.predict([variant])[0]
            seen = predictor.predict([restore_case(variant)])[0]
            assert restore_case(variant) != variant
            assert [(e.type, e.spans) for e in got.entities] == [(e.type, e.spans) for e in seen.entities]
            assert all(0 <= s < e <= len(variant) for entity in got.entities for s, e in entity.spans)
        # text written in both cases: the same prediction with and without the option
        as_written = restoring.predict([text])[0]
        plain = predictor.predict([text])[0]
        assert [(e.type, e.spans) for e in as_written.entities] == [(e.type, e.spans) for e in plain.entities]
        assert (as_written.relation_scores == plain.relation_scores).all()


def test_normal_forms_of_a_re_cased_text_get_their_capitals(tiny_model):
    """The names step reads the re-cased text: «владимир путин» is named «Владимир Путин»."""
    need("ctranslate2")
    from nerelproc.io.document import Document, Entity
    from nerelproc.io.readers import Record
    from nerelproc.runtime.output import output_object
    from nerelproc.runtime.predictor import Prediction

    text = "вчера в москве встретились владимир путин и сергей шойгу. они обсудили новости."
    span = lambda words: (text.index(words), text.index(words) + len(words))  # noqa: E731
    entities = [Entity("PERSON", (span("владимир путин"),)), Entity("CITY", (span("москве"),))]
    record = Record(1, Document("d1", text))
    for cased, expected in ((None, {"владимир путин", "москва"}), (restore_case(text), {"Владимир Путин", "Москва"})):
        obj = output_object(record, Prediction(entities, [], [], [], [], cased))
        assert set(obj["normal"].values()) == expected
        assert obj["entities"][0].endswith("\tвладимир путин")  # the entity's text is the text as given
    predictor = loaded(tiny_model).with_options(restore_case=True)
    assert predictor.predict([text])[0].cased_text == restore_case(text)
    assert loaded(tiny_model).predict([text])[0].cased_text is None
    assert predictor.predict(["Обычный текст, написанный как надо."])[0].cased_text is None
