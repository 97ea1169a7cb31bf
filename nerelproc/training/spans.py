"""The span head (``runtime/spans.py``) trained on an exported model's frozen encoder states.

The encoder runs once over a split, window by window as ``annotate`` runs it, and each
window's states are kept (float16, ``encode_split``, cached on disk): the head then trains
for minutes on any CPU. A window's training spans are the runtime's candidates (those that
start on a token the window owns, at most ``max_width`` tokens, on word edges), each labelled
with its gold type (a gold entity is the tokens its spans touch, a discontinuous one its
extent) or none; every candidate is in the cross-entropy loss. One thread: the same bytes
from the same command. The epoch and the decision threshold are chosen on dev's nested
micro-F1, as ``nerelproc score`` computes it, through the numpy head and ``decode_spans``.
"""

import pickle
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nerelproc.evaluation.score import dig, score_documents
from nerelproc.io.document import Document
from nerelproc.runtime.pairs import entity_token_spans
from nerelproc.runtime.spans import (FLOOR, PARTS, SpanHead, decode_spans, document_span_entities, span_edges,
                                     window_spans)
from nerelproc.runtime.windows import Window
from nerelproc.training.head_loop import fit_head

MAX_WIDTH = 20  # tokens; NEREL train: 0.17% of the entities are longer (0.35% over 16, 0.085% over 24)
WIDTH = 512  # of the hidden layer
WINDOWS_PER_BATCH = 4
LEARNING_RATE = 3e-3  # dev nested F1: 0.7905 after 4 epochs at 3e-3, 0.7744 after 6 at 1e-3
EPOCHS = 4
THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.1, 0.91, 0.05))


class SpanModel(nn.Module):
    """The torch twin of ``runtime.spans.SpanHead`` (same math, same parameters)."""

    def __init__(self, hidden, n_types, width=WIDTH, max_width=MAX_WIDTH, dropout=0.2):
        super().__init__()
        self.width, self.max_width = width, max_width
        self.token = nn.Linear(hidden, PARTS * width, bias=False)
        self.hidden_bias = nn.Parameter(torch.zeros(width))
        self.width_embedding = nn.Embedding(max_width, width)
        self.out = nn.Linear(width, 1 + n_types)
        self.dropout = nn.Dropout(dropout)

    def forward(self, states, first, last):
        """``[spans, 1 + types]`` logits of the spans ``first..last`` of one window ``[tokens, hidden]``."""
        start, end, pool, before, after = self.token(self.dropout(states.float())).split(self.width, dim=1)
        zero = torch.zeros_like(before[:1])
        left, right = torch.cat([zero, before[:-1]]), torch.cat([after[1:], zero])
        # runs[w][i] = max(pool[i..i + w]), stacked flat: row offset[w] + i (a strided cummax is 4x slower)
        runs, run = [pool], pool
        for w in range(1, min(self.max_width, len(pool))):
            run = torch.maximum(run[:-1], pool[w:])
            runs.append(run)
        offset = torch.tensor([0] + [len(r) for r in runs[:-1]], device=pool.device).cumsum(0)
        pooled = torch.cat(runs)[offset[last - first] + first]
        hidden = start[first] + end[last] + pooled + left[first] + right[last]
        hidden = hidden + self.width_embedding(last - first) + self.hidden_bias
        return self.out(self.dropout(nn.functional.gelu(hidden, approximate="tanh")))

    def load_head(self, head):
        """Take the parameters of a ``runtime.spans.SpanHead`` of the same shapes."""
        with torch.no_grad():
            for param, array in ((self.token.weight, head.token_weight.T), (self.hidden_bias, head.hidden_bias),
                                 (self.width_embedding.weight, head.width_embedding),
                                 (self.out.weight, head.out_weight.T), (self.out.bias, head.out_bias)):
                if tuple(param.shape) != array.shape:
                    raise ValueError(f"span head parameter of shape {array.shape}, expected {tuple(param.shape)}")
                param.copy_(torch.from_numpy(array.copy()))

    def export(self):
        array = lambda tensor: tensor.detach().cpu().float().numpy().copy()  # noqa: E731
        return SpanHead(array(self.token.weight.T), array(self.hidden_bias), array(self.width_embedding.weight),
                        array(self.out.weight.T), array(self.out.bias))


# ------------------------------------------------------------------------ frozen states


def encode_split(model_dir, texts, cache=None, threads=0, progress=None):
    """Per text: its windows, their int8 encoder states (float16, special tokens dropped), the
    token offsets and the entities the model's own NER head gives it (as ``annotate`` does: the
    tagging head, its O bias). Read from ``cache`` (a file) when it exists, else written there."""
    if cache is not None and Path(cache).exists():
        return pickle.loads(Path(cache).read_bytes())
    from nerelproc.runtime.bundle import load_predictor

    predictor = load_predictor(model_dir, threads=threads)
    only_ner = {"tasks": ("ner",), "pair_head": None, "relation_head": None}  # the states and NER, nothing else
    if hasattr(predictor, "with_options"):
        predictor = predictor.with_options(**only_ner)
    else:
        for name, value in only_ner.items():
            setattr(predictor, name, value)
    records = []
    for text in progress(texts) if progress else texts:
        document, states = None, {}
        for document, k, window_states in predictor.windows_of(text):
            states[k] = window_states.astype(np.float16)
        document = document or predictor._plan(text)
        records.append({
            "windows": [(w.start, w.end, w.own_start, w.own_end) for w in document.windows],
            "states": [states.get(k) for k in range(len(document.windows))],
            "offsets": document.encoded.offsets,
            "tagging": predictor.finish(document).entities,
        })
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        Path(cache).write_bytes(pickle.dumps(records, protocol=4))
    return records


