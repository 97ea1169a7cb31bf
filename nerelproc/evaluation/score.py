"""Scoring predictions against gold NEREL documents: NER (nested, flat, coarse), CLS and
relations (RE).

Pure functions, no CLI. ``score_documents(pred_docs, gold_docs)`` returns one dict
(the ``nerelproc score --json`` object); ``format_report(scores)`` renders it as text.

Documents are matched by ``str(id)``. A gold document without a prediction counts as
an empty prediction (no entities, no labels); a predicted document whose id is not in
gold is ignored. Both are counted in ``docs`` and reported through ``warn``.

Figures
-------
``ner.micro`` / ``ner.per_type``
    Nested NER, exact match of ``Entity.key`` = (type, sorted character spans), NEREL's
    own metric. A discontinuous entity matches only with the same full span list.
    Each side is a *set* per document: duplicated identical entities count once.
``ner.flat``
    A flat (one-layer) view scored with seqeval, IOB2, ``mode="strict"``, micro.
    See :func:`outermost` for which entities survive and :func:`flat_tags` for the
    word tokenisation (regex ``\\w+|[^\\w\\s]``) and how words get their tags.
``ner.coarse``
    Types mapped to PER/LOC/ORG by ``schema.COARSE``; all other types dropped; exact
    match of (coarse type, spans), nesting kept; micro and per type.
``cls``
    Multi-label document classification over the 49 relation types of
    ``schema.relation_types()``. Gold and predicted labels are
    ``Document.relation_labels()`` (``relation_types`` when the document has it,
    else the types of its R-lines). Labels outside the schema are ignored (warned).
    ``micro`` pools all (document, label) decisions; ``macro`` is the unweighted mean
    over all 49 labels; ``samples`` is the mean over gold documents of per-document
    P/R/F1; ``per_label`` has every label.
``re``
    Relations, strict: an R-line matches when its label and both arguments match, an
    argument being its entity's ``Entity.key`` (type, sorted spans), Arg1 and Arg2 in
    order. Each side is a *set* per document, so entity and relation ids do not matter
    and duplicated R-lines count once. An R-line whose Arg1 or Arg2 is not a T-line of
    its document (another R-line, an event, a missing id) cannot be compared: it is
    counted in ``unresolved`` (gold and predicted, R-lines) and scored on neither side.
    A prediction without R-lines predicts no relations; ``predicted_relations`` is
    False when no prediction holds any. ``micro`` and ``per_label`` (the 49 schema
    labels, and any other label that occurs) as for NER.

Zero division: scikit-learn's ``zero_division=1.0`` convention everywhere. Precision
with no predictions is 1.0, recall with no gold is 1.0, and F1 is
``2*tp / (2*tp + fp + fn)``, which is 1.0 only when there is nothing to find and
nothing was predicted (0.0 otherwise). So a label never in gold and never predicted
counts as perfect in the macro average; a label with gold but no prediction has
P=1, R=0, F1=0. (This matches ``sklearn.metrics.precision_recall_fscore_support``
with ``zero_division=1.0``, and seqeval's ``zero_division=1`` for the flat figure.)
"""

import bisect
import re
import sys
from dataclasses import dataclass

import numpy as np

from nerelproc.io.document import Entity
from nerelproc.io.schema import COARSE, entity_types, relation_types

WORD_RE = re.compile(r"\w+|[^\w\s]")
ZERO_DIVISION = 1.0


# ---------------------------------------------------------------------------- basics


def f1_score(tp, fp, fn):
    """F1 = 2tp / (2tp + fp + fn) from counts (numbers or arrays, elementwise), with the
    ``zero_division=1.0`` convention. The project's one F1: scoring, CLS threshold tuning
    and the experiment report all call it, so tuning optimises what is reported."""
    tp, fp, fn = (np.asarray(x, dtype=float) for x in (tp, fp, fn))
    denominator = 2 * tp + fp + fn
    return np.where(denominator > 0, 2 * tp / np.where(denominator > 0, denominator, 1), ZERO_DIVISION)


