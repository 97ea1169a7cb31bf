"""A run's last checkpoint as a model directory, like the ``best/`` that ``nerelproc train``
writes for its selected epoch: to compare the last epoch with the selected one on dev.

    python -m experiments.last_checkpoint runs/full-ft runs/full-ft-last
    nerelproc export runs/full-ft-last -o runs/full-ft-last-int8
    nerelproc calibrate runs/full-ft-last-int8 --dev ../shared/nerel/jsonl/dev.jsonl
"""

import json
import sys
from dataclasses import fields, replace
from pathlib import Path

from nerelproc.training.checkpoints import load_checkpoint
from nerelproc.training.config import CHECKPOINT, TrainConfig
from nerelproc.training.data import load_documents
from nerelproc.training.trainer import Trainer

DEV = Path(__file__).resolve().parents[2] / "shared" / "nerel" / "jsonl" / "dev.jsonl"


def main(run_dir, out_dir):
    run_dir = Path(run_dir)
    saved = json.loads((run_dir / "train_config.json").read_text())
    config = TrainConfig(**{f.name: saved[f.name] for f in fields(TrainConfig) if f.name in saved})
    dev = load_documents(DEV)
    # the training documents only set the initial output biases, which the checkpoint replaces
    trainer = Trainer(replace(config, max_train_docs=4), dev[:4], dev[:1], run_dir)
    trainer.config = config
    progress = load_checkpoint(run_dir / CHECKPOINT, trainer.model, trainer.optimizer, trainer.scheduler,
                               trainer.device)
    trainer.save_model(out_dir, thresholds=None, tuning=None)
    print(f"{out_dir}: epoch {progress['epoch']} of {run_dir}", file=sys.stderr)


if __name__ == "__main__":
    main(*sys.argv[1:3])
