"""The training loop of the joint model: setup, the step, the epoch loop with dev selection.

One code path serves every configuration of the multi-task experiment:
``tasks`` picks NER, CLS or both; ``weighting`` picks uncertainty or fixed weights.
Checkpoints within an epoch (``checkpoint_every``) and after it hold everything needed to
continue exactly (``checkpoints``): a run killed at any moment loses at most the work since
the last one. Data preparation is in ``data``, evaluation and threshold tuning in
``evaluate``, the ``nerelproc train`` orchestration in ``run``, the start from an exported
int8 model in ``from_bundle``.
"""

import hashlib
import json
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from nerelproc.evaluation.score import headline
from nerelproc.io import schema
from nerelproc.io.writers import dumps_line
from nerelproc.machine import cpu_model
from nerelproc.runtime.bundle import Bundle
from nerelproc.runtime.heads import Heads
from nerelproc.runtime.predictor import Predictor
from nerelproc.runtime.spans import SPANS_FILE, SpanHead
from nerelproc.runtime.tagging import TagScheme
from nerelproc.runtime.windows import ner_tokenizer, window_inputs
from nerelproc.training.calibration import set_decisions
from nerelproc.training.checkpoints import load_checkpoint, rewrite_metrics_log, save_checkpoint, seed_everything
from nerelproc.training.config import CHECKPOINT, SetupError, checkpoint_interval
from nerelproc.training.data import batches, frozen_layer_cache, make_examples, recased
from nerelproc.training.evaluate import evaluate, selection_score
from nerelproc.training.from_bundle import is_bundle, load_bundle_encoder
from nerelproc.training.distill import soft_cls_loss, soft_ner_loss, soft_tag_tensor, teacher_outputs
from nerelproc.training.model import (JointModel, cls_loss, keep_first_layers, load_encoder, ner_loss,
                                      set_attention_dropout)
from nerelproc.training.spans import SpanModel, window_targets

# The threshold of a new span head until dev tunes it after each epoch (the bundled model's
# span head was chosen at 0.45 on NEREL dev)
SPAN_THRESHOLD = 0.45

TIMED_STEPS = (1, 4)  # a step is timed from the end of a sitting's step 1 to that of step 4: step 1 warms up


@dataclass
class EpochPosition:
    """Where a run stands inside an epoch: its batches in order, how many are done, their losses."""

    order: list  # the epoch's batches (lists of training-document indices)
    step: int = 0
    losses: list = field(default_factory=list)  # (total, {task: loss}) of the steps done
    seconds: float = 0.0  # of training in this epoch so far, over sittings


