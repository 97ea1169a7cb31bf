"""Streaming batch annotation: records in, one output line per record out, in order.

Records are read into a bounded buffer (``buffer`` documents), the buffer's texts
are predicted together (the Predictor sorts their windows by length, so padding
stays small), and the buffer is written back in input order. Memory stays flat
however long the input is.

Nothing is lost: a record that cannot be read or annotated becomes an error line
``{"id", "line", "error"}`` in its place, and a message on stderr.

Buffers start at fixed input positions (0, buffer, 2*buffer, ...), so the
encoder sees the same batches whether a run is whole or resumed: ``--resume``
output is byte-identical to an uninterrupted run.
"""

import sys
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import orjson

from .predict import entities_with_ids
from .writers import entity_lines, write_brat_document

EXIT_OK, EXIT_FATAL, EXIT_USAGE, EXIT_SOME_FAILED = 0, 1, 2, 3


@dataclass
class Options:
    buffer: int = 256
    scores: bool = False
    keep_input: bool = False
    strict: bool = False


@dataclass
class Stats:
    written: int = 0
    failed: int = 0
    errors: list = field(default_factory=list)


class StrictStop(Exception):
    pass


def output_object(record, prediction, options):
    """The input object with predicted ``entities`` and ``relation_types``."""
    document = record.document
    obj = {"id": document.id, "text": document.text, **document.extra}
    if options.keep_input:
        obj["input_entities"] = entity_lines(document)
        obj["input_relations"] = list(document.relations)
        obj["input_links"] = list(document.links)
    predicted = type(document)(document.id, document.text, entities_with_ids(prediction.entities))
    obj["entities"] = entity_lines(predicted)
    obj["relation_types"] = prediction.relation_types
    if options.scores:
        obj["relation_scores"] = {
            label: round(float(score), 4) for label, score in zip(prediction.labels, prediction.relation_scores)
        }
    return obj


def error_object(record, message):
    return {"id": record.id, "line": record.line, "error": message}


def annotate_records(records, predictor, options, output, report, progress=None):
    """Annotate ``records`` buffer by buffer, writing each to ``output`` in input order."""
    stats = Stats()
    records = iter(records)
    while True:
        buffer = list(islice(records, options.buffer))
        if not buffer:
            return stats
        predictions = _predict_buffer(buffer, predictor, report)
        for record in buffer:
            error = record.error or predictions.get(id(record), (None, None))[1]
            if error is not None:
                stats.failed += 1
                stats.errors.append((record.line, record.id, error))
                report(f"line {record.line} (id {record.id}): {error}")
                if options.strict:
                    raise StrictStop(f"line {record.line} (id {record.id}): {error}")
                output.write(record, error_object(record, error), error)
            else:
                output.write(record, output_object(record, predictions[id(record)][0], options), None)
            stats.written += 1
            if progress is not None:
                progress.update(1)
        output.flush()


def _predict_buffer(buffer, predictor, report):
    """``{id(record): (prediction, error)}``; one failing document does not sink the others."""
    good = [record for record in buffer if record.error is None]
    for record in good:
        for problem in record.document.problems:
            report(f"line {record.line}: {problem} (input annotation ignored)")
    try:
        predicted = predictor.predict([record.document.text for record in good])
        return {id(record): (p, None) for record, p in zip(good, predicted)}
    except Exception:  # noqa: BLE001 - isolate the culprit below, document by document
        results = {}
        for record in good:
            try:
                results[id(record)] = (predictor.predict([record.document.text])[0], None)
            except Exception as error:  # noqa: BLE001
                results[id(record)] = (None, f"annotation failed: {type(error).__name__}: {error}")
        return results


# -- outputs ---------------------------------------------------------------------


class JsonlOutput:
    """JSONL to a file (atomically, resumable through ``.NAME.partial``) or to stdout."""

    def __init__(self, path, resume=False, buffer=256):
        self.path = None if path == "-" else Path(path)
        self.skip, self.failed_before = 0, 0
        if self.path is None:
            self.file = sys.stdout.buffer
            return
        self.partial = self.path.parent / f".{self.path.name}.partial"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume and self.partial.exists():
            self.skip = self._truncate_to_buffer(buffer)
            self.file = open(self.partial, "ab")
        else:
            self.file = open(self.partial, "wb")

    def _truncate_to_buffer(self, buffer):
        """Keep only whole buffers of complete lines; return how many records they hold."""
        data = self.partial.read_bytes()
        lines = data.count(b"\n")
        keep = lines - lines % buffer
        cut = 0
        for _ in range(keep):
            cut = data.index(b"\n", cut) + 1
        with open(self.partial, "r+b") as file:
            file.truncate(cut)
        # Errors already written count towards the exit status of the resumed run.
        self.failed_before = sum("error" in orjson.loads(line) for line in data[:cut].splitlines())
        return keep

    def write(self, record, obj, error):
        self.file.write(orjson.dumps(obj) + b"\n")

    def flush(self):
        self.file.flush()

    def close(self, success=True):
        if self.path is None:
            self.file.flush()
            return
        self.file.flush()
        self.file.close()
        if success:
            self.partial.replace(self.path)  # appears whole, or not at all

    def abandon(self):
        if self.path is not None:
            self.file.close()
            self.partial.unlink(missing_ok=True)


class BratOutput:
    """One ``NAME.txt`` + ``NAME.ann`` per document; errors are listed in ``errors.jsonl``."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.errors = []
        self.skip, self.failed_before = 0, 0

    def write(self, record, obj, error):
        if error is not None:
            self.errors.append(obj)
            return
        from .document import Document, parse_entity_line

        entities = [parse_entity_line(line) for line in obj["entities"]]
        write_brat_document(Document(str(obj["id"]), obj["text"], entities), self.folder)

    def flush(self):
        pass

    def close(self, success=True):
        path = self.folder / "errors.jsonl"
        if self.errors:
            path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in self.errors))
        elif path.exists():
            path.unlink()

    def abandon(self):
        self.close()
