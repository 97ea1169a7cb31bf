"""``nerelproc train-pairs``: train the entity-pair CLS head (``runtime/pairs.py``) on an
exported model's frozen encoder, choose it on dev and add it to the model directory.

The encoder runs once over train and dev, window by window as ``annotate`` runs it. A train
window's pairs are its gold entities (those whole in the window) labelled from the R-lines;
a dev window's are the entities its NER head finds (its tags, or with a span head its spans),
as at annotation time. Loss: BCE on the pairs holding a relation and on 30% of the others, plus
BCE on the document's max (``experiments/cls_pairs.py`` measured this recipe;
reports/model_recipes.md, section 3).

Every other epoch, dev's CLS probabilities are mixed with the pairs' at each weight of
``WEIGHTS`` (0: the CLS head alone) and thresholds are tuned as ``calibrate`` tunes them; the
2-fold CV score picks the epoch and weight. Weight 0 winning means the pair head does not
help on dev: then nothing is added.
"""

import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nerelproc.io.document import relation_type
from nerelproc.runtime.bundle import PAIRS_FILE, Bundle, load_predictor
from nerelproc.runtime.pairs import DISTANCE_BUCKETS, PairHead, candidate_pairs, entity_features, entity_token_spans
from nerelproc.runtime.relations import (context_features, name_match, pair_layout, sentence_breaks,
                                         sentences_between, window_surfaces)
from nerelproc.training.calibration import gold_labels, set_decisions
from nerelproc.training.head_loop import fit_head, rows_by_document
from nerelproc.training.thresholds import tune

NEGATIVES = 0.3  # share of the pairs without a relation in each batch's pair loss
WEIGHTS = (0.0, 0.3, 0.5, 0.7, 1.0)  # of the pair head in the CLS probability
DOCS_PER_BATCH = 8


class PairModel(nn.Module):
    """The torch twin of ``runtime.pairs.PairHead`` (same math, same parameter names)."""

    def __init__(self, n_types, n_labels, hidden=384, width=256, dropout=0.2):
        super().__init__()
        self.entity = nn.Linear(2 * hidden, width)
        self.type_embedding = nn.Embedding(n_types, 32)
        self.distance_embedding = nn.Embedding(len(DISTANCE_BUCKETS) + 1, 32)
        self.hidden = nn.Linear(3 * width + 96, width)
        self.out = nn.Linear(width, n_labels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, features, types, a, b, distance, extra=None):
        gelu = lambda x: nn.functional.gelu(x, approximate="tanh")
        entity = gelu(self.entity(self.dropout(features)))
        x = torch.cat([entity[a], entity[b], entity[a] * entity[b], self.type_embedding(types[a]),
                       self.type_embedding(types[b]), self.distance_embedding(distance)], 1)
        hidden = self.hidden(x) if extra is None else self.hidden(x) + extra
        return self.out(self.dropout(gelu(hidden)))

    def export(self):
        weights = lambda layer: layer.weight.detach().numpy().T.copy()
        return PairHead(weights(self.entity), self.entity.bias.detach().numpy(), self.type_embedding.weight.detach().numpy(),
                        self.distance_embedding.weight.detach().numpy(), weights(self.hidden),
                        self.hidden.bias.detach().numpy(), weights(self.out), self.out.bias.detach().numpy())


