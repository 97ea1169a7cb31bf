"""Training data: documents to examples (tokens, windows, tag and label targets), batches,
and the cache of the frozen layers' outputs (kept on disk, keyed by a hash of the setup)."""

import hashlib
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from nerelproc.io.document import Document
from nerelproc.io.readers import read_documents
from nerelproc.runtime.windows import encode, plan_windows, window_inputs


@dataclass
class Example:
    document: Document
    encoded: object
    windows: list
    tags: np.ndarray  # [tokens, channels]
    target: np.ndarray  # [labels]


def make_examples(documents, tokenizer, scheme, labels, max_length, stride):
    index = {label: i for i, label in enumerate(labels)}
    examples = []
    for document in documents:
        encoded = encode(tokenizer, document.text)
        target = np.zeros(len(labels), dtype=np.float32)
        for label in document.relation_labels():
            if label in index:
                target[index[label]] = 1
        examples.append(
            Example(
                document,
                encoded,
                plan_windows(len(encoded.ids), max_length, stride),
                scheme.encode(document.entities, encoded.offsets),
                target,
            )
        )
    return examples


def recased(documents, share, seed):
    """The documents with a share of them, drawn with ``seed``, written in one case: half of that
    share lower-cased, half upper-cased, so that the model also learns from text without its
    capitals (feeds, transcripts, headlines). ``str.lower``/``str.upper`` keep every offset of
    Russian and Latin text; a document whose length they would change ("ß" -> "SS") stays as it is.
    Returns the new list and how many documents were lower- and upper-cased."""
    if not 0 <= share <= 1:
        raise ValueError(f"recase share {share}: a number from 0 to 1")
    rng = np.random.default_rng(seed)
    drawn = rng.permutation(len(documents))[: round(share * len(documents))]
    case = {int(i): ("lower" if k % 2 == 0 else "upper") for k, i in enumerate(drawn)}
    out, counts = [], {"lower": 0, "upper": 0}
    for i, document in enumerate(documents):
        if i in case:
            text = getattr(document.text, case[i])()
            if len(text) == len(document.text):
                document = replace(document, text=text)
                counts[case[i]] += 1
        out.append(document)
    return out, counts


def batches(examples, batch_windows, rng):
    """Shuffled batches of whole documents, at most ``batch_windows`` windows each (or one doc)."""
    order = rng.permutation(len(examples))
    batch, count = [], 0
    for i in order:
        n = len(examples[i].windows)
        if batch and count + n > batch_windows:
            yield batch
            batch, count = [], 0
        batch.append(i)
        count += n
    if batch:
        yield batch


def load_documents(path):
    return list(read_documents(path))


def frozen_layer_cache(model, encoder, tokenizer, examples, config, cls_id, sep_id, device):
    """The frozen layers' outputs, from ``config.cache_dir`` when an identical setup left them there.

    Every run of the multi-task grid shares them: same encoder, data and windows.
    """
    if not config.cache_dir:
        return compute_frozen_layers(model, examples, cls_id, sep_id, device)
    key = hashlib.sha256()
    weights = encoder.get_input_embeddings().weight
    for part in (str(Path(encoder.name_or_path).resolve()), float(weights[:64].double().sum()),
                 config.freeze_layers,
                 config.max_length, config.stride, tokenizer.to_str()):
        key.update(str(part).encode())
    for example in examples:
        key.update(example.document.text.encode())
    path = Path(config.cache_dir) / f"lower-{key.hexdigest()[:16]}.pt"
    if path.exists():
        return [[t.to(device) for t in states] for states in torch.load(path)]
    cache = compute_frozen_layers(model, examples, cls_id, sep_id, device)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save([[t.cpu() for t in states] for states in cache], path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)
    return cache


@torch.no_grad()
def compute_frozen_layers(model, examples, cls_id, sep_id, device):
    """Frozen layers' outputs per training window, computed once (eval mode: no dropout)."""
    model.eval()
    cache = []
    for example in tqdm(examples, desc="caching frozen layers", file=sys.stderr, leave=False):
        states = []
        for window in example.windows:
            ids = torch.as_tensor(window_inputs(example.encoded, window, cls_id, sep_id))[None]
            ids = ids.to(device)
            states.append(model.lower_states(ids, torch.ones_like(ids))[0])
        cache.append(states)
    return cache
