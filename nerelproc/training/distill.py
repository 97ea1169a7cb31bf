"""Distillation: a student trained against a teacher model's outputs as well as the gold.

The teacher is an exported (int8) model run through the runtime, once over the training
documents: per token its NER tag probabilities (each window's owned tokens, as ``annotate``
merges them) and per document its CLS head's probabilities. The student's NER loss mixes the
cross-entropy to the gold tags with the cross-entropy to the teacher's tag distributions, its
CLS loss the binary cross-entropy to the gold labels with that to the teacher's probabilities
(Hinton et al. 2015, at temperature 1: the teacher's int8 outputs are what is kept).
"""

import sys

import numpy as np
import torch
from torch.nn import functional as F


def teacher_outputs(teacher_dir, examples, threads=0):
    """Per example ``(tag_probs [tokens, channels, 3] float16, cls_probs [labels] float32)``."""
    from tqdm import tqdm

    from nerelproc.runtime.bundle import load_predictor

    predictor = load_predictor(teacher_dir, threads=threads, pair_head=False, relation_head=False)
    outputs = []
    for example in tqdm(examples, desc="teacher outputs", unit="doc", file=sys.stderr):
        n_tokens = len(example.encoded.ids)
        tags = np.zeros((n_tokens, predictor.scheme.channels, 3), np.float16)
        state = None
        for state, k, states in predictor.windows_of(example.document.text):
            window = state.windows[k]
            if len(state.encoded.ids) != n_tokens:
                raise ValueError(f"teacher {teacher_dir}: its tokenizer splits document {example.document.id} "
                                 "differently from the student's")
            lo, hi = window.own_start - window.start, window.own_end - window.start
            tags[window.own_start : window.own_end] = np.exp(predictor.heads.ner_log_probs(states[lo:hi]))
        state = state or predictor._plan(example.document.text)
        outputs.append((tags, predictor.relation_scores(state).astype(np.float32)))
    return outputs


def soft_ner_loss(logits, probs, mask):
    """Cross-entropy to the teacher's tag distributions, summed over channels and averaged over
    real tokens (as ``model.ner_loss``)."""
    per_token = -(probs * F.log_softmax(logits, -1)).sum(-1).sum(-1)
    return (per_token * mask).sum() / mask.sum().clamp(min=1)


def soft_cls_loss(logits, probs, over_labels="sum"):
    loss = F.binary_cross_entropy_with_logits(logits, probs, reduction="mean")
    return loss * logits.shape[-1] if over_labels == "sum" else loss


def soft_tag_tensor(outputs, rows, length, n_channels, device):
    """``[rows, length, channels, 3]``: the teacher's tag probabilities laid out as the batch's
    windows (``<s>`` at 0); ``rows``: ``(example index, window)`` per row."""
    probs = torch.zeros((len(rows), length, n_channels, 3))
    for row, (i, window) in enumerate(rows):
        n = window.end - window.start
        probs[row, 1 : n + 1] = torch.from_numpy(outputs[i][0][window.start : window.end].astype(np.float32))
    return probs.to(device)
