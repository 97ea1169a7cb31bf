"""The ``nerelproc`` command line: one click group, one sub-command per job.

Sub-commands import their heavy modules lazily, so ``annotate`` never imports
PyTorch and ``--help`` is instant.
"""

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nerelproc")
def main():
    """Nested NER and relation-type classification for Russian news (NEREL)."""


def _register():
    from . import commands  # noqa: F401  (each module adds its commands to ``main``)


_register()
