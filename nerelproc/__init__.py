"""nerelproc: joint nested NER and relation-type classification for Russian news.

The public API (see ``nerelproc.runtime.api``)::

    from nerelproc import Annotator
    result = Annotator.load().annotate("Владимир Путин прилетел в Казань.")
"""

__version__ = "0.2.0"
__all__ = ["Annotation", "Annotator", "Entity", "Group", "Relation", "Document", "score_documents"]

_PUBLIC = {
    "Annotator": "nerelproc.runtime.api", "Annotation": "nerelproc.runtime.api", "Entity": "nerelproc.runtime.api",
    "Relation": "nerelproc.runtime.api", "Group": "nerelproc.runtime.api",
    "Document": "nerelproc.io.document", "score_documents": "nerelproc.evaluation.score",
}


def __getattr__(name):
    # Imported on first use, so that `import nerelproc` (and the CLI's start) stays instant.
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'nerelproc' has no attribute {name!r}")
