"""``nerelproc eda`` statistics (analysis/eda.py) on documents whose figures are counted by hand."""

from collections import Counter

from nerelproc.analysis.eda import best_single_layer, nesting_depths, per_type_kept, split_stats
from nerelproc.io.readers import read_brat

TEXT = "Президент России Владимир Путин посетил Москву и Санкт-Петербург."
ANN = """T1\tPERSON 0 31\tПрезидент России Владимир Путин
T2\tPROFESSION 0 16\tПрезидент России
T3\tCOUNTRY 10 16\tРоссии
T4\tPERSON 17 31\tВладимир Путин
T5\tCITY 40 46\tМоскву
T6\tCITY 49 64\tСанкт-Петербург
T7\tSTATE_OR_PROVINCE 49 64\tСанкт-Петербург
R1\tWORKS_AS Arg1:T4 Arg2:T2
R2\tWORKS_AS Arg1:T1 Arg2:T2
R3\tPLACE_RESIDES_IN Arg1:T4 Arg2:T5
"""


def documents(folder):
    (folder / "a.txt").write_text(TEXT, "utf-8")
    (folder / "a.ann").write_text(ANN, "utf-8")
    (folder / "b.txt").write_text("Без сущностей.", "utf-8")  # no .ann: no entities, no labels
    records = list(read_brat(folder))
    assert all(record.document is not None and not record.document.problems for record in records)
    return [record.document for record in records]


def test_nesting_depth_and_layers(tmp_path):
    doc = documents(tmp_path)[0]
    # T1 holds T2 and T4; T2 holds T3; T6 and T7 share one extent, which does not nest them
    assert nesting_depths(doc.entities) == [0, 1, 2, 1, 0, 0, 0]
    assert per_type_kept(doc.entities) == 6  # PERSON keeps T1 only (T4 is inside it)
    assert best_single_layer(doc.entities) == 4  # T2, T4, T5, T6 (or T7)


def test_split_counts(tmp_path):
    stats = split_stats(documents(tmp_path))
    assert stats["documents"] == 2 and stats["chars"] == [len(TEXT), len("Без сущностей.")]
    assert stats["entities"] == 7
    assert stats["entity_types"] == Counter(PERSON=2, PROFESSION=1, COUNTRY=1, CITY=2, STATE_OR_PROVINCE=1)
    assert stats["depths"] == Counter({0: 4, 1: 2, 2: 1})
    assert stats["nested"] == 3 and stats["nested_by_type"] == Counter(PROFESSION=1, COUNTRY=1, PERSON=1)
    assert stats["same_extent_other_type"] == 2  # T6 and T7
    assert stats["flat_kept"] == 3  # T1, T5, T6 (CITY before STATE_OR_PROVINCE)
    assert stats["discontinuous_by_type"] == Counter()
    assert stats["relations"] == 3
    assert stats["relation_instances"] == Counter(WORKS_AS=2, PLACE_RESIDES_IN=1)
    assert stats["relation_doc_freq"] == Counter(WORKS_AS=1, PLACE_RESIDES_IN=1)
    assert stats["labels_per_doc"] == [2, 0]


def test_nerel_document_counts_match_its_ann_file(nerel_dir):
    folder = nerel_dir / "brat" / "dev"
    name = sorted(path.stem for path in folder.glob("*.ann"))[0]
    lines = (folder / f"{name}.ann").read_text("utf-8").splitlines()
    [doc] = [record.document for record in read_brat(folder) if record.id == name]
    stats = split_stats([doc])
    t_lines = [line for line in lines if line.startswith("T")]
    r_lines = [line for line in lines if line.startswith("R")]
    assert stats["entities"] == len(t_lines) and stats["relations"] == len(r_lines)
    assert stats["labels_per_doc"] == [len({line.split("\t")[1].split()[0] for line in r_lines})]
    assert sum(stats["depths"].values()) == len(t_lines)
    discontinuous = sum(";" in line.split("\t")[1] for line in t_lines)
    assert sum(stats["discontinuous_by_type"].values()) == discontinuous


def test_markdown_table_styles():
    from nerelproc.analysis.tables import markdown_table

    assert markdown_table(["a", "b"], [[1, "x"], [2.5, None]]) == "| a | b |\n| --- | --- |\n| 1 | x |\n| 2.5 | None |"
    assert markdown_table(["a"], [], compact=True) == "| a |\n|---|"
