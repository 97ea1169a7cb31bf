"""Checkpoints: everything needed to continue a run exactly (model, optimiser, scheduler,
RNG states, progress: epoch, best dev score, the position inside an epoch), written
atomically within and after every epoch."""

import random

import numpy as np
import torch

from nerelproc.io.writers import dumps_line


def save_checkpoint(path, model, optimizer, scheduler, progress):
    """``progress``: epoch, best, stale, history, position (the ``EpochPosition`` as a dict, or None)."""
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        **progress,
        "rng": rng_state(),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_checkpoint(path, model, optimizer, scheduler, device):
    """Restore model, optimiser, scheduler and RNG states; return the progress (epoch, best, stale,
    history, and from checkpoints within an epoch the position in it)."""
    state = torch.load(path, weights_only=False, map_location=device)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    return {key: value for key, value in state.items() if key not in ("model", "optimizer", "scheduler", "rng")}


def rewrite_metrics_log(path, history):
    """metrics.jsonl may hold an epoch logged after the checkpoint was written: rewrite it."""
    with open(path, "wb") as file:
        file.writelines(dumps_line(record) for record in history)


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state():
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
