from nerelproc.io.document import Document, Entity
from nerelproc.evaluation.taxonomy import classify, error_counts, outcomes

TEXT = "Денис Тен погиб в Алма-Ате 19 июля 2018 года."


def entity(type_, start, end):
    return Entity(type_, ((start, end),))


PERSON = entity("PERSON", 0, 9)  # «Денис Тен»
CITY = entity("CITY", 18, 26)  # «Алма-Ате»
DATE = entity("DATE", 27, 44)  # «19 июля 2018 года»


def test_each_kind():
    assert classify(PERSON, [PERSON])[0] == "exact"
    assert classify(PERSON, [entity("ORGANIZATION", 0, 9)])[0] == "type"
    kind, pieces = classify(PERSON, [entity("PERSON", 6, 9), entity("PERSON", 0, 5)])
    assert kind == "split" and [TEXT[p.start:p.end] for p in pieces] == ["Денис", "Тен"]
    assert classify(DATE, [entity("DATE", 35, 44)])[0] == "boundary"  # one piece inside is a bound, not a split
    assert classify(CITY, [entity("CITY", 14, 26)])[0] == "boundary"
    assert classify(CITY, [entity("COUNTRY", 18, 22)])[0] == "missed"  # another type overlapping: still missed
    assert classify(CITY, [])[0] == "missed"


def test_exact_wins_over_everything_else():
    predicted = [entity("PERSON", 0, 5), entity("PERSON", 6, 9), entity("ORGANIZATION", 0, 9), PERSON]
    assert classify(PERSON, predicted)[0] == "exact"


def test_counts_over_documents():
    gold = [Document("a", TEXT, [PERSON, CITY, DATE]), Document("b", TEXT, [PERSON])]
    predicted = {"a": Document("a", TEXT, [entity("PERSON", 0, 5), entity("PERSON", 6, 9), CITY,
                                            entity("PERSON", 10, 15)])}  # "b" predicted nothing
    counts = error_counts(predicted, gold)
    assert counts == {"exact": 1, "type": 0, "split": 1, "boundary": 0, "missed": 2, "spurious": 3}
    assert sum(counts[k] for k in ("exact", "type", "split", "boundary", "missed")) == 4  # every gold entity once
    assert {kind for _, kind, _ in outcomes(None, gold[1]).values()} == {"missed"}
