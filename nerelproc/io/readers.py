"""Streaming readers: NEREL or raw JSONL, BRAT folders, plain-text files.

Every reader yields one ``Record`` per input unit (a JSONL line, a BRAT pair, a text
file), in input order, one at a time. A unit that cannot be read still yields a
record, with ``error`` set and ``document`` None, so that a batch loses nothing.
Texts are read with ``newline=""`` semantics: offsets index the exact original text.
"""

import gzip
import os
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import orjson

from nerelproc.io.document import Document, names_from_json, read_annotation_lines
from nerelproc.io.writers import LABELS_SUFFIX  # beside NAME.txt/.ann: the document's relation types

KNOWN_FIELDS = ("id", "text", "entities", "relations", "links", "relation_types", "normal", "groups")
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
BOM = b"\xef\xbb\xbf"  # UTF-8 byte order mark, which some Windows tools write before the first line


@dataclass
class Record:
    line: int  # 1-based position in the input: JSONL line or n-th BRAT/text document
    document: Document | None = None
    error: str | None = None
    id: object = None  # the input's id, when it could be read
    source: bytes = b""  # the raw input unit (what a resumed run checks it is continuing)
    blank: bool = False  # an empty or whitespace-only JSONL line: skipped, only counted

    @property
    def ok(self):
        return self.error is None


def read_text(path):
    with open(path, encoding="utf-8", newline="") as file:
        return file.read()


