"""``nerelproc train-relations``: train the relation head (``runtime/relations.py``) on an
exported model's frozen encoder, tune its thresholds on dev and add it to the model directory.

The encoder runs once over train and dev, window by window as ``annotate`` runs it. A
window's training pairs are its gold entities whole in the window (every ordered pair at most
64 tokens apart, with the words between them as context, whether their names match, where
they lie and how many sentence ends part them), each labelled with the relation types the
R-lines give it; every pair, with or without a relation, is in the loss (BCE per relation
type). A label is only ever given to a
pair of entity types that holds it somewhere in train (``RelationHead.allowed``). The epoch is
chosen on dev's gold pairs (micro-F1 at the best single threshold).

A label's argument that holds one partner in 85% of train's groups (WORKS_AS: a person's
mention is linked to one profession in 82% of them, a profession to one person in 97%) keeps,
per document, only its best-scored pair (``relation_single``, ``relations.best_partner_only``).

Then the head runs inside the predictor over dev, as ``annotate`` runs it, twice: on the
entities the model predicts and on dev's gold entities (``--given-entities``). Each gets its
own thresholds (one global, or per label shrunk halfway to it, chosen by 2-fold CV over dev
documents as ``calibrate`` chooses the CLS thresholds), scored strictly: label and both
arguments' type and spans exact. Last, how relations and the CLS labels are made to agree
(``union``: a relation's type joins the labels; ``filter``: a relation stands only where its
type is a label) is chosen on dev by CLS score plus relation F1.
"""

import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nerelproc.evaluation.score import f1_score
from nerelproc.io.document import relation_type
from nerelproc.runtime.bundle import Bundle, load_predictor
from nerelproc.runtime.pairs import PAIR_PARAMS
from nerelproc.runtime.relations import RELATIONS_FILE, RelationHead, single_partner_labels
from nerelproc.training.calibration import gold_labels
from nerelproc.training.head_loop import fit_head, rows_by_document
from nerelproc.training.pairs import PairModel, batch_logits, collect
from nerelproc.training.thresholds import GRID, cross_validate, micro_macro

DOCS_PER_BATCH = 4
LEARNING_RATE = 3e-3  # dev gold pairs F1 after 4 epochs: 0.4094 at 1e-3, 0.4365 at 3e-3
WIDTH = 512  # of the hidden layer; dev gold pairs F1 at epoch 9: 0.5094 at 256, 0.5360 at 512
# a label's argument is single-partner when it holds one partner in this share of train's groups;
# dev F1 over given entities, by share: none 0.4744, 0.95 0.4728, 0.9 0.4769, 0.85 0.4811, 0.8 0.4764
SINGLE_SHARE = 0.85
FLOOR = 0.05  # the lowest threshold a tuned label can get (the grid's first step)


def gold_relations(document):
    """The document's gold relations as a set of ``(label, arg1 key, arg2 key)`` (entity keys:
    type and sorted spans), and how many R-lines have an argument that is not one of its T-lines."""
    keys = {entity.id: entity.key for entity in document.entities}
    out, unresolved = set(), 0
    for line in document.relations:
        args = [arg.split(":", 1)[-1] for arg in line.split("\t")[1].split()[1:3]]
        if len(args) == 2 and all(arg in keys for arg in args):
            out.add((relation_type(line), keys[args[0]], keys[args[1]]))
        else:
            unresolved += 1
    return out, unresolved


