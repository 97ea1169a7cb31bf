"""Streaming batch annotation: records in, one output line per record out, in order.

Records are read into a bounded buffer (``buffer`` documents), predicted together
and written back in input order. A document's output does not depend on the buffer,
the batch size or its neighbours (see ``predict.py``), so a resumed run may restart
anywhere and still write the same bytes as an uninterrupted one.

Nothing is lost: a record that cannot be read, annotated or written becomes an
error record ``{"id", "line", "error"}`` in its place (an error record never has
``text``; an annotated one always does), and a message on stderr. Blank lines are
skipped and counted.

A JSONL output is written to ``.NAME.partial`` with a sidecar ``.NAME.partial.json``
saying what it belongs to (input path, size and a sha256 of the records consumed,
model, output options) and how far it got. The sidecar is written before the partial
and again after each buffer once that buffer's records are on disk, so a run killed
at any moment leaves a partial whose records a sidecar accounts for. ``--resume``
continues after the last buffer the sidecar counts, starts from the beginning when
there is none (the run died loading the model, or in its first buffer), and refuses
a partial that belongs to something else or holds records that no sidecar accounts
for. One run at a time writes an output: it holds ``.NAME.lock`` beside it
(``output_lock``).
"""

import gzip
import hashlib
import os
import sys
import tempfile
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path

import orjson

from nerelproc.io.document import format_entity_line
from nerelproc.io.lock import exclusive_lock
from nerelproc.io.readers import is_gzip
from nerelproc.runtime.predictor import entities_with_ids
from nerelproc.runtime.relations import format_relation_line
from nerelproc.io.writers import (atomic_output, brat_name_problem, entity_lines, remove_stale_temporaries,
                                  write_brat_files)

# What the commands exit with (the epilog of `nerelproc annotate --help` says when).
EXIT_OK, EXIT_FATAL, EXIT_USAGE, EXIT_SOME_FAILED, EXIT_LOCKED = 0, 1, 2, 3, 4


@dataclass
class Options:
    buffer: int = 256
    scores: bool = False
    keep_input: bool = False
    strict: bool = False
    given_entities: bool = False  # the input's T-lines are the entities; the model adds relations and labels


@dataclass
class Stats:
    records: int = 0  # input records consumed, blank lines included
    written: int = 0  # output records (annotated + failed)
    failed: int = 0
    blank: int = 0
    sha256: str = hashlib.sha256().hexdigest()  # of the consumed records' raw input

    def summary(self):
        noun = "document" if self.written == 1 else "documents"
        text = f"{self.written} {noun}: {self.written - self.failed} annotated, {self.failed} failed"
        if self.blank:
            text += f"; {self.blank} blank lines skipped"
        return text


class StrictStop(Exception):
    pass


class ResumeMismatch(Exception):
    """``--resume`` found a partial output made from another input, model or options, or one
    whose records no sidecar accounts for."""


class UsageError(ValueError):
    """Bad inputs, options or paths, found before any work is done (exit ``EXIT_USAGE``)."""


def output_object(record, prediction, options):
    """The input object with predicted ``entities``, ``relations`` (R-lines between them) and
    ``relation_types``; with ``scores``, ``relation_scores`` (per type) and
    ``relation_probabilities`` (per R-line id)."""
    document = record.document
    obj = {"id": document.id, "text": document.text, **document.extra}
    if options.keep_input:
        obj["input_entities"] = entity_lines(document)
        obj["input_relations"] = list(document.relations)
        obj["input_links"] = list(document.links)
    entities = entities_with_ids(prediction.entities)
    obj["entities"] = [format_entity_line(e, document.text) for e in entities]
    obj["relations"] = [format_relation_line(n, label, entities[head].id, entities[tail].id)
                        for n, (head, tail, label, _) in enumerate(prediction.relations, 1)]
    obj["relation_types"] = prediction.relation_types
    if options.scores:
        obj["relation_scores"] = {
            label: round(float(score), 4) for label, score in zip(prediction.labels, prediction.relation_scores)
        }
        obj["relation_probabilities"] = {f"R{n}": round(float(relation[3]), 4)
                                         for n, relation in enumerate(prediction.relations, 1)}
    return obj


