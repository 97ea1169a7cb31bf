"""``nerelproc train``: fit with dev selection, plot the curves, score the best model on test."""

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from nerelproc.training.config import CHECKPOINT
from nerelproc.training.data import load_documents
from nerelproc.training.evaluate import score_model_dir
from nerelproc.training.trainer import Trainer


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
