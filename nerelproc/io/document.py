"""Documents and entities, and the BRAT line formats they are written in.

An entity is a type and one or more character spans (``start``, ``end`` exclusive,
Python ``str`` indices into the exact original text). Discontinuous BRAT entities
(``TYPE a b;c d``) keep their spans in file order; their extent is from the
smallest start to the largest end (the release lists some fragments out of order).
"""

from dataclasses import dataclass, field


class AnnotationError(ValueError):
    """A BRAT line that cannot be read, or an entity that does not fit its text."""


@dataclass(frozen=True)
class Entity:
    type: str
    spans: tuple  # ((start, end), ...) in file order
    id: str | None = None

    @property
    def start(self):
        return min(start for start, _ in self.spans)

    @property
    def end(self):
        return max(end for _, end in self.spans)

    @property
    def key(self):
        """What exact-match scoring compares: the type and the sorted span list."""
        return self.type, tuple(sorted(self.spans))

    def surface(self, text):
        # BRAT joins the fragments of a discontinuous entity with one space.
        return " ".join(text[start:end] for start, end in self.spans)


@dataclass
class Document:
    id: str
    text: str
    entities: list = field(default_factory=list)
    relations: list = field(default_factory=list)  # R-lines, verbatim
    links: list = field(default_factory=list)  # N-lines, verbatim
    relation_types: list | None = None  # explicit document labels, if the input had them
    extra: dict = field(default_factory=dict)  # any other input field, passed through
    problems: list = field(default_factory=list)  # what was wrong with the input, as text
    normal: dict = field(default_factory=dict)  # {T-id: normal form} (nerelproc.names)
    groups: list | None = None  # [{"name", "type", "mentions": [T-ids]}], if known

    def __post_init__(self):
        # BRAT keeps normal forms as AnnotatorNotes on T-lines: they come in among the links
        self.links, notes = split_entity_notes(self.links)
        self.normal = {**notes, **self.normal}

    def relation_labels(self):
        """The document's CLS labels: ``relation_types`` if given, else from the R-lines."""
        if self.relation_types is not None:
            return sorted(set(self.relation_types))
        return sorted({relation_type(line) for line in self.relations})


def parse_spans(text):
    """``"12 20;25 30"`` -> ``((12, 20), (25, 30))``."""
    spans = []
    for fragment in text.split(";"):
        parts = fragment.split()
        if len(parts) != 2:
            raise AnnotationError(f"bad span {fragment!r}")
        try:
            start, end = int(parts[0]), int(parts[1])
        except ValueError:
            raise AnnotationError(f"bad span {fragment!r}") from None
        if start < 0 or end <= start:
            raise AnnotationError(f"empty or negative span {fragment!r}")
        spans.append((start, end))
    return tuple(spans)


def parse_entity_line(line, text=None):
    """Read ``T12\\tTYPE start end\\tsurface``; with ``text``, check offsets and surface."""
    parts = line.rstrip("\r\n").split("\t")
    if len(parts) != 3 or not parts[0].startswith("T"):
        raise AnnotationError(f"not a T-line: {line[:60]!r}")
    entity_id, body, surface = parts
    entity_type, _, span_text = body.partition(" ")
    if not entity_type or not span_text:
        raise AnnotationError(f"no type or span in {line[:60]!r}")
    entity = Entity(entity_type, parse_spans(span_text), entity_id)
    if text is not None:
        if entity.end > len(text):
            raise AnnotationError(f"{entity_id}: span {span_text} outside the text ({len(text)} chars)")
        if entity.surface(text) != surface:
            raise AnnotationError(
                f"{entity_id}: surface {surface!r} does not match text {entity.surface(text)!r}"
            )
    return entity


def format_entity_line(entity, text, entity_id=None):
    spans = ";".join(f"{start} {end}" for start, end in entity.spans)
    return f"{entity_id or entity.id}\t{entity.type} {spans}\t{entity.surface(text)}"


NOTE = "AnnotatorNotes"


def split_entity_notes(lines):
    """``(other lines, {T-id: note})``: BRAT ``#1\tAnnotatorNotes T4\tВладимир Путин`` lines
    on entities taken out of ``lines`` (notes on relations and other lines stay)."""
    kept, notes = [], {}
    for line in lines:
        parts = line.rstrip("\r\n").split("\t")
        if len(parts) == 3 and parts[0].startswith("#"):
            kind, _, target = parts[1].partition(" ")
            if kind == NOTE and target.startswith("T") and target[1:].isdigit():
                notes[target] = parts[2]
                continue
        kept.append(line)
    return kept, notes


def format_note_lines(normal, ids, taken=()):
    """``#n\tAnnotatorNotes T4\tform`` per entity id in ``ids`` that has a normal form,
    numbered after the ``#`` lines already ``taken``."""
    used = [int(line[1:].split("\t", 1)[0]) for line in taken
            if line.startswith("#") and line[1:].split("\t", 1)[0].isdigit()]
    number = max(used, default=0)
    lines = []
    for entity_id in ids:
        form = normal.get(entity_id)
        if form is None:
            continue
        number += 1
        lines.append(f"#{number}\t{NOTE} {entity_id}\t{' '.join(str(form).split())}")
    return lines


def names_from_json(obj):
    """``(normal, groups, problems)`` from a JSONL object's ``normal`` and ``groups`` fields;
    a field of the wrong shape is left out and named among the problems."""
    normal, groups, problems = {}, None, []
    value = obj.get("normal")
    if value is not None:
        if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            normal = dict(value)
        else:
            problems.append("field 'normal' is not an object of strings (T-id -> normal form); ignored")
    value = obj.get("groups")
    if value is not None:
        if isinstance(value, list) and all(_is_group(group) for group in value):
            groups = [dict(group) for group in value]
        else:
            problems.append("field 'groups' is not a list of {name, type, mentions}; ignored")
    return normal, groups, problems


def _is_group(group):
    return (isinstance(group, dict) and isinstance(group.get("name"), str) and isinstance(group.get("type"), str)
            and isinstance(group.get("mentions"), list) and all(isinstance(m, str) for m in group["mentions"]))


def relation_type(line):
    """``R5\\tWORKPLACE Arg1:T10 Arg2:T9`` -> ``WORKPLACE``."""
    parts = line.split("\t")
    if len(parts) < 2 or not parts[0].startswith("R") or not parts[1].strip():
        raise AnnotationError(f"not an R-line: {line[:60]!r}")
    return parts[1].split()[0]


def read_annotation_lines(lines, text, where="", unit="line"):
    """Split BRAT lines into entities, relations and links; bad lines become problems.

    Returns ``(entities, relations, links, problems)``. A malformed line is reported
    with its number and reason (``"{where}{unit} {number}: {reason}"``), and the rest
    is still read.
    """
    entities, relations, links, problems = [], [], [], []
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        try:
            kind = line[:1]
            if kind == "T":
                entities.append(parse_entity_line(line, text))
            elif kind == "R":
                relation_type(line)
                relations.append(line)
            elif kind in "NA#*E":
                links.append(line)
            else:
                raise AnnotationError(f"not an annotation line: {line[:60]!r}")
        except AnnotationError as error:
            problems.append(f"{where}{unit} {number}: {error}")
    return entities, relations, links, problems
