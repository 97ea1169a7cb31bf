"""CLI sub-commands; importing this package registers them on ``nerelproc.cli.main``.

Each module keeps its imports inside the command function, so that loading the CLI
costs nothing and ``annotate`` never pulls PyTorch.
"""

import importlib

for _name in ("score", "eda", "encoder", "train", "export", "annotate", "experiment", "render", "batch"):
    try:
        importlib.import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as error:
        if error.name != f"{__name__}.{_name}":
            raise