class Trainer:
    def __init__(self, config, train_docs, dev_docs, out_dir, log=None):
        self.config = config
        self.out_dir = Path(out_dir)
        self.log = log or (lambda message: tqdm.write(message, file=sys.stderr))
        if config.threads:
            torch.set_num_threads(config.threads)
        self.checkpoint_interval = checkpoint_interval(config.checkpoint_every)
        seed_everything(config.seed)
        self.encoder, self.hf_tokenizer, self.cls_id, self.sep_id = initial_encoder(config)
        if config.encoder_layers:
            keep_first_layers(self.encoder, config.encoder_layers)
        if config.attention_dropout >= 0:
            set_attention_dropout(self.encoder, config.attention_dropout)
        self.tokenizer = ner_tokenizer(self.hf_tokenizer.backend_tokenizer)
        self.entity_types, self.labels = schema.entity_types(), schema.relation_types()
        self.scheme = TagScheme(self.entity_types, config.layers)
        if config.max_train_docs:
            train_docs = train_docs[: config.max_train_docs]
        if config.recase:
            train_docs, counts = recased(train_docs, config.recase, config.seed)
            self.log(f"train: {counts['lower']} training documents lower-cased, {counts['upper']} upper-cased")
        make = lambda docs: make_examples(  # noqa: E731
            docs, self.tokenizer, self.scheme, self.labels, config.max_length, config.stride or None
        )
        self.train, self.dev = make(train_docs), make(dev_docs)
        self.teacher = teacher_outputs(config.teacher, self.train, config.threads) if config.teacher else None
        self.device = torch.device(
            ("cuda" if torch.cuda.is_available() else "cpu") if config.device == "auto" else config.device
        )
        if config.precision == "bf16" and self.device.type == "cpu" and not native_cpu_bf16():
            self.log("train: this CPU has no native bf16 (AVX-512-BF16 or AMX): bf16 autocast is emulated and "
                     "runs several times slower than fp32 here; use --precision fp32")
        self.span_threshold = SPAN_THRESHOLD  # with a span head: where its model starts, before dev tunes it
        span = self._span_model() if config.span_head else None
        self.model = JointModel(self.encoder, self.scheme.channels, len(self.labels), config.freeze_layers, span)
        self.model.to(self.device)
        self.span_targets = None  # per training example and window: its candidate spans and their classes
        if span is not None:
            self.span_targets = [window_targets(e.document, e.encoded.offsets, e.windows, self.entity_types,
                                                span.max_width)[0] for e in self.train]
        self.model.init_biases(*self._priors())
        if config.init:  # a new schedule from trained weights: heads and σ's too, the optimiser afresh
            self._load_init(Path(config.init))
        self.optimizer, self.scheduler = self._optimizer()
        self.lower_cache = None
        if config.freeze_layers:
            self.lower_cache = frozen_layer_cache(self.model, self.encoder, self.tokenizer, self.train, config,
                                                  self.cls_id, self.sep_id, self.device)
        self.history, self.epoch, self.best, self.stale = [], 0, -1.0, 0
        self.position = None  # an EpochPosition while an epoch is under way
        self.train_fingerprint = _fingerprint(self.train)

    def _span_model(self):
        """A span head to train on the encoder's states: ``--init``'s own (``spans.npz``) where it
        has one, else a new one (the shapes of ``training/spans.py``)."""
        hidden, n_types = self.encoder.config.hidden_size, len(self.entity_types)
        saved = Path(self.config.init) / SPANS_FILE if self.config.init else None
        if saved is None or not saved.is_file():
            self.log("train: a new span head")
            return SpanModel(hidden, n_types)
        head = SpanHead.load(saved)
        if head.n_types != n_types or head.token_weight.shape[0] != hidden:
            raise SetupError(f"--init {self.config.init}: its {SPANS_FILE} does not fit this encoder and schema")
        self.log(f"train: the span head of {saved}")
        self.span_threshold = Bundle.load(self.config.init).span_threshold or SPAN_THRESHOLD
        model = SpanModel(hidden, n_types, width=len(head.hidden_bias), max_width=head.max_width)
        model.load_head(head)
        return model

    def _load_init(self, path):
        """The heads and σ's of the model at ``path`` (its encoder is already loaded)."""
        saved = Bundle.load(path)
        if (list(saved.entity_types), list(saved.relation_types)) != (list(self.entity_types), list(self.labels)):
            raise SetupError(f"--init {path}: its entity or relation types are not this version's NEREL schema")
        if saved.layers != self.config.layers:
            raise SetupError(f"--init {path} has {saved.layers} nesting layers per type; this run asks for "
                             f"{self.config.layers} (--layers must match the model it starts from)")
        self.model.load_heads(Heads.load(path / "heads.npz"))
        if saved.log_vars is not None:
            with torch.no_grad():
                self.model.log_vars.copy_(torch.tensor(saved.log_vars))

    # -- setup -------------------------------------------------------------------

    def _priors(self):
        counts = np.ones((self.scheme.channels, 3))
        for example in self.train:
            for tag in range(3):
                counts[:, tag] += (example.tags == tag).sum(0)
        tag_prior = counts / counts.sum(1, keepdims=True)
        label_prior = np.mean([e.target for e in self.train], 0)
        return tag_prior, label_prior

    def _optimizer(self):
        c = self.config
        head_params = [self.model.ner.weight, self.model.ner.bias, self.model.cls_query, self.model.cls_weight]
        if self.model.span is not None:
            head_params += list(self.model.span.parameters())
        groups = [
            *self._encoder_groups(),
            {"params": head_params, "lr": c.head_lr, "weight_decay": c.weight_decay},
            {"params": [self.model.cls_bias], "lr": c.head_lr, "weight_decay": 0.0},
            {"params": [self.model.log_vars], "lr": c.sigma_lr, "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups)
        steps_per_epoch = sum(1 for _ in batches(self.train, c.batch_windows, np.random.default_rng(0)))
        self.steps_per_epoch = steps_per_epoch
        total = max(1, steps_per_epoch * c.epochs)
        warmup = max(1, int(total * c.warmup))
        schedule = lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup)))  # noqa: E731
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

    def _encoder_groups(self):
        """The encoder's trainable parameters: one group at ``lr``, or with ``lr_decay`` < 1 one
        group per depth (embeddings 0, layer i at i + 1, anything above the layers at the top),
        each at ``lr * lr_decay ** (top - depth)``: lower layers move less (layer-wise decay)."""
        c = self.config
        if c.lr_decay == 1.0:
            params = [p for p in self.model.encoder.parameters() if p.requires_grad]
            return [{"params": params, "lr": c.lr, "weight_decay": c.weight_decay}]
        top = len(self.model.encoder.encoder.layer)
        by_depth = {}
        for name, param in self.model.encoder.named_parameters():
            if not param.requires_grad:
                continue
            layer = re.match(r"encoder\.layer\.(\d+)\.", name)
            depth = 0 if name.startswith("embeddings.") else int(layer.group(1)) + 1 if layer else top
            by_depth.setdefault(depth, []).append(param)
        return [{"params": params, "lr": c.lr * c.lr_decay ** (top - depth), "weight_decay": c.weight_decay}
                for depth, params in sorted(by_depth.items())]

    # -- one step ----------------------------------------------------------------

    def _batch_tensors(self, indices):
        rows = []  # (example index, window number, window)
        for i in indices:
            rows.extend((i, k, w) for k, w in enumerate(self.train[i].windows))
        length = max(w.end - w.start for _, _, w in rows) + 2
        n_channels = self.scheme.channels
        input_ids = torch.full((len(rows), length), self.hf_tokenizer.pad_token_id or 0, dtype=torch.long)
        attention = torch.zeros((len(rows), length), dtype=torch.long)
        tags = torch.zeros((len(rows), length, n_channels), dtype=torch.long)
        content = torch.zeros((len(rows), length))  # real tokens, no specials
        owned = torch.zeros((len(rows), length), dtype=torch.bool)
        lower = None
        if self.lower_cache is not None:
            lower = torch.zeros((len(rows), length, self.encoder.config.hidden_size), device=self.device)
        for row, (i, k, w) in enumerate(rows):
            example = self.train[i]
            ids = window_inputs(example.encoded, w, self.cls_id, self.sep_id)
            n = len(ids)
            input_ids[row, :n] = torch.as_tensor(ids)
            attention[row, :n] = 1
            tags[row, 1 : n - 1] = torch.as_tensor(example.tags[w.start : w.end])
            content[row, 1 : n - 1] = 1
            owned[row, 1 + w.own_start - w.start : 1 + w.own_end - w.start] = True
            if lower is not None:
                lower[row, :n] = self.lower_cache[i][k]
        doc_rows = {}
        for row, (i, _, _) in enumerate(rows):
            doc_rows.setdefault(i, []).append(row)
        to = lambda t: t.to(self.device)  # noqa: E731
        soft = None
        if self.teacher is not None:
            soft = soft_tag_tensor(self.teacher, [(i, w) for i, _, w in rows], length, n_channels, self.device)
        spans = None
        if self.span_targets is not None:  # (row, tokens, first, last, target) per window
            spans = [(row, w.end - w.start, *(torch.from_numpy(a).to(self.device) for a in self.span_targets[i][k]))
                     for row, (i, k, w) in enumerate(rows)]
        return to(input_ids), to(attention), to(tags), to(content), to(owned), lower, doc_rows, soft, spans

    def losses(self, indices):
        """``{task: loss}`` of one batch of training documents, for the tasks being trained."""
        c = self.config
        input_ids, attention, tags, content, owned, lower, doc_rows, soft_tags, spans = self._batch_tensors(indices)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=c.precision == "bf16"):
            states = self.model.states(input_ids, attention, lower)
        states = states.float()  # the heads and losses in fp32
        losses = {}
        mix = lambda gold, taught: gold if taught is None else (1 - c.distill) * gold + c.distill * taught  # noqa: E731
        if "ner" in c.tasks:
            logits = self.model.ner_logits(states)
            taught = None if soft_tags is None else soft_ner_loss(logits, soft_tags, content)
            losses["ner"] = mix(ner_loss(logits, tags, content), taught)
            if spans is not None:  # both NER heads read the same states: one task, two losses
                losses["ner"] = losses["ner"] + self.model.span_loss(states, spans)
        if "cls" in c.tasks:
            logits = torch.stack([self.model.cls_logits(states[rows][owned[rows]]) for rows in doc_rows.values()])
            targets = torch.as_tensor(np.stack([self.train[i].target for i in doc_rows]), device=self.device)
            taught = None
            if self.teacher is not None:
                probs = torch.as_tensor(np.stack([self.teacher[i][1] for i in doc_rows]), device=self.device)
                taught = soft_cls_loss(logits, probs, c.cls_loss)
            losses["cls"] = mix(cls_loss(logits, targets, c.cls_loss), taught)
        return losses

    def _step(self, indices):
        c = self.config
        losses = self.losses(indices)
        total = self.model.combine(losses, c.weighting, c.weights)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], 1.0)
        self.optimizer.step()
        self.scheduler.step()
        return float(total.detach()), {task: float(loss.detach()) for task, loss in losses.items()}

    # -- evaluation --------------------------------------------------------------

    def predictor(self, thresholds=None):
        from nerelproc.runtime.encoders import torch_batch_encoder

        self.model.eval()
        encode_batch = torch_batch_encoder(self.model.states, self.hf_tokenizer.pad_token_id or 0, self.device)
        span_head = None if self.model.span is None else self.model.span.export()
        return Predictor(self.tokenizer, self.model.export_heads(), self.model_config(thresholds), encode_batch,
                         span_head=span_head)

    def evaluate(self, examples, thresholds=None):
        """``(scores, thresholds, tuning)``; thresholds are tuned on ``examples`` when not given (dev)."""
        return evaluate(self.predictor(), examples, self.labels, thresholds, self.config.seed)

    # -- the loop ----------------------------------------------------------------

    def fit(self, interrupt_after_steps=None, stop_after_epoch=None):
        """Train until ``epochs`` or early stopping; ``stop_after_epoch`` ends this sitting after
        that epoch's checkpoint (``--resume`` continues with the same data order and schedule).
        ``interrupt_after_steps`` raises ``KeyboardInterrupt`` after that many steps of this
        sitting, as a kill would (for tests)."""
        c = self.config
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "train_config.json").write_text(json.dumps(asdict(c), indent=1, ensure_ascii=False))
        if self.epoch == 0 and self.position is None:
            (self.out_dir / "metrics.jsonl").unlink(missing_ok=True)  # a fresh start logs afresh
        self.log(f"train: {describe_cpu(self.device)}")
        clock = StepClock(self, self.log)
        saved_at, saved_step = time.monotonic(), 0  # the last checkpoint of this sitting
        while self.epoch < c.epochs and self.stale < c.patience:
            if stop_after_epoch is not None and self.epoch >= stop_after_epoch:
                break
            self.model.train()
            if self.position is None:
                rng = np.random.default_rng(c.seed * 1000 + self.epoch)  # the same order after a resume
                order = [[int(i) for i in batch] for batch in batches(self.train, c.batch_windows, rng)]
                self.position = EpochPosition(order)
            position = self.position
            started = time.time() - position.seconds
            bar = tqdm(total=len(position.order), initial=position.step, desc=f"epoch {self.epoch + 1}",
                       file=sys.stderr)
            for indices in position.order[position.step :]:
                total, parts = self._step(indices)
                position.losses.append((total, parts))
                position.step += 1
                bar.update()
                bar.set_postfix(loss=f"{total:.3f}", **{k: f"{v:.3f}" for k, v in parts.items()})
                clock.stepped()
                if self._checkpoint_due(clock.steps - saved_step, time.monotonic() - saved_at):
                    position.seconds = time.time() - started
                    self.save_checkpoint()
                    saved_at, saved_step = time.monotonic(), clock.steps
                if interrupt_after_steps is not None and clock.steps >= interrupt_after_steps:
                    raise KeyboardInterrupt("interrupted on request")
            bar.close()
            position.seconds = train_seconds = time.time() - started
            if clock.steps > saved_step:  # a kill during the dev evaluation keeps the epoch's steps
                self.save_checkpoint()
                saved_at, saved_step = time.monotonic(), clock.steps
            evaluated = time.time()
            scores, thresholds, tuning = self.evaluate(self.dev)
            losses = position.losses
            self.epoch += 1
            self.position = None
            record = {
                "epoch": self.epoch,
                "train_loss": float(np.mean([t for t, _ in losses])),
                **{f"train_{k}_loss": float(np.mean([p[k] for _, p in losses])) for k in c.tasks},
                **headline(scores, "dev_{}_f1"),
                "thresholds_mode": tuning["mode"],
                "ner_o_bias": tuning.get("ner_o_bias"),
                **({"span_threshold": tuning["span_threshold"]} if "span_threshold" in tuning else {}),
                "log_vars": self.model.log_vars.detach().tolist(),
                "sigma": self.model.sigmas(),
                "epoch_seconds": train_seconds,
                "eval_seconds": time.time() - evaluated,
            }
            record["selection"] = selection_score(scores, c.tasks, tuning)
            record["dev_cls_cv"] = tuning["cv"][tuning["mode"]]
            self.history.append(record)
            with open(self.out_dir / "metrics.jsonl", "ab") as file:
                file.write(dumps_line(record))
            self.log(_summary(record))
            if record["selection"] > self.best:
                self.best, self.stale = record["selection"], 0
                self.save_model(self.out_dir / "best", thresholds, tuning)
            else:
                self.stale += 1
            self.save_checkpoint()
            saved_at, saved_step = time.monotonic(), clock.steps
            clock.epoch_done(record["eval_seconds"])
        return self.history

    def _checkpoint_due(self, steps, seconds):
        """Whether ``steps`` steps and ``seconds`` of wall time since the last checkpoint call for one."""
        kind, every = self.checkpoint_interval
        return every > 0 and (steps if kind == "steps" else seconds) >= every

    def steps_left(self):
        """Steps to the last epoch's end (early stopping may come sooner)."""
        in_epoch = len(self.position.order) - self.position.step if self.position else self.steps_per_epoch
        later = max(0, self.config.epochs - self.epoch - 1)
        return in_epoch + later * self.steps_per_epoch, later + 1

    @property
    def finished(self):
        return self.epoch >= self.config.epochs or self.stale >= self.config.patience

    # -- saving ------------------------------------------------------------------

    def model_config(self, thresholds=None, tuning=None):
        """The ``Bundle`` (nerelproc.json) of the model as it stands."""
        c = self.config
        bundle = Bundle(
            entity_types=list(self.entity_types),
            relation_types=list(self.labels),
            layers=c.layers,
            max_length=c.max_length,
            stride=c.stride or None,
            cls_id=self.cls_id,
            sep_id=self.sep_id,
            thresholds=[float(t) for t in (thresholds if thresholds is not None else [0.5] * len(self.labels))],
            thresholds_tuning=None,
            tasks=list(c.tasks),
            hidden_size=self.encoder.config.hidden_size,
        )
        if self.model.span is not None:  # until dev tunes it (set_decisions)
            bundle.span_threshold = self.span_threshold
        return set_decisions(bundle, thresholds, tuning, "dev, during training") if tuning else bundle

    def save_model(self, path, thresholds, tuning):
        """A directory transformers can load (``encoder/``) plus heads, labels, thresholds, config."""
        path = Path(path)
        (path / "encoder").mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(path / "encoder")
        self.hf_tokenizer.save_pretrained(path / "encoder")
        # the NER pre-split tokenizer, unindented: half the bytes of a bundled model's tokenizer
        self.tokenizer.save(str(path / "tokenizer.json"), pretty=False)
        self.model.export_heads().save(path / "heads.npz")
        if self.model.span is not None:
            self.model.span.export().save(path / SPANS_FILE)
        bundle = self.model_config(thresholds, tuning)
        bundle.train_config = asdict(self.config)
        bundle.log_vars = self.model.log_vars.detach().tolist()
        bundle.save(path)

    def save_checkpoint(self):
        progress = {"epoch": self.epoch, "best": self.best, "stale": self.stale, "history": self.history,
                    "position": asdict(self.position) if self.position else None,
                    "train_fingerprint": self.train_fingerprint}
        save_checkpoint(self.out_dir / CHECKPOINT, self.model, self.optimizer, self.scheduler, progress)

    def resume(self):
        path = self.out_dir / CHECKPOINT
        if not path.exists():
            return False
        progress = load_checkpoint(path, self.model, self.optimizer, self.scheduler, self.device)
        saved = progress.get("train_fingerprint")
        if saved is not None and saved != self.train_fingerprint:
            raise SetupError(f"{path} was written while training on other documents: resume with the same "
                             "--train (and --max-train-docs)")
        self.epoch, self.best, self.stale, self.history = (progress[k] for k in ("epoch", "best", "stale", "history"))
        self.position = EpochPosition(**progress["position"]) if progress.get("position") else None
        rewrite_metrics_log(self.out_dir / "metrics.jsonl", self.history)
        return True

    def where(self):
        """Where the run stands, in words."""
        if self.position is None:
            return f"after epoch {self.epoch}"
        return f"in epoch {self.epoch + 1}, after step {self.position.step} of {len(self.position.order)}"