def prf(tp, fp, fn):
    """Precision, recall and F1 from counts, with the ``zero_division=1.0`` convention."""
    p = tp / (tp + fp) if tp + fp else ZERO_DIVISION
    r = tp / (tp + fn) if tp + fn else ZERO_DIVISION
    return {"p": float(p), "r": float(r), "f1": float(f1_score(tp, fp, fn))}


def _default_warn(message):
    print(f"nerelproc score: warning: {message}", file=sys.stderr)


def match_documents(pred_docs, gold_docs, warn=None):
    """Pair gold documents with predictions by ``str(id)``.

    Returns ``(pairs, info)``: ``pairs`` is a list of ``(pred_or_None, gold)`` in gold
    order, ``info`` is ``{"matched", "missing", "extra"}`` (counts). Duplicated ids on
    one side keep the first document (warned).
    """
    warn = warn or _default_warn
    gold = _index(gold_docs, "gold", warn)
    pred = _index(pred_docs, "prediction", warn)
    missing = [key for key in gold if key not in pred]
    extra = [key for key in pred if key not in gold]
    if missing:
        warn(f"{len(missing)} gold document(s) have no prediction, scored as empty: {_show(missing)}")
    if extra:
        warn(f"{len(extra)} predicted document(s) are not in gold, ignored: {_show(extra)}")
    pairs = []
    for key, gold_doc in gold.items():
        pred_doc = pred.get(key)
        if pred_doc is not None and pred_doc.text != gold_doc.text:
            warn(f"document {key}: predicted text differs from the gold text")
        pairs.append((pred_doc, gold_doc))
    info = {"matched": len(gold) - len(missing), "missing": len(missing), "extra": len(extra)}
    return pairs, info


def _index(docs, side, warn):
    index = {}
    for doc in docs:
        key = str(doc.id)
        if key in index:
            warn(f"duplicated {side} id {key}: keeping the first document")
            continue
        index[key] = doc
    return index


def _show(ids, limit=10):
    shown = ", ".join(ids[:limit])
    return shown + (f", ... ({len(ids) - limit} more)" if len(ids) > limit else "")


# ------------------------------------------------------------------------------- NER


def _set_scores(pairs, keys_of, types):
    """Micro and per-type P/R/F1 over per-document sets of ``(type, ...)`` keys."""
    counts = {t: [0, 0, 0] for t in types}  # tp, fp, fn
    for pred_doc, gold_doc in pairs:
        gold = keys_of(gold_doc)
        pred = keys_of(pred_doc) if pred_doc is not None else set()
        for key in gold & pred:
            counts.setdefault(key[0], [0, 0, 0])[0] += 1
        for key in pred - gold:
            counts.setdefault(key[0], [0, 0, 0])[1] += 1
        for key in gold - pred:
            counts.setdefault(key[0], [0, 0, 0])[2] += 1
    per_type = {t: {**prf(*c), "support": c[0] + c[2]} for t, c in counts.items()}
    tp, fp, fn = (sum(c[i] for c in counts.values()) for i in range(3))
    return {**prf(tp, fp, fn), "support": tp + fn}, per_type


def entity_keys(doc):
    """The set of exact-match keys (type, sorted spans) of a document's entities."""
    return {entity.key for entity in doc.entities}


def coarse_keys(doc):
    """Exact-match keys of the PER/LOC/ORG view: other types dropped, nesting kept."""
    return {(COARSE[e.type], tuple(sorted(e.spans))) for e in doc.entities if e.type in COARSE}


def outermost(entities):
    """The entities a single flat layer keeps: no two kept extents overlap.

    Each entity is taken as its extent ``[start, end)`` (a discontinuous entity covers
    its gaps). Entities are visited by start, then longest first, then type name;
    one is kept when it starts at or after the end of the last kept one. So an entity
    inside another one's extent is dropped, of two overlapping-but-not-nested ones the
    one that starts earlier is kept, and of identical extents the type first in
    alphabetical order.
    """
    kept, last_end = [], -1
    for entity in sorted(entities, key=lambda e: (e.start, -e.end, e.type)):
        if entity.start >= last_end:
            kept.append(entity)
            last_end = entity.end
    return kept


