"""``nerelproc score``: figures on NEREL itself and hand-computed small cases."""

import orjson
import pytest
from click.testing import CliRunner

from nerelproc.cli import main
from nerelproc.io.document import Document, Entity
from nerelproc.io.schema import relation_types
from nerelproc.evaluation.score import flat_tags, format_report, multilabel_scores, outermost, score_documents, words

TEXT = "Жолт Хорняк возглавил клуб Бананц (Ереван)"
#       0    5      12        22   27     34 35    41


def ent(kind, *spans):
    return Entity(kind, tuple(spans))


def doc(doc_id, entities=(), labels=None, text=TEXT, relations=()):
    return Document(str(doc_id), text, list(entities), list(relations), relation_types=labels)


def score(pred, gold):
    warnings = []
    result = score_documents(pred, gold, warn=warnings.append)
    return result, warnings


def prf(entry):
    return pytest.approx((entry["p"], entry["r"], entry["f1"]))


def walk_figures(obj, path=""):
    if isinstance(obj, dict):
        if {"p", "r", "f1"} <= obj.keys():
            yield path, obj
        for key, value in obj.items():
            yield from walk_figures(value, f"{path}/{key}")


def runner():
    try:
        return CliRunner(mix_stderr=False)  # click < 8.2
    except TypeError:
        return CliRunner()


# ------------------------------------------------------------------- CLI on NEREL


def test_test_set_against_itself_is_perfect(nerel_dir):
    gold = nerel_dir / "jsonl" / "test.jsonl"
    result = runner().invoke(main, ["score", str(gold), str(nerel_dir / "brat" / "test"), "--json"])
    assert result.exit_code == 0, result.output
    scores = orjson.loads(result.stdout)
    assert scores["docs"] == {"matched": 93, "missing": 0, "extra": 0}
    assert set(scores) == {"ner", "cls", "re", "docs"}
    assert set(scores["re"]) == {"micro", "per_label", "unresolved", "predicted_relations"}
    assert scores["re"]["micro"]["support"] == 4077  # 4,096 R-lines, 19 of them repeat another's key
    assert scores["re"]["unresolved"] == {"gold": 0, "predicted": 0}
    assert set(scores["ner"]) == {"micro", "per_type", "flat", "coarse"}
    assert set(scores["cls"]) == {"micro", "macro", "samples", "per_label"}
    assert len(scores["cls"]["per_label"]) == 49
    assert set(scores["ner"]["coarse"]["per_type"]) == {"PER", "LOC", "ORG"}
    figures = list(walk_figures(scores))
    assert len(figures) > 29 + 49
    for path, entry in figures:
        assert (entry["p"], entry["r"], entry["f1"]) == (1.0, 1.0, 1.0), path
    assert scores["ner"]["micro"]["support"] > 5000
    assert all("support" in entry for entry in scores["ner"]["per_type"].values())

    text = runner().invoke(main, ["score", str(gold), str(gold)])
    assert text.exit_code == 0
    assert "nested micro" in text.stdout and "WORKPLACE" in text.stdout


def test_cli_warns_about_missing_and_extra_ids(tmp_path):
    gold = tmp_path / "gold.jsonl"
    pred = tmp_path / "pred.jsonl"
    gold.write_bytes(b"".join(orjson.dumps({"id": i, "text": "x"}) + b"\n" for i in ("a", "b")))
    pred.write_bytes(b"".join(orjson.dumps({"id": i, "text": "x"}) + b"\n" for i in ("a", "z")))
    result = runner().invoke(main, ["score", str(pred), str(gold), "--json"])
    assert result.exit_code == 0
    assert orjson.loads(result.stdout)["docs"] == {"matched": 1, "missing": 1, "extra": 1}
    assert "no prediction" in result.stderr and "b" in result.stderr
    assert "not in gold" in result.stderr and "z" in result.stderr


def test_unreadable_prediction_lines_are_said_and_end_with_the_status_of_unusable_input(tmp_path):
    """The figures are printed all the same; the exit status is annotate's for unusable input (3)."""
    from nerelproc.jobs.exits import EXIT_SOME_FAILED

    gold = tmp_path / "gold.jsonl"
    pred = tmp_path / "pred.jsonl"
    gold.write_bytes(b"".join(orjson.dumps({"id": i, "text": "x"}) + b"\n" for i in ("a", "b")))
    pred.write_bytes(orjson.dumps({"id": "a", "text": "x"}) + b"\n{broken\n")
    result = runner().invoke(main, ["score", str(pred), str(gold), "--json"])
    assert result.exit_code == EXIT_SOME_FAILED == 3
    assert orjson.loads(result.stdout)["docs"] == {"matched": 1, "missing": 1, "extra": 0}
    assert f"{pred}: document 2 (id None): not JSON" in result.stderr
    assert f"unreadable records left out: 1 in {pred}" in result.stderr
    text = runner().invoke(main, ["score", str(pred), str(gold)])
    assert text.exit_code == 3 and "nested micro" in text.stdout


