"""Shared fixtures. The NEREL data is found beside the checkout (``../shared/nerel``),
or wherever the environment variable ``NEREL_DATA`` points. A fixture whose data or
dependency is missing skips its tests, except under CI: there they fail (``needs.py``)."""

import os
from pathlib import Path

import pytest
from needs import need, skip_or_fail


@pytest.fixture(scope="session")
def nerel_dir():
    """The NEREL folder holding ``brat/`` and ``jsonl/`` (see its README.md)."""
    default = Path(__file__).resolve().parents[1].parent / "shared" / "nerel"
    path = Path(os.environ.get("NEREL_DATA") or default)
    if not (path / "jsonl").is_dir() or not (path / "brat").is_dir():
        skip_or_fail(f"NEREL data not found at {path} (set NEREL_DATA)")
    return path


@pytest.fixture(scope="session")
def pruned_encoder_dir(tmp_path_factory):
    """The default encoder (e5-small, navec-pruned vocabulary), rebuilt once per test session."""
    need("torch")
    need("transformers")
    from nerelproc.training.encoder import build_encoder

    return build_encoder(tmp_path_factory.mktemp("encoders") / "e5-small-ru", prune="navec")


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory, nerel_dir):
    """A tiny random BERT (``tiny_model.py``) with a tokenizer trained on 30 NEREL dev texts;
    built once per test session and shared (read only) by the training, study and annotate tests."""
    need("torch")
    need("transformers")
    from nerelproc.training.data import load_documents
    from tiny_model import build_tiny_encoder

    docs = load_documents(nerel_dir / "jsonl" / "dev.jsonl")
    return build_tiny_encoder([d.text for d in docs[:30]], tmp_path_factory.mktemp("tiny_encoder") / "encoder")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, nerel_dir, tiny_encoder):
    """The tiny encoder trained one epoch on 6 NEREL dev documents (selected on 3, tested on
    those 3) and exported: the model folder; the run is ``tiny_model.parent / "run"``.
    Built once per test session; tests must not change it (copy it first)."""
    need("ctranslate2")
    from nerelproc.io.writers import write_jsonl
    from nerelproc.training.config import TrainConfig
    from nerelproc.training.data import load_documents
    from nerelproc.training.export import export
    from nerelproc.training.run import run

    root = tmp_path_factory.mktemp("tiny_model")
    docs = load_documents(nerel_dir / "jsonl" / "dev.jsonl")
    write_jsonl(docs[:6], root / "train.jsonl")
    write_jsonl(docs[6:9], root / "dev.jsonl")
    config = TrainConfig(encoder=str(tiny_encoder), epochs=1, max_length=64, threads=1, lr=1e-3)
    run(config, root / "train.jsonl", root / "dev.jsonl", root / "run", test_path=root / "dev.jsonl")
    return export(root / "run", root / "model")


@pytest.fixture(scope="session")
def tiny_relation_model(tmp_path_factory, tiny_model):
    """The tiny model made to find entities, with a random relation head (threshold 0.55): for
    the guarantees of ``annotate`` with relations in its output. Read only."""
    import shutil

    from tiny_model import add_relation_head, finding_entities

    model_dir = tmp_path_factory.mktemp("relations") / "model"
    shutil.copytree(tiny_model, model_dir)
    add_relation_head(finding_entities(model_dir), threshold=0.55)
    return model_dir
