"""Training the joint model: data, loop, evaluation, checkpoints, resume.

One code path serves every configuration of the multi-task experiment:
``tasks`` picks NER, CLS or both; ``weighting`` picks uncertainty or fixed weights.
A checkpoint after every epoch holds everything needed to continue exactly
(model, optimiser, scheduler, RNG states, history), because work on our machines is
cut off after 3 hours.
"""

import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from nerelproc.io import schema
from nerelproc.io.document import Document
from nerelproc.training.model import JointModel, cls_loss, ner_loss
from nerelproc.runtime.predictor import Predictor
from nerelproc.io.readers import read_documents
from nerelproc.runtime.tagging import TagScheme
from nerelproc.training.thresholds import tune
from nerelproc.runtime.windows import encode, ner_tokenizer, plan_windows, window_inputs
from nerelproc.io.writers import dumps_line

CHECKPOINT = "checkpoint.pt"


@dataclass
class TrainConfig:
    encoder: str = "default"
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
    head_lr: float = 1e-3
    sigma_lr: float = 0.02  # the s = log sigma^2 move too slowly at head_lr (issue 6)
    weight_decay: float = 0.01
    warmup: float = 0.06  # share of all steps
    threads: int = 0  # 0: torch's default
    max_train_docs: int = 0  # 0: all (small values are for tests)
    device: str = "auto"  # "auto": cuda when available, else cpu
    cache_dir: str = ""  # where frozen-layer outputs are kept between runs ("" : in memory only)
    precision: str = "fp32"  # or "bf16": autocast the forward (weights and optimiser stay fp32)
    attention_dropout: float = -1.0  # < 0: the encoder's own; 0 lets torch use its fused attention kernel
    extra: dict = field(default_factory=dict)


@dataclass
class Example:
    document: Document
    encoded: object
    windows: list
    tags: np.ndarray  # [tokens, channels]
    target: np.ndarray  # [labels]


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


def set_attention_dropout(encoder, p):
    """Dropout on the attention probabilities. At 0, scaled_dot_product_attention takes the fused
    kernel: a training step on 2 CPU cores ran 3x faster (fp32) and 5x (bf16) than at 0.1."""
    encoder.config.attention_probs_dropout_prob = p
    for module in encoder.modules():
        if type(module).__name__.endswith("SelfAttention") and isinstance(getattr(module, "dropout", None), torch.nn.Dropout):
            module.dropout.p = p


def make_examples(documents, tokenizer, scheme, labels, max_length, stride):
    index = {label: i for i, label in enumerate(labels)}
    examples = []
    for document in documents:
        encoded = encode(tokenizer, document.text)
        target = np.zeros(len(labels), dtype=np.float32)
        for label in document.gold_relation_types():
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