# --------------------------------------------------------------- hand-computed NER


def test_nested_exact_match():
    gold = [doc(1, [ent("PERSON", (0, 11)), ent("ORGANIZATION", (22, 42)), ent("CITY", (35, 41))])]
    pred = [doc(1, [ent("PERSON", (0, 11)), ent("ORGANIZATION", (27, 33)), ent("CITY", (35, 41))])]
    result, warnings = score(pred, gold)
    assert not warnings
    ner = result["ner"]
    assert prf(ner["micro"]) == (2 / 3, 2 / 3, 2 / 3)
    assert ner["micro"]["support"] == 3
    assert prf(ner["per_type"]["PERSON"]) == (1, 1, 1)
    assert prf(ner["per_type"]["ORGANIZATION"]) == (0, 0, 0)
    assert ner["per_type"]["ORGANIZATION"]["support"] == 1
    assert prf(ner["per_type"]["DATE"]) == (1, 1, 1)  # nothing to find, nothing predicted
    assert ner["per_type"]["DATE"]["support"] == 0
    # coarse: PERSON->PER, ORGANIZATION->ORG, CITY->LOC, all kept nested
    assert prf(ner["coarse"]["micro"]) == (2 / 3, 2 / 3, 2 / 3)
    assert prf(ner["coarse"]["per_type"]["LOC"]) == (1, 1, 1)
    # flat: gold keeps PERSON + ORGANIZATION(22, 42) (CITY is inside it);
    # pred keeps PERSON, ORGANIZATION(27, 33), CITY: 1 of 3 right, 1 of 2 found
    assert prf(ner["flat"]) == (1 / 3, 1 / 2, 0.4)
    assert ner["flat"]["support"] == 2


def test_discontinuous_entities_compare_by_full_span_list():
    spans = ((0, 4), (12, 21))
    gold = [doc(1, [ent("EVENT", *spans)])]
    partial = [doc(1, [ent("EVENT", (0, 4)), ent("EVENT", (0, 21))])]
    result, _ = score(partial, gold)
    assert prf(result["ner"]["micro"]) == (0, 0, 0)
    reordered = [doc(1, [ent("EVENT", (12, 21), (0, 4))])]  # fragments listed out of order
    result, _ = score(reordered, gold)
    assert prf(result["ner"]["micro"]) == (1, 1, 1)


def test_same_span_two_types_and_duplicates():
    gold = [doc(1, [ent("CITY", (35, 41)), ent("LOCATION", (35, 41))])]
    pred = [doc(1, [ent("CITY", (35, 41)), ent("CITY", (35, 41))])]  # a duplicate counts once
    result, _ = score(pred, gold)
    assert prf(result["ner"]["micro"]) == (1, 1 / 2, 2 / 3)
    assert prf(result["ner"]["per_type"]["LOCATION"]) == (1, 0, 0)  # no prediction: P = 1
    # both map to LOC: the coarse view has one entity on each side
    assert prf(result["ner"]["coarse"]["micro"]) == (1, 1, 1)
    assert result["ner"]["coarse"]["micro"]["support"] == 1


def test_empty_predictions_and_missing_and_extra_ids():
    gold = [doc("a", [ent("PERSON", (0, 11))], ["WORKS_AS"]), doc("b", [ent("CITY", (35, 41))], [])]
    result, warnings = score([doc("a"), doc("b")], gold)
    assert prf(result["ner"]["micro"]) == (1, 0, 0)
    assert prf(result["ner"]["flat"]) == (1, 0, 0)
    assert prf(result["cls"]["micro"]) == (1, 0, 0)
    assert not warnings

    pred = [doc("a", [ent("PERSON", (0, 11))], ["WORKS_AS"]), doc("zz", [ent("CITY", (35, 41))], ["SPOUSE"])]
    result, warnings = score(pred, gold)
    assert result["docs"] == {"matched": 1, "missing": 1, "extra": 1}
    assert prf(result["ner"]["micro"]) == (1, 1 / 2, 2 / 3)  # b's CITY is missed, zz ignored
    assert prf(result["cls"]["micro"]) == (1, 1, 1)
    assert prf(result["cls"]["per_label"]["SPOUSE"]) == (1, 1, 1)
    assert len(warnings) == 2
    assert "b" in warnings[0] and "zz" in warnings[1]


