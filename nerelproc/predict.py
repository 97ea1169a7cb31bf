"""From texts to entities and relation types, whatever runs the encoder.

``Predictor`` owns the steps that do not depend on the encoder's runtime:
tokenising, windowing, merging windows, the numpy heads and decoding. The encoder
is any function from a list of token-id arrays to a list of ``[length, hidden]``
state arrays: CTranslate2 int8 at annotation time, torch fp32 while training.
So the dev scores seen in training and the output of ``annotate`` come from one code path.
"""

from dataclasses import dataclass

import numpy as np

from .document import Entity
from .heads import sigmoid
from .tagging import TagScheme
from .windows import encode, merge, plan_windows, window_inputs


@dataclass
class Prediction:
    entities: list  # [Entity]
    relation_scores: np.ndarray  # [labels] probabilities
    relation_types: list  # names over the thresholds
    labels: list  # the names of relation_scores' entries


class Predictor:
    def __init__(self, tokenizer, heads, config, encode_batch, batch_windows=2):
        self.tokenizer = tokenizer
        self.heads = heads
        self.config = config
        self.scheme = TagScheme(config["entity_types"], config["layers"])
        self.labels = list(config["relation_types"])
        self.thresholds = np.asarray(config.get("thresholds", [0.5] * len(self.labels)), dtype=np.float32)
        self.encode_batch = encode_batch
        self.batch_windows = batch_windows
        self.cls_id, self.sep_id = config["cls_id"], config["sep_id"]

    def states(self, texts):
        """Per text: the encoded text and its merged token states ``[tokens, hidden]``."""
        encoded = [encode(self.tokenizer, text) for text in texts]
        plans = [plan_windows(len(e.ids), self.config["max_length"], self.config["stride"]) for e in encoded]
        inputs = [
            (doc, index, window_inputs(e, window, self.cls_id, self.sep_id))
            for doc, (e, windows) in enumerate(zip(encoded, plans))
            for index, window in enumerate(windows)
        ]
        # Similar lengths together: less padding for the encoder.
        inputs.sort(key=lambda item: len(item[2]))
        outputs = [[None] * len(windows) for windows in plans]
        for batch in _batches(inputs, self.batch_windows):
            for (doc, index, _), states in zip(batch, self.encode_batch([ids for _, _, ids in batch])):
                outputs[doc][index] = states[1:-1]  # drop <s> and </s>
        return [
            (e, merge(window_states, windows, len(e.ids)))
            for e, windows, window_states in zip(encoded, plans, outputs)
        ]

    def predict(self, texts):
        predictions = []
        for text, (encoded, states) in zip(texts, self.states(texts)):
            tags = self.heads.ner_tags(states)
            entities = self.scheme.decode(tags, encoded.offsets, text)
            scores = sigmoid(self.heads.cls_logits(states))
            chosen = [label for label, score, t in zip(self.labels, scores, self.thresholds) if score >= t]
            predictions.append(Prediction(entities, scores, sorted(chosen), self.labels))
        return predictions


def _batches(items, size):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def entities_with_ids(entities):
    return [Entity(e.type, e.spans, f"T{i}") for i, e in enumerate(entities, 1)]
