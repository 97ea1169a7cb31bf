"""``nerelproc train``: fit with dev selection, plot the curves, score the best model on test."""

import json
import time
from dataclasses import asdict, fields, replace
from pathlib import Path

import numpy as np

from nerelproc.io.document import Document
from nerelproc.training.checkpoints import load_checkpoint
from nerelproc.training.config import CHECKPOINT, TrainConfig
from nerelproc.training.data import load_documents
from nerelproc.training.evaluate import score_model_dir
from nerelproc.training.from_bundle import is_bundle
from nerelproc.training.trainer import Trainer


def run(config, train_path, dev_path, out_dir, test_path=None, resume=False, stop_after_epoch=None):
    """``nerelproc train``: fit with dev selection, then score the best model on test.
    Returns ``None`` when the sitting stopped at ``stop_after_epoch`` before the run's end."""
    from nerelproc.analysis.plots import training_curves

    out_dir = Path(out_dir)
    if (out_dir / CHECKPOINT).exists() and not resume:
        raise FileExistsError(f"{out_dir} holds a checkpoint: pass --resume to continue it, or choose another -o")
    started = time.time()
    trainer = Trainer(config, load_documents(train_path), load_documents(dev_path), out_dir)
    setup_seconds = time.time() - started
    if resume and trainer.resume():
        trainer.log(f"resumed {out_dir} {trainer.where()}")
    trainer.fit(stop_after_epoch=stop_after_epoch)
    if not trainer.finished:
        trainer.log(f"stopped after epoch {trainer.epoch} of {config.epochs}: continue with --resume")
        return None
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


def checkpoint_model(run_dir, out_dir):
    """The last checkpoint of ``run_dir`` as a model directory like the ``best/`` that training
    writes (``nerelproc export --checkpoint``): a run stopped with ``--stop-after N`` gives
    epoch N's weights, whatever the selection rule picks. Thresholds are left at 0.5 for
    ``nerelproc calibrate``. Returns the checkpoint's epoch."""
    run_dir = Path(run_dir)
    if not (run_dir / CHECKPOINT).exists():
        raise FileNotFoundError(f"{run_dir} holds no {CHECKPOINT}: not a training run")
    saved = json.loads((run_dir / "train_config.json").read_text("utf-8"))
    config = TrainConfig(**{f.name: saved[f.name] for f in fields(TrainConfig) if f.name in saved})
    # the checkpoint replaces every weight: no --init to load (but an exported model's encoder
    # shape is known only from it), one placeholder document to set up on
    init = config.init if config.init and is_bundle(config.init) else ""
    placeholder = [Document("checkpoint", "checkpoint")]
    trainer = Trainer(replace(config, init=init, max_train_docs=0), placeholder, placeholder, run_dir)
    progress = load_checkpoint(run_dir / CHECKPOINT, trainer.model, trainer.optimizer, trainer.scheduler,
                               trainer.device)
    trainer.save_model(out_dir, thresholds=None, tuning=None)
    return progress["epoch"]
