"""The two task heads in numpy: what annotation runs on top of the encoder's states.

The torch model (``model.py``) computes exactly the same functions with parameters
of the same names, and exports them to ``heads.npz``. Keeping the math here, in
numpy, is what lets the int8 runtime run without PyTorch.

- NER: a linear layer to ``channels x 3`` logits (O/B/I per type and nesting layer).
- CLS: label-wise attention pooling. Each of the 49 relation types has a query that
  attends over *all* tokens of the document (every window), and its own output
  weights on the pooled state: one logit per label per document.
"""

import numpy as np

HEAD_PARAMS = ("ner_weight", "ner_bias", "cls_query", "cls_weight", "cls_bias")


class SavedHead:
    """A numpy head whose parameters, named in ``PARAMS``, are the arrays of one ``.npz`` file."""

    PARAMS = ()

    @classmethod
    def load(cls, path):
        with np.load(path) as arrays:
            return cls(**{name: arrays[name] for name in cls.PARAMS})

    def save(self, path):
        np.savez(path, **{name: getattr(self, name) for name in self.PARAMS})


class Heads(SavedHead):
    PARAMS = HEAD_PARAMS

    def __init__(self, ner_weight, ner_bias, cls_query, cls_weight, cls_bias):
        self.ner_weight = ner_weight.astype(np.float32)  # [hidden, channels * 3]
        self.ner_bias = ner_bias.astype(np.float32)
        self.cls_query = cls_query.astype(np.float32)  # [labels, hidden]
        self.cls_weight = cls_weight.astype(np.float32)  # [labels, hidden]
        self.cls_bias = cls_bias.astype(np.float32)  # [labels]

    def ner_tags(self, states):
        """``[tokens, hidden]`` -> tags ``[tokens, channels]`` (argmax of O/B/I)."""
        logits = states @ self.ner_weight + self.ner_bias
        return logits.reshape(len(states), len(self.ner_bias) // 3, 3).argmax(-1).astype(np.int8)

    def ner_log_probs(self, states):
        """``[tokens, hidden]`` -> log P(O/B/I) ``[tokens, channels, 3]`` (for constrained decoding)."""
        logits = (states @ self.ner_weight + self.ner_bias).reshape(len(states), -1, 3)
        logits -= logits.max(-1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(-1, keepdims=True))

    def cls_logits(self, states):
        """``[tokens, hidden]`` (all tokens of one document) -> ``[labels]``."""
        if not len(states):
            return self.cls_bias.copy()
        scores = states @ self.cls_query.T  # [tokens, labels]
        scores -= scores.max(0)
        attention = np.exp(scores)
        attention /= attention.sum(0)
        pooled = attention.T @ states  # [labels, hidden]
        return (pooled * self.cls_weight).sum(-1) + self.cls_bias


    def cls_partial(self, states):
        """One window's share of ``cls_logits``: per label the max score, the sum of
        ``exp(score - max)`` and the states weighted by it (an online softmax), so that a
        document's windows can be pooled one at a time and dropped."""
        if not len(states):
            return None
        scores = states @ self.cls_query.T  # [tokens, labels]
        top = scores.max(0)
        weights = np.exp(scores - top)
        return top, weights.sum(0), weights.T @ states  # [labels], [labels], [labels, hidden]


def combine_cls_partials(partials, heads):
    """``cls_logits`` of a whole document from its windows' ``cls_partial``s, in window order."""
    if not partials:
        return heads.cls_bias.copy()
    top = np.max([p[0] for p in partials], axis=0)
    total = np.zeros_like(partials[0][1])
    weighted = np.zeros_like(partials[0][2])
    for window_top, window_total, window_weighted in partials:
        scale = np.exp(window_top - top)
        total += scale * window_total
        weighted += scale[:, None] * window_weighted
    pooled = weighted / total[:, None]
    return (pooled * heads.cls_weight).sum(-1) + heads.cls_bias


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))