def words(text):
    """Word tokens ``(start, end)`` of ``text``: regex ``\\w+|[^\\w\\s]``."""
    return [match.span() for match in WORD_RE.finditer(text)]


def flat_tags(text, entities, tokens=None):
    """IOB2 tags of the word tokens of ``text`` for the outermost ``entities``.

    A word belongs to an entity when its characters overlap the entity's extent at
    all (a partially covered word counts as inside); the first such word gets
    ``B-TYPE``, the following ones ``I-TYPE``. A word overlapping two kept entities
    goes to the earlier one.
    """
    tokens = words(text) if tokens is None else tokens
    tags = ["O"] * len(tokens)
    starts = [start for start, _ in tokens]
    for entity in outermost(entities):
        # first token whose end is after entity.start
        i = max(bisect.bisect_right(starts, entity.start) - 1, 0)
        first = True
        while i < len(tokens) and tokens[i][0] < entity.end:
            if tokens[i][1] > entity.start and tags[i] == "O":
                tags[i] = ("B-" if first else "I-") + entity.type
                first = False
            i += 1
    return tags


def flat_scores(pairs):
    """seqeval micro P/R/F1 (IOB2, strict) of the flat views; tokens from the gold text."""
    from seqeval.metrics.v1 import precision_recall_fscore_support
    from seqeval.scheme import IOB2

    y_true, y_pred = [], []
    for pred_doc, gold_doc in pairs:
        tokens = words(gold_doc.text)
        if not tokens:
            continue
        y_true.append(flat_tags(gold_doc.text, gold_doc.entities, tokens))
        pred_entities = pred_doc.entities if pred_doc is not None else []
        y_pred.append(flat_tags(gold_doc.text, pred_entities, tokens))
    support = sum(tag.startswith("B-") for tags in y_true for tag in tags)
    predicted = sum(tag.startswith("B-") for tags in y_pred for tag in tags)
    if not support and not predicted:
        return {**prf(0, 0, 0), "support": 0}
    p, r, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, average="micro", zero_division=ZERO_DIVISION, scheme=IOB2
    )
    return {"p": float(p), "r": float(r), "f1": float(f1), "support": int(support)}


# ------------------------------------------------------------------------------- CLS


def label_matrix(label_sets, labels):
    """Boolean matrix (documents x labels); labels outside ``labels`` are ignored."""
    column = {label: j for j, label in enumerate(labels)}
    matrix = np.zeros((len(label_sets), len(labels)), dtype=bool)
    for i, label_set in enumerate(label_sets):
        for label in label_set:
            j = column.get(label)
            if j is not None:
                matrix[i, j] = True
    return matrix


def multilabel_scores(y_true, y_pred, labels):
    """Micro, macro, samples and per-label P/R/F1 of boolean matrices (docs x labels)."""
    y_true = np.asarray(y_true, dtype=bool)
    y_pred = np.asarray(y_pred, dtype=bool)
    tp = (y_true & y_pred).sum(axis=0)
    fp = (~y_true & y_pred).sum(axis=0)
    fn = (y_true & ~y_pred).sum(axis=0)
    per_label = {
        label: {**prf(int(tp[j]), int(fp[j]), int(fn[j])), "support": int(tp[j] + fn[j])}
        for j, label in enumerate(labels)
    }
    micro = {**prf(int(tp.sum()), int(fp.sum()), int(fn.sum())), "support": int(y_true.sum())}
    macro = {
        name: float(np.mean([entry[name] for entry in per_label.values()])) if labels else ZERO_DIVISION
        for name in ("p", "r", "f1")
    }
    macro["support"] = micro["support"]
    stp = (y_true & y_pred).sum(axis=1)
    sfp = (~y_true & y_pred).sum(axis=1)
    sfn = (y_true & ~y_pred).sum(axis=1)
    rows = [prf(int(a), int(b), int(c)) for a, b, c in zip(stp, sfp, sfn)]
    samples = {
        name: float(np.mean([row[name] for row in rows])) if rows else ZERO_DIVISION
        for name in ("p", "r", "f1")
    }
    samples["support"] = len(rows)  # here: the number of documents
    return {"micro": micro, "macro": macro, "samples": samples, "per_label": per_label}


