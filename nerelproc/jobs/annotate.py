"""Streaming annotation: records in, one output line per record out, in order.

Records are read into a bounded buffer (``buffer`` documents) and go through
``Predictor.pipe``, the one prediction loop; each buffer is written back in input order.
A document's output does not depend on the buffer, the batch size or its neighbours (see
``runtime/predictor.py``), so a resumed run (``resume.py``) may restart anywhere and
still write the same bytes as an uninterrupted one.

Nothing is lost: a record that cannot be read, annotated or written becomes an
error record ``{"id", "line", "error"}`` in its place (an error record never has
``text``; an annotated one always does), and a message on stderr. Blank lines are
skipped and counted. One run at a time writes an output: it holds ``.NAME.lock``
beside it (``output_lock``).
"""

import os
import tempfile
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import orjson

from nerelproc.jobs.lock import exclusive_lock
from nerelproc.jobs.resume import InputDigest, Stats, work_files
from nerelproc.io.document import format_note_lines
from nerelproc.io.writers import atomic_output, brat_name_problem, write_brat_files
from nerelproc.runtime.output import error_object, output_object
from nerelproc.runtime.predictor import Failure


@dataclass
class Options:
    buffer: int = 256
    scores: bool = False
    keep_input: bool = False
    strict: bool = False
    given_entities: bool = False  # the input's T-lines are the entities; the model adds relations and labels
    names: bool = True  # each entity's normal form and the groups of mentions (nerelproc.names)


class StrictStop(Exception):
    pass


def annotate_records(records, predictor, options, output, report, progress=None, stats=None, digest=None):
    """Annotate ``records`` buffer by buffer through ``predictor.pipe``, writing each buffer to
    ``output`` in input order and checkpointing it."""
    stats = stats or Stats()
    digest = digest or InputDigest()
    records = iter(records)
    while True:
        buffer = list(islice(records, options.buffer))
        if not buffer:
            return stats
        for record in buffer:
            if not record.blank and record.error is None:
                for problem in record.document.problems:
                    report(f"line {record.line}: {problem} (input annotation ignored)")
        items = [_item(record, options.given_entities) for record in buffer]
        for record, prediction in zip(buffer, predictor.pipe(items, buffer=len(items), on_error=Failure.of)):
            stats.records += 1
            digest.update(record)
            if record.blank:
                stats.blank += 1
                continue
            error = record.error or (prediction.message if isinstance(prediction, Failure) else None)
            error = error or output.problem(record)
            if error is not None:
                stats.failed += 1
                report(f"line {record.line} (id {record.id}): {error}")
                if options.strict:
                    raise StrictStop(f"line {record.line} (id {record.id}): {error}")
                output.write(record, error_object(record, error), error)
            else:
                output.write(record, output_object(record, prediction, options.scores, options.keep_input,
                                                        options.names), None)
            stats.written += 1
            if progress is not None:
                progress.update(1)
        stats.sha256 = digest.hexdigest()
        output.checkpoint(stats)


def _item(record, given_entities):
    """What ``Predictor.pipe`` predicts for a record: its text (and, with ``given_entities``, its
    own entities, the ones the relations are found between), or None for a record that has none."""
    if record.blank or record.error is not None:
        return None
    return record.document.text, record.document.entities if given_entities else None


# -- outputs ---------------------------------------------------------------------


def check_output_path(output, brat, input_path="-"):
    """A usage problem with OUTPUT, found before anything is read or written (None if fine);
    among them an output that would overwrite INPUT."""
    if output == "-":
        return "BRAT output needs a folder, not '-'" if brat else None
    path = Path(output)
    if brat:
        if path.exists() and not path.is_dir():
            return f"{output} exists and is not a folder"
        written = [path]
    elif path.is_dir():
        return f"{output} is a folder: end it with '/' (or pass --format brat) to write BRAT files there"
    else:
        written = [path, *work_files(path)]
    if input_path != "-" and any(same_file(input_path, target) for target in written):
        return f"the output {output} would overwrite the input {input_path}; write it elsewhere"
    return None


def same_file(a, b):
    """Whether paths ``a`` and ``b`` name one file: the same path once resolved (a symbolic
    link, another spelling), or the same device and inode (a hard link)."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False  # one of them does not exist


def output_lock(output, brat=False):
    """Hold the lock of OUTPUT for the run: ``.NAME.lock`` beside a JSONL file, ``FOLDER/.lock``
    in a BRAT folder (as ``nerelproc batch`` holds ``OUT_DIR/.lock``). A second run on the
    same output gets ``Locked`` at once; stdout needs no lock."""
    path = Path(output)
    lock = path / ".lock" if brat else path.parent / f".{path.name}.lock"
    return exclusive_lock(lock, busy=f"another nerelproc run is writing {output}")


class BratOutput:
    """One ``NAME.txt`` + ``NAME.ann`` + ``NAME.labels.json`` per document; error records
    in ``errors.jsonl``. The ``.ann`` holds the T- and R-lines, then the normal forms as
    ``#1\tAnnotatorNotes T4\tВладимир Путин`` lines (the groups have no place in BRAT). An
    id that cannot be a file name, or one already written in this run, fails that record
    only: nothing is overwritten."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=self.folder).close()  # unwritable: fail now, before any work
        self.errors = []
        self.names = set()
        self.resumed = self.restarted = None

    def problem(self, record):
        name = str(record.document.id)
        problem = brat_name_problem(name)
        if problem is None and name in self.names:
            problem = f"duplicate id {name!r}: {name}.txt was already written by this run"
        return problem

    def write(self, record, obj, error):
        if error is not None:
            self.errors.append(obj)
            return
        name = str(record.document.id)
        labels = {key: obj[key] for key in ("relation_types", "relation_scores") if key in obj}
        lines = obj["entities"] + obj.get("relations", [])
        entity_ids = [line.split("\t", 1)[0] for line in obj["entities"]]
        lines += format_note_lines(obj.get("normal", {}), entity_ids)
        write_brat_files(self.folder, name, obj["text"], lines, labels)
        self.names.add(name)

    def checkpoint(self, stats):
        pass

    def close(self):
        path = self.folder / "errors.jsonl"
        if self.errors:
            with atomic_output(path) as file:
                file.write(b"".join(orjson.dumps(e) + b"\n" for e in self.errors))
        elif path.exists():
            path.unlink()

    def abandon(self):
        self.close()
