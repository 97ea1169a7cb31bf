"""Resumable JSONL output: the partial file, its sidecar, and the steps of a resumed run.

A JSONL output is written to ``.NAME.partial`` with a sidecar ``.NAME.partial.json``
saying what it belongs to (its *identity*: the input, the model, the output options) and
how far it got (the bytes of whole records, the counts, a sha256 of the records consumed).
The sidecar is written before the partial and again after each buffer once that buffer's
records are on disk, so a run killed at any moment leaves a partial whose records a
sidecar accounts for. A resumed run (``open_output``) continues after the last buffer the
sidecar counts, starts from the beginning when there is none (the run died loading the
model, or in its first buffer), and refuses (``ResumeMismatch``), or with ``start_over``
starts over, a partial that belongs to something else or holds records that no sidecar
accounts for. ``annotate --resume``, ``batch`` and its Dask parts all go through here.
"""

import gzip
import hashlib
import os
import sys
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path

import orjson

from nerelproc.io.readers import is_gzip
from nerelproc.io.writers import atomic_output, remove_stale_temporaries


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


class ResumeMismatch(Exception):
    """``--resume`` found a partial output made from another input, model or options, or one
    whose records no sidecar accounts for."""


def output_options(backend, options):
    """The options that change the output: what a partial output, a batch manifest entry or a
    Dask part must match (``options``: ``annotate.Options``)."""
    chosen = {"backend": backend, "scores": options.scores, "keep_input": options.keep_input}
    return {**chosen, **({"given_entities": True} if options.given_entities else {}),
            **({} if options.names else {"names": False})}


def output_identity(input, model, backend, options, **facts):
    """What a partial output belongs to: the input (a path, with ``facts`` such as its size or
    sha256), the model's identity and the output options."""
    return {"input": input, **facts, "model": model, "options": output_options(backend, options)}


def open_output(path, identity, read, resume=True, start_over=False):
    """``(output, records, stats, digest)``: the JSONL output ``path`` opened for the records of
    ``read()``, continuing its partial (``resume``) past the records it already holds.
    ``stats`` and ``digest`` are None for a fresh start. A partial that belongs to another
    input, model or options raises ``ResumeMismatch``, or with ``start_over`` is replaced."""
    try:
        out = JsonlOutput(path, identity, resume=resume)
    except (ResumeMismatch, KeyError, ValueError):
        if not start_over:
            raise
        out = JsonlOutput(path, identity)
    records = read()
    if out.resumed is None:
        return out, records, None, None
    try:
        digest = skip_resumed(records, out.resumed)
    except ResumeMismatch:
        out.file.close()  # the partial stays, its finished records as they were
        if not start_over:
            raise
        return JsonlOutput(path, identity), read(), None, None
    return out, records, out.resumed, digest


class InputDigest:
    """A running sha256 of the records consumed: a resumed run checks its input's prefix with it."""

    def __init__(self):
        self.digest = hashlib.sha256()

    def update(self, record):
        self.digest.update(b"%d:" % len(record.source) + record.source)

    def hexdigest(self):
        return self.digest.hexdigest()


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



def _holds_a_record(path):
    """Whether the file holds a complete line (a record and its newline)."""
    with open(path, "rb") as file:
        return any(b"\n" in chunk for chunk in iter(lambda: file.read(1 << 16), b""))


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
