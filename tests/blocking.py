"""Scripts for ``python -c`` that run with some top-level packages missing, as on an install
without an extra: importing them raises ModuleNotFoundError, like a real missing module."""

PRELUDE = """
import sys
class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {missing!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Missing())
"""

CLI = "from nerelproc.cli import main\nmain()\n"


def without(missing, then=CLI):
    """A script that blocks the packages in ``missing`` and then runs ``then`` (the CLI by default)."""
    return PRELUDE.format(missing=tuple(missing)) + then
