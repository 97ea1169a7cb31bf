"""What a training run is asked to do: ``TrainConfig``, torch-free.

The grid of the multi-task study and ``experiment --analyse-only`` read it without
importing torch.
"""

import re
from dataclasses import dataclass

CHECKPOINT = "checkpoint.pt"


class SetupError(ValueError):
    """A run that cannot start or resume as asked (``--init``, ``--resume``): said in one line."""

CHECKPOINT_EVERY = re.compile(r"^(?:(?P<steps>\d+)|(?P<time>\d+(?:\.\d+)?)(?P<unit>[smh]))$")


def checkpoint_interval(text):
    """``("steps", n)`` or ``("seconds", s)`` from ``--checkpoint-every`` ("200", "10m", "90s", "1h");
    ``("steps", 0)``: only after each epoch."""
    match = CHECKPOINT_EVERY.match(str(text).strip())
    if not match:
        raise ValueError(f"checkpoint interval {text!r}: a number of steps (200) or a time (10m, 90s, 1h)")
    if match["steps"] is not None:
        return "steps", int(match["steps"])
    return "seconds", float(match["time"]) * {"s": 1, "m": 60, "h": 3600}[match["unit"]]


@dataclass
class TrainConfig:
    encoder: str = "default"
    init: str = ""  # a model directory written by train (encoder/) or export (ct2/): start from its weights
    encoder_layers: int = 0  # keep only the encoder's first N layers (a smaller, faster student); 0: all
    teacher: str = ""  # an exported model whose outputs the run learns from as well as the gold (distill.py)
    distill: float = 0.5  # with a teacher: the weight of its outputs in each task's loss, the gold's 1 - distill
    tasks: tuple = ("ner", "cls")
    weighting: str = "uncertainty"  # or "fixed"
    weights: tuple = (1.0, 1.0)  # fixed weights (ner, cls)
    seed: int = 13
    epochs: int = 10
    patience: int = 3
    max_length: int = 512
    stride: int = 0  # 0: three quarters of a window
    layers: int = 3  # nesting layers per entity type
    freeze_layers: int = 0
    batch_windows: int = 8
    lr: float = 1e-4  # encoder
    lr_decay: float = 1.0  # layer-wise: layer i of L trains at lr * lr_decay ** (L - i), embeddings as layer 0
    head_lr: float = 1e-3
    sigma_lr: float = 0.02  # the s = log sigma^2 move too slowly at head_lr (seen in a pilot run)
    weight_decay: float = 0.01
    warmup: float = 0.06  # share of all steps
    threads: int = 0  # 0: torch's default
    max_train_docs: int = 0  # 0: all (small values are for tests)
    recase: float = 0.0  # share of training documents re-cased: half lower-cased, half upper-cased (data.recased)
    device: str = "auto"  # "auto": cuda when available, else cpu
    cache_dir: str = ""  # where frozen-layer outputs are kept between runs ("" : in memory only)
    precision: str = "fp32"  # or "bf16": autocast the forward (weights and optimiser stay fp32)
    cls_loss: str = "sum"  # over labels (49x the per-label mean), or "mean": the CLS gradient 1/49 as large
    attention_dropout: float = -1.0  # < 0: the encoder's own; 0 lets torch use its fused attention kernel
    span_head: bool = False  # also train a span head (runtime/spans.py) on the encoder; the model's NER reads it
    checkpoint_every: str = "10m"  # within an epoch: every N steps ("200") or every so much wall time ("10m", "90s")