def cls_scores(pairs, warn=None):
    warn = warn or _default_warn
    labels = relation_types()
    gold_sets = [set(gold.relation_labels()) for _, gold in pairs]
    pred_sets = [set(pred.relation_labels()) if pred is not None else set() for pred, _ in pairs]
    unknown = set().union(*gold_sets, *pred_sets) - set(labels)
    if unknown:
        warn(f"relation types outside the schema are ignored: {', '.join(sorted(unknown))}")
    return multilabel_scores(label_matrix(gold_sets, labels), label_matrix(pred_sets, labels), labels)


# ------------------------------------------------------------------------- relations


@dataclass(frozen=True)
class ResolvedRelation:
    """An R-line whose two arguments are entities of its document."""

    id: str  # the R-line's id, e.g. "R3"
    label: str
    head: Entity  # Arg1
    tail: Entity  # Arg2

    @property
    def key(self):
        """What strict relation scoring compares: the label and both arguments' keys."""
        return self.label, self.head.key, self.tail.key


def resolve_relations(doc):
    """The document's R-lines with their arguments looked up among its T-lines.

    Returns ``(relations, unresolved)``: ``ResolvedRelation``\\ s in R-line order, and
    the R-lines (verbatim) that are not exactly an ``Arg1`` and an ``Arg2`` naming
    T-lines of the document.
    """
    entities = {}
    for entity in doc.entities:
        if entity.id is not None:
            entities.setdefault(entity.id, entity)  # a repeated T-id: the first one
    relations, unresolved = [], []
    for line in doc.relations:
        fields = line.split("\t")
        body = fields[1].split() if len(fields) > 1 else []
        arguments = dict(part.split(":", 1) for part in body[1:] if ":" in part)
        head, tail = entities.get(arguments.get("Arg1")), entities.get(arguments.get("Arg2"))
        if not body or len(body) != 3 or head is None or tail is None:
            unresolved.append(line)
            continue
        relations.append(ResolvedRelation(fields[0], body[0], head, tail))
    return relations, unresolved


def relation_keys(doc):
    """The set of strict-match keys of a document's resolvable R-lines, and how many are not."""
    relations, unresolved = resolve_relations(doc)
    return {relation.key for relation in relations}, len(unresolved)


def relation_scores(pairs):
    """Strict relation P/R/F1 (micro, per label) and the unresolved R-line counts."""
    key_pairs, unresolved = [], {"gold": 0, "predicted": 0}
    for pred_doc, gold_doc in pairs:
        gold_keys, gold_unresolved = relation_keys(gold_doc)
        pred_keys, pred_unresolved = relation_keys(pred_doc) if pred_doc is not None else (set(), 0)
        unresolved["gold"] += gold_unresolved
        unresolved["predicted"] += pred_unresolved
        key_pairs.append((pred_keys, gold_keys))
    micro, per_label = _set_scores(key_pairs, lambda keys: keys, relation_types())
    return {
        "micro": micro,
        "per_label": per_label,
        "unresolved": unresolved,
        "predicted_relations": any(pred_doc is not None and pred_doc.relations for pred_doc, _ in pairs),
    }


# -------------------------------------------------------------------------- headline

# The six headline figures, each written once: name -> path into a ``score_documents``
# dict. Records and tables name them from these keys (``dev_ner_f1``, ``test_flat_f1``...).
HEADLINE = {
    "ner": ("ner", "micro", "f1"),  # nested micro-F1, NEREL's own metric
    "flat": ("ner", "flat", "f1"),  # seqeval on the outermost layer
    "coarse": ("ner", "coarse", "micro", "f1"),  # PER/LOC/ORG micro-F1
    "cls_micro": ("cls", "micro", "f1"),
    "cls_macro": ("cls", "macro", "f1"),
    "cls_samples": ("cls", "samples", "f1"),
}
# Short labels (tables, plots, the experiment report).
HEADLINE_LABELS = {
    "ner": "NER nested micro-F1",
    "flat": "NER flat F1",
    "coarse": "NER coarse F1",
    "cls_micro": "CLS micro-F1",
    "cls_macro": "CLS macro-F1",
    "cls_samples": "CLS samples-F1",
}