def document_from_json(obj, line):
    """Build a Document from a parsed JSONL object; raise ValueError if unusable."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    text = obj.get("text")
    if not isinstance(text, str):
        raise ValueError("no string field 'text'")
    doc_id = obj.get("id")
    if doc_id is None:
        doc_id = line  # raw input without an id: its line number
    lines, ignored = [], []
    for name in ("entities", "relations", "links"):
        value = obj.get(name) or []
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            # Raw input may use these names for something else: report, keep the text.
            ignored.append(f"line {line} (id {doc_id}): field {name!r} is not a list of BRAT lines; ignored")
            continue
        lines.extend(value)
    # number the annotations (entities, then relations, then links) apart from the JSONL line
    entities, relations, links, problems = read_annotation_lines(
        lines, text, f"line {line} (id {doc_id}): ", unit="annotation"
    )
    problems = ignored + problems
    relation_types = obj.get("relation_types")
    if relation_types is not None and not (
        isinstance(relation_types, list) and all(isinstance(item, str) for item in relation_types)
    ):
        raise ValueError("field 'relation_types' must be a list of strings")
    extra = {key: value for key, value in obj.items() if key not in KNOWN_FIELDS}
    normal, groups, name_problems = names_from_json(obj)
    problems += [f"line {line} (id {doc_id}): {problem}" for problem in name_problems]
    return Document(doc_id, text, entities, relations, links, relation_types, extra, problems, normal, groups)


def is_gzip(path):
    return str(path).lower().endswith(".gz")


def is_jsonl(path):
    """``*.jsonl`` and friends, in any case, optionally gzipped (``feed.JSONL.GZ``)."""
    name = str(path).lower()
    name = name[:-3] if name.endswith(".gz") else name
    return name.endswith(JSONL_SUFFIXES)


def read_jsonl(source):
    """Yield a Record per line of a JSONL file (a path, ``-`` for stdin, or a binary file).
    A stream cut short (a ``.gz`` still being written, or cut in transfer) yields the records
    read before the cut, then one error record saying where it ends."""
    if source == "-":
        yield from read_jsonl_lines(sys.stdin.buffer)
        return
    if hasattr(source, "read"):
        yield from read_jsonl_lines(source)
        return
    with (gzip.open if is_gzip(source) else open)(source, "rb") as file:
        yield from read_jsonl_lines(file, name=str(source))


def read_jsonl_lines(lines, first_line=1, name="the input"):
    """A Record per raw JSONL line (bytes); ``first_line`` numbers a slice as in its whole file.
    A UTF-8 byte order mark before the first line is skipped (``source`` keeps it)."""
    for number, raw in _lines_until_cut(lines, first_line, name):
        if isinstance(raw, Record):
            yield raw
            return
        raw_json = raw[3:] if number == 1 and raw.startswith(BOM) else raw
        if not raw_json.strip():
            yield Record(number, source=raw, blank=True)
            continue
        try:
            obj = orjson.loads(raw_json)  # rejects invalid UTF-8 too
        except orjson.JSONDecodeError as error:
            yield Record(number, error=_not_json(raw_json, error), id=_readable_id(raw_json), source=raw)
            continue
        doc_id = obj.get("id") if isinstance(obj, dict) else None
        try:
            document = document_from_json(obj, number)
        except ValueError as error:
            yield Record(number, error=str(error), id=doc_id, source=raw)
            continue
        yield Record(number, document, id=document.id, source=raw)


def _lines_until_cut(lines, first_line, name):
    """``(number, line)`` of ``lines``, then, if reading them fails (a truncated or corrupt
    gzip), ``(number, error Record)`` for the line where the input ends."""
    number, lines = first_line - 1, iter(lines)
    while True:
        try:
            raw = next(lines)
        except StopIteration:
            return
        except (EOFError, gzip.BadGzipFile, zlib.error) as error:
            number += 1
            reason = " ".join(f"{type(error).__name__}: {error}".split())
            yield number, Record(number, error=f"{name} is cut short or corrupt at line {number}, "
                                               f"nothing after it read ({reason})")
            return
        number += 1
        yield number, raw


def _not_json(raw, error):
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"not UTF-8 at byte {bad.start}"
    return f"not JSON: {error}"


def _readable_id(raw):
    """The id of a line that is JSON once its invalid UTF-8 bytes are replaced, else None."""
    try:
        obj = orjson.loads(raw.decode("utf-8", errors="replace"))
    except (orjson.JSONDecodeError, UnicodeDecodeError):
        return None
    return obj.get("id") if isinstance(obj, dict) else None


def read_brat(folder):
    """Yield a Record per ``NAME.txt`` in a BRAT folder (``NAME.ann`` optional), sorted by name."""
    folder = Path(folder)
    names = sorted(entry.name[:-4] for entry in os.scandir(folder) if entry.name.endswith(".txt"))
    for number, name in enumerate(names, 1):
        ann_path, labels_path = folder / f"{name}.ann", folder / f"{name}{LABELS_SUFFIX}"
        try:
            text = read_text(folder / f"{name}.txt")
            ann = read_text(ann_path) if ann_path.exists() else ""
            labels = orjson.loads(labels_path.read_bytes()) if labels_path.exists() else {}
            if not isinstance(labels, dict):
                raise ValueError(f"{labels_path.name} is not a JSON object")
        except (OSError, UnicodeDecodeError, ValueError) as error:
            yield Record(number, error=f"{name}: {error}", id=name)
            continue
        entities, relations, links, problems = read_annotation_lines(ann.split("\n"), text, f"{ann_path}: ")
        extra = {key: value for key, value in labels.items() if key != "relation_types"}
        document = Document(name, text, entities, relations, links, labels.get("relation_types"), extra, problems)
        yield Record(number, document, id=name, source=f"{name}\0{text}\0{ann}".encode())


def read_plain_text(path, number=1):
    path = Path(path)
    try:
        text = read_text(path).removeprefix("\ufeff")  # a byte order mark is no part of the text
        return Record(number, Document(path.stem, text), id=path.stem, source=text.encode())
    except (OSError, UnicodeDecodeError) as error:
        return Record(number, error=f"{path}: {error}", id=path.stem)


def read_records(source):
    """Any input: ``-`` or ``*.jsonl`` -> JSONL; a folder -> BRAT; another file -> plain text."""
    if source == "-" or hasattr(source, "read"):
        return read_jsonl(source)
    path = Path(source)
    if path.is_dir():
        return read_brat(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {source}")
    if is_jsonl(path):
        return read_jsonl(path)
    return iter([read_plain_text(path)])


def read_documents(source, on_problem=None, on_unreadable=None):
    """Only the readable documents of ``source``; problems go to ``on_problem`` (default: stderr),
    and each record that could not be read to ``on_unreadable`` too."""
    report = on_problem or (lambda message: print(f"nerelproc: {message}", file=sys.stderr))
    for record in read_records(source):
        if record.blank:
            continue
        if record.error is not None:
            report(f"{source}: document {record.line} (id {record.id}): {record.error}")
            if on_unreadable is not None:
                on_unreadable(record)
            continue
        for problem in record.document.problems:
            report(f"{source}: {problem}")
        yield record.document
