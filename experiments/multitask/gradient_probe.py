"""Why does joint training cost NER? How the two tasks pull on the shared layers.

For a joint run of the multi-task grid, on the same training batches: the gradient of
each task's *weighted* loss (as the trainer combines them) with respect to the shared
trainable encoder layers, its norm, and the cosine between the two. Measured at the
start of training (the grid's initialisation for that seed) and at the run's last
checkpoint (after its last epoch, with the learned σ's). AdamW normalises each
parameter's step, so what matters is each task's share of the summed gradient: where
one task's gradient is much larger, the shared layers follow that task.

    python -m experiments.multitask.gradient_probe experiments/multitask/grid.json --run joint-uncertainty-s1 --batches 16

Prints a table and writes reports/multitask_gradients.md (and .json next to it).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from experiments.multitask.runner import Grid, parse_run_name
from nerelproc.training.config import CHECKPOINT
from nerelproc.training.data import batches, load_documents
from nerelproc.training.trainer import Trainer


def task_gradients(trainer, indices, shared):
    """``{task: flat gradient of its weighted loss on the shared parameters}`` for one batch."""
    gradients = {}
    for task, loss in trainer.losses(indices).items():
        grads = torch.autograd.grad(_weighted(trainer.model, task, loss, trainer.config), shared,
                                    retain_graph=True, allow_unused=True)
        gradients[task] = torch.cat([(g if g is not None else torch.zeros_like(p)).flatten()
                                     for g, p in zip(grads, shared)])
    return gradients


def _weighted(model, task, loss, config):
    """The task's term of the trainer's total loss (without the s/2 regulariser, which has no gradient here)."""
    index = {"ner": 0, "cls": 1}[task]
    if config.weighting == "uncertainty":
        return torch.exp(-model.log_vars[index].detach()) * loss
    return config.weights[index] * loss


def probe(trainer, batches):
    shared = [p for p in trainer.model.encoder.parameters() if p.requires_grad]
    trainer.model.train()
    torch.manual_seed(0)  # the same dropout masks at both points
    rows = []
    for indices in batches:
        g = task_gradients(trainer, indices, shared)
        ner, cls = float(g["ner"].norm()), float(g["cls"].norm())
        cosine = float(torch.dot(g["ner"], g["cls"]) / (ner * cls + 1e-12))
        rows.append((ner, cls, cosine))
    ner, cls, cosine = map(np.array, zip(*rows))
    return {"batches": len(rows), "ner_norm": float(ner.mean()), "cls_norm": float(cls.mean()),
            "cls_over_ner": float(np.median(cls / ner)), "cosine_mean": float(cosine.mean()),
            "cosine_min": float(cosine.min()), "cosine_max": float(cosine.max()),
            "sigma": trainer.model.sigmas()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("grid")
    parser.add_argument("--run", default="joint-uncertainty-s1")
    parser.add_argument("--batches", type=int, default=16)
    parser.add_argument("--out", default="reports/multitask_gradients.md")
    args = parser.parse_args()

    grid = Grid(args.grid)
    name, seed = parse_run_name(args.run)
    config = grid.config(name, seed)
    run_dir = grid.run_dir(name, seed)
    if not (run_dir / CHECKPOINT).exists():
        sys.exit(f"{run_dir} has no {CHECKPOINT}: run it first")
    trainer = Trainer(config, load_documents(grid.data("train")), [], run_dir / "probe-unused")
    rng = np.random.default_rng(12345)
    chosen = list(batches(trainer.train, config.batch_windows, rng))[: args.batches]
    results = {"run": args.run, "start": probe(trainer, chosen)}
    state = torch.load(run_dir / CHECKPOINT, weights_only=False, map_location=trainer.device)
    trainer.model.load_state_dict(state["model"])
    results["end"] = {**probe(trainer, chosen), "after_epoch": state["epoch"]}

    header = "| point | σ_ner | σ_cls | ‖g_ner‖ | ‖g_cls‖ | median ‖g_cls‖/‖g_ner‖ | cosine mean [min, max] |"
    lines = [header, "|---|---|---|---|---|---|---|"]
    for point in ("start", "end"):
        r = results[point]
        lines.append(f"| {point} | {r['sigma']['ner']:.3f} | {r['sigma']['cls']:.3f} | {r['ner_norm']:.4f} | "
                     f"{r['cls_norm']:.4f} | {r['cls_over_ner']:.2f} | {r['cosine_mean']:+.3f} "
                     f"[{r['cosine_min']:+.3f}, {r['cosine_max']:+.3f}] |")
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    out.write_text(
        f"# How NER and CLS pull on the shared layers ({args.run})\n\n"
        f"*Written by `python -m experiments.multitask.gradient_probe {args.grid} --run {args.run} --batches {args.batches}`.*\n\n"
        f"Gradients of each task's weighted loss (as the trainer combines them) with respect to the trainable "
        f"shared encoder layers, on the same {len(chosen)} training batches and dropout masks, at the start of "
        f"training and after epoch {results['end']['after_epoch']} (the run's last checkpoint).\n\n{table}\n",
        "utf-8")
    print(out, file=sys.stderr)


if __name__ == "__main__":
    main()