class Trainer:
    def __init__(self, config, train_docs, dev_docs, out_dir, log=None):
        self.config = config
        self.out_dir = Path(out_dir)
        self.log = log or (lambda message: tqdm.write(message, file=sys.stderr))
        if config.threads:
            torch.set_num_threads(config.threads)
        _seed_everything(config.seed)
        self.encoder, self.hf_tokenizer, self.cls_id, self.sep_id = load_encoder(config.encoder)
        if config.attention_dropout >= 0:
            set_attention_dropout(self.encoder, config.attention_dropout)
        self.tokenizer = ner_tokenizer(self.hf_tokenizer.backend_tokenizer)
        self.entity_types, self.labels = schema.entity_types(), schema.relation_types()
        self.scheme = TagScheme(self.entity_types, config.layers)
        if config.max_train_docs:
            train_docs = train_docs[: config.max_train_docs]
        make = lambda docs: make_examples(  # noqa: E731
            docs, self.tokenizer, self.scheme, self.labels, config.max_length, config.stride or None
        )
        self.train, self.dev = make(train_docs), make(dev_docs)
        self.device = torch.device(
            ("cuda" if torch.cuda.is_available() else "cpu") if config.device == "auto" else config.device
        )
        self.model = JointModel(self.encoder, self.scheme.channels, len(self.labels), config.freeze_layers)
        self.model.to(self.device)
        self.model.init_biases(*self._priors())
        self.optimizer, self.scheduler = self._optimizer()
        self.lower_cache = self._lower_cache() if config.freeze_layers else None
        self.history, self.epoch, self.best, self.stale = [], 0, -1.0, 0

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
        encoder_params = [p for p in self.model.encoder.parameters() if p.requires_grad]
        head_params = [self.model.ner.weight, self.model.ner.bias, self.model.cls_query, self.model.cls_weight]
        groups = [
            {"params": encoder_params, "lr": c.lr, "weight_decay": c.weight_decay},
            {"params": head_params, "lr": c.head_lr, "weight_decay": c.weight_decay},
            {"params": [self.model.cls_bias], "lr": c.head_lr, "weight_decay": 0.0},
            {"params": [self.model.log_vars], "lr": c.sigma_lr, "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups)
        steps_per_epoch = sum(1 for _ in batches(self.train, c.batch_windows, np.random.default_rng(0)))
        total = max(1, steps_per_epoch * c.epochs)
        warmup = max(1, int(total * c.warmup))
        schedule = lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup)))  # noqa: E731
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

    def _lower_cache(self):
        """The frozen layers' outputs, from ``cache_dir`` when an identical setup left them there.

        Every run of the multi-task grid shares them: same encoder, data and windows.
        """
        if not self.config.cache_dir:
            return self._cache_lower()
        import hashlib

        key = hashlib.sha256()
        weights = self.encoder.get_input_embeddings().weight
        for part in (str(Path(self.encoder.name_or_path).resolve()), float(weights[:64].double().sum()),
                     self.config.freeze_layers,
                     self.config.max_length, self.config.stride, self.tokenizer.to_str()):
            key.update(str(part).encode())
        for example in self.train:
            key.update(example.document.text.encode())
        path = Path(self.config.cache_dir) / f"lower-{key.hexdigest()[:16]}.pt"
        if path.exists():
            return [[t.to(self.device) for t in states] for states in torch.load(path)]
        cache = self._cache_lower()
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save([[t.cpu() for t in states] for states in cache], path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)
        return cache

    @torch.no_grad()
    def _cache_lower(self):
        """Frozen layers' outputs per training window, computed once (eval mode: no dropout)."""
        self.model.eval()
        cache = []
        for example in tqdm(self.train, desc="caching frozen layers", file=sys.stderr, leave=False):
            states = []
            for window in example.windows:
                ids = torch.as_tensor(window_inputs(example.encoded, window, self.cls_id, self.sep_id))[None]
                ids = ids.to(self.device)
                states.append(self.model.lower_states(ids, torch.ones_like(ids))[0])
            cache.append(states)
        return cache

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
        return to(input_ids), to(attention), to(tags), to(content), to(owned), lower, doc_rows

    def losses(self, indices):
        """``{task: loss}`` of one batch of training documents, for the tasks being trained."""
        c = self.config
        input_ids, attention, tags, content, owned, lower, doc_rows = self._batch_tensors(indices)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=c.precision == "bf16"):
            states = self.model.states(input_ids, attention, lower)
        states = states.float()  # the heads and losses in fp32
        losses = {}
        if "ner" in c.tasks:
            losses["ner"] = ner_loss(self.model.ner_logits(states), tags, content)
        if "cls" in c.tasks:
            logits = torch.stack([self.model.cls_logits(states[rows][owned[rows]]) for rows in doc_rows.values()])
            targets = torch.as_tensor(np.stack([self.train[i].target for i in doc_rows]), device=self.device)
            losses["cls"] = cls_loss(logits, targets)
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
        return Predictor(self.tokenizer, self.model.export_heads(), self.model_config(thresholds), encode_batch)

    def evaluate(self, examples, thresholds=None):
        """Scores on ``examples``; thresholds are tuned on them when not given (dev)."""
        from nerelproc.evaluation.score import score_documents

        predictor = self.predictor()
        docs = [e.document for e in examples]
        predictions = predict_in_chunks(predictor, docs)
        probs = np.stack([p.relation_scores for p in predictions])
        tuning = None
        if thresholds is None:
            gold = np.stack([e.target for e in examples]).astype(bool)
            thresholds, mode, cv = tune(probs, gold, self.config.seed)
            tuning = {"mode": mode, "cv": cv}
        predicted_docs = []
        for document, prediction in zip(docs, predictions):
            chosen = [label for label, p, t in zip(self.labels, prediction.relation_scores, thresholds) if p >= t]
            predicted_docs.append(
                Document(document.id, document.text, prediction.entities, relation_types=sorted(chosen))
            )
        scores = score_documents(predicted_docs, docs, warn=lambda message: None)
        return scores, np.asarray(thresholds, dtype=np.float32), tuning, predicted_docs, probs

    def selection_score(self, scores):
        parts = []
        if "ner" in self.config.tasks:
            parts.append(scores["ner"]["micro"]["f1"])
        if "cls" in self.config.tasks:
            parts.append((scores["cls"]["micro"]["f1"] + scores["cls"]["macro"]["f1"]) / 2)
        return float(np.mean(parts))

    # -- the loop ----------------------------------------------------------------

    def fit(self, interrupt_after_steps=None):
        c = self.config
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "train_config.json").write_text(json.dumps(asdict(c), indent=1, ensure_ascii=False))
        if self.epoch == 0:
            (self.out_dir / "metrics.jsonl").unlink(missing_ok=True)  # a fresh start logs afresh
        steps_done = 0
        while self.epoch < c.epochs and self.stale < c.patience:
            self.model.train()
            rng = np.random.default_rng(c.seed * 1000 + self.epoch)  # the same order after a resume
            started = time.time()
            losses, bar = [], tqdm(
                list(batches(self.train, c.batch_windows, rng)), desc=f"epoch {self.epoch + 1}", file=sys.stderr
            )
            for indices in bar:
                total, parts = self._step(indices)
                losses.append((total, parts))
                bar.set_postfix(loss=f"{total:.3f}", **{k: f"{v:.3f}" for k, v in parts.items()})
                steps_done += 1
                if interrupt_after_steps is not None and steps_done >= interrupt_after_steps:
                    raise KeyboardInterrupt("interrupted on request")
            train_seconds = time.time() - started
            scores, thresholds, tuning, _, _ = self.evaluate(self.dev)
            self.epoch += 1
            record = {
                "epoch": self.epoch,
                "train_loss": float(np.mean([t for t, _ in losses])),
                **{f"train_{k}_loss": float(np.mean([p[k] for _, p in losses])) for k in c.tasks},
                "dev_ner_f1": scores["ner"]["micro"]["f1"],
                "dev_flat_f1": scores["ner"]["flat"]["f1"],
                "dev_coarse_f1": scores["ner"]["coarse"]["micro"]["f1"],
                "dev_cls_micro_f1": scores["cls"]["micro"]["f1"],
                "dev_cls_macro_f1": scores["cls"]["macro"]["f1"],
                "dev_cls_samples_f1": scores["cls"]["samples"]["f1"],
                "thresholds_mode": tuning["mode"],
                "log_vars": self.model.log_vars.detach().tolist(),
                "sigma": self.model.sigmas(),
                "epoch_seconds": train_seconds,
                "eval_seconds": time.time() - started - train_seconds,
            }
            record["selection"] = self.selection_score(scores)
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
        return self.history

    # -- saving ------------------------------------------------------------------

    def model_config(self, thresholds=None, tuning=None):
        c = self.config
        return {
            "entity_types": list(self.entity_types),
            "relation_types": list(self.labels),
            "layers": c.layers,
            "max_length": c.max_length,
            "stride": c.stride or None,
            "cls_id": self.cls_id,
            "sep_id": self.sep_id,
            "thresholds": [float(t) for t in (thresholds if thresholds is not None else [0.5] * len(self.labels))],
            "thresholds_tuning": tuning,
            "tasks": list(c.tasks),
            "hidden_size": self.encoder.config.hidden_size,
        }

    def save_model(self, path, thresholds, tuning):
        """A directory transformers can load (``encoder/``) plus heads, labels, thresholds, config."""
        path = Path(path)
        (path / "encoder").mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(path / "encoder")
        self.hf_tokenizer.save_pretrained(path / "encoder")
        self.tokenizer.save(str(path / "tokenizer.json"))  # the NER pre-split tokenizer
        self.model.export_heads().save(path / "heads.npz")
        config = self.model_config(thresholds, tuning)
        config["train_config"] = asdict(self.config)
        config["log_vars"] = self.model.log_vars.detach().tolist()
        (path / "nerelproc.json").write_text(json.dumps(config, indent=1, ensure_ascii=False))

    def save_checkpoint(self):
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "best": self.best,
            "stale": self.stale,
            "history": self.history,
            "rng": _rng_state(),
        }
        tmp = self.out_dir / (CHECKPOINT + ".tmp")
        torch.save(state, tmp)
        tmp.replace(self.out_dir / CHECKPOINT)

    def resume(self):
        path = self.out_dir / CHECKPOINT
        if not path.exists():
            return False
        state = torch.load(path, weights_only=False, map_location=self.device)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.best, self.stale, self.history = state["epoch"], state["best"], state["stale"], state["history"]
        _set_rng_state(state["rng"])
        # metrics.jsonl may hold an epoch logged after the checkpoint was written: rewrite it.
        with open(self.out_dir / "metrics.jsonl", "wb") as file:
            file.writelines(dumps_line(record) for record in self.history)
        return True


