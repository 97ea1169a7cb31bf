"""What one document's prediction becomes: the NEREL-style output object, or an error object.

``annotate``, ``batch`` and the Python API (``Annotation.to_json``) all write these, so a
document gives the same object whichever of them ran it.
"""

from nerelproc.io.document import format_entity_line
from nerelproc.io.writers import entity_lines
from nerelproc.names import annotate_names
from nerelproc.runtime.predictor import entities_with_ids
from nerelproc.runtime.relations import format_relation_line


def output_object(record, prediction, scores=False, keep_input=False, names=True):
    """The input object with predicted ``entities``, ``relations`` (R-lines between them),
    ``relation_types``, and with ``names`` each entity's ``normal`` form and the ``groups`` of
    mentions that name one entity (``nerelproc.names``); with ``scores``, ``relation_scores``
    (per type) and ``relation_probabilities`` (per R-line id); with ``keep_input``, the input's
    own annotations."""
    document = record.document
    obj = {"id": document.id, "text": document.text, **document.extra}
    if keep_input:
        obj["input_entities"] = entity_lines(document)
        obj["input_relations"] = list(document.relations)
        obj["input_links"] = list(document.links)
    entities = entities_with_ids(prediction.entities)
    obj["entities"] = [format_entity_line(e, document.text) for e in entities]
    obj["relations"] = [format_relation_line(n, label, entities[head].id, entities[tail].id)
                        for n, (head, tail, label, _) in enumerate(prediction.relations, 1)]
    obj["relation_types"] = prediction.relation_types
    if names:
        # a re-cased text gives the names their capitals back («владимира путина» → «Владимир Путин»)
        obj["normal"], obj["groups"] = annotate_names(prediction.cased_text or document.text, entities)
    if scores:
        obj["relation_scores"] = {
            label: round(float(score), 4) for label, score in zip(prediction.labels, prediction.relation_scores)
        }
        obj["relation_probabilities"] = {f"R{n}": round(float(relation[3]), 4)
                                         for n, relation in enumerate(prediction.relations, 1)}
    return obj


def error_object(record, message):
    """An error record in a record's place: never has ``text`` (an annotated one always does)."""
    return {"id": record.id, "line": record.line, "error": message}
