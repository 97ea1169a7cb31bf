"""JointModel: one encoder, a nested-NER head and a document CLS head (PyTorch), and
optionally a span head (``spans.SpanModel``) for the nested NER beside the tagging head.

The heads compute the same functions as ``heads.Heads`` (numpy); ``export_heads``
hands their parameters over. The loss combines the two tasks either with fixed
weights or with homoscedastic uncertainty weighting (Kendall, Gal & Cipolla 2018),
in the classification form: ``sum_i exp(-s_i) * L_i + s_i / 2`` with ``s_i = log sigma_i^2``
learned per task (``s`` is the parameter, never sigma). The total may go negative.

Lower encoder layers can be frozen; their outputs are then computed once per window
and cached by the trainer, and only ``upper`` runs in each step.
"""

import copy
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from nerelproc.runtime.heads import Heads

TASKS = ("ner", "cls")


class _Passthrough(nn.Module):
    """Stands in for the embeddings: the cached lower-layer states come in as ``inputs_embeds``."""

    def forward(self, input_ids=None, inputs_embeds=None, **kwargs):
        return inputs_embeds


def _encoder_slice(encoder, layers, embeddings):
    """A shallow copy of a BERT-style encoder running only ``layers`` (parameters shared)."""
    part = copy.copy(encoder)
    part._modules = dict(encoder._modules)
    part.embeddings = embeddings
    stack = copy.copy(encoder.encoder)
    stack._modules = dict(encoder.encoder._modules)
    stack.layer = nn.ModuleList(layers)
    part.encoder = stack
    return part