def dig(obj, path, default=None):
    """``obj[path[0]][path[1]]...``, or ``default`` where a key is missing."""
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return default
        obj = obj[key]
    return obj


def headline(scores, key="{}"):
    """The headline figures of a ``score_documents`` dict, in ``HEADLINE`` order, named
    ``key.format(name)`` (e.g. ``key="dev_{}_f1"``); a missing figure is ``None``."""
    return {key.format(name): dig(scores, path) for name, path in HEADLINE.items()}


# ----------------------------------------------------------------------------- entry


def score_documents(pred_docs, gold_docs, warn=None):
    """All figures for predictions against gold, as the ``score --json`` dict.

    ``pred_docs`` and ``gold_docs`` are iterables of ``Document``; ``warn`` receives
    warning lines (default: printed to stderr).
    """
    pairs, info = match_documents(pred_docs, gold_docs, warn)
    micro, per_type = _set_scores(pairs, entity_keys, entity_types())
    coarse_micro, coarse_per_type = _set_scores(pairs, coarse_keys, sorted(set(COARSE.values())))
    return {
        "ner": {
            "micro": micro,
            "per_type": per_type,
            "flat": flat_scores(pairs),
            "coarse": {"micro": coarse_micro, "per_type": coarse_per_type},
        },
        "cls": cls_scores(pairs, warn),
        "re": relation_scores(pairs),
        "docs": info,
    }


def _table(title, rows, first="type"):
    width = max([len(first)] + [len(name) for name, _ in rows])
    lines = [title, f"  {first:<{width}}  {'P':>6}  {'R':>6}  {'F1':>6}  {'support':>7}"]
    for name, entry in rows:
        support = entry.get("support", "")
        lines.append(
            f"  {name:<{width}}  {entry['p']:6.4f}  {entry['r']:6.4f}  {entry['f1']:6.4f}  {support:>7}"
        )
    return "\n".join(lines)


def format_report(scores):
    """A human-readable report of a ``score_documents`` result."""
    ner, cls, docs = scores["ner"], scores["cls"], scores["docs"]
    relations = scores["re"]
    parts = [
        f"documents: {docs['matched']} matched, {docs['missing']} missing (scored as empty), "
        f"{docs['extra']} extra (ignored)",
        _table(
            "NER (entity-level exact match)",
            [
                ("nested micro", ner["micro"]),
                ("flat (seqeval)", ner["flat"]),
                ("coarse micro", ner["coarse"]["micro"]),
            ],
            first="view",
        ),
        _table("NER nested, per type", sorted(ner["per_type"].items())),
        _table("NER coarse PER/LOC/ORG, per type", sorted(ner["coarse"]["per_type"].items())),
        _table(
            "CLS (document relation types, multi-label)",
            [(name, cls[name]) for name in ("micro", "macro", "samples")],
            first="average",
        ),
        _table("CLS per label", sorted(cls["per_label"].items()), first="label"),
        _relation_report(relations),
    ]
    return "\n\n".join(parts) + "\n"


def _relation_report(relations):
    unresolved = relations["unresolved"]
    lines = [
        _table("RE (relations, strict: label and both arguments' type and spans)", [("micro", relations["micro"])],
               first="average"),
        f"  not scored, an argument is not a T-line of its document: {unresolved['gold']} gold R-line(s), "
        f"{unresolved['predicted']} predicted R-line(s)",
    ]
    if not relations["predicted_relations"]:
        lines.append("  the predictions hold no relations (no R-lines): every gold relation counts as missed")
    return "\n".join(lines) + "\n\n" + _table("RE per label", sorted(relations["per_label"].items()), first="label")
