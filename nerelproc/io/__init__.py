"""Documents and their files: the ``Document``/``Entity`` model and BRAT lines, readers
(JSONL, .jsonl.gz, BRAT folders, plain text), writers, and the NEREL label schema."""
