"""Writers: NEREL-style JSONL and BRAT folders, and atomic output files."""

import glob
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import orjson

from nerelproc.io.document import format_entity_line, format_note_lines


def entity_lines(document, renumber=False):
    """T-lines of a document; ``renumber`` gives T1, T2, ... in (start, end, type) order."""
    entities = document.entities
    if renumber:
        entities = sorted(entities, key=lambda e: (e.start, -e.end, e.type))
        return [format_entity_line(e, document.text, f"T{i}") for i, e in enumerate(entities, 1)]
    return [format_entity_line(e, document.text) for e in entities]


def entity_ids(document, renumber=False):
    """``{id as read: id as written}`` of the entities ``entity_lines`` writes."""
    if not renumber:
        return {e.id: e.id for e in document.entities if e.id}
    entities = sorted(document.entities, key=lambda e: (e.start, -e.end, e.type))
    return {e.id: f"T{i}" for i, e in enumerate(entities, 1) if e.id}


def names_to_json(document, renumber=False):
    """The document's ``normal`` and ``groups`` under the ids its T-lines are written with:
    ``({T-id: normal form}, [{"name", "type", "mentions"}] or None)``; a form or a mention
    of an entity the document does not hold is left out."""
    ids = entity_ids(document, renumber)
    normal = {ids[key]: form for key, form in document.normal.items() if key in ids}
    groups = None
    if document.groups is not None:
        groups = [{**group, "mentions": [ids[m] for m in group["mentions"] if m in ids]}
                  for group in document.groups]
    return normal, groups


def note_lines(document, renumber=False):
    """The normal forms as BRAT ``AnnotatorNotes`` lines, in the order of the T-lines."""
    normal, _ = names_to_json(document, renumber)
    written = list(entity_ids(document, renumber).values())
    return format_note_lines(normal, sorted(written, key=_entity_number), document.links)


def _entity_number(entity_id):
    return (0, int(entity_id[1:])) if entity_id[1:].isdigit() else (1, entity_id)


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
    normal, groups = names_to_json(document, renumber)
    if normal:
        obj["normal"] = normal
    if groups is not None:
        obj["groups"] = groups
    return obj


def dumps_line(obj):
    return orjson.dumps(obj) + b"\n"


def write_jsonl(documents, path, **options):
    with atomic_output(path) as file:
        for document in documents:
            file.write(dumps_line(document_to_json(document, **options)))


LABELS_SUFFIX = ".labels.json"  # the reader's name for it too (readers.LABELS_SUFFIX)


def brat_name_problem(name):
    """Why ``name`` cannot be a BRAT file name (``NAME.txt``), or None if it can."""
    if name in ("", ".", ".."):
        return f"id {name!r} cannot be a file name"
    if any(c in name for c in "/\\\0") or any(ord(c) < 32 or ord(c) == 127 for c in name):
        return f"id {name!r} cannot be a file name (a slash, backslash or control character)"
    if len(name.encode("utf-8")) > 200:
        return "id too long for a file name (over 200 bytes)"
    return None


def write_brat_document(document, folder, renumber=False, labels=None):
    """``NAME.txt`` + ``NAME.ann`` of a document (and ``NAME.labels.json`` with ``labels``)."""
    lines = entity_lines(document, renumber) + list(document.relations) + list(document.links)
    lines += note_lines(document, renumber)
    write_brat_files(folder, str(document.id), document.text, lines, labels)


def write_brat_files(folder, name, text, lines, labels=None):
    """The BRAT files of one document, each written atomically; ``labels`` (a dict such as
    ``{"relation_types": [...]}``) goes to ``NAME.labels.json``, which BRAT has no place for."""
    problem = brat_name_problem(name)
    if problem:
        raise ValueError(problem)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_output(folder / f"{name}.txt", fsync=False) as file:
        file.write(text.encode("utf-8"))
    with atomic_output(folder / f"{name}.ann", fsync=False) as file:
        file.write("".join(line + "\n" for line in lines).encode("utf-8"))
    if labels is not None:
        with atomic_output(folder / f"{name}{LABELS_SUFFIX}", fsync=False) as file:
            file.write(orjson.dumps(labels) + b"\n")


def remove_stale_temporaries(path):
    """Delete what ``atomic_output(path)`` left behind when a run was killed mid-write.
    Only the run that holds ``path`` calls it (nobody else may be writing it then)."""
    path = Path(path)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        stale.unlink(missing_ok=True)


@contextmanager
def atomic_output(path, mode="wb", fsync=True):
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
            if fsync:
                os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