class Pairs:
    """Every window's pair inputs, flat: entities of all windows stacked, pairs indexing them."""

    def __init__(self, n_docs, n_labels, hidden, context=False):
        self.n_docs, self.n_labels = n_docs, n_labels
        self.context = context  # also keep each pair's context (the relation head's input), in float16
        names = ("features", "types", "a", "b", "distance", "y", "doc")
        names += ("context", "name", "layout", "sentences") if context else ()
        self.parts = {name: [] for name in names}
        self.n_entities = 0
        self.empty = {"features": np.zeros((0, 2 * hidden), np.float32), "y": np.zeros((0, n_labels), np.float32),
                      "context": np.zeros((0, hidden), np.float16)}

    def add(self, doc, states, types, first, last, relations=None, surfaces=None, breaks=None):
        """One window's entities (window token indices); ``relations``: ``{(i, j): [labels]}``;
        ``surfaces``: their texts (for the relation head's name match); ``breaks``: the window's
        ``sentence_breaks``."""
        a, b, distance = candidate_pairs(first, last)
        if not len(a):
            return
        y = np.zeros((len(a), self.n_labels), np.float32)
        for p, pair in enumerate(zip(a.tolist(), b.tolist())):
            for label in (relations or {}).get(pair, ()):
                y[p, label] = 1
        for name, value in (("features", entity_features(states, first, last)), ("types", types),
                            ("a", a + self.n_entities), ("b", b + self.n_entities), ("distance", distance),
                            ("y", y), ("doc", np.full(len(a), doc))):
            self.parts[name].append(value)
        if self.context:
            self.parts["context"].append(context_features(states, first, last, a, b).astype(np.float16))
            self.parts["name"].append(name_match(surfaces, a, b) if surfaces is not None else np.zeros(len(a), np.int64))
            self.parts["layout"].append(pair_layout(first, last, a, b))
            self.parts["sentences"].append(sentences_between(breaks, first, last, a, b) if breaks is not None
                                           else np.zeros(len(a), np.int64))
        self.n_entities += len(first)

    def tensors(self):
        cat = {name: np.concatenate(parts) if parts else self.empty.get(name, np.zeros(0, np.int64))
               for name, parts in self.parts.items()}
        return {name: torch.from_numpy(cat[name]) for name in cat if name != "doc"}, cat["doc"]


def gold_entities(document, encoded, entity_types, labels):
    """``(spans, relations)``: per gold entity id its ``(type, first token, last token)``, and the
    R-lines between two such entities as ``(label, arg1 id, arg2 id)``."""
    token_spans = entity_token_spans(document.entities, encoded.offsets, list(entity_types))
    spans = {entity.id: span for entity, span in zip(document.entities, token_spans) if span is not None}
    relations = []
    for line in document.relations:
        args = [arg.split(":", 1)[-1] for arg in line.split("\t")[1].split()[1:3]]
        if relation_type(line) in labels and all(arg in spans for arg in args):
            relations.append((labels.index(relation_type(line)), *args))
    return spans, relations


def in_window(spans, relations, window):
    """``(types, first, last, {(i, j): [labels]})`` of the gold entities whole in ``window``
    (token indices into the window)."""
    ids = [i for i, (_, first, last) in spans.items() if window.start <= first and last < window.end]
    index = {entity_id: n for n, entity_id in enumerate(ids)}
    pair_labels = {}
    for label, arg1, arg2 in relations:
        if arg1 in index and arg2 in index:
            pair_labels.setdefault((index[arg1], index[arg2]), []).append(label)
    types, first, last = (np.array([spans[i][c] for i in ids], np.int64) for c in range(3))
    return types, first - window.start, last - window.start, pair_labels


def collect(predictor, documents, gold, progress=None, context=False):
    """``(Pairs, cls_probs [docs, labels])``: the encoder run once over ``documents``, window by
    window; ``gold``: pairs of the gold entities (with labels), else of the predicted ones;
    ``context``: keep each pair's context too."""
    labels, types = predictor.labels, list(predictor.scheme.entity_types)
    hidden = predictor.heads.ner_weight.shape[0]
    pairs, cls_probs = Pairs(len(documents), len(labels), hidden, context), []
    for d, document in enumerate(progress(documents) if progress else documents):
        state, entities = None, None
        for state, k, states in predictor.windows_of(document.text):
            if gold:
                entities = entities or gold_entities(document, state.encoded, types, labels)
                kinds, first, last, relations = in_window(*entities, state.windows[k])
                start = state.windows[k].start
                surfaces = window_surfaces(document.text, state.encoded.offsets, first + start, last + start)
                breaks = sentence_breaks(document.text, state.encoded.offsets[start : state.windows[k].end])
                pairs.add(d, states, kinds, first, last, relations, surfaces, breaks)
            elif predictor.span_head is not None:  # the entities annotate gives the pair head
                window = state.windows[k]
                candidates = predictor._window_spans(state, window, states)
                pairs.add(d, states, *predictor._selected_in_window(window, candidates)[:3])
            else:
                pairs.add(d, states, *predictor.window_entities(predictor.heads.ner_log_probs(states)))
        state = state or predictor._plan(document.text)  # an empty text has no window
        cls_probs.append(predictor.relation_scores(state))
    return pairs, np.stack(cls_probs)


