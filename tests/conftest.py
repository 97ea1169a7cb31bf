"""Shared fixtures. The NEREL data is found beside the checkout (``../shared/nerel``),
or wherever the environment variable ``NEREL_DATA`` points."""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def nerel_dir():
    """The NEREL folder holding ``brat/`` and ``jsonl/`` (see its README.md)."""
    default = Path(__file__).resolve().parents[1].parent / "shared" / "nerel"
    path = Path(os.environ.get("NEREL_DATA") or default)
    if not (path / "jsonl").is_dir() or not (path / "brat").is_dir():
        message = f"NEREL data not found at {path} (set NEREL_DATA)"
        if os.environ.get("CI"):
            pytest.fail(message)  # in CI a missing data set is an error, not a skip
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def pruned_encoder_dir(tmp_path_factory):
    """The default encoder (e5-small, navec-pruned vocabulary), rebuilt once per test session."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from nerelproc.training.encoder import build_encoder

    return build_encoder(tmp_path_factory.mktemp("encoders") / "e5-small-ru", prune="navec")
