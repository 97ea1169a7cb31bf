"""Readers and writers: BRAT <-> JSONL round trips, bad input, exact offsets."""

import io
from collections import Counter

import orjson
import pytest

from nerelproc.io.document import Entity
from nerelproc.io.readers import read_documents, read_jsonl, read_records, read_text
from nerelproc.io.writers import document_to_json, write_brat_document, write_jsonl

SPLITS = ("train", "dev", "test")
MALFORMED = ("train", "21013_text", 52)  # a stray fragment of text in the release


def ann_lines(path):
    return Counter(line.rstrip("\r") for line in read_text(path).split("\n") if line.strip())


def test_round_trip_all_nerel_documents(nerel_dir, tmp_path):
    problems = []
    for split in SPLITS:
        source = nerel_dir / "brat" / split
        documents = list(read_documents(source, on_problem=problems.append))
        names = sorted(p.stem for p in source.glob("*.txt"))
        assert [d.id for d in documents] == names
        write_jsonl(documents, tmp_path / f"{split}.jsonl")
        back = list(read_documents(tmp_path / f"{split}.jsonl", on_problem=problems.append))
        assert len(back) == len(documents)
        for document in back:
            write_brat_document(document, tmp_path / split)
        for name in names:
            original_text = (source / f"{name}.txt").read_bytes()
            assert (tmp_path / split / f"{name}.txt").read_bytes() == original_text, name
            expected = ann_lines(source / f"{name}.ann")
            if (split, name) == MALFORMED[:2]:
                bad = read_text(source / f"{name}.ann").split("\n")[MALFORMED[2] - 1]
                assert expected[bad] == 1
                del expected[bad]
            assert ann_lines(tmp_path / split / f"{name}.ann") == expected, name
    total = sum(len(list((nerel_dir / "brat" / s).glob("*.txt"))) for s in SPLITS)
    assert total == 933
    # the one defect is reported once (by the BRAT read), with file, line number and reason
    assert len(problems) == 1, problems
    assert "21013_text.ann" in problems[0] and "line 52" in problems[0]
    assert "not an annotation line" in problems[0]


def test_jsonl_copy_matches_brat(nerel_dir):
    for split in SPLITS:
        brat = {d.id: d for d in read_documents(nerel_dir / "brat" / split)}
        for document in read_documents(nerel_dir / "jsonl" / f"{split}.jsonl"):
            other = brat.pop(document.id)
            assert (document.text, document.entities, document.relations, document.links) == (
                other.text,
                other.entities,
                other.relations,
                other.links,
            )
            for entity in document.entities:
                assert entity.start < entity.end <= len(document.text)
        assert not brat


def jsonl(*lines):
    """A binary JSONL file from objects (dumped) and raw bytes (kept)."""
    raw = [line if isinstance(line, bytes) else orjson.dumps(line) for line in lines]
    return io.BytesIO(b"\n".join(raw) + b"\n")


def test_raw_objects_with_and_without_id_and_extra_fields():
    records = list(
        read_jsonl(
            jsonl(
                {"text": "Москва"},
                {"id": "a1", "text": "Путин", "source": "tass", "meta": {"k": [1, 2]}},
            )
        )
    )
    assert all(r.ok for r in records)
    first, second = (r.document for r in records)
    assert first.id == 1 and first.entities == [] and first.relation_types is None
    assert second.id == "a1"
    assert second.extra == {"source": "tass", "meta": {"k": [1, 2]}}
    obj = document_to_json(second)
    assert obj["source"] == "tass" and obj["meta"] == {"k": [1, 2]}
    assert obj["id"] == "a1" and obj["text"] == "Путин"