def _summary(record):
    sigma = " ".join(f"σ_{k}={v:.3f}" for k, v in record["sigma"].items())
    return (
        f"epoch {record['epoch']}: loss {record['train_loss']:.3f} | dev NER {record['dev_ner_f1']:.4f} "
        f"flat {record['dev_flat_f1']:.4f} | CLS micro {record['dev_cls_micro_f1']:.4f} "
        f"macro {record['dev_cls_macro_f1']:.4f} | {sigma} | {record['epoch_seconds']:.0f}s"
    )


def _seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_state():
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state):
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def predict_in_chunks(predictor, documents, size=16):
    """Predictions for ``documents``, a few at a time (bounded memory for the merged states)."""
    predictions = []
    for start in range(0, len(documents), size):
        predictions += predictor.predict([d.text for d in documents[start : start + size]])
    return predictions


def load_documents(path):
    return list(read_documents(path))


def run(config, train_path, dev_path, out_dir, test_path=None, resume=False):
    """``nerelproc train``: fit with dev selection, then score the best model on test."""
    from nerelproc.analysis.plots import training_curves

    out_dir = Path(out_dir)
    if (out_dir / CHECKPOINT).exists() and not resume:
        raise FileExistsError(f"{out_dir} holds a checkpoint: pass --resume to continue it, or choose another -o")
    started = time.time()
    trainer = Trainer(config, load_documents(train_path), load_documents(dev_path), out_dir)
    setup_seconds = time.time() - started
    if resume and trainer.resume():
        trainer.log(f"resumed {out_dir} after epoch {trainer.epoch}")
    trainer.fit()
    history = trainer.history
    training_curves(history, out_dir / "curves.png")
    best = max(history, key=lambda record: record["selection"])
    results = {
        "config": asdict(config),
        "best_epoch": best["epoch"],
        "dev": best,
        "epochs_run": len(history),
        "seconds_per_epoch": float(np.mean([r["epoch_seconds"] for r in history])),
        "train_seconds": float(sum(r["epoch_seconds"] + r["eval_seconds"] for r in history)),
        "setup_seconds_last_sitting": setup_seconds,
    }
    if test_path:
        results["test"] = score_model_dir(out_dir / "best", test_path, out_dir / "test_predictions.jsonl")
    (out_dir / "metrics.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
    return results


def score_model_dir(model_dir, gold_path, predictions_path=None, backend="torch"):
    """Annotate the texts of ``gold_path`` with a saved model, score, optionally write predictions."""
    from nerelproc.runtime.bundle import load_predictor
    from nerelproc.evaluation.score import score_documents
    from nerelproc.io.writers import atomic_output, document_to_json

    predictor = load_predictor(model_dir, backend=backend)
    gold = load_documents(gold_path)
    predicted = []
    for document, p in zip(gold, predict_in_chunks(predictor, gold)):
        predicted.append(Document(document.id, document.text, p.entities, relation_types=p.relation_types))
    if predictions_path:
        with atomic_output(predictions_path) as file:
            for document in predicted:
                file.write(dumps_line(document_to_json(document, renumber=True, relations=False)))
    return score_documents(predicted, gold, warn=lambda message: None)