def error_object(record, message):
    return {"id": record.id, "line": record.line, "error": message}


class InputDigest:
    """A running sha256 of the records consumed: a resumed run checks its input's prefix with it."""

    def __init__(self):
        self.digest = hashlib.sha256()

    def update(self, record):
        self.digest.update(b"%d:" % len(record.source) + record.source)

    def hexdigest(self):
        return self.digest.hexdigest()


def annotate_records(records, predictor, options, output, report, progress=None, stats=None, digest=None):
    """Annotate ``records`` buffer by buffer, writing each to ``output`` in input order."""
    stats = stats or Stats()
    digest = digest or InputDigest()
    records = iter(records)
    while True:
        buffer = list(islice(records, options.buffer))
        if not buffer:
            return stats
        documents = [record for record in buffer if not record.blank]
        predictions = _predict_buffer(documents, predictor, report, options.given_entities)
        for record in buffer:
            stats.records += 1
            digest.update(record)
            if record.blank:
                stats.blank += 1
                continue
            error = record.error or predictions.get(id(record), (None, None))[1] or output.problem(record)
            if error is not None:
                stats.failed += 1
                report(f"line {record.line} (id {record.id}): {error}")
                if options.strict:
                    raise StrictStop(f"line {record.line} (id {record.id}): {error}")
                output.write(record, error_object(record, error), error)
            else:
                output.write(record, output_object(record, predictions[id(record)][0], options), None)
            stats.written += 1
            if progress is not None:
                progress.update(1)
        stats.sha256 = digest.hexdigest()
        output.checkpoint(stats)


def _predict_buffer(buffer, predictor, report, given_entities=False):
    """``{id(record): (prediction, error)}``; one failing document does not sink the others.
    ``given_entities``: each document's own entities are the ones the relations are found between."""
    good = [record for record in buffer if record.error is None]
    for record in good:
        for problem in record.document.problems:
            report(f"line {record.line}: {problem} (input annotation ignored)")
    try:
        predicted = predictor.predict([record.document.text for record in good], _given(good, given_entities))
        return {id(record): (p, None) for record, p in zip(good, predicted)}
    except Exception:  # noqa: BLE001 - isolate the culprit below, document by document
        results = {}
        for record in good:
            try:
                results[id(record)] = (predictor.predict([record.document.text], _given([record], given_entities))[0],
                                       None)
            except Exception as error:  # noqa: BLE001
                results[id(record)] = (None, f"annotation failed: {type(error).__name__}: {error}")
        return results


def _given(records, given_entities):
    return [record.document.entities for record in records] if given_entities else None


def skip_resumed(records, stats):
    """Consume the records a partial output already holds, checking they are the same input."""
    digest = InputDigest()
    for record in islice(records, stats.records):
        digest.update(record)
    if digest.hexdigest() != stats.sha256:
        raise ResumeMismatch(
            f"the partial output was made from other input: its first {stats.records} records differ "
            "(run without --resume to start over)"
        )
    return digest


# -- outputs ---------------------------------------------------------------------


def _holds_a_record(path):
    """Whether the file holds a complete line (a record and its newline)."""
    with open(path, "rb") as file:
        return any(b"\n" in chunk for chunk in iter(lambda: file.read(1 << 16), b""))


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


def work_files(path):
    """The partial output and its sidecar, beside ``path``."""
    path = Path(path)
    return path.parent / f".{path.name}.partial", path.parent / f".{path.name}.partial.json"