def batch_logits(model, tensors, rows, *pair_inputs):
    """The model's logits for the pairs ``rows``; ``pair_inputs``: more per-pair tensors for it."""
    # a batch's entities, renumbered: the pairs index only those
    used, local = torch.unique(torch.cat([tensors["a"][rows], tensors["b"][rows]]), return_inverse=True)
    return model(tensors["features"][used], tensors["types"][used], local[: len(rows)], local[len(rows) :],
                 tensors["distance"][rows], *(values[rows] for values in pair_inputs))


def document_probs(model, pairs, n_docs):
    """Per document, the sigmoid of the max over its pairs ``[docs, labels]`` (no pair: none)."""
    (tensors, doc), n_labels = pairs, model.out.out_features
    model.eval()
    with torch.no_grad():
        logits = model(tensors["features"], tensors["types"], tensors["a"], tensors["b"], tensors["distance"]).numpy()
    best = np.full((n_docs, n_labels), -30.0, np.float32)
    np.maximum.at(best, doc, logits)
    return 1 / (1 + np.exp(-best))


def pair_loss(logits_of, y, targets):
    """The pair head's loss on a batch of documents: BCE on the pairs holding a relation and on
    ``NEGATIVES`` of the others, plus BCE on each document's max over its pairs against its
    labels. ``logits_of(model, rows)``: the model's logits of those pairs; ``y``: every pair's
    labels; ``targets``: every document's labels."""
    bce = nn.functional.binary_cross_entropy_with_logits

    def loss(model, batch, rng):
        rows = torch.cat([r for _, r in batch])
        logits, labels = logits_of(model, rows), y[rows]
        sampled = (labels.sum(1) > 0) | torch.from_numpy(rng.random(len(rows)) < NEGATIVES)
        per_doc = torch.stack([part.max(0).values for part in logits.split([len(r) for _, r in batch])])
        return bce(logits[sampled], labels[sampled]) + bce(per_doc, targets[[d for d, _ in batch]])

    return loss