def test_ids_match_as_strings_and_text_mismatch_is_warned():
    gold = [Document("7", TEXT, [ent("PERSON", (0, 11))])]
    pred = [Document(7, TEXT + " ", [ent("PERSON", (0, 11))])]
    result, warnings = score(pred, gold)
    assert result["docs"]["matched"] == 1 and prf(result["ner"]["micro"]) == (1, 1, 1)
    assert any("text differs" in w for w in warnings)


def test_nothing_at_all_is_perfect():
    result, _ = score([doc(1)], [doc(1)])
    for path, entry in walk_figures(result):
        assert (entry["p"], entry["r"], entry["f1"]) == (1.0, 1.0, 1.0), path


# --------------------------------------------------------------------- flat view


def test_words_and_flat_tags():
    assert [TEXT[a:b] for a, b in words(TEXT)] == [
        "Жолт", "Хорняк", "возглавил", "клуб", "Бананц", "(", "Ереван", ")",
    ]  # fmt: skip
    nested = [ent("ORGANIZATION", (22, 42)), ent("CITY", (35, 41)), ent("PERSON", (0, 11))]
    assert flat_tags(TEXT, nested) == [
        "B-PERSON", "I-PERSON", "O", "B-ORGANIZATION", "I-ORGANIZATION", "I-ORGANIZATION",
        "I-ORGANIZATION", "I-ORGANIZATION",
    ]  # fmt: skip
    # a partly covered word is inside; overlapping-not-nested: the earlier one stays
    partial = [ent("PERSON", (2, 7)), ent("EVENT", (6, 21))]
    assert [e.type for e in outermost(partial)] == ["PERSON"]
    assert flat_tags(TEXT, partial)[:3] == ["B-PERSON", "I-PERSON", "O"]
    # two entities inside one word: the word goes to the first
    assert flat_tags(TEXT, [ent("AGE", (0, 2)), ent("DATE", (2, 4))])[:2] == ["B-AGE", "O"]
    # same extent, two types: alphabetical first; a discontinuous one covers its gap
    assert [e.type for e in outermost([ent("LOCATION", (35, 41)), ent("CITY", (35, 41))])] == ["CITY"]
    assert flat_tags(TEXT, [ent("EVENT", (0, 4), (12, 21))])[:4] == ["B-EVENT", "I-EVENT", "I-EVENT", "O"]


# ------------------------------------------------------------------------- CLS


def test_cls_micro_macro_samples():
    gold = [doc(1, labels=["WORKPLACE", "AGE_IS"]), doc(2, relations=["R1\tWORKPLACE Arg1:T1 Arg2:T2"])]
    pred = [doc(1, labels=["WORKPLACE"]), doc(2, labels=["WORKPLACE", "SPOUSE"])]
    result, _ = score(pred, gold)
    cls = result["cls"]
    assert prf(cls["micro"]) == (2 / 3, 2 / 3, 2 / 3)
    assert cls["micro"]["support"] == 3
    # WORKPLACE (1,1,1); AGE_IS (1,0,0); SPOUSE (0,1,0); the other 46 labels (1,1,1)
    assert prf(cls["per_label"]["AGE_IS"]) == (1, 0, 0)
    assert prf(cls["per_label"]["SPOUSE"]) == (0, 1, 0)
    assert cls["per_label"]["WORKPLACE"]["support"] == 2
    assert prf(cls["macro"]) == (48 / 49, 48 / 49, 47 / 49)
    # doc 1: P 1, R 1/2, F1 2/3; doc 2: P 1/2, R 1, F1 2/3
    assert prf(cls["samples"]) == (3 / 4, 3 / 4, 2 / 3)


def test_cls_labels_outside_the_schema_are_ignored():
    result, warnings = score([doc(1, labels=["NOT_A_TYPE"])], [doc(1, labels=[])])
    assert prf(result["cls"]["micro"]) == (1, 1, 1)
    assert any("NOT_A_TYPE" in w for w in warnings)


def test_multilabel_matches_sklearn_zero_division_1():
    from needs import need  # under CI a missing dependency fails: sklearn comes with seqeval

    np = need("numpy")
    sklearn_metrics = need("sklearn.metrics")
    rng = np.random.default_rng(0)
    for _ in range(50):
        n, k = rng.integers(1, 6), rng.integers(2, 6)
        y_true, y_pred = rng.random((n, k)) < 0.3, rng.random((n, k)) < 0.3
        ours = multilabel_scores(y_true, y_pred, list(range(k)))
        for average in ("micro", "macro", "samples"):
            p, r, f1, _ = sklearn_metrics.precision_recall_fscore_support(
                y_true, y_pred, average=average, zero_division=1.0
            )
            assert prf(ours[average]) == (p, r, f1)


