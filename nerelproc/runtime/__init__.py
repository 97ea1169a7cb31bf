"""Annotation without torch: windows, the tag scheme and its decoding, the numpy heads,
the predictor, the model directory (``bundle``), ``annotate`` and the ``Annotator`` API.

The mirror of ``nerelproc.training``: the same network, run on CTranslate2 + numpy.
Nothing in this package imports torch or transformers (the ``torch`` backend of
``encoders`` imports them only when asked for).
"""