class Candidates:
    """Scored relations over a set of documents, flat, each marked right or wrong by the gold."""

    def __init__(self, predictions, documents, labels):
        rows, self.n_gold = [], np.zeros((len(documents), len(labels)), np.int64)
        for d, (prediction, document) in enumerate(zip(predictions, documents)):
            gold, _ = gold_relations(document)
            for label, _, _ in gold:
                if label in labels:
                    self.n_gold[d, labels.index(label)] += 1
            for head, tail, label, probability in prediction.relations:
                key = (label, prediction.entities[head].key, prediction.entities[tail].key)
                rows.append((d, labels.index(label), probability, key in gold))
        self.doc, self.label, self.prob, self.hit = (np.array([r[c] for r in rows]).reshape(-1) for c in range(4))
        self.doc, self.label = self.doc.astype(np.int64), self.label.astype(np.int64)
        self.prob, self.hit = self.prob.astype(np.float64), self.hit.astype(bool)

    def counts(self, thresholds, docs=None):
        """``(tp, fp, fn)`` per label at ``thresholds`` over ``docs`` (all by default)."""
        n_labels = self.n_gold.shape[1]
        inside = np.ones(len(self.doc), bool) if docs is None else np.isin(self.doc, docs)
        chosen = inside & (self.prob >= thresholds[self.label])
        tp = np.bincount(self.label[chosen & self.hit], minlength=n_labels)
        fp = np.bincount(self.label[chosen & ~self.hit], minlength=n_labels)
        gold = self.n_gold if docs is None else self.n_gold[docs]
        return tp, fp, gold.sum(0) - tp

    def micro(self, thresholds, docs=None):
        tp, fp, fn = self.counts(thresholds, docs)
        return float(f1_score(tp.sum(), fp.sum(), fn.sum()))


def fit_global(candidates, docs):
    n_labels = candidates.n_gold.shape[1]
    scores = [candidates.micro(np.full(n_labels, t), docs) for t in GRID]
    return np.full(n_labels, GRID[int(np.argmax(scores))])


def fit_shrunk(candidates, docs, min_gold=3):
    """Per label, halfway between its own best threshold and the global one (the global one for
    a label with fewer than ``min_gold`` gold relations in ``docs``)."""
    base = fit_global(candidates, docs)
    own = base.copy()
    gold = candidates.n_gold[docs].sum(0)
    per_grid = np.stack([candidates.counts(np.full(len(base), t), docs) for t in GRID])  # [grid, 3, labels]
    f1 = f1_score(per_grid[:, 0], per_grid[:, 1], per_grid[:, 2])  # [grid, labels]
    for label in np.flatnonzero(gold >= min_gold):
        own[label] = GRID[int(np.argmax(f1[:, label]))]
    return (base + own) / 2


MODES = {"global": fit_global, "shrunk": fit_shrunk}  # a tie goes to the first


def tune_relations(candidates, seed=13):
    """``(thresholds, mode, cv)``: the mode with the best 2-fold CV micro-F1, refitted on all of dev."""
    n_docs = len(candidates.n_gold)
    fits = {mode: (lambda part, fit=fit: fit(candidates, part)) for mode, fit in MODES.items()}
    cv = cross_validate(n_docs, fits, lambda t, part: candidates.micro(t, part), seed)
    mode = max(cv, key=cv.get)
    return MODES[mode](candidates, np.arange(n_docs)), mode, cv


def relation_loss(tensors):
    """The relation head's loss on a batch of documents: BCE per relation type over every pair
    of their windows, with or without a relation (a mean over the pairs)."""
    bce = nn.functional.binary_cross_entropy_with_logits

    def loss(model, batch, rng):
        rows = torch.cat([r for _, r in batch])
        logits = batch_logits(model, tensors, rows, tensors["context"], tensors["name"], tensors["layout"],
                              tensors["sentences"])
        return bce(logits, tensors["y"][rows], reduction="sum") / len(rows)

    return loss