class JsonlOutput:
    """JSONL to a file (atomically, resumable through ``.NAME.partial``) or to stdout.

    ``NAME.gz`` is written gzipped: the partial stays plain JSONL, compressed on close,
    so that a resumed run gives the same bytes.
    """

    def __init__(self, path, identity=None, resume=False):
        self.path = None if path == "-" else Path(path)
        self.resumed = None  # the Stats of the interrupted run, when resuming
        self.restarted = None  # why --resume started from the beginning after all
        if self.path is None:
            self.file = sys.stdout.buffer
            return
        self.partial, self.sidecar = work_files(self.path)
        self.identity = identity or {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for written_atomically in (self.path, self.sidecar):  # a killed run's half-written temporaries
            remove_stale_temporaries(written_atomically)
        state = self._resume_state() if resume and self.partial.exists() else None
        if state is None:
            # The sidecar first, then the partial: at no moment does a partial hold a record
            # that no sidecar accounts for.
            self._save_state(0, Stats())
            self.file = open(self.partial, "wb")
        else:
            self.resumed = Stats(**state["stats"])
            self.file = open(self.partial, "r+b")
            self.file.truncate(state["bytes"])  # drop what was written after the last checkpoint
            self.file.seek(0, os.SEEK_END)

    def _resume_state(self):
        """The sidecar's state if the partial goes on from it; None if nothing in the partial
        was finished (the run starts from the beginning; ``restarted`` says why)."""
        state = self._trusted_state()
        if state is None and _holds_a_record(self.partial):
            raise ResumeMismatch(f"{self.partial} holds records, but no sidecar says what they belong to "
                                 "or how many are complete; run without --resume to start over")
        if state is None or state["bytes"] == 0:
            self.restarted = f"nothing in {self.partial} was finished"
            return None
        for key, value in self.identity.items():
            if state["identity"].get(key) != value:
                raise ResumeMismatch(
                    f"the partial output belongs to another {key} ({state['identity'].get(key)!r}, "
                    f"now {value!r}); run without --resume to start over"
                )
        return state

    def _trusted_state(self):
        """The sidecar, if it can be trusted: readable, and the bytes it counts a whole
        number of lines of the partial; else None."""
        try:
            state = orjson.loads(self.sidecar.read_bytes())
            done, identity = state["bytes"], state["identity"]
            Stats(**state["stats"])
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
        if not isinstance(done, int) or not isinstance(identity, dict) or done < 0:
            return None
        with open(self.partial, "rb") as file:
            if done > 0 and os.pread(file.fileno(), 1, done - 1) != b"\n":
                return None  # shorter than it says, or not cut at a line end
        return state

    def _save_state(self, done, stats):
        state = {"identity": self.identity, "bytes": done, "stats": asdict(stats)}
        with atomic_output(self.sidecar) as file:  # fsync'd before it replaces the last one
            file.write(orjson.dumps(state, option=orjson.OPT_INDENT_2))

    def problem(self, record):
        return None

    def write(self, record, obj, error):
        self.file.write(orjson.dumps(obj) + b"\n")

    def checkpoint(self, stats):
        """Flush, then record how far the partial output is complete (atomically): the records
        reach the disk before the sidecar that counts them."""
        self.file.flush()
        if self.path is None:
            return
        os.fsync(self.file.fileno())
        self._save_state(self.file.tell(), stats)

    def close(self):
        self.file.flush()
        if self.path is None:
            return
        self.file.close()
        if is_gzip(self.path):
            with open(self.partial, "rb") as plain, atomic_output(self.path) as raw:
                # mtime 0 and no file name in the header: the same input gives the same bytes
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as packed:
                    for chunk in iter(lambda: plain.read(1 << 20), b""):
                        packed.write(chunk)
            self.partial.unlink()
        else:
            self.partial.replace(self.path)  # appears whole, or not at all
        self.sidecar.unlink(missing_ok=True)

    def abandon(self):
        if self.path is not None:
            self.file.close()
            self.partial.unlink(missing_ok=True)
            self.sidecar.unlink(missing_ok=True)


class BratOutput:
    """One ``NAME.txt`` + ``NAME.ann`` + ``NAME.labels.json`` per document; error records
    in ``errors.jsonl``. An id that cannot be a file name, or one already written in this
    run, fails that record only: nothing is overwritten."""

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
        write_brat_files(self.folder, name, obj["text"], obj["entities"] + obj.get("relations", []), labels)
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