def windows_of(record):
    return [Window(*w) for w in record["windows"]]


# ---------------------------------------------------------------------------- training


def gold_targets(document, offsets, entity_types):
    """``{(first token, last token): type index}`` of a document's gold entities (the first
    type where a span holds two)."""
    targets = {}
    for span in entity_token_spans(document.entities, offsets, list(entity_types)):
        if span is not None:
            targets.setdefault((span[1], span[2]), span[0])
    return targets


def window_targets(document, offsets, windows, entity_types, max_width=MAX_WIDTH):
    """Per window of one document, ``(first, last, target)``: its candidate spans (window token
    indices, as the runtime scores them) and their gold classes (0: none, else type + 1); and how
    many gold entities no candidate holds (too long, or an edge inside a word). An empty window
    has empty arrays."""
    can_start, can_end = span_edges(document.text, offsets)
    targets = gold_targets(document, offsets, entity_types)
    out, covered = [], set()
    for window in windows:
        edges = slice(window.start, window.end)
        owned = (window.own_start - window.start, window.own_end - window.start)
        first, last = window_spans(can_start[edges], can_end[edges], owned, max_width)
        target = np.array([targets.get((f + window.start, l + window.start), -1) + 1
                           for f, l in zip(first.tolist(), last.tolist())], np.int64)
        covered |= {(f + window.start, l + window.start) for f, l, y in zip(first, last, target) if y}
        out.append((first, last, target))
    return out, len(set(targets) - covered)


def training_windows(records, documents, entity_types, max_width=MAX_WIDTH):
    """Per window: ``(states, first, last, target)`` tensors of its candidate spans
    (``window_targets``), and how many gold entities no candidate holds."""
    examples, missed = [], 0
    for record, document in zip(records, documents):
        spans, missing = window_targets(document, record["offsets"], windows_of(record), entity_types, max_width)
        missed += missing
        for states, (first, last, target) in zip(record["states"], spans):
            if states is not None:
                examples.append((torch.from_numpy(states), torch.from_numpy(first), torch.from_numpy(last),
                                 torch.from_numpy(target)))
    return examples, missed


def train_span_head(examples, hidden, n_types, epochs, seed, evaluate, log, width=WIDTH, max_width=MAX_WIDTH,
                    learning_rate=LEARNING_RATE):
    """Train on every candidate span of ``examples`` (``training_windows``) with the heads' one
    loop (``head_loop.fit_head``: one thread, AdamW, one-cycle); ``evaluate(epoch, model)``
    after each epoch."""
    return fit_head(lambda: SpanModel(hidden, n_types, width, max_width), examples, span_loss, epochs=epochs,
                    seed=seed, learning_rate=learning_rate, docs_per_batch=WINDOWS_PER_BATCH, evaluate=evaluate,
                    log=log, name="span head")


def span_loss(model, batch, rng):
    """Cross-entropy over every candidate span of a batch of windows (none is class 0)."""
    logits = torch.cat([model(states, first, last) for states, first, last, _ in batch])
    target = torch.cat([target for *_, target in batch])
    return nn.functional.cross_entropy(logits, target, reduction="sum") / len(target)


# ---------------------------------------------------------------------------- decisions


def candidates_of(head, records, texts, floor=FLOOR):
    """Per document, the numpy head's candidates over ``floor`` (as the runtime scores them)."""
    out = []
    for record, text in zip(records, texts):
        can_start, can_end = span_edges(text, record["offsets"])
        out.append(document_span_entities(head, record["states"], windows_of(record), can_start, can_end, floor))
    return out


def span_predictions(candidates, records, documents, entity_types, threshold, max_width):
    """The decoded documents (gold ids and texts, predicted entities) at ``threshold``."""
    return [Document(document.id, document.text,
                     decode_spans(found, threshold, record["offsets"], document.text, entity_types, max_width))
            for found, record, document in zip(candidates, records, documents)]


def nested_f1(predicted, gold):
    return float(dig(score_documents(predicted, gold, warn=lambda message: None), ("ner", "micro", "f1")))


def tune_threshold(candidates, records, documents, entity_types, max_width, thresholds=THRESHOLDS):
    """``(threshold, {threshold: nested F1})``: the best on these documents (a tie: the lower)."""
    scores = {t: nested_f1(span_predictions(candidates, records, documents, entity_types, t, max_width), documents)
              for t in thresholds}
    return max(scores, key=lambda t: (scores[t], -t)), scores


def log_to_stderr(message):
    print(message, file=sys.stderr, flush=True)
