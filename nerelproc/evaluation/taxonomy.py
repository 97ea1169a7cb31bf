"""What a NER system did with each gold entity: the kinds of error behind an F1.

Each gold entity gets the first kind that applies:

- ``exact``: an entity with the same type and spans was predicted;
- ``type``: the same spans were predicted, with another type;
- ``split``: two or more predictions of the gold type lie inside the gold extent
  (a multi-word name broken into pieces: «Денис Тен» -> «Денис» + «Тен»);
- ``boundary``: a prediction of the gold type overlaps the gold extent (too wide,
  too narrow or shifted);
- ``missed``: nothing of the gold type overlaps it (another type may).

Predictions that match no gold key are counted as ``spurious``.
"""

from collections import Counter

KINDS = ("exact", "type", "split", "boundary", "missed")


def _overlaps(a, b):
    return a.start < b.end and b.start < a.end


def _inside(inner, outer):
    return outer.start <= inner.start and inner.end <= outer.end


def classify(gold, predicted):
    """``(kind, evidence)`` for one gold entity; evidence: the predictions that decided it."""
    spans = tuple(sorted(gold.spans))
    same_spans = [p for p in predicted if tuple(sorted(p.spans)) == spans]
    if any(p.type == gold.type for p in same_spans):
        return "exact", [p for p in same_spans if p.type == gold.type]
    if same_spans:
        return "type", same_spans
    same_type = [p for p in predicted if p.type == gold.type and _overlaps(p, gold)]
    pieces = [p for p in same_type if _inside(p, gold)]
    if len(pieces) >= 2:
        return "split", sorted(pieces, key=lambda p: p.start)
    if same_type:
        return "boundary", same_type
    return "missed", []


def outcomes(predicted_doc, gold_doc):
    """``{gold key: (gold entity, kind, evidence)}`` for one document (``predicted_doc`` may be None)."""
    predicted = predicted_doc.entities if predicted_doc is not None else []
    return {g.key: (g, *classify(g, predicted)) for g in gold_doc.entities}


def error_counts(predictions, gold_docs):
    """Counter of kinds over all gold entities, plus ``spurious`` predictions.

    ``predictions``: ``{document id: predicted Document}``; a missing document predicts nothing."""
    counts = Counter({kind: 0 for kind in (*KINDS, "spurious")})
    for gold in gold_docs:
        predicted = predictions.get(str(gold.id))
        counts.update(kind for _, kind, _ in outcomes(predicted, gold).values())
        gold_keys = {g.key for g in gold.entities}
        counts["spurious"] += len({p.key for p in (predicted.entities if predicted else [])} - gold_keys)
    return counts
