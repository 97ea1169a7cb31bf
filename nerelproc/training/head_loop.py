"""The one loop that trains a head on frozen encoder states: the entity-pair CLS head
(``pairs.py``), the relation head (``relations.py``), the span NER head (``spans.py``) and the
pair study (``experiments/cls_pairs.py``). Each head brings its model and its loss; the loop owns the
rest, the same for all: the seeds, AdamW with a one-cycle schedule, batches of whole
documents in a fresh random order each epoch, the log line and when to evaluate.
"""

import time
from contextlib import contextmanager

import numpy as np
import torch


def rows_by_document(doc):
    """``[(document, its pair rows)]`` for each document that has a pair, in document order."""
    return [(int(d), torch.from_numpy(rows)) for d in np.unique(doc) if len(rows := np.flatnonzero(doc == d))]


@contextmanager
def one_thread():
    """Train a head on one torch thread: with torch's two, two runs of the same command on the
    same states parted after epoch 6 (the order of floating-point sums) and chose different
    heads; with one, three runs wrote the same bytes, at the same speed here (about 20 s an
    epoch on NEREL)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def fit_head(build, by_doc, loss, *, epochs, seed, learning_rate, docs_per_batch, evaluate, log, name,
             evaluate_every=1, single_thread=True):
    """Train the model ``build()`` makes; returns it.

    ``by_doc``: ``[(document, rows)]`` (``rows_by_document``); ``loss(model, batch, rng)``: the
    head's loss on a batch of those, ``rng`` the loop's numpy generator (for sampling);
    ``evaluate(epoch, model)`` runs every ``evaluate_every`` epochs and after the last.
    Seeds: torch's with ``seed`` before the model is built, numpy's generator from ``seed``.
    ``single_thread``: on one torch thread (``one_thread``), so that a command gives the same bytes."""
    with one_thread() if single_thread else _as_it_is():
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        model = build()
        optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
        steps = epochs * -(-len(by_doc) // docs_per_batch)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate, total_steps=steps,
                                                       pct_start=0.1)
        for epoch in range(1, epochs + 1):
            model.train()
            start = time.time()
            order = rng.permutation(len(by_doc))
            for i in range(0, len(order), docs_per_batch):
                value = loss(model, [by_doc[k] for k in order[i : i + docs_per_batch]], rng)
                optimizer.zero_grad()
                value.backward()
                optimizer.step()
                schedule.step()
            log(f"{name} epoch {epoch}: loss {value.item():.4f}, {time.time() - start:.0f} s")
            if epoch % evaluate_every == 0 or epoch == epochs:
                evaluate(epoch, model)
    return model


@contextmanager
def _as_it_is():
    yield