def test_bad_lines_are_reported_and_the_rest_is_read():
    text = "Жолт Хорняк"
    good = {"id": "ok", "text": text, "entities": ["T1\tPERSON 0 11\tЖолт Хорняк"]}
    source = jsonl(
        good,  # 1
        b"{not json",  # 2
        b'{"id": "u", "text": "\xff\xfe"}',  # 3 invalid UTF-8
        {"id": "nt", "entities": []},  # 4 no text
        {"id": "off", "text": text, "entities": ["T1\tPERSON 5 40\tХорняк", "T2\tPERSON 0 4\tЖолт"]},  # 5
        {"id": "neg", "text": text, "entities": ["T1\tPERSON 7 5\tх"]},  # 6
        {"id": "sur", "text": text, "entities": ["T1\tPERSON 0 4\tЖорж"]},  # 7
        {"id": "typ", "text": 5},  # 8
        good,  # 9
    )
    records = list(read_records(source))
    assert [r.line for r in records] == list(range(1, 10))
    errors = {r.line: r.error for r in records if not r.ok}
    assert set(errors) == {2, 3, 4, 8}
    assert errors[2].startswith("not JSON")
    assert "UTF-8" in errors[3] and records[2].id == "u"  # the id is readable around the bad bytes
    assert "text" in errors[4] and "text" in errors[8]
    assert records[3].id == "nt"  # the id is known even when the document is not
    by_line = {r.line: r.document for r in records if r.ok}
    assert by_line[1].entities and by_line[9].entities
    # bad T-lines: the document is read, the bad entity dropped, the reason kept
    assert [e.surface(text) for e in by_line[5].entities] == ["Жолт"]
    assert "line 5 (id off): annotation 1" in by_line[5].problems[0]
    assert "outside the text" in by_line[5].problems[0]
    assert by_line[6].entities == [] and "empty or negative span" in by_line[6].problems[0]
    assert by_line[7].entities == [] and "does not match" in by_line[7].problems[0]

    source.seek(0)
    messages = []
    documents = list(read_documents(source, on_problem=messages.append))
    assert [d.id for d in documents] == ["ok", "off", "neg", "sur", "ok"]
    assert len(messages) == 7
    assert any("document 2" in m and "not JSON" in m for m in messages)
    assert any("line 7 (id sur)" in m for m in messages)


def test_offsets_index_the_exact_text():
    text = "«Газпром» (Москва)\tи 2019 год"
    entities = [
        "T1\tORGANIZATION 1 8\tГазпром",
        "T2\tCITY 11 17\tМосква",
        "T3\tDATE 21 29\t2019 год",
        "T4\tORGANIZATION 0 9;11 17\t«Газпром» Москва",  # discontinuous: fragments joined by a space
    ]
    (record,) = read_jsonl(jsonl({"id": "x", "text": text, "entities": entities}))
    document = record.document
    assert not document.problems
    for entity, line in zip(document.entities, entities):
        surface = line.split("\t")[2]
        assert " ".join(text[a:b] for a, b in entity.spans) == surface
        assert entity.surface(text) == surface
    assert document.entities[3] == Entity("ORGANIZATION", ((0, 9), (11, 17)), "T4")
    assert (document.entities[3].start, document.entities[3].end) == (0, 17)
    # fragments out of order (as in the release): the extent is min start .. max end
    out_of_order = Entity("DATE", ((11, 17), (0, 9)))
    assert (out_of_order.start, out_of_order.end) == (0, 17)
    assert out_of_order.key == Entity("DATE", ((0, 9), (11, 17))).key


def test_crlf_text_kept_exactly(tmp_path):
    text = "Первая строка.\r\nВ Москве\r\n\r\nконец\r"
    start = text.index("Москве")
    line = f"T1\tCITY {start} {start + 6}\tМоскве"
    source = jsonl({"id": "crlf", "text": text, "entities": [line]})
    (document,) = read_documents(source)
    assert document.text == text and not document.problems
    assert document.entities[0].surface(text) == "Москве"
    write_brat_document(document, tmp_path / "brat")
    assert (tmp_path / "brat" / "crlf.txt").read_bytes() == text.encode("utf-8")
    (again,) = read_documents(tmp_path / "brat")
    assert again.text == text and again.entities == document.entities
    write_jsonl([again], tmp_path / "out.jsonl")
    (third,) = read_documents(tmp_path / "out.jsonl")
    assert third.text == text and third.entities == document.entities
    # a plain-text file with CRLF, too
    (tmp_path / "plain.txt").write_bytes(text.encode("utf-8"))
    (plain,) = read_documents(tmp_path / "plain.txt")
    assert plain.text == text and plain.id == "plain"


