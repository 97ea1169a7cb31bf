"""An experiment: a deeper NER head on the shipped model's frozen int8 encoder states.

    python -m experiments.ner_head models/nerel-e5-small-int8

The shipped NER head is one linear layer. Here one transformer layer (pre-norm, 6 heads) sits
between the frozen states and that same linear layer, its output projections initialised to
zero, so that training starts from exactly the shipped head's predictions. It trains on
train's gold tags, window by window (510 tokens, as the runtime sees them); every epoch dev
is decoded as ``annotate`` decodes (constrained Viterbi, the O bias tuned on dev) and scored
with ``nerelproc score``'s nested micro-F1. The best dev epoch is then read on test.

Uses the encoder states cached by ``experiments/cls_pairs.py`` (``runs/cls_pairs/``).
Writes ``reports/ner_head.json``.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from experiments.cls_pairs import DATA, document_states
from nerelproc.evaluation.score import HEADLINE, dig, score_documents
from nerelproc.io.document import Document
from nerelproc.io.readers import read_documents
from nerelproc.runtime.decoding import constrained_tags, uncertain_pairs
from nerelproc.runtime.heads import Heads
from nerelproc.runtime.tagging import TagScheme
from nerelproc.runtime.windows import plan_windows

O_BIASES = (0.0, 0.25, 0.5, 0.75, 1.0)
EPOCHS, WINDOW = 8, 510


class DeeperHead(nn.Module):
    def __init__(self, heads, channels):
        super().__init__()
        hidden = heads.ner_weight.shape[0]
        self.layer = nn.TransformerEncoderLayer(hidden, 6, 2 * hidden, dropout=0.1, batch_first=True, norm_first=True)
        for projection in (self.layer.self_attn.out_proj, self.layer.linear2):
            nn.init.zeros_(projection.weight), nn.init.zeros_(projection.bias)  # starts as the shipped head
        self.out = nn.Linear(hidden, channels * 3)
        self.out.weight.data = torch.tensor(heads.ner_weight.T.copy())
        self.out.bias.data = torch.tensor(heads.ner_bias.copy())

    def forward(self, states):  # [batch, tokens, hidden] -> [batch, tokens, channels, 3]
        return self.out(self.layer(states)).unflatten(-1, (-1, 3))


def log_probs(model, states):
    """Per token of a document, log P(O/B/I) from its owning window (as the runtime merges)."""
    out = np.zeros((len(states), model.out.out_features // 3, 3), np.float32)
    model.eval()
    with torch.no_grad():
        for w in plan_windows(len(states), WINDOW + 2):
            x = torch.tensor(states[w.start : w.end].astype(np.float32))[None]
            y = torch.log_softmax(model(x), -1)[0].numpy()
            out[w.own_start : w.own_end] = y[w.own_start - w.start : w.own_end - w.start]
    return out


def nested_f1(model, records, docs, scheme):
    pieces = [[uncertain_pairs(log_probs(model, r["states"]), 0)] for r in records]
    scores = {}
    for o_bias in O_BIASES:
        predicted = []
        for r, d, p in zip(records, docs, pieces):
            tags = constrained_tags(len(r["states"]), scheme.channels, p, o_bias)
            predicted.append(Document(d.id, d.text, scheme.decode(tags, r["offsets"], d.text)))
        scores[o_bias] = dig(score_documents(predicted, docs, warn=lambda m: None), HEADLINE["ner"])
    return scores


def coarse_f1(model, records, docs, scheme, o_bias):
    predicted = []
    for r, d in zip(records, docs):
        tags = constrained_tags(len(r["states"]), scheme.channels, [uncertain_pairs(log_probs(model, r["states"]), 0)], o_bias)
        predicted.append(Document(d.id, d.text, scheme.decode(tags, r["offsets"], d.text)))
    scores = score_documents(predicted, docs, warn=lambda m: None)
    return {name: round(dig(scores, path), 4) for name, path in HEADLINE.items() if name in ("ner", "coarse")}


def main(model_dir):
    torch.manual_seed(0)
    config = json.loads((Path(model_dir) / "nerelproc.json").read_text())
    scheme = TagScheme(config["entity_types"], config["layers"])
    heads = Heads.load(Path(model_dir) / "heads.npz")
    splits = {s: document_states(model_dir, s) for s in ("train", "dev", "test")}
    docs = {s: list(read_documents(DATA / f"{s}.jsonl")) for s in splits}
    windows = []  # (states, tags) of train's windows
    for r, d in zip(splits["train"], docs["train"]):
        tags = scheme.encode(d.entities, r["offsets"])
        for start in range(0, len(tags), WINDOW):
            windows.append((torch.tensor(r["states"][start : start + WINDOW].astype(np.float32)),
                            torch.tensor(tags[start : start + WINDOW].astype(np.int64))))
    model = DeeperHead(heads, scheme.channels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4, weight_decay=0.01)
    report = {"shipped head": nested_f1(model, splits["dev"], docs["dev"], scheme)}
    print(f"epoch 0 (the shipped head): dev nested {report['shipped head']}", file=sys.stderr)
    best, rng = (max(report["shipped head"].values()), 0, None), np.random.default_rng(0)
    for epoch in range(1, EPOCHS + 1):
        model.train()
        start = time.time()
        for i in rng.permutation(len(windows)):
            states, tags = windows[i]
            loss = nn.functional.cross_entropy(model(states[None])[0].reshape(-1, 3), tags.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        report[f"epoch {epoch}"] = scores = nested_f1(model, splits["dev"], docs["dev"], scheme)
        print(f"epoch {epoch}: dev nested {scores} ({time.time() - start:.0f} s)", file=sys.stderr)
        if max(scores.values()) > best[0]:
            best = (max(scores.values()), epoch, {k: v.clone() for k, v in model.state_dict().items()})
    _, epoch, state = best
    if state is not None:
        model.load_state_dict(state)
    o_bias = max(report[f"epoch {epoch}" if epoch else "shipped head"].items(), key=lambda kv: (kv[1], -kv[0]))[0]
    report["chosen"] = {"epoch": epoch, "o_bias": o_bias, "test": coarse_f1(model, splits["test"], docs["test"], scheme, o_bias)}
    print(f"chosen on dev: epoch {epoch}, O bias {o_bias}; test {report['chosen']['test']}", file=sys.stderr)
    Path("reports/ner_head.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "models/nerel-e5-small-int8")
