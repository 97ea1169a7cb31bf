"""The ``nerelproc`` command line: one click group, one thin module per command.

``_app`` holds the group; each command module decorates it (``@main.command()``) and
keeps its imports inside the command function, so that loading the CLI costs nothing
and ``annotate`` never pulls PyTorch. Importing this package imports them all, so
``from nerelproc.cli import main`` is the whole app.
"""

from nerelproc.cli._app import main
from nerelproc.cli import (annotate, batch, calibrate, eda, encoder, export, render, score, train,  # noqa: F401  (registration)
                           train_pairs, train_relations)

__all__ = ["main"]