def test_missing_input_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_records(tmp_path / "nope.jsonl")


def test_raw_objects_with_foreign_annotation_fields_are_still_read(tmp_path):
    from nerelproc.io.readers import read_records

    path = tmp_path / "raw.jsonl"
    path.write_text('{"id": "x", "text": "Москва", "entities": [{"label": "LOC"}]}\n', encoding="utf-8")
    [record] = list(read_records(path))
    assert record.ok and record.document.text == "Москва" and record.document.entities == []
    assert "'entities' is not a list of BRAT lines" in record.document.problems[0]


def test_feed_files_blank_lines_case_and_gzip(tmp_path):
    import gzip

    lines = b'{"id": "a", "text": "x"}\n\n   \r\n{"id": "b", "text": "y"}\n\n'
    (tmp_path / "NEWS.JSONL").write_bytes(lines)
    with gzip.open(tmp_path / "feed.jsonl.gz", "wb") as file:
        file.write(lines)
    for name in ("NEWS.JSONL", "feed.jsonl.gz"):
        records = list(read_records(tmp_path / name))
        assert [r.blank for r in records] == [False, True, True, False, True], name
        assert all(r.error is None for r in records)  # a blank line is not an error
        assert [d.id for d in read_documents(tmp_path / name)] == ["a", "b"]


def test_a_new_output_clears_what_a_killed_run_left_half_written(tmp_path):
    from nerelproc.jobs.resume import JsonlOutput

    stale = [tmp_path / ".out.jsonl.k3j_x1.tmp", tmp_path / ".out.jsonl.partial.json.9fz2.tmp"]
    other = tmp_path / ".other.jsonl.abc.tmp"  # not ours: kept
    for path in stale + [other]:
        path.write_bytes(b"half")
    output = JsonlOutput(tmp_path / "out.jsonl", {"input": "x"})
    output.write(None, {"id": 1}, None)
    output.close()
    assert not any(path.exists() for path in stale) and other.exists()
    assert (tmp_path / "out.jsonl").read_bytes() == b'{"id":1}\n'


def test_a_byte_order_mark_before_the_first_record_is_skipped(tmp_path):
    import gzip

    bom = b"\xef\xbb\xbf"
    lines = bom + '{"id": "a", "text": "Москва"}\n{"id": "b", "text": "Казань"}\n'.encode()
    (tmp_path / "windows.jsonl").write_bytes(lines)
    with gzip.open(tmp_path / "windows.jsonl.gz", "wb") as file:
        file.write(lines)
    (tmp_path / "note.txt").write_bytes(bom + "Москва".encode())
    for name in ("windows.jsonl", "windows.jsonl.gz"):
        records = list(read_records(tmp_path / name))
        assert [(r.error, r.id) for r in records] == [(None, "a"), (None, "b")], name
        assert records[0].source.startswith(bom)  # what a resumed run checks is the input's bytes
    [record] = list(read_records(tmp_path / "note.txt"))
    assert record.document.text == "Москва"
    # only before the first record: a mark inside the file is an error of its line
    (tmp_path / "late.jsonl").write_bytes(b'{"id": "a", "text": "x"}\n' + bom + b'{"id": "b", "text": "y"}\n')
    assert [r.error is None for r in read_records(tmp_path / "late.jsonl")] == [True, False]


def test_a_truncated_gzip_gives_its_records_then_one_error_at_the_cut(tmp_path):
    import gzip

    data = b"".join(orjson.dumps({"id": i, "text": f"Москва {i} " * 40}) + b"\n" for i in range(200))
    packed = gzip.compress(data)
    path = tmp_path / "feed.jsonl.gz"
    path.write_bytes(packed[: len(packed) // 2])
    records = list(read_records(path))
    *read, cut = records
    assert read and all(r.error is None for r in read) and [r.id for r in read] == list(range(len(read)))
    assert cut.line == len(read) + 1 and cut.document is None
    assert cut.error.startswith(f"{path} is cut short or corrupt at line {cut.line}, nothing after it read (EOFError")
