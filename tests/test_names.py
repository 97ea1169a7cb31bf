"""Normal forms, groups of mentions, and their place in the JSONL and BRAT formats."""

import orjson
import pytest

from nerelproc.io.document import Document, Entity
from nerelproc.io.readers import read_brat, read_jsonl_lines
from nerelproc.io.writers import document_to_json, dumps_line, write_brat_document
from nerelproc.names import annotate_names, group_mentions, normal_form

NORMAL_FORMS = [
    # (type, as in the text, normal form)
    ("PERSON", "Андреем Травниковым", "Андрей Травников"),
    ("PERSON", "Марией Захаровой", "Мария Захарова"),
    ("PERSON", "Александру Бондареву", "Александр Бондарев"),
    ("PERSON", "Ксенией Кацер", "Ксения Кацер"),
    ("PERSON", "Ивана Денисовича", "Иван Денисович"),
    ("PERSON", "Людмиле Улицкой", "Людмила Улицкая"),
    ("PERSON", "Михаиле Горбачёве", "Михаил Горбачёв"),
    ("PERSON", "Путина", "Путин"),
    ("PERSON", "Сергея Доренко", "Сергей Доренко"),
    ("PERSON", "А. М. Горького", "А. М. Горький"),
    ("PERSON", "Ibrahim Boubacar Keita", "Ibrahim Boubacar Keita"),
    ("STATE_OR_PROVINCE", "Новосибирской области", "Новосибирская область"),
    ("ORGANIZATION", "Европейском союзе", "Европейский союз"),
    ("ORGANIZATION", "Следственного комитета Армении", "Следственный комитет Армении"),
    ("ORGANIZATION", "Уральской стали", "Уральская сталь"),
    ("ORGANIZATION", "ООН", "ООН"),
    ("ORGANIZATION", "Газпрома", "Газпром"),
    ("ORGANIZATION", "Deutsche Bank", "Deutsche Bank"),
    ("PROFESSION", "губернатором", "губернатор"),
    ("PROFESSION", "губернатором Новосибирской области", "губернатор Новосибирской области"),
    ("PROFESSION", "политика", "политик"),  # a person here, not politics
    ("PROFESSION", "депутаты Госдумы", "депутаты Госдумы"),
    ("AWARD", "полному кавалеру ордена «За заслуги перед Отечеством»", "полный кавалер ордена «За заслуги перед Отечеством»"),
    ("COUNTRY", "Перу", "Перу"),
    ("COUNTRY", "британской", "британский"),
    ("EVENT", "выборах президента", "выборы президента"),
    ("EVENT", "подал в отставку", "подал в отставку"),
    ("CRIME", "массовых беспорядков, сопровождавшихся насилием",
     "массовые беспорядки, сопровождавшиеся насилием"),
    ("FAMILY", "Скрипалей", "Скрипали"),
    ("DATE", "в  1987 году", "в 1987 году"),
    ("AGE", "68-летнего", "68-летнего"),
]


@pytest.mark.parametrize("entity_type,surface,expected", NORMAL_FORMS)
def test_normal_forms(entity_type, surface, expected):
    assert normal_form(surface, entity_type) == expected


TEXT = ("Владимир Путин провёл встречу с Бараком Обамой. Европейский союз поддержал Путина, "
        "а Мишель Обама — нет. Представители ЕС и Путин говорили о России; Обама уехал из РФ.")


def entity(entity_type, surface, nth=1, entity_id=None, text=TEXT):
    start = -1
    for _ in range(nth):
        start = text.index(surface, start + 1)
    return Entity(entity_type, ((start, start + len(surface)),), entity_id)


def test_groups_on_a_document():
    entities = [
        entity("PERSON", "Владимир Путин", entity_id="T1"),
        entity("PERSON", "Бараком Обамой", entity_id="T2"),
        entity("ORGANIZATION", "Европейский союз", entity_id="T3"),
        entity("PERSON", "Путина", entity_id="T4"),
        entity("PERSON", "Мишель Обама", entity_id="T5"),
        entity("ORGANIZATION", "ЕС", entity_id="T6"),
        entity("PERSON", "Путин", 2, entity_id="T7"),
        entity("COUNTRY", "России", entity_id="T8"),
        entity("PERSON", "Обама", 2, entity_id="T9"),
        entity("COUNTRY", "РФ", entity_id="T10"),
    ]
    normal, groups = annotate_names(TEXT, entities)
    assert normal["T2"] == "Барак Обама" and normal["T4"] == "Путин" and normal["T8"] == "Россия"
    by_name = {group["name"]: group for group in groups}
    assert by_name["Владимир Путин"] == {"name": "Владимир Путин", "type": "PERSON", "mentions": ["T1", "T4", "T7"]}
    assert by_name["Европейский союз"]["mentions"] == ["T3", "T6"]
    assert by_name["Россия"]["mentions"] == ["T8", "T10"]
    # «Обама» alone goes with the first full name that ends with it; Мишель stays apart
    assert by_name["Барак Обама"]["mentions"] == ["T2", "T9"]
    assert by_name["Мишель Обама"]["mentions"] == ["T5"]
    assert sorted(m for g in groups for m in g["mentions"]) == sorted(e.id for e in entities)


