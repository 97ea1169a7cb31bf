"""Bridges from ``Annotator`` to other libraries' pipelines (each an optional extra).

``spacy``: the ``nerelproc`` pipeline component (``pip install 'nerelproc[spacy]'``).
"""