def _summary(record):
    sigma = " ".join(f"σ_{k}={v:.3f}" for k, v in record["sigma"].items())
    return (
        f"epoch {record['epoch']}: loss {record['train_loss']:.3f} | dev NER {record['dev_ner_f1']:.4f} "
        f"flat {record['dev_flat_f1']:.4f} | CLS micro {record['dev_cls_micro_f1']:.4f} "
        f"macro {record['dev_cls_macro_f1']:.4f} | {sigma} | {record['epoch_seconds']:.0f}s"
    )


def initial_encoder(config):
    """``(encoder, hf tokenizer, cls id, sep id)``: ``init``'s encoder (a training output's
    ``encoder/``, or an exported model's int8 ``ct2/`` dequantized), else ``config.encoder``."""
    if not config.init:
        return load_encoder(config.encoder)
    init = Path(config.init)
    if (init / "encoder").is_dir():
        return load_encoder(str(init / "encoder"))
    if is_bundle(init):
        return load_bundle_encoder(init)
    raise FileNotFoundError(f"--init {init}: neither a model written by train (encoder/, heads.npz) "
                            "nor one written by export (ct2/model.bin, heads.npz)")


def _fingerprint(examples):
    """What identifies the training documents, in their order: a resume must see the same."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(example.document.text.encode() + b"\0")
    return digest.hexdigest()


class StepClock:
    """Times this sitting's steps (wall and process CPU time) and logs the time per step and
    the estimated time to the run's end: once steps ``TIMED_STEPS`` are done, then after each epoch."""

    def __init__(self, trainer, log):
        self.trainer, self.log = trainer, log
        self.steps, self.per_step, self.eval_seconds = 0, None, None
        self.marks = {}

    def stepped(self):
        self.steps += 1
        if self.steps in TIMED_STEPS:
            self.marks[self.steps] = (time.perf_counter(), time.process_time())
        if self.steps == TIMED_STEPS[1] and TIMED_STEPS[0] in self.marks:
            (wall0, cpu0), (wall1, cpu1) = self.marks[TIMED_STEPS[0]], self.marks[TIMED_STEPS[1]]
            n = TIMED_STEPS[1] - TIMED_STEPS[0]
            self.per_step = (wall1 - wall0) / n
            self.log(f"train: {self.per_step:.2f} s a step (process CPU {(cpu1 - cpu0) / n:.2f} s; "
                     f"steps {TIMED_STEPS[0] + 1}-{TIMED_STEPS[1]} of this sitting); {self.estimate()}")

    def epoch_done(self, eval_seconds):
        self.eval_seconds = eval_seconds
        if self.per_step is not None and not self.trainer.finished:
            self.log(f"train: {self.estimate()}")

    def estimate(self):
        steps, epochs = self.trainer.steps_left()
        seconds = steps * self.per_step + (self.eval_seconds or 0.0) * epochs
        evaluation = "dev evaluations included" if self.eval_seconds is not None else \
            f"plus {epochs} dev evaluation{'s' if epochs > 1 else ''}"
        return f"{steps} steps to go over {epochs} epoch{'s' if epochs > 1 else ''}: about " \
               f"{_duration(seconds)} to the end of the run ({evaluation}; early stopping may end it sooner)"


def _duration(seconds):
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{max(seconds, 0) / 60:.1f} min"


def describe_cpu(device):
    """The processor, torch's CPU capability, native bf16 or not, threads: what sets the step time."""
    name = cpu_model()
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except AttributeError:
        capability = "unknown"
    bf16 = "yes" if native_cpu_bf16() else "no (bf16 is emulated: use fp32)"
    return (f"CPU {name}, torch capability {capability}, native bf16: {bf16}; "
            f"{torch.get_num_threads()} torch threads; training on {device}")


def native_cpu_bf16():
    """Whether this CPU computes bf16 in hardware. Measured on a 2-core AMD EPYC with AVX2 only:
    a bf16 training step of 8 windows took 143-236 s, an fp32 one 27-30 s
    (reports/multitask_full_budget.md)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch without the query: assume it is
        return True
