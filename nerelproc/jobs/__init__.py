"""The jobs above the model: annotating a stream of records into a file (resumable, locked),
feed folders incrementally (``batch``, its manifest, Dask) and the exit statuses they end with.

Every job runs its documents through ``Predictor.pipe`` (``nerelproc.runtime``), the one
loop that predicts and isolates a failing document; this package reads, writes, resumes and
counts around it.
"""
