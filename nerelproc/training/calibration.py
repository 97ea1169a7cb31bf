"""The model's decisions, tuned on dev after its weights are fixed: the NER decoder's O bias
(``decoding.py``) and the CLS thresholds (``thresholds.py``).

The encoder runs once; each candidate bias only re-decodes the kept NER pairs. Torch-free:
``nerelproc calibrate`` tunes an exported int8 model, the one that ships, and training tunes
its dev predictions with the same functions every epoch.
"""

import numpy as np

from nerelproc.evaluation.score import HEADLINE, dig, score_documents
from nerelproc.io.document import Document
from nerelproc.training.thresholds import tune

# Added to log P(O): 0 is the plain constrained decoder; on the first fully fine-tuned model's
# dev set nested F1 rose to 0.5-0.75 and fell after 1.0 (reports/model_recipes.md).
O_BIAS_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)


def encode_in_chunks(predictor, documents, size=16):
    """``predictor.encode_documents`` over ``documents`` (any iterable: a progress bar), a few at a time."""
    encoded, chunk = [], []
    for document in documents:
        chunk.append(document.text)
        if len(chunk) == size:
            encoded += predictor.encode_documents(chunk)
            chunk = []
    return encoded + (predictor.encode_documents(chunk) if chunk else [])


def decisions(predictor, encoded, gold_docs, labels, seed=0):
    """Tune the O bias (best dev nested micro-F1; a tie goes to the smaller bias) and the CLS
    thresholds on ``gold_docs``. Returns ``(o_bias, thresholds, tuning)``.

    With a pair head a predictor with the chosen O bias encodes ``gold_docs`` again
    before the thresholds are tuned: the pair head reads the entities each window decodes
    under the predictor's O bias, so the CLS probabilities move with it."""
    nested = {}
    for o_bias in O_BIAS_GRID:
        predicted = [predictor.finish(e, o_bias) for e in encoded]
        nested[o_bias] = ner_f1(predicted, gold_docs)
    o_bias = max(O_BIAS_GRID, key=lambda b: (nested[b], -b))
    if predictor.pair_head is not None and o_bias != predictor.o_bias:
        predictor = predictor.with_options(o_bias=o_bias)
        encoded = encode_in_chunks(predictor, gold_docs)
    probs = np.stack([predictor.relation_scores(e) for e in encoded])
    gold = gold_labels(gold_docs, labels)
    thresholds, mode, cv = tune(probs, gold, seed)
    tuning = {"mode": mode, "cv": cv, "ner_o_bias": o_bias,
              "ner_o_bias_dev_nested_f1": {str(b): round(f, 4) for b, f in nested.items()}}
    return o_bias, thresholds, tuning


def gold_labels(documents, labels):
    """``[docs, labels]`` booleans: which relation types each gold document holds."""
    return np.array([[label in set(d.relation_labels()) for label in labels] for d in documents])


def ner_f1(predictions, gold_docs):
    predicted = [Document(g.id, g.text, p.entities) for g, p in zip(gold_docs, predictions)]
    return dig(score_documents(predicted, gold_docs, warn=lambda message: None), HEADLINE["ner"])


def decided(predictor, encoded, gold_docs, labels, o_bias, thresholds):
    """The predicted documents under the given decisions."""
    out = []
    for document, e in zip(gold_docs, encoded):
        p = predictor.finish(e, o_bias)
        chosen = [label for label, score, t in zip(labels, p.relation_scores, thresholds) if score >= t]
        out.append(Document(document.id, document.text, p.entities, relation_types=sorted(chosen)))
    return out


DECISIONS = ("thresholds", "thresholds_tuning", "ner_o_bias", "calibration")  # the Bundle fields set_decisions writes


def copy_decisions(bundle, source):
    """Give ``bundle`` the decisions of the ``source`` Bundle (weights untouched)."""
    for name in DECISIONS:
        setattr(bundle, name, getattr(source, name))
    return bundle


def set_decisions(bundle, thresholds, tuning, tuned_on):
    """Write tuned decisions into a ``Bundle`` (``tuning`` as ``decisions`` returns it)."""
    bundle.thresholds = [round(float(t), 4) for t in thresholds]  # the grid has 3 decimals, halfway 4
    bundle.thresholds_tuning = {"mode": tuning["mode"], "cv": tuning["cv"]}
    bundle.ner_o_bias = float(tuning["ner_o_bias"])
    bundle.calibration = {"tuned_on": tuned_on,
                          "ner_o_bias_dev_nested_f1": tuning["ner_o_bias_dev_nested_f1"]}
    return bundle
