"""The start of `nerelproc train --init MODEL` on an exported int8 model, checked on NEREL dev:
the encoder dequantized from ct2/model.bin into torch (fp32) against the int8 runtime that
ships, the same heads on both. Two views:

- training: the NER and CLS heads, decisions (O bias, CLS thresholds) tuned on dev as
  `nerelproc train` tunes them at each epoch's evaluation: what its dev figures are before any step;
- shipped: the whole model (pair and relation heads, the decisions in its nerelproc.json).

Writes benchmarks/warm_start.json.

    python benchmarks/warm_start.py --model models/nerel-e5-small-int8 --dev ../shared/nerel/jsonl/dev.jsonl --threads 2
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def figures(scores):
    from nerelproc.evaluation.score import headline

    out = {k: round(v, 4) for k, v in headline(scores).items() if v is not None}
    per_type = scores["ner"]["coarse"]["per_type"]
    out.update({f"coarse_{t}": round(per_type[t]["f1"], 4) for t in sorted(per_type)})
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "nerel-e5-small-int8"))
    parser.add_argument("--dev", default=str(ROOT.parent / "shared" / "nerel" / "jsonl" / "dev.jsonl"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "warm_start.json"))
    args = parser.parse_args()

    import torch

    from nerelproc.evaluation.score import score_documents
    from nerelproc.io.document import Document
    from nerelproc.runtime.bundle import load_predictor
    from nerelproc.runtime.encoders import ct2_encoder, torch_batch_encoder
    from nerelproc.runtime.predictor import Predictor
    from nerelproc.training.calibration import encode_in_chunks
    from nerelproc.training.config import TrainConfig
    from nerelproc.training.data import load_documents
    from nerelproc.training.evaluate import evaluate
    from nerelproc.training.trainer import Trainer

    torch.set_num_threads(args.threads)
    dev = load_documents(args.dev)
    started = time.time()
    # the training documents only set the output biases, which --init then replaces: a few will do
    trainer = Trainer(TrainConfig(init=args.model, threads=args.threads), dev[:2], dev, tempfile.mkdtemp(),
                      log=lambda message: None)
    setup = time.time() - started
    result = {"model": args.model, "dev": args.dev, "documents": len(dev), "threads": args.threads,
              "cpu": torch.backends.cpu.get_cpu_capability(), "init_seconds": round(setup, 1)}

    torch_predictor = trainer.predictor()
    int8_predictor = Predictor(trainer.tokenizer, torch_predictor.heads, torch_predictor.config,
                               ct2_encoder(Path(args.model) / "ct2", args.threads), workers=args.threads)
    for name, predictor in (("training_torch_fp32", torch_predictor), ("training_int8", int8_predictor)):
        started = time.time()
        scores, _, tuning = evaluate(predictor, trainer.dev, trainer.labels, None, trainer.config.seed)
        result[name] = {**figures(scores), "ner_o_bias": tuning["ner_o_bias"], "thresholds_mode": tuning["mode"],
                        "seconds": round(time.time() - started, 1)}
        print(name, result[name], flush=True)

    shipped = load_predictor(args.model, backend="ct2", threads=args.threads)
    torch_encode = torch_batch_encoder(trainer.model.states, trainer.hf_tokenizer.pad_token_id or 0)
    dequantized = shipped.with_options(encode_batch=torch_encode, workers=1)
    for name, predictor in (("shipped_torch_fp32", dequantized), ("shipped_int8", shipped)):
        started = time.time()
        predicted = []
        for document, encoded in zip(dev, encode_in_chunks(predictor, dev)):
            p = predictor.finish(encoded)
            predicted.append(Document(document.id, document.text, p.entities, relation_types=p.relation_types))
        result[name] = {**figures(score_documents(predicted, dev, warn=lambda message: None)),
                        "seconds": round(time.time() - started, 1)}
        print(name, result[name], flush=True)

    for view in ("training", "shipped"):
        a, b = result[f"{view}_torch_fp32"], result[f"{view}_int8"]
        result[f"{view}_max_abs_difference"] = round(max(abs(a[k] - b[k]) for k in a
                                                          if k not in ("seconds", "ner_o_bias", "thresholds_mode")), 4)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if "difference" in k}))


if __name__ == "__main__":
    main()
