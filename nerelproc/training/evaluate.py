"""Evaluation during and after training: predictions through the runtime's ``Predictor``,
threshold tuning on dev, the model-selection score, and scoring a saved model on test."""

import numpy as np

from nerelproc.evaluation.score import HEADLINE, dig, score_documents
from nerelproc.io.document import Document
from nerelproc.io.readers import read_documents
from nerelproc.io.writers import atomic_output, document_to_json, dumps_line
from nerelproc.training.calibration import decided, decisions, encode_in_chunks


def evaluate(predictor, examples, labels, thresholds=None, seed=0):
    """``(scores, thresholds, tuning)`` on ``examples``. Without ``thresholds`` (dev) the
    decisions, CLS thresholds and the NER decoder's O bias, are tuned on them first
    (``calibration.py``); ``tuning`` then says what was chosen and why."""
    docs = [e.document for e in examples]
    encoded = encode_in_chunks(predictor, docs)
    o_bias, tuning = None, None  # None: the predictor's own
    if thresholds is None:
        o_bias, thresholds, tuning = decisions(predictor, encoded, docs, labels, seed)
    span_threshold = (tuning or {}).get("span_threshold")  # with a span head, the one just tuned
    predicted = decided(predictor, encoded, docs, labels, o_bias, thresholds, span_threshold)
    scores = score_documents(predicted, docs, warn=lambda message: None)
    return scores, np.asarray(thresholds, dtype=np.float32), tuning


def selection_score(scores, tasks, tuning=None):
    """What picks the best epoch: NER micro-F1, CLS, or their mean. The CLS part is the
    cross-validated mean of micro and macro F1 from the threshold tuning when there is one:
    the same figures on the dev set the thresholds were fitted to swung by up to 0.07 macro
    between epochs (the first fully fine-tuned run; reports/model_recipes.md)."""
    parts = []
    if "ner" in tasks:
        parts.append(dig(scores, HEADLINE["ner"]))
    if "cls" in tasks:
        if tuning:
            parts.append(tuning["cv"][tuning["mode"]])
        else:
            parts.append((dig(scores, HEADLINE["cls_micro"]) + dig(scores, HEADLINE["cls_macro"])) / 2)
    return float(np.mean(parts))


def score_model_dir(model_dir, gold_path, predictions_path=None, backend="torch"):
    """Annotate the texts of ``gold_path`` with a saved model, score, optionally write predictions."""
    from nerelproc.runtime.bundle import load_predictor

    predictor = load_predictor(model_dir, backend=backend)
    gold = list(read_documents(gold_path))
    predicted = []
    for document, encoded in zip(gold, encode_in_chunks(predictor, gold)):
        p = predictor.finish(encoded)
        predicted.append(Document(document.id, document.text, p.entities, relation_types=p.relation_types))
    if predictions_path:
        with atomic_output(predictions_path) as file:
            for document in predicted:
                file.write(dumps_line(document_to_json(document, renumber=True, relations=False)))
    return score_documents(predicted, gold, warn=lambda message: None)
