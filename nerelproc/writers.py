"""Writers: NEREL-style JSONL and BRAT folders, and atomic output files."""

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import orjson

from .document import format_entity_line


def entity_lines(document, renumber=False):
    """T-lines of a document; ``renumber`` gives T1, T2, ... in (start, end, type) order."""
    entities = document.entities
    if renumber:
        entities = sorted(entities, key=lambda e: (e.start, -e.end, e.type))
        return [format_entity_line(e, document.text, f"T{i}") for i, e in enumerate(entities, 1)]
    return [format_entity_line(e, document.text) for e in entities]


def document_to_json(document, renumber=False, relations=True, relation_scores=None):
    """The NEREL JSONL object of a document: its input fields plus annotations."""
    obj = {"id": document.id, "text": document.text, **document.extra}
    obj["entities"] = entity_lines(document, renumber)
    if relations:
        obj["relations"] = list(document.relations)
        obj["links"] = list(document.links)
    if document.relation_types is not None:
        obj["relation_types"] = sorted(set(document.relation_types))
    if relation_scores is not None:
        obj["relation_scores"] = relation_scores
    return obj


def dumps_line(obj):
    return orjson.dumps(obj) + b"\n"


def write_jsonl(documents, path, **options):
    with atomic_output(path) as file:
        for document in documents:
            file.write(dumps_line(document_to_json(document, **options)))


def write_brat_document(document, folder, renumber=False):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = str(document.id)
    if "/" in name or name in ("", ".", ".."):
        raise ValueError(f"id {name!r} cannot be a BRAT file name")
    lines = entity_lines(document, renumber) + list(document.relations) + list(document.links)
    with open(folder / f"{name}.txt", "w", encoding="utf-8", newline="") as file:
        file.write(document.text)
    with open(folder / f"{name}.ann", "w", encoding="utf-8", newline="") as file:
        file.write("".join(line + "\n" for line in lines))


@contextmanager
def atomic_output(path, mode="wb"):
    """Write to a temporary file beside ``path``, then rename it into place.

    A run killed half-way never leaves a file at ``path`` that looks complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
