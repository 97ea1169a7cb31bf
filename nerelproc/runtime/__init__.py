"""Annotation without torch, the model side: windows, the tag scheme and its decoding, the
numpy heads, the predictor and its one loop (``Predictor.pipe``), the model directory
(``bundle``), a document's output object and the ``Annotator`` API. The jobs that drive it
over files (``annotate``, ``batch``) are ``nerelproc.jobs``, above it.

The mirror of ``nerelproc.training``: the same network, run on CTranslate2 + numpy.
Nothing in this package imports torch or transformers (the ``torch`` backend of
``encoders`` imports them only when asked for).
"""
