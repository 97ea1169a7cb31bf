"""Plots, headless: ``pyplot()`` (the matplotlib set-up every figure here uses: eda, the
training curves, the multi-task report) and the training curves as a PNG."""

from nerelproc.evaluation.score import HEADLINE_LABELS


def pyplot(style=None):
    """``matplotlib.pyplot`` on the Agg backend (no display needed); ``style``: rcParams to set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if style:
        plt.rcParams.update(style)
    return plt


def save_figure(fig, path, **savefig_options):
    """Lay out, write and close ``fig`` (closing frees it: pyplot keeps every open figure)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, **savefig_options)
    plt.close(fig)


def training_curves(history, path):
    plt = pyplot()

    epochs = [r["epoch"] for r in history]
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4))
    left.plot(epochs, [r["train_loss"] for r in history], "o-", label="total")
    for key in ("train_ner_loss", "train_cls_loss"):
        if key in history[0]:
            left.plot(epochs, [r[key] for r in history], "o-", label=key[6:])
    left.set(title="training loss", xlabel="epoch")
    left.legend()
    for name in ("ner", "flat", "cls_micro", "cls_macro"):
        middle.plot(epochs, [r[f"dev_{name}_f1"] for r in history], "o-", label=HEADLINE_LABELS[name])
    middle.set(title="dev", xlabel="epoch", ylim=(0, 1))
    middle.legend()
    for task in history[0]["sigma"]:
        right.plot(epochs, [r["sigma"][task] for r in history], "o-", label=f"σ {task}")
    right.set(title="uncertainty weights (σ = exp(s/2))", xlabel="epoch")
    right.legend()
    save_figure(fig, path, dpi=100)