def test_groups_keep_types_apart_except_places():
    groups = group_mentions([("T1", "CITY", "Гонконг"), ("T2", "STATE_OR_PROVINCE", "Гонконг"),
                             ("T3", "ORGANIZATION", "Спартак"), ("T4", "FACILITY", "Спартак"),
                             ("T5", "PERSON", "В. Зворыкин"), ("T6", "PERSON", "Владимир Козьмич Зворыкин"),
                             ("T7", "PERSON", "А. Зворыкин")])
    assert [g["mentions"] for g in groups] == [["T1", "T2"], ["T3"], ["T4"], ["T5", "T6"], ["T7"]]
    assert groups[3]["name"] == "Владимир Козьмич Зворыкин"


def test_entities_without_ids_are_numbered_in_list_order():
    normal, groups = annotate_names(TEXT, [entity("PERSON", "Путина"), entity("PERSON", "Владимир Путин")])
    assert normal == {"T1": "Путин", "T2": "Владимир Путин"}
    assert groups == [{"name": "Владимир Путин", "type": "PERSON", "mentions": ["T2", "T1"]}]


def annotated_document():
    text = "Андреем Травниковым и губернатором Новосибирской области"
    entities = [entity("PERSON", "Андреем Травниковым", entity_id="T1", text=text),
                entity("PROFESSION", "губернатором Новосибирской области", entity_id="T2", text=text),
                entity("STATE_OR_PROVINCE", "Новосибирской области", entity_id="T3", text=text)]
    links = ["N1\tReference T1 Wikidata:Q1\tАндрей Травников", "#1\tAnnotatorNotes R1\tа note on a relation"]
    document = Document("doc", text, entities, ["R1\tWORKPLACE Arg1:T1 Arg2:T3"], links)
    document.normal, document.groups = annotate_names(text, entities)
    return document


def test_brat_annotator_notes_round_trip(tmp_path):
    document = annotated_document()
    write_brat_document(document, tmp_path)
    ann = (tmp_path / "doc.ann").read_text(encoding="utf-8").splitlines()
    # numbered after the note already there, in T-line order
    assert ann[-3:] == ["#2\tAnnotatorNotes T1\tАндрей Травников",
                        "#3\tAnnotatorNotes T2\tгубернатор Новосибирской области",
                        "#4\tAnnotatorNotes T3\tНовосибирская область"]
    (record,) = list(read_brat(tmp_path))
    assert record.document.problems == []
    assert record.document.normal == document.normal
    assert record.document.links == document.links  # other notes and links stay as they were
    write_brat_document(record.document, tmp_path / "again")
    assert (tmp_path / "again/doc.ann").read_text(encoding="utf-8") == (tmp_path / "doc.ann").read_text(encoding="utf-8")


def test_jsonl_round_trip():
    document = annotated_document()
    obj = document_to_json(document)
    assert obj["normal"] == {"T1": "Андрей Травников", "T2": "губернатор Новосибирской области",
                             "T3": "Новосибирская область"}
    assert obj["groups"][0] == {"name": "Андрей Травников", "type": "PERSON", "mentions": ["T1"]}
    (record,) = list(read_jsonl_lines([dumps_line(obj)]))
    assert record.document.normal == document.normal
    assert record.document.groups == document.groups
    assert "normal" not in record.document.extra and "groups" not in record.document.extra
    assert document_to_json(record.document) == obj


def test_jsonl_renumbered_output_renames_normal_forms_and_groups():
    document = annotated_document()
    document.entities = list(reversed(document.entities))
    document.entities[0] = Entity("STATE_OR_PROVINCE", document.entities[0].spans, "T9")
    document.normal["T9"] = document.normal.pop("T3")
    for group in document.groups:
        group["mentions"] = ["T9" if m == "T3" else m for m in group["mentions"]]
    obj = document_to_json(document, renumber=True)
    assert obj["normal"]["T3"] == "Новосибирская область" and "T9" not in obj["normal"]
    assert [g["mentions"] for g in obj["groups"]] == [["T1"], ["T2"], ["T3"]]


def test_jsonl_notes_in_links_and_bad_fields():
    text = "Путина"
    line = orjson.dumps({"id": 1, "text": text, "entities": ["T1\tPERSON 0 6\tПутина"],
                         "links": ["#1\tAnnotatorNotes T1\tПутин"]}) + b"\n"
    (record,) = list(read_jsonl_lines([line]))
    assert record.document.normal == {"T1": "Путин"} and record.document.links == []
    bad = orjson.dumps({"id": 2, "text": text, "normal": ["Путин"], "groups": [{"name": 1}]}) + b"\n"
    (record,) = list(read_jsonl_lines([bad]))
    assert record.ok and record.document.normal == {} and record.document.groups is None
    assert any("'normal'" in p for p in record.document.problems)
    assert any("'groups'" in p for p in record.document.problems)
