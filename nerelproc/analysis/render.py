"""Review pages: annotated documents, optionally against gold, as one self-contained HTML file.

``render_page(pairs)`` turns ``(document, gold_or_None)`` pairs into an HTML string. The
page is the Jinja2 template ``templates/review.html`` (autoescaped; its CSS and JS are
inlined from ``review.css`` and ``review.js``), filled from a view model built here.

Layout: each document's text becomes a tree of ``Node``\\ s, one per entity fragment.
A fragment inside another is a child element of the other, so nested entities are
drawn inside their parents. Fragments are placed by start, then longest first; of two
identical ranges the one first in (type, verdict) order is the outer one. A fragment
that crosses the one it starts in (overlapping, not nested) is cut where that one ends,
and the rest is placed on its own, like the fragments of a discontinuous entity.

The page contract, for scripts and tests (one element per fragment)::

    <span class="ent" data-entity="3.12" data-type="PERSON" data-start="17" data-end="28"
          data-verdict="tp">Жолт Хорняк</span>

``data-start``/``data-end`` are the exact ``str`` offsets of the text inside the element
(its ``textContent``); all fragments of one entity share ``data-entity`` (unique on the
page), so a document's entity count is its number of distinct ``data-entity`` values.
Each element's ``title`` is the entity's normal form, and the mentions of one entity
(a group of ``nerelproc.names`` with two or more mentions) share ``data-group="3.g2"``:
hovering one lights them all. The forms and groups are the document's own (JSONL
``normal``/``groups``, BRAT ``AnnotatorNotes``), or made here when it has none.
With gold, ``data-verdict`` is ``tp`` (predicted and in gold), ``fp`` (predicted only)
or ``fn`` (gold only, missed), compared as ``nerelproc score`` does: exact
(type, spans), each side a set per document.

Relations are rows under the text, one per distinct predicted relation (and, with gold,
one per missed gold relation), in text order of their head, then tail::

    <tr class="rel" data-label="WORKS_AS" data-head="3.12" data-tail="3.4" data-verdict="tp">

``data-head``/``data-tail`` are the ``data-entity`` of the two arguments as drawn in the
text (hovering the row highlights them). Verdicts are ``nerelproc score``'s strict
relation match (label and both arguments' type and spans). R-lines whose arguments are
not T-lines of the document are counted under the rows, not drawn; with ``types``, a
relation is shown (and scored) only when both its arguments' types are kept.
"""

import heapq
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone

import jinja2
import markupsafe

from nerelproc.io.schema import entity_types
from nerelproc.evaluation.score import entity_keys, prf, resolve_relations
from nerelproc.names import annotate_names

VERDICTS = {"tp": "correct", "fp": "spurious (predicted only)", "fn": "missed (gold only)"}
MAX_HEIGHT = 8  # underline offsets beyond this share the last one (CSS classes h0..h8)


@dataclass(frozen=True)
class Mark:
    """One entity as drawn: a page-wide id, its type, spans and verdict (None without gold)."""

    id: str
    type: str
    spans: tuple
    verdict: str | None = None
    normal: str | None = None  # the normal form (shown on hover)
    group: str | None = None  # page-wide id of its group of mentions, when the group has two or more


@dataclass
class Node:
    """A range of the text: the whole text (``mark`` None) or one entity fragment."""

    start: int
    end: int
    mark: Mark | None = None
    children: list = field(default_factory=list)
    pieces: list = field(default_factory=list)  # text strings and child nodes, in text order
    height: int = 0  # levels of fragments below this one: how far down its underline goes
    first: bool = False  # the entity's first fragment: carries the verdict marker
    last: bool = False  # the entity's last fragment: carries the type label


@dataclass
class Chip:
    """A document label (relation type), its verdict against gold and its probability."""

    label: str
    verdict: str | None = None
    score: float | None = None


@dataclass
class RelationRow:
    """A relation as shown: its label, both arguments (text, type, drawn mark id), verdict, probability."""

    label: str
    head: str
    head_type: str
    head_mark: str
    tail: str
    tail_type: str
    tail_mark: str
    verdict: str | None = None
    score: float | None = None