def train_head(train_set, n_types, n_labels, epochs, seed, evaluate, log, width=WIDTH):
    """Train on every gold pair of the windows; ``evaluate(epoch, model)`` after each epoch.
    One thread: the same bytes from the same command (as ``train-pairs``)."""
    tensors, doc = train_set
    return fit_head(lambda: RelationModel(n_types, n_labels, hidden=tensors["features"].shape[1] // 2, width=width),
                    rows_by_document(doc), relation_loss(tensors), epochs=epochs, seed=seed,
                    learning_rate=LEARNING_RATE, docs_per_batch=DOCS_PER_BATCH, evaluate=evaluate, log=log,
                    name="relation head")


class RelationModel(PairModel):
    """The torch twin of ``runtime.relations.RelationHead``: the pair model plus the context of
    the words between the two entities, the names' match and the pair's layout, added to its
    hidden layer."""

    def __init__(self, n_types, n_labels, hidden=384, width=256, dropout=0.2):
        super().__init__(n_types, n_labels, hidden, width, dropout)
        self.context = nn.Linear(hidden, width, bias=False)
        self.name_embedding = nn.Embedding(8, width)
        self.layout_embedding = nn.Embedding(5, width)
        self.sentence_embedding = nn.Embedding(4, width)

    def forward(self, features, types, a, b, distance, context, name, layout, sentences):
        extra = self.context(self.dropout(context.float())) + self.name_embedding(name)  # context: stored in fp16
        extra = extra + self.layout_embedding(layout) + self.sentence_embedding(sentences)
        return super().forward(features, types, a, b, distance, extra=extra)

    def export(self, allowed=None):
        pair = super().export()
        table = lambda embedding: embedding.weight.detach().numpy().copy()
        return RelationHead(*(getattr(pair, name) for name in PAIR_PARAMS),
                            context_weight=self.context.weight.detach().numpy().T.copy(),
                            name_embedding=table(self.name_embedding), layout_embedding=table(self.layout_embedding),
                            sentence_embedding=table(self.sentence_embedding), allowed=allowed)


def allowed_labels(tensors, n_types, n_labels):
    """``[types, types, labels]``: the labels each (Arg1 type, Arg2 type) holds in the training pairs."""
    allowed = np.zeros((n_types, n_types, n_labels), bool)
    pair, label = np.nonzero(tensors["y"].numpy() > 0)
    types = tensors["types"].numpy()
    allowed[types[tensors["a"].numpy()[pair]], types[tensors["b"].numpy()[pair]], label] = True
    return allowed


def pair_f1(model, dev_set, allowed):
    """Micro-F1 on dev's gold pairs at the best single threshold (the epoch's score)."""
    tensors, _ = dev_set
    model.eval()
    with torch.no_grad():
        probs = torch.sigmoid(model(tensors["features"], tensors["types"], tensors["a"], tensors["b"],
                                    tensors["distance"], tensors["context"].float(), tensors["name"],
                                    tensors["layout"], tensors["sentences"])).numpy()
    types = tensors["types"].numpy()
    probs[~allowed[types[tensors["a"].numpy()], types[tensors["b"].numpy()]]] = 0.0
    gold = tensors["y"].numpy() > 0
    return max(micro_macro(probs, gold, t)[0] for t in GRID)


def dev_run(predictor, dev_docs, given):
    """The predictor over dev as ``annotate`` runs it: every relation over ``FLOOR``."""
    predictions = []
    for start in range(0, len(dev_docs), 16):
        chunk = dev_docs[start : start + 16]
        entities = [d.entities for d in chunk] if given else None
        predictions += predictor.predict([d.text for d in chunk], entities)
    return predictions


def cls_score(predictions, gold, labels):
    chosen = np.array([[label in p.relation_types for label in labels] for p in predictions])
    return micro_macro(chosen.astype(float), gold, np.full(len(labels), 0.5))


def train_relations(model_dir, train_docs, dev_docs, epochs=16, seed=0, threads=0, log=None, width=WIDTH):
    """Train, choose and tune on dev, and write ``relations.npz`` and the relation decisions
    into ``model_dir``. Returns what was chosen and measured (``Bundle.relations``)."""
    from tqdm import tqdm

    log = log or (lambda message: print(message, file=sys.stderr))
    bar = lambda desc: (lambda docs: tqdm(docs, desc=desc, unit="doc", file=sys.stderr))
    annotating = load_predictor(model_dir, threads=threads, relation_head=False)
    predictor = annotating.with_options(pair_head=None)  # states only
    labels, n_types = predictor.labels, len(predictor.scheme.entity_types)
    train_set, _ = collect(predictor, train_docs, gold=True, progress=bar("encoding train"), context=True)
    dev_set, _ = collect(predictor, dev_docs, gold=True, progress=bar("encoding dev"), context=True)
    if not train_set.parts["a"]:
        raise ValueError("no training document has two gold entities near enough to pair")
    train_set, dev_set = train_set.tensors(), dev_set.tensors()
    allowed = allowed_labels(train_set[0], n_types, len(labels))
    heads, scores = {}, {}

    def evaluate(epoch, model):
        heads[epoch], scores[epoch] = model.export(allowed), pair_f1(model, dev_set, allowed)
        log(f"  dev gold pairs micro-F1 at epoch {epoch}: {scores[epoch]:.4f}")

    train_head(train_set, n_types, len(labels), epochs, seed, evaluate, log, width=width)
    epoch = max(scores, key=lambda e: (scores[e], -e))
    single = single_partner_labels((gold_relations(d)[0] for d in train_docs), labels, SINGLE_SHARE)
    floor = np.full(len(labels), FLOOR, np.float32)
    # every relation over the floor reaches the candidates
    predictor = annotating.with_options(relation_head=heads[epoch], relation_single=single, relation_rule="union",
                                        relation_thresholds=floor, relation_thresholds_given=floor)
    tuned, measured = {}, {}
    for name, given in (("predicted entities", False), ("given entities", True)):
        candidates = Candidates(dev_run(predictor, dev_docs, given), dev_docs, labels)
        tuned[name] = tune_relations(candidates)
        measured[name] = round(candidates.micro(tuned[name][0]), 4)
        log(f"dev relation micro-F1 over {name}: {measured[name]:.4f} ({tuned[name][1]} thresholds, "
            f"CV {max(tuned[name][2].values()):.4f})")
    predictor = predictor.with_options(relation_thresholds=tuned["predicted entities"][0].astype(np.float32),
                                       relation_thresholds_given=tuned["given entities"][0].astype(np.float32))
    gold_cls = gold_labels(dev_docs, labels)
    rules = {}
    for rule in ("union", "filter"):
        predictions = dev_run(predictor.with_options(relation_rule=rule), dev_docs, False)
        micro, macro = cls_score(predictions, gold_cls, labels)
        relation_f1 = Candidates(predictions, dev_docs, labels).micro(np.zeros(len(labels)))
        rules[rule] = {"cls_micro": round(micro, 4), "cls_macro": round(macro, 4), "relations_f1": round(relation_f1, 4)}
        log(f"dev with rule {rule}: CLS micro {micro:.4f}, macro {macro:.4f}, relation micro-F1 {relation_f1:.4f}")
    rule = max(rules, key=lambda r: ((rules[r]["cls_micro"] + rules[r]["cls_macro"]) / 2 + rules[r]["relations_f1"],
                                     r == "union"))
    heads[epoch].save(Path(model_dir) / RELATIONS_FILE)
    bundle = Bundle.load(model_dir)
    bundle.relation_thresholds = [round(float(t), 4) for t in predictor.relation_thresholds]
    bundle.relation_thresholds_given = [round(float(t), 4) for t in predictor.relation_thresholds_given]
    bundle.relation_rule = rule
    bundle.relation_single = single
    bundle.relations = {
        "epochs": epochs, "seed": seed, "epoch": epoch, "width": width, "single_share": SINGLE_SHARE,
        "dev_gold_pairs_f1": {str(e): round(s, 4) for e, s in sorted(scores.items())},
        "thresholds": {name: {"mode": t[1], "cv": t[2]} for name, t in tuned.items()},
        "dev_relations_f1": measured, "rules": rules,
        "trained_on": f"{len(train_docs)} documents", "chosen_on": f"{len(dev_docs)} documents"}
    bundle.save(model_dir)
    log(f"relation head of epoch {epoch}, rule {rule}: wrote {Path(model_dir) / RELATIONS_FILE}")
    return bundle.relations