class JointModel(nn.Module):
    def __init__(self, encoder, n_channels, n_labels, freeze_layers=0, span=None):
        super().__init__()
        hidden = encoder.config.hidden_size
        self.encoder = encoder
        self.ner = nn.Linear(hidden, n_channels * 3)
        self.span = span  # a spans.SpanModel trained on the same states, or None
        self.cls_query = nn.Parameter(torch.randn(n_labels, hidden) * hidden**-0.5)
        self.cls_weight = nn.Parameter(torch.randn(n_labels, hidden) * hidden**-0.5)
        self.cls_bias = nn.Parameter(torch.zeros(n_labels))
        self.log_vars = nn.Parameter(torch.zeros(len(TASKS)))  # s = log sigma^2, per task
        self.freeze_layers = freeze_layers
        if freeze_layers:
            layers = encoder.encoder.layer
            for module in [encoder.embeddings, *layers[:freeze_layers]]:
                module.requires_grad_(False)
            # Not registered as sub-modules: they share the encoder's parameters, and
            # registering them would save every frozen weight twice.
            object.__setattr__(self, "lower", _encoder_slice(encoder, layers[:freeze_layers], encoder.embeddings))
            object.__setattr__(self, "upper", _encoder_slice(encoder, layers[freeze_layers:], _Passthrough()))

    def init_biases(self, tag_prior, label_prior):
        """Start at the label priors: log P(tag) per channel, log-odds per relation type.

        Without this the early all-"O" gradients swamp NER and CLS sits at 0.5 (seen in a pilot run).
        """
        with torch.no_grad():
            self.ner.bias.copy_(torch.as_tensor(np.log(np.clip(tag_prior, 1e-6, 1)), dtype=torch.float32).reshape(-1))
            p = np.clip(label_prior, 1e-4, 1 - 1e-4)
            self.cls_bias.copy_(torch.as_tensor(np.log(p / (1 - p)), dtype=torch.float32))

    # -- encoder ---------------------------------------------------------------

    @torch.no_grad()
    def lower_states(self, input_ids, attention_mask):
        """Outputs of the frozen layers (cached by the trainer)."""
        return self.lower(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def states(self, input_ids, attention_mask, lower=None):
        """Token states ``[windows, length, hidden]``; from cached ``lower`` states if given."""
        if lower is not None:
            return self.upper(inputs_embeds=lower, attention_mask=attention_mask).last_hidden_state
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    # -- heads (same math as heads.Heads) --------------------------------------

    def ner_logits(self, states):
        return self.ner(states).unflatten(-1, (-1, 3))  # [..., channels, 3]

    def span_loss(self, states, windows):
        """Cross-entropy of the span head over every candidate span of the ``windows``, each
        ``(row, tokens, first, last, target)``: a row of ``states`` (``[rows, length, hidden]``, its
        first token ``<s>``), the window's token count and its candidates (``spans.window_targets``).
        The head reads the whole window, as at runtime: a span's right neighbour may lie past it."""
        logits, targets = [], []
        for row, tokens, first, last, target in windows:
            if len(first):
                logits.append(self.span(states[row, 1 : 1 + tokens], first, last))
                targets.append(target)
        if not logits:
            return states.sum() * 0.0
        target = torch.cat(targets)
        return F.cross_entropy(torch.cat(logits), target, reduction="sum") / len(target)

    def cls_logits(self, states):
        """``[tokens, hidden]`` of one whole document -> ``[labels]``."""
        if states.shape[0] == 0:
            return self.cls_bias
        attention = torch.softmax(states @ self.cls_query.T, dim=0)  # [tokens, labels]
        pooled = attention.T @ states  # [labels, hidden]
        return (pooled * self.cls_weight).sum(-1) + self.cls_bias

    # -- loss ------------------------------------------------------------------

    def combine(self, losses, weighting="uncertainty", weights=(1.0, 1.0)):
        """Total loss from ``{"ner": L, "cls": L}`` (only the tasks being trained)."""
        total = 0.0
        for index, task in enumerate(TASKS):
            if task not in losses:
                continue
            if weighting == "uncertainty" and len(losses) > 1:
                s = self.log_vars[index]
                total = total + torch.exp(-s) * losses[task] + s / 2
            else:
                total = total + weights[index] * losses[task]
        return total

    def sigmas(self):
        return {task: math.exp(0.5 * s) for task, s in zip(TASKS, self.log_vars.detach().tolist())}

    def export_heads(self):
        to_numpy = lambda t: t.detach().cpu().float().numpy()  # noqa: E731
        return Heads(
            ner_weight=to_numpy(self.ner.weight.T),
            ner_bias=to_numpy(self.ner.bias),
            cls_query=to_numpy(self.cls_query),
            cls_weight=to_numpy(self.cls_weight),
            cls_bias=to_numpy(self.cls_bias),
        )

    def load_heads(self, heads):
        with torch.no_grad():
            self.ner.weight.copy_(torch.from_numpy(heads.ner_weight.T.copy()))
            self.ner.bias.copy_(torch.from_numpy(heads.ner_bias))
            self.cls_query.copy_(torch.from_numpy(heads.cls_query))
            self.cls_weight.copy_(torch.from_numpy(heads.cls_weight))
            self.cls_bias.copy_(torch.from_numpy(heads.cls_bias))


def ner_loss(logits, tags, mask):
    """Cross-entropy *summed* over channels, averaged over real tokens.

    Averaging over the 87 channels makes the gradient ~87x smaller and NER learns
    nothing in an epoch (seen in a pilot run); summing fixes it.
    """
    per_channel = F.cross_entropy(logits.flatten(0, -2), tags.flatten().long(), reduction="none")
    per_token = per_channel.view(tags.shape).sum(-1)
    return (per_token * mask).sum() / mask.sum().clamp(min=1)


def cls_loss(logits, targets, over_labels="sum"):
    """Binary cross-entropy averaged over documents; summed over labels (the default) or averaged.

    Summed, the CLS gradient on the shared layers starts ~20x the NER one
    (reports/multitask_gradients.md); "mean" divides it by the number of labels.
    """
    loss = F.binary_cross_entropy_with_logits(logits, targets, reduction="mean")
    return loss * logits.shape[-1] if over_labels == "sum" else loss


def load_encoder(name):
    """(HF model, fast tokenizer, cls id, sep id) for a path or hub name."""
    from transformers import AutoModel, AutoTokenizer

    if Path(name).exists():
        path = name
    else:
        from nerelproc.training.encoder import resolve_encoder

        path = resolve_encoder(name)
    hf_tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, add_pooling_layer=False)
    return model, hf_tokenizer, hf_tokenizer.cls_token_id, hf_tokenizer.sep_token_id


def keep_first_layers(encoder, n):
    """Cut a BERT-style encoder to its first ``n`` layers, in place (a student from its teacher)."""
    layers = encoder.encoder.layer
    if not 0 < n <= len(layers):
        raise ValueError(f"the encoder has {len(layers)} layers: cannot keep {n}")
    encoder.encoder.layer = nn.ModuleList(list(layers)[:n])
    encoder.config.num_hidden_layers = n
    return encoder


def set_attention_dropout(encoder, p):
    """Dropout on the attention probabilities. At 0, scaled_dot_product_attention takes the fused
    kernel: a training step on 2 CPU cores ran 3x faster (fp32) and 5x (bf16) than at 0.1."""
    encoder.config.attention_probs_dropout_prob = p
    for module in encoder.modules():
        if type(module).__name__.endswith("SelfAttention") and isinstance(getattr(module, "dropout", None), torch.nn.Dropout):
            module.dropout.p = p
