"""A test's missing dependency: a skip on a developer's machine, a failure under CI
(the environment variable ``CI`` set), where everything of ``pip install -e .[test]`` must
be there and a skip would hide a test that never ran."""

import importlib
import os

import pytest


def skip_or_fail(message):
    """Skip (a test, a fixture or, at import time, a whole module); under CI, fail instead."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set: a missing dependency is an error, not a skip)", pytrace=False)
    pytest.skip(message, allow_module_level=True)


def need(module):
    """``module`` imported, or ``skip_or_fail`` (``pytest.importorskip`` that CI cannot pass)."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        skip_or_fail(f"{module} is not installed ({error}; pip install -e '.[test]')")