@dataclass
class DocumentView:
    number: int  # 1-based position on the page
    id: str
    text: str
    root: Node
    marks: list
    chips: list
    ner: dict | None = None  # tp, fp, fn, p, r, f1 (with gold)
    cls: dict | None = None
    note: str | None = None  # why a document is shown without verdicts
    relations: list = field(default_factory=list)  # RelationRow, in text order
    re: dict | None = None  # tp, fp, fn, p, r, f1 (with gold)
    unresolved: int = 0  # predicted R-lines not shown: an argument is not an entity of the document


def layout(text, marks):
    """The fragment tree of ``text`` for ``marks`` (see the module docstring for the rules)."""
    order = sorted(range(len(marks)), key=lambda i: (marks[i].type, marks[i].verdict or ""))
    rank = {index: position for position, index in enumerate(order)}
    heap = [(start, -end, rank[i], i) for i, mark in enumerate(marks) for start, end in mark.spans]
    heapq.heapify(heap)
    root = Node(0, len(text))
    stack = [root]
    fragments = {}  # mark index -> its nodes, in text order
    while heap:
        start, negative_end, position, index = heapq.heappop(heap)
        end = -negative_end
        while stack[-1] is not root and stack[-1].end <= start:
            stack.pop()
        parent = stack[-1]
        if end > parent.end:  # crossing: keep the part inside, place the rest later
            heapq.heappush(heap, (parent.end, -end, position, index))
            end = parent.end
        node = Node(start, end, marks[index])
        parent.children.append(node)
        stack.append(node)
        fragments.setdefault(index, []).append(node)
    for nodes in fragments.values():
        nodes[0].first = nodes[-1].last = True
    _finish(text, root)
    return root


def _finish(text, node):
    """Fill ``pieces`` and ``height`` bottom-up (recursion depth = nesting depth)."""
    at, height = node.start, -1
    for child in node.children:
        if child.start > at:
            node.pieces.append(text[at : child.start])
        node.pieces.append(child)
        height = max(height, _finish(text, child))
        at = child.end
    if node.end > at:
        node.pieces.append(text[at : node.end])
    node.height = min(height + 1, MAX_HEIGHT)
    return node.height


def compare(pred, gold, keep=None):
    """Marks of ``pred`` (verdicts against ``gold`` if given) and the NER counts.

    Every predicted entity is drawn; a gold entity is added (``fn``) when its exact key
    is not predicted, once per distinct key. ``keep`` filters entity types.
    """
    keep = keep or (lambda entity_type: True)
    predicted = [entity for entity in pred.entities if keep(entity.type)]
    if gold is None:
        return [(e.type, e.spans, None) for e in predicted], None
    pred_keys = {key for key in entity_keys(pred) if keep(key[0])}
    gold_keys = {key for key in entity_keys(gold) if keep(key[0])}
    marks = [(e.type, e.spans, "tp" if e.key in gold_keys else "fp") for e in predicted]
    missed = set()
    for entity in gold.entities:
        if entity.key in gold_keys - pred_keys and entity.key not in missed:
            missed.add(entity.key)
            marks.append((entity.type, entity.spans, "fn"))
    counts = {"tp": len(pred_keys & gold_keys), "fp": len(pred_keys - gold_keys), "fn": len(gold_keys - pred_keys)}
    return marks, {**counts, **prf(counts["tp"], counts["fp"], counts["fn"])}


def label_chips(pred, gold):
    """Chips for the predicted labels (and, with gold, the missed ones), and the CLS counts."""
    scores = pred.extra.get("relation_scores")
    scores = scores if isinstance(scores, dict) else {}
    predicted = set(pred.relation_labels())

    def chip(label, verdict=None):
        score = scores.get(label)
        return Chip(label, verdict, float(score) if isinstance(score, (int, float)) else None)

    if gold is None:
        return [chip(label) for label in sorted(predicted)], None
    expected = set(gold.relation_labels())
    chips = [chip(label, _verdict(label in predicted, label in expected)) for label in sorted(predicted | expected)]
    counts = {"tp": len(predicted & expected), "fp": len(predicted - expected), "fn": len(expected - predicted)}
    return chips, {**counts, **prf(counts["tp"], counts["fp"], counts["fn"])}


