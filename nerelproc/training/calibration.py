"""The model's decisions, tuned on dev after its weights are fixed: the NER decoder's O bias
(``decoding.py``), or with a span head its threshold (``spans.py``), and the CLS thresholds
(``thresholds.py``).

The encoder runs once; each candidate bias (threshold) only re-decodes the kept NER pairs
(the windows' candidate spans). Torch-free:
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
# The span head's threshold (over the windows' candidates, kept from spans.FLOOR up): the bundled
# encoder's span head peaked at 0.45 on NEREL dev, F1 within 0.01 from 0.3 to 0.6 (reports/span_head.json).
SPAN_THRESHOLD_GRID = (0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65)


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
    under the predictor's O bias, so the CLS probabilities move with it. With a span head the
    span threshold is tuned instead (``span_decisions``); the O bias stays the predictor's."""
    if getattr(predictor, "span_head", None) is not None:
        return span_decisions(predictor, encoded, gold_docs, labels, seed)
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


def span_decisions(predictor, encoded, gold_docs, labels, seed=0):
    """``decisions`` for a predictor with a span head: the span threshold with the best dev nested
    micro-F1 (a tie goes to the higher, fewer entities), then the CLS thresholds on the pairs of
    the entities under it. Returns ``(o_bias, thresholds, tuning)``, the chosen threshold in
    ``tuning["span_threshold"]``."""
    nested = {}
    for threshold in SPAN_THRESHOLD_GRID:
        predicted = [predictor.finish(e, span_threshold=threshold) for e in encoded]
        nested[threshold] = ner_f1(predicted, gold_docs)
    threshold = max(SPAN_THRESHOLD_GRID, key=lambda t: (nested[t], t))
    if predictor.pair_head is not None and threshold != predictor.span_threshold:
        predictor = predictor.with_options(span_threshold=threshold)
        encoded = encode_in_chunks(predictor, gold_docs)
    probs = np.stack([predictor.relation_scores(e) for e in encoded])
    thresholds, mode, cv = tune(probs, gold_labels(gold_docs, labels), seed)
    tuning = {"mode": mode, "cv": cv, "span_threshold": threshold,
              "span_threshold_dev_nested_f1": {str(t): round(f, 4) for t, f in nested.items()}}
    return predictor.o_bias, thresholds, tuning


def gold_labels(documents, labels):
    """``[docs, labels]`` booleans: which relation types each gold document holds."""
    return np.array([[label in set(d.relation_labels()) for label in labels] for d in documents])


def ner_f1(predictions, gold_docs):
    predicted = [Document(g.id, g.text, p.entities) for g, p in zip(gold_docs, predictions)]
    return dig(score_documents(predicted, gold_docs, warn=lambda message: None), HEADLINE["ner"])


def decided(predictor, encoded, gold_docs, labels, o_bias, thresholds, span_threshold=None):
    """The predicted documents under the given decisions (``span_threshold``: a span head's;
    None: the predictor's)."""
    out = []
    for document, e in zip(gold_docs, encoded):
        p = predictor.finish(e, o_bias, span_threshold=span_threshold)
        chosen = [label for label, score, t in zip(labels, p.relation_scores, thresholds) if score >= t]
        out.append(Document(document.id, document.text, p.entities, relation_types=sorted(chosen)))
    return out


# the Bundle fields set_decisions writes
DECISIONS = ("thresholds", "thresholds_tuning", "ner_o_bias", "calibration", "span_threshold", "short_text_chars",
             "short_texts")


def copy_decisions(bundle, source):
    """Give ``bundle`` the decisions of the ``source`` Bundle (weights untouched)."""
    for name in DECISIONS:
        setattr(bundle, name, getattr(source, name))
    return bundle


def set_decisions(bundle, thresholds, tuning, tuned_on):
    """Write tuned decisions into a ``Bundle`` (``tuning`` as ``decisions`` returns it)."""
    bundle.thresholds = [round(float(t), 4) for t in thresholds]  # the grid has 3 decimals, halfway 4
    bundle.thresholds_tuning = {"mode": tuning["mode"], "cv": tuning["cv"]}
    if "span_threshold" in tuning:  # a span head's model: the O bias is the tagging head's, left as it was
        bundle.span_threshold = float(tuning["span_threshold"])
        bundle.calibration = {"tuned_on": tuned_on,
                              "span_threshold_dev_nested_f1": tuning["span_threshold_dev_nested_f1"]}
        return bundle
    bundle.ner_o_bias = float(tuning["ner_o_bias"])
    bundle.calibration = {"tuned_on": tuned_on,
                          "ner_o_bias_dev_nested_f1": tuning["ner_o_bias_dev_nested_f1"]}
    return bundle
