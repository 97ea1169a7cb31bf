"""nerelproc: joint nested NER and relation-type classification for Russian news."""

__version__ = "0.1.0"