def relation_rows(pred, gold, marks, keep=None):
    """Rows for the predicted relations (with gold: verdicts and the missed ones), the RE
    counts, and how many predicted R-lines have an argument that is not a T-line.

    Each distinct relation key is one row, as in scoring; ``marks`` (as drawn) give each
    argument's mark id: every argument is drawn, predicted or missed.
    """
    keep = keep or (lambda entity_type: True)
    drawn = {}
    for mark in marks:
        drawn.setdefault((mark.type, tuple(sorted(mark.spans))), mark.id)
    probabilities = pred.extra.get("relation_probabilities")
    probabilities = probabilities if isinstance(probabilities, dict) else {}

    def shown(document):
        relations, unresolved = resolve_relations(document)
        return [r for r in relations if keep(r.head.type) and keep(r.tail.type)], len(unresolved)

    def row(relation, text, verdict=None):
        score = probabilities.get(relation.id) if verdict != "fn" else None
        return RelationRow(relation.label, relation.head.surface(text), relation.head.type, drawn[relation.head.key],
                           relation.tail.surface(text), relation.tail.type, drawn[relation.tail.key], verdict,
                           float(score) if isinstance(score, (int, float)) else None)

    predicted, unresolved = shown(pred)
    pred_keys = {relation.key for relation in predicted}
    gold_relations = shown(gold)[0] if gold is not None else []
    gold_keys = {relation.key for relation in gold_relations}
    rows, seen = [], set()
    for relation in predicted:
        if relation.key not in seen:
            seen.add(relation.key)
            verdict = None if gold is None else "tp" if relation.key in gold_keys else "fp"
            rows.append((relation, row(relation, pred.text, verdict)))
    for relation in gold_relations:
        if relation.key not in seen:
            seen.add(relation.key)
            rows.append((relation, row(relation, gold.text, "fn")))
    rows.sort(key=lambda pair: (pair[0].head.start, pair[0].tail.start, pair[0].label))
    rows = [view for _, view in rows]
    if gold is None:
        return rows, None, unresolved
    counts = {"tp": len(pred_keys & gold_keys), "fp": len(pred_keys - gold_keys), "fn": len(gold_keys - pred_keys)}
    return rows, {**counts, **prf(counts["tp"], counts["fp"], counts["fn"])}, unresolved


def _verdict(predicted, expected):
    return "tp" if predicted and expected else "fp" if predicted else "fn"


def entity_names(document, prefix):
    """``{entity key: (normal form, group id or None)}``: the document's own ``normal`` and
    ``groups`` when it has normal forms, else made by ``annotate_names``; a group of two or
    more mentions gets the id ``{prefix}{n}``."""
    entities = document.entities
    ids = [entity.id or f"T{n}" for n, entity in enumerate(entities, 1)]
    normal, groups = document.normal, document.groups
    if not normal and entities:
        normal, groups = annotate_names(document.text, entities)
    group_of = {}
    for n, group in enumerate(groups or [], 1):
        if len(group["mentions"]) > 1:
            group_of.update((mention, f"{prefix}{n}") for mention in group["mentions"])
    names = {}
    for entity, entity_id in zip(entities, ids):
        names.setdefault(entity.key, (normal.get(entity_id), group_of.get(entity_id)))
    return names


def document_view(number, pred, gold=None, keep=None, note=None):
    marks, ner = compare(pred, gold, keep)
    chips, cls = label_chips(pred, gold)
    names = entity_names(pred, f"{number}.g")
    if gold is not None and any(verdict == "fn" for _, _, verdict in marks):
        gold_names = entity_names(gold, f"{number}.G")  # the missed ones: named as gold names them
        names = {**gold_names, **names}
    marks = [Mark(f"{number}.{i}", *mark, *names.get((mark[0], tuple(sorted(mark[1]))), (None, None)))
             for i, mark in enumerate(marks, 1)]
    relations, re_counts, unresolved = relation_rows(pred, gold, marks, keep)
    return DocumentView(number, str(pred.id), pred.text, layout(pred.text, marks), marks, chips, ner, cls, note,
                        relations=relations, re=re_counts, unresolved=unresolved)