def train_pair_head(train_pairs, doc_labels, n_types, epochs, seed, evaluate, log=print):
    """Train one pair head, on one thread; ``evaluate(epoch, model)`` after every other epoch and the last."""
    tensors, doc = train_pairs
    loss = pair_loss(lambda model, rows: batch_logits(model, tensors, rows), tensors["y"],
                     torch.tensor(doc_labels, dtype=torch.float32))
    return fit_head(lambda: PairModel(n_types, doc_labels.shape[1], hidden=tensors["features"].shape[1] // 2),
                    rows_by_document(doc), loss, epochs=epochs, seed=seed, learning_rate=1e-3,
                    docs_per_batch=DOCS_PER_BATCH, evaluate=evaluate, log=log, name="pair head", evaluate_every=2)


def train_pairs(model_dir, train_docs, dev_docs, epochs=16, seed=0, threads=0, weights=WEIGHTS, log=None):
    """Train, choose on dev and, unless the CLS head alone wins, write ``pairs.npz`` and the new
    CLS decisions into ``model_dir``. Returns the choice (``Bundle.pairs``)."""
    from tqdm import tqdm

    log = log or (lambda message: print(message, file=sys.stderr))
    bar = lambda desc: (lambda docs: tqdm(docs, desc=desc, unit="doc", file=sys.stderr))
    predictor = load_predictor(model_dir, threads=threads, pair_head=False)  # the CLS head alone: what the pairs are mixed with
    labels, n_types = predictor.labels, len(predictor.scheme.entity_types)
    train_set, _ = collect(predictor, train_docs, gold=True, progress=bar("encoding train"))
    dev_set, dev_cls = collect(predictor, dev_docs, gold=False, progress=bar("encoding dev"))
    if not train_set.parts["a"]:
        raise ValueError("no training document has two gold entities near enough to pair")
    train_set, dev_set = train_set.tensors(), dev_set.tensors()
    dev_gold = gold_labels(dev_docs, labels)
    # (epoch, weight) -> (thresholds, mode, cv); weight 0 is the CLS head alone
    candidates = {(0, 0.0): tune(dev_cls, dev_gold, seed=13)} if 0.0 in weights else {}
    mixed = [w for w in weights if w]
    if candidates:
        log(f"dev CV (2-fold, mean of CLS micro and macro F1), CLS head alone: {max(candidates[0, 0.0][2].values()):.4f}")
    heads = {}

    def evaluate(epoch, model):
        heads[epoch] = model.export()
        pair_probs = document_probs(model, dev_set, len(dev_docs))
        for weight in mixed:
            candidates[epoch, weight] = tune((1 - weight) * dev_cls + weight * pair_probs, dev_gold, seed=13)
        if mixed:
            best = max(mixed, key=lambda w: max(candidates[epoch, w][2].values()))
            log(f"  dev CV at epoch {epoch}: {max(candidates[epoch, best][2].values()):.4f} (weight {best})")

    train_pair_head(train_set, gold_labels(train_docs, labels), n_types, epochs, seed, evaluate, log)
    cv = {key: max(value[2].values()) for key, value in candidates.items()}
    epoch, weight = max(cv, key=lambda key: (cv[key], -key[1]))  # a tie goes to the lighter weight
    thresholds, mode, mode_cv = candidates[epoch, weight]
    choice = {"epochs": epochs, "seed": seed, "epoch": epoch, "weight": weight,
              "dev_cv": {f"epoch {e}, weight {w}": round(v, 6) for (e, w), v in sorted(cv.items())},
              "trained_on": f"{len(train_docs)} documents", "chosen_on": f"{len(dev_docs)} documents"}
    bundle = Bundle.load(model_dir)
    if weight == 0.0:
        log("the CLS head alone wins on dev: no pair head added")
        return choice
    heads[epoch].save(Path(model_dir) / PAIRS_FILE)
    calibrated = bundle.calibration or {}
    if bundle.span_threshold is not None:  # a span head's model: its threshold and its dev curve stay
        tuning = {"mode": mode, "cv": mode_cv, "span_threshold": bundle.span_threshold,
                  "span_threshold_dev_nested_f1": calibrated.get("span_threshold_dev_nested_f1", {})}
    else:
        tuning = {"mode": mode, "cv": mode_cv, "ner_o_bias": bundle.ner_o_bias or 0.0,
                  "ner_o_bias_dev_nested_f1": calibrated.get("ner_o_bias_dev_nested_f1", {})}
    tuned_on = calibrated.get("tuned_on", f"{len(dev_docs)} documents")
    bundle = set_decisions(bundle, thresholds, tuning, tuned_on)
    bundle.pair_weight, bundle.pairs = weight, choice
    bundle.save(model_dir)
    alone = f" (CLS head alone {cv[0, 0.0]:.4f})" if (0, 0.0) in cv else ""
    log(f"pair head of epoch {epoch}, weight {weight}: dev CV {cv[epoch, weight]:.4f}{alone}; "
        f"wrote {Path(model_dir) / PAIRS_FILE}")
    return choice