def test_format_report():
    result, _ = score([doc(1, [ent("PERSON", (0, 11))], ["WORKS_AS"])], [doc(1, [ent("PERSON", (0, 11))])])
    report = format_report(result)
    assert "nested micro" in report and "CLS per label" in report
    assert len(relation_types()) == 49 and all(label in report for label in relation_types())


def test_one_f1_for_scoring_and_threshold_tuning():
    import numpy as np

    from nerelproc.evaluation.score import f1_score, prf
    from nerelproc.training.thresholds import micro_macro

    assert prf(0, 0, 0)["f1"] == 1.0 == float(f1_score(0, 0, 0))  # nothing to find, nothing predicted
    assert prf(1, 1, 0)["f1"] == float(f1_score(1, 1, 0)) == 2 / 3
    # a label absent from gold and never predicted counts 1.0 in the tuned macro, as in the reported one
    probs = np.array([[0.9, 0.1], [0.8, 0.2]])
    gold = np.array([[True, False], [True, False]])
    assert micro_macro(probs, gold, np.array([0.5, 0.5])) == (1.0, 1.0)


# -------------------------------------------------------------------- relations

# TEXT: T1 PERSON "Жолт Хорняк", T2 ORGANIZATION "клуб Бананц (Ереван)", T3 CITY "Ереван",
# T4 ORGANIZATION "Бананц"
RE_ENTITIES = [
    Entity("PERSON", ((0, 11),), "T1"), Entity("ORGANIZATION", ((22, 42),), "T2"),
    Entity("CITY", ((35, 41),), "T3"), Entity("ORGANIZATION", ((27, 33),), "T4"),
]
RE_GOLD = ["R1\tWORKPLACE Arg1:T1 Arg2:T2", "R2\tHEADQUARTERED_IN Arg1:T2 Arg2:T3",
           "R3\tWORKPLACE Arg1:T1 Arg2:T4"]


def re_doc(relations, entities=RE_ENTITIES, doc_id=1):
    return doc(doc_id, entities, relations=relations)


def re_counts(result):
    """(tp, fp, fn) back from micro P/R and support."""
    micro = result["re"]["micro"]
    tp = round(micro["r"] * micro["support"])
    predicted = round(tp / micro["p"]) if micro["p"] else None
    return tp, (predicted - tp) if predicted is not None else None, micro["support"] - tp


def test_relations_perfect_and_ids_do_not_matter():
    renamed = [Entity(e.type, e.spans, f"T{10 + i}") for i, e in enumerate(RE_ENTITIES)][::-1]
    pred = re_doc(["R7\tWORKPLACE Arg1:T10 Arg2:T13", "R8\tHEADQUARTERED_IN Arg1:T11 Arg2:T12",
                   "R9\tWORKPLACE Arg1:T10 Arg2:T11"], renamed)
    result, _ = score([pred], [re_doc(RE_GOLD)])
    assert prf(result["re"]["micro"]) == (1, 1, 1)
    assert result["re"]["micro"]["support"] == 3
    assert prf(result["re"]["per_label"]["WORKPLACE"]) == (1, 1, 1)
    assert result["re"]["per_label"]["WORKPLACE"]["support"] == 2
    assert result["re"]["predicted_relations"] is True


@pytest.mark.parametrize("wrong", [
    "R1\tWORKPLACE Arg1:T2 Arg2:T1",  # arguments swapped
    "R1\tWORKS_AS Arg1:T1 Arg2:T2",  # wrong label
    "R1\tWORKPLACE Arg1:T5 Arg2:T2",  # Arg1 with a shifted span (T5 = "Жолт Хорня")
    "R1\tWORKPLACE Arg1:T6 Arg2:T2",  # Arg1 with the right span and another type
])
def test_relations_one_wrong_part_is_a_false_positive_and_a_false_negative(wrong):
    entities = [*RE_ENTITIES, Entity("PERSON", ((0, 10),), "T5"), Entity("PROFESSION", ((0, 11),), "T6")]
    result, _ = score([re_doc([wrong, *RE_GOLD[1:]], entities)], [re_doc(RE_GOLD)])
    assert re_counts(result) == (2, 1, 1)
    assert prf(result["re"]["micro"]) == (2 / 3, 2 / 3, 2 / 3)