def pair_with_gold(documents, gold_documents, warn):
    """``(document, gold)`` pairs in input order, gold matched by ``str(id)``; gold None if absent.

    A document without gold, or whose gold text differs, is shown without verdicts.
    """
    gold = {}
    for document in gold_documents:
        gold.setdefault(str(document.id), document)
    pairs, missing = [], []
    for document in documents:
        match = gold.get(str(document.id))
        if match is None:
            missing.append(str(document.id))
        elif match.text != document.text:
            warn(f"document {document.id}: its text differs from the gold text; shown without verdicts")
            match = None
        pairs.append((document, match))
    if missing:
        shown = ", ".join(missing[:10]) + (", ..." if len(missing) > 10 else "")
        warn(f"{len(missing)} document(s) have no gold document, shown without verdicts: {shown}")
    return pairs


def type_colours(names):
    """A stable colour per type: NEREL types in schema order, others after them by name."""
    known = {name: i for i, name in enumerate(entity_types())}
    ordered = sorted(names, key=lambda name: (known.get(name, len(known)), name))
    slots = {name: known.get(name, len(known) + j) for j, name in enumerate(ordered)}
    # golden-angle hues keep neighbouring types apart; two lightness bands double the palette
    return {name: f"hsl({slots[name] * 137.508 % 360:.0f} 70% {38 if slots[name] % 2 else 46}%)" for name in ordered}


def _total(views, part):
    entries = [getattr(view, part) for view in views if getattr(view, part) is not None]
    if not entries:
        return None
    counts = {name: sum(entry[name] for entry in entries) for name in ("tp", "fp", "fn")}
    return {**counts, **prf(counts["tp"], counts["fp"], counts["fn"]), "documents": len(entries)}


def keep_cr(text):
    """Escaped text whose CRs survive: the HTML parser turns a raw CR into LF, a reference it keeps."""
    return markupsafe.escape(text).replace("\r", markupsafe.Markup("&#13;"))


def _environment():
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("nerelproc.analysis", "templates"),
        autoescape=True,  # every {{ value }} is HTML-escaped by Jinja; nothing is escaped here
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["keep_cr"] = keep_cr
    return environment


def render_page(pairs, title="nerelproc review", source=None, types=None):
    """The HTML page for ``(document, gold_or_None)`` pairs; ``types`` limits entity types."""
    keep = (lambda entity_type: entity_type in types) if types else None
    views = []
    for number, (pred, gold) in enumerate(pairs, 1):
        views.append(document_view(number, pred, gold, keep))
    present = sorted({mark.type for view in views for mark in view.marks})
    colours = type_colours(present)
    type_counts = {name: 0 for name in colours}
    verdict_counts = {name: 0 for name in VERDICTS}
    for view in views:
        for mark in view.marks:
            type_counts[mark.type] += 1
            if mark.verdict:
                verdict_counts[mark.verdict] += 1
    template = _environment().get_template("review.html")
    return template.render(
        title=title,
        source=source,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        documents=views,
        with_gold=any(view.ner is not None for view in views),
        with_relations=any(view.relations or view.unresolved for view in views),
        with_probabilities=any(row.score is not None for view in views for row in view.relations),
        types=[{"name": name, "colour": colour, "count": type_counts[name]} for name, colour in colours.items()],
        type_class={name: f"t{i}" for i, name in enumerate(colours)},
        verdicts=[{"name": name, "meaning": meaning, "count": verdict_counts[name]} for name, meaning in VERDICTS.items()],
        only_types=sorted(types) if types else None,
        ner_total=_total(views, "ner"),
        cls_total=_total(views, "cls"),
        re_total=_total(views, "re"),
        entity_total=sum(len(view.marks) for view in views),
        max_height=MAX_HEIGHT,
    )


def default_title(path):
    return f"nerelproc review: {os.path.basename(os.path.normpath(str(path)))}"
