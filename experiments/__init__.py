"""Studies run from a checkout (``python -m experiments.NAME``); not part of the installed package."""