def test_relations_duplicates_count_once():
    twice = [RE_GOLD[0], "R9\tWORKPLACE Arg1:T1 Arg2:T2", RE_GOLD[0]]
    copy = [*RE_ENTITIES, Entity("PERSON", ((0, 11),), "T9")]  # the same entity under another id
    gold = re_doc([*RE_GOLD, "R4\tWORKPLACE Arg1:T9 Arg2:T2"], copy)
    result, _ = score([re_doc(twice)], [gold])
    assert result["re"]["micro"]["support"] == 3
    assert re_counts(result) == (1, 0, 2)
    assert prf(result["re"]["micro"]) == (1, 1 / 3, 0.5)


def test_relations_with_unresolvable_arguments_are_reported_not_counted():
    odd = ["R4\tWORKPLACE Arg1:R1 Arg2:T2",  # an argument naming an R-line
           "R5\tWORKPLACE Arg1:E1 Arg2:T2",  # an event
           "R6\tWORKPLACE Arg1:T1 Arg2:T99",  # a missing id
           "R7\tWORKPLACE Arg1:T1"]  # one argument only
    gold = doc(1, RE_ENTITIES, relations=[*RE_GOLD, *odd])
    gold.links.append("E1\tEVENT:T1")
    result, _ = score([re_doc([*RE_GOLD, odd[0], odd[2]])], [gold])
    assert prf(result["re"]["micro"]) == (1, 1, 1)
    assert result["re"]["micro"]["support"] == 3
    assert result["re"]["unresolved"] == {"gold": 4, "predicted": 2}
    report = format_report(result)
    assert "not a T-line" in report and "4 gold R-line(s), 2 predicted R-line(s)" in report


def test_relations_per_label_sums_to_micro():
    gold = [re_doc(RE_GOLD), re_doc(["R1\tWORKPLACE Arg1:T1 Arg2:T2", "R2\tLOCATED_IN Arg1:T4 Arg2:T3"], doc_id=2)]
    pred = [re_doc(["R1\tWORKPLACE Arg1:T1 Arg2:T2", "R2\tHEADQUARTERED_IN Arg1:T4 Arg2:T3",
                    "R3\tNOT_A_LABEL Arg1:T1 Arg2:T3"]),
            re_doc(["R1\tWORKPLACE Arg1:T1 Arg2:T2", "R2\tLOCATED_IN Arg1:T4 Arg2:T3"], doc_id=2)]
    result, _ = score(pred, gold)
    relations = result["re"]
    per_label = relations["per_label"]
    assert set(relation_types()) < set(per_label) and "NOT_A_LABEL" in per_label  # a wrong label is an error
    counts = [0, 0, 0]
    for entry in per_label.values():
        tp = round(entry["r"] * entry["support"])
        predicted = round(tp / entry["p"]) if entry["p"] else 1  # p == 0 here only with one prediction
        for i, value in enumerate((tp, predicted - tp, entry["support"] - tp)):
            counts[i] += value
    assert tuple(counts) == re_counts(result) == (3, 2, 2)
    assert sum(entry["support"] for entry in per_label.values()) == relations["micro"]["support"] == 5
    assert prf(per_label["HEADQUARTERED_IN"]) == (0, 0, 0) and prf(per_label["LOCATED_IN"]) == (1, 1, 1)
    assert prf(per_label["WORKPLACE"]) == (1, 2 / 3, 0.8)


def test_predictions_without_relations_are_said_so(tmp_path):
    gold, pred = tmp_path / "gold.jsonl", tmp_path / "pred.jsonl"
    entities = [f"T{i}\t{e.type} {e.start} {e.end}\t{TEXT[e.start:e.end]}" for i, e in enumerate(RE_ENTITIES, 1)]
    gold.write_bytes(orjson.dumps({"id": 1, "text": TEXT, "entities": entities, "relations": RE_GOLD}) + b"\n")
    pred.write_bytes(orjson.dumps({"id": 1, "text": TEXT, "entities": entities}) + b"\n")
    result = runner().invoke(main, ["score", str(pred), str(gold)])
    assert result.exit_code == 0, result.output
    assert "the predictions hold no relations" in result.stdout
    scores = orjson.loads(runner().invoke(main, ["score", str(pred), str(gold), "--json"]).stdout)["re"]
    assert scores["predicted_relations"] is False and (scores["micro"]["r"], scores["micro"]["f1"]) == (0, 0)
    assert scores["micro"]["support"] == 3
    itself = runner().invoke(main, ["score", str(gold), str(gold)])
    assert "the predictions hold no relations" not in itself.stdout and "RE per label" in itself.stdout
