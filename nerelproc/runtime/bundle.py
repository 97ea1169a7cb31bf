"""The model directory: where the bundled one is, loading one into a ``Predictor``, its identity.

A model directory holds ``nerelproc.json`` (labels, thresholds, windowing),
``tokenizer.json`` (the NER tokenizer), ``heads.npz`` and either ``ct2/`` (the
exported int8 encoder; needs only ctranslate2) or ``encoder/`` (a transformers
checkpoint, as ``nerelproc train`` writes it; needs torch). Nothing here imports
torch unless the torch backend is asked for.
"""

import json
import os
import sys
from pathlib import Path

from tokenizers import Tokenizer

from nerelproc.runtime.encoders import ct2_encoder, torch_encoder
from nerelproc.runtime.heads import Heads
from nerelproc.runtime.predictor import Predictor

MODEL_NAME = "nerel-e5-small-int8"


def default_model_dir():
    """The bundled model: ``$NERELPROC_MODEL``, the source tree's ``models/``, or the installed copy."""
    candidates = [
        Path(os.environ["NERELPROC_MODEL"]) if os.environ.get("NERELPROC_MODEL") else None,
        Path(__file__).resolve().parents[2] / "models" / MODEL_NAME,  # a checkout (or pip install -e)
        Path(sys.prefix) / "share" / "nerelproc" / "models" / MODEL_NAME,  # pip install . (data_files)
    ]
    for candidate in filter(None, candidates):
        if (candidate / "nerelproc.json").exists():
            return candidate
    raise FileNotFoundError(
        f"no bundled model found (models/{MODEL_NAME}); pass --model DIR "
        "(a directory written by `nerelproc export` or `nerelproc train`)"
    )


def load_predictor(model_dir=None, backend="auto", threads=0, batch_windows=1):
    model_dir = Path(model_dir) if model_dir else default_model_dir()
    config = json.loads((model_dir / "nerelproc.json").read_text("utf-8"))
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    heads = Heads.load(model_dir / "heads.npz")
    if backend == "auto":
        backend = "ct2" if (model_dir / "ct2").exists() else "torch"
    if backend == "ct2":
        encode_batch = ct2_encoder(model_dir / "ct2", threads)
    elif backend == "torch":
        encode_batch = torch_encoder(model_dir / "encoder", threads)
    else:
        raise ValueError(f"unknown backend {backend!r}")
    return Predictor(tokenizer, heads, config, encode_batch, batch_windows)


def model_identity(model_dir=None):
    """sha256 over the files that decide a model's output: what a resumed run must match."""
    import hashlib

    model_dir = Path(model_dir) if model_dir else default_model_dir()
    digest = hashlib.sha256()
    names = ["nerelproc.json", "tokenizer.json", "heads.npz"]
    for sub in ("ct2", "encoder"):
        if (model_dir / sub).is_dir():
            names += sorted(f"{sub}/{p.name}" for p in (model_dir / sub).iterdir() if p.is_file())
    for name in names:
        path = model_dir / name
        if path.is_file():
            digest.update(name.encode() + b"\0")
            with open(path, "rb") as file:
                for chunk in iter(lambda: file.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()
