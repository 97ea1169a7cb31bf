"""``nerelproc batch``: annotate feed folders incrementally, one output file per input file.

    run_batch(["feeds/"], "annotated/")   # what the command runs

- **Inputs**: folders (searched recursively), globs (``feeds/**/*.jsonl.gz``, quoted so
  that the shell leaves them alone) or files; ``*.jsonl`` and ``*.jsonl.gz`` in any
  case. Hidden files and folders (``.name``) are ignored, and so are the files inside
  OUT_DIR that a folder or glob above it finds (earlier outputs). A file found under a
  folder or a glob keeps its path relative to that folder (the glob's part before its
  first wildcard); a file named alone keeps its name. Its output is at the same relative
  path under OUT_DIR (gzipped if the input was). An output never lands on an input: a
  file, folder or glob named inside OUT_DIR, or an OUT_DIR that reaches an input through
  a link, is a ``UsageError`` before anything is written.
- **Incremental**: ``OUT_DIR/manifest.json`` records, per input file, its identity
  (size, mtime, sha256), the model's identity and the output options, the output
  file, the record counts and when it finished. A rerun annotates an input only if it
  is new, its size or mtime changed *and* its sha256 did (a touched file is not
  redone), its output is gone, its last attempt failed, or the model or the options
  that change the output did (unless ``ignore_model_change``).
- **Cron-safe**: ``OUT_DIR/.lock`` is held with ``flock`` for the whole run (the lock
  goes with the process, however it dies; ``lock.py``); a second run exits at once
  with ``EXIT_LOCKED``. Outputs are written as ``.NAME.partial`` and renamed into place
  when complete, the manifest is rewritten atomically after the outputs are in place
  (after a file, at most once a second, and at the end), and a file interrupted
  half-way is resumed from its partial (checked against the input's sha256, the model
  and the options) by the next run. An input modified less than ``min_age`` seconds
  ago (still being written?) is left for a later run.
- **Dask** (``dask="local:4"`` or ``"tcp://host:8786"``): see ``batch_dask.py``; the
  outputs are byte-identical and the manifest the same apart from timings.
"""

import glob
import gzip
import hashlib
import os
import socket
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

# F401: names of the batch API that this module does not use itself: what run_batch raises
# (Locked, UsageError, MissingExtra), EXIT_LOCKED, and without_timings (two runs' manifests compared).
from nerelproc.io.files import file_sha256
from nerelproc.io.readers import is_gzip
from nerelproc.jobs.annotate import Options, annotate_records
from nerelproc.jobs.batch_dask import MissingExtra, check_spec, require_distributed, run_dask  # noqa: F401
from nerelproc.jobs.batch_manifest import (Manifest, iso, now_iso, one_line, record_failure,  # noqa: F401
                                           record_success, without_timings)
from nerelproc.jobs.exits import EXIT_FATAL, EXIT_LOCKED, EXIT_OK, EXIT_SOME_FAILED, UsageError  # noqa: F401
from nerelproc.jobs.lock import Locked, exclusive_lock  # noqa: F401
from nerelproc.jobs.resume import Stats, open_output, output_identity, output_options
from nerelproc.machine import cpu_model

LOCK_NAME = ".lock"
DEFAULT_PART_SIZE = 4 << 20  # Dask mode: split a file into line ranges of about this many bytes
FEED_SUFFIXES = (".jsonl", ".jsonl.gz")
GLOB_CHARS = "*?["


# -- inputs ----------------------------------------------------------------------


@dataclass
class Part:
    """A line range of an input: ``count`` lines from line ``first`` (1-based), starting at
    byte ``offset`` of the (decompressed) stream."""

    offset: int
    first: int
    count: int


@dataclass
class InputFile:
    path: Path  # absolute
    rel: str  # POSIX path relative to its input root: the manifest key and the output's path
    size: int = 0
    mtime_ns: int = 0
    sha256: str | None = None
    lines: int | None = None
    parts: list = field(default_factory=list)
    reason: str | None = None  # why it is (re-)annotated; None: skipped
    error: str | None = None  # it could not even be read for planning (a truncated gzip, a vanished file)
    waiting: bool = False  # modified less than --min-age ago: left for a later run

    def identity(self):
        return {"path": str(self.path), "size": self.size, "mtime_ns": self.mtime_ns, "sha256": self.sha256}

    def unchanged_since_planned(self):
        stat = self.path.stat()
        return stat.st_size == self.size and stat.st_mtime_ns == self.mtime_ns


def is_feed(name):
    return name.lower().endswith(FEED_SUFFIXES)


def find_inputs(inputs, out_dir):
    """The feed files of ``inputs`` (folders, globs, files), sorted by relative path."""
    out_dir = Path(out_dir).resolve()
    found = {}  # rel -> path

    def add(path, rel):
        path = path.resolve()
        if out_dir == path or out_dir in path.parents:
            return  # our own outputs
        if rel in found and found[rel] != path:
            raise UsageError(f"two inputs would write the same output {rel}: {found[rel]} and {path} "
                             "(give their common folder, or a quoted glob)")
        found[rel] = path

    def outside_out_dir(spec, path, what):
        resolved = path.resolve()
        if resolved == out_dir:
            raise UsageError(f"OUT_DIR {out_dir} is the {what} {spec}")
        if out_dir in resolved.parents:
            raise UsageError(f"the {what} {spec} is inside OUT_DIR {out_dir}")

    for spec in map(str, inputs):
        path = Path(spec)
        if any(char in spec for char in GLOB_CHARS) and not path.exists():
            root = _glob_root(spec)
            outside_out_dir(spec, root, "folder of the input")
            matches = [Path(m) for m in glob.glob(spec, recursive=True)]
            for match in matches:
                if match.is_file() and is_feed(match.name):
                    add(match, match.relative_to(root).as_posix())
                elif match.is_dir():
                    for inner, rel in _walk(match):
                        add(inner, (match.relative_to(root) / rel).as_posix())
            continue
        if path.is_dir():
            outside_out_dir(spec, path, "input folder")
            for inner, rel in _walk(path):
                add(inner, rel)
        elif path.is_file():
            if not is_feed(path.name):
                raise UsageError(f"{spec} is not a *.jsonl or *.jsonl.gz file")
            outside_out_dir(spec, path, "input")  # its output OUT_DIR/NAME could be the file itself
            add(path, path.name)
        else:
            raise FileNotFoundError(f"no such file or folder: {spec}")
    files = [InputFile(path, rel) for rel, path in sorted(found.items())]
    check_outputs_miss_inputs(files, out_dir)
    return files


def check_outputs_miss_inputs(files, out_dir):
    """Raise ``UsageError`` if an output would be written over an input: OUT_DIR/rel reaching
    an input through a symbolic link (a folder of OUT_DIR linked to a feed folder) or a hard link."""
    by_path, by_inode = {}, {}
    for f in files:
        by_path[f.path] = f
        try:
            stat = f.path.stat()
            by_inode[stat.st_dev, stat.st_ino] = f
        except OSError:
            pass  # gone since it was found: planning says so
    for f in files:
        target = Path(out_dir) / f.rel
        hit = by_path.get(target.resolve())
        if hit is None:
            try:
                stat = target.stat()
                hit = by_inode.get((stat.st_dev, stat.st_ino))
            except OSError:
                pass  # no output yet
        if hit is not None:
            raise UsageError(f"the output {target} of {f.path} would overwrite the input {hit.path}")


def _glob_root(pattern):
    parts = Path(pattern).parts
    root = []
    for part in parts:
        if any(char in part for char in GLOB_CHARS):
            break
        root.append(part)
    return Path(*root) if root else Path(".")


def _walk(folder):
    """(path, POSIX path relative to ``folder``) of the feed files below it, hidden ones skipped."""
    folder = Path(folder)
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(name for name in dirnames if not name.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and is_feed(name):
                path = Path(dirpath) / name
                yield path, path.relative_to(folder).as_posix()


class LineSplitter:
    """Counts the lines of a byte stream fed in chunks and, with ``part_size``, cuts it
    into line ranges of at least ``part_size`` bytes (the last one may be shorter).
    Lines end at ``\\n``, as a binary file's iteration (and so ``read_jsonl``) splits them."""

    def __init__(self, part_size=None):
        self.part_size = part_size
        self.pos = self.newlines = self.start = 0
        self.first = 1
        self.last = b""
        self.parts = []

    def feed(self, chunk):
        search = 0
        if self.part_size:
            while True:
                want = self.start + self.part_size - 1 - self.pos  # the cut's earliest index in chunk
                index = chunk.find(b"\n", max(want, search))
                if want >= len(chunk) or index < 0:
                    break
                self.newlines += chunk.count(b"\n", search, index + 1)
                self.parts.append(Part(self.start, self.first, self.newlines + 1 - self.first))
                self.start, self.first, search = self.pos + index + 1, self.newlines + 1, index + 1
        self.newlines += chunk.count(b"\n", search)
        self.pos += len(chunk)
        if chunk:
            self.last = chunk[-1:]

    def finish(self):
        lines = self.newlines + (1 if self.pos and self.last != b"\n" else 0)
        if self.pos > self.start:
            self.parts.append(Part(self.start, self.first, lines - self.first + 1))
        return lines, self.parts


def scan_input(path, part_size=None):
    """(sha256 of the file's bytes, its line count, its line ranges) in one read
    (two for a gzipped file: the bytes, then the lines)."""
    digest = hashlib.sha256()
    gz = is_gzip(path)
    splitter = LineSplitter(part_size)
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
            if not gz:
                splitter.feed(chunk)
    if gz:
        with gzip.open(path, "rb") as file:
            for chunk in iter(lambda: file.read(1 << 20), b""):
                splitter.feed(chunk)
    lines, parts = splitter.finish()
    return digest.hexdigest(), lines, parts


# -- lock -------------------------------------------------------------


def out_dir_lock(out_dir):
    """Hold ``OUT_DIR/.lock`` for the run (``flock``: released by the kernel however the process ends)."""
    out_dir = Path(out_dir)
    return exclusive_lock(out_dir / LOCK_NAME, busy=f"another nerelproc batch is working on {out_dir}")


# -- planning --------------------------------------------------------------------


@dataclass
class Settings:
    model_dir: Path
    model_identity: str
    backend: str = "auto"
    options: Options = field(default_factory=Options)
    batch_size: int = 1
    threads: int = 0

    def output_options(self):
        """The options that change the output (what a manifest entry must match)."""
        return output_options(self.backend, self.options)

    def output_identity(self, f):
        """What a partial output of input ``f`` belongs to (``resume.py``)."""
        return output_identity(f.rel, self.model_identity, self.backend, self.options, input_sha256=f.sha256)


def plan(files, manifest, out_dir, settings, ignore_model_change=False, checksum=False, part_size=None,
         min_age=0, report=None):
    """Set ``reason`` on each file that needs annotating (scanning it); leave the others None.

    A file whose size or mtime changed but whose sha256 did not gets its new mtime in
    the manifest and is skipped; so is a file modified less than ``min_age`` seconds ago
    (still being written?), until a later run. Returns the files to annotate; those that
    could not be read have ``error`` set."""
    out_dir = Path(out_dir)
    todo = []
    for f in files:
        try:
            stat = f.path.stat()
        except OSError as error:
            f.reason, f.error = "unreadable", one_line(error)
            todo.append(f)
            continue
        f.size, f.mtime_ns = stat.st_size, stat.st_mtime_ns
        entry = manifest.files.get(f.rel)
        if entry is None:
            f.reason = "new"
        elif entry.get("status") == "failed":
            f.reason = "failed before"
        elif not (out_dir / entry["output"]["path"]).is_file():
            f.reason = "output missing"
        elif not ignore_model_change and entry["model"] != settings.model_identity:
            f.reason = "model changed"
        elif not ignore_model_change and entry["options"] != settings.output_options():
            f.reason = "options changed"
        elif checksum and file_sha256(out_dir / entry["output"]["path"]) != entry["output"]["sha256"]:
            f.reason = "output changed"
        known = entry["input"] if entry else None
        if f.reason is None and not checksum and known["size"] == f.size and known["mtime_ns"] == f.mtime_ns:
            continue  # unchanged: skipped without reading it
        age = time.time() - stat.st_mtime
        if min_age and age < min_age:
            f.reason, f.waiting = None, True
            if report:
                report(f"{f.rel}: modified {age:.0f} s ago (< --min-age {min_age:g} s); left for a later run")
            continue
        try:
            f.sha256, f.lines, f.parts = scan_input(f.path, part_size)
        except (OSError, EOFError, ValueError, zlib.error) as error:  # a truncated or corrupt gzip
            f.reason, f.error = f.reason or "changed", one_line(error)
            todo.append(f)
            continue
        if f.reason is None:
            if known["sha256"] == f.sha256 and known["size"] == f.size:
                if known["mtime_ns"] != f.mtime_ns:  # touched, not changed: saved with the run's manifest
                    entry["input"] = f.identity()
                continue
            f.reason = "changed"
        todo.append(f)
    return todo


# -- running -----------------------------------------------------------------------


@dataclass
class BatchResult:
    files: int = 0  # input files found
    done: list = field(default_factory=list)  # rel paths annotated by this run
    skipped: list = field(default_factory=list)  # unchanged
    waiting: list = field(default_factory=list)  # too recently modified (--min-age)
    planned: list = field(default_factory=list)  # rel paths this run annotates (a dry run: would annotate)
    failed: list = field(default_factory=list)  # rel paths with no output (retried next run)
    stats: Stats = field(default_factory=Stats)  # documents of the files done
    seconds: float = 0.0

    @property
    def exit_code(self):
        if self.failed:
            return EXIT_FATAL
        return EXIT_SOME_FAILED if self.stats.failed else EXIT_OK

    def summary(self):
        waiting = f", {len(self.waiting)} left for later (--min-age)" if self.waiting else ""
        return (f"{self.files} input files: {len(self.done)} annotated, {len(self.skipped)} skipped "
                f"(unchanged){waiting}, {len(self.failed)} failed; {self.stats.summary()}")


def run_batch(inputs, out_dir, model=None, *, backend="auto", threads=0, batch_size=1, buffer=256,
              scores=False, keep_input=False, names=True, ignore_model_change=False, checksum=False, dask=None,
              part_size=DEFAULT_PART_SIZE, min_age=0, progress=False, report=None, dry_run=False):
    """Annotate the new and changed feed files of ``inputs`` into ``out_dir``; see the module doc.

    Raises ``Locked`` if another run holds ``out_dir``, ``UsageError`` for bad inputs,
    ``MissingExtra`` for ``dask`` without the extra, ``OSError``/``ValueError`` for a bad
    model or manifest. Messages (bad records, failed files) go to ``report``."""
    from nerelproc.runtime.bundle import model_identity, resolve_model

    report = report or default_report
    started = time.time()
    out_dir = Path(out_dir)
    if dask is not None:
        check_spec(dask)
        require_distributed()
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"OUT_DIR {out_dir} exists and is not a folder")
    files = find_inputs(inputs, out_dir)
    model_dir = resolve_model(model).resolve()
    if not (model_dir / "nerelproc.json").is_file():
        raise FileNotFoundError(f"{model_dir} is not a model directory (no nerelproc.json)")
    settings = Settings(model_dir, model_identity(model_dir), backend,
                        Options(buffer=buffer, scores=scores, keep_input=keep_input, names=names), batch_size, threads)
    result = BatchResult(files=len(files))
    with out_dir_lock(out_dir):
        manifest = Manifest(out_dir)
        todo = plan(files, manifest, out_dir, settings, ignore_model_change, checksum,
                    part_size if dask is not None else None, min_age, report)
        result.skipped = [f.rel for f in files if f.reason is None and not f.waiting]
        result.waiting = [f.rel for f in files if f.waiting]
        result.planned = [f.rel for f in todo]
        if dry_run:
            for f in todo:
                report(f"would annotate {f.rel} ({f.reason})")
            result.seconds = time.time() - started
            return result
        for f in [f for f in todo if f.error is not None]:
            record_failure(f, f.error, manifest, result, report, time.time())
            todo.remove(f)
        manifest.data["model"] = {"dir": str(model_dir), "identity": settings.model_identity}
        manifest.data["options"] = settings.output_options()
        bars = Bars(len(todo), sum(f.lines or 0 for f in todo), enabled=progress and bool(todo))
        try:
            if todo and dask is not None:
                run_dask(todo, out_dir, settings, manifest, result, dask, report, bars)
            elif todo:
                run_local(todo, out_dir, settings, manifest, result, report, bars)
        except BaseException:
            manifest.save()  # what was finished before an interruption (Ctrl-C, a fatal error)
            raise
        finally:
            bars.close()
        result.seconds = time.time() - started
        manifest.data["last_run"] = {
            "started": iso(started), "finished": now_iso(), "seconds": round(result.seconds, 3),
            "annotated": len(result.done), "skipped": len(result.skipped), "waiting": len(result.waiting),
            "failed": len(result.failed),
        }
        manifest.save()
    return result


def run_local(todo, out_dir, settings, manifest, result, report, bars):
    """One process: each file in turn, resumable from its partial output."""
    from nerelproc.runtime.bundle import load_predictor

    predictor = load_predictor(settings.model_dir, backend=settings.backend, threads=settings.threads,
                               batch_windows=settings.batch_size)
    machine = {"cpus": [cpu_model()], "hosts": [socket.gethostname()]}
    for f in todo:
        started = time.time()
        say = lambda message, rel=f.rel: report(f"{rel}: {message}")  # noqa: E731
        try:
            stats = annotate_file(f, out_dir, settings, predictor, say, bars)
        except Exception as error:  # noqa: BLE001 - one bad file (corrupt gzip, unreadable) does not stop the run
            record_failure(f, error, manifest, result, report, started)
            bars.file_done()
            continue
        record_success(f, stats, machine, out_dir, settings, manifest, result, started)
        bars.file_done()


def annotate_file(f, out_dir, settings, predictor, report, bars):
    """Annotate one input into ``out_dir/rel`` (resuming a partial made from the same input)."""
    from nerelproc.io.readers import read_jsonl

    out, records, stats, digest = open_output(out_dir / f.rel, settings.output_identity(f),
                                              lambda: read_jsonl(f.path), start_over=True)
    if stats is not None:
        report(f"resuming after {stats.written} records already written")
        bars.docs(stats.written)
    try:
        stats = annotate_records(records, predictor, settings.options, out, report, bars.doc_bar, stats, digest)
        if not f.unchanged_since_planned():
            raise RuntimeError("the input changed while it was annotated; it is retried by the next run")
    except Exception:
        out.abandon()
        raise
    out.close()
    return stats


# -- helpers -----------------------------------------------------------------------


class Bars:
    """Two tqdm bars on stderr (files, documents), or nothing."""

    def __init__(self, files, docs, enabled=True):
        self.file_bar = self.doc_bar = None
        if enabled:
            from tqdm import tqdm

            self.file_bar = tqdm(total=files, desc="files", unit="file", file=sys.stderr, position=0)
            self.doc_bar = tqdm(total=docs, desc="documents", unit="doc", file=sys.stderr, position=1)

    def file_done(self):
        if self.file_bar is not None:
            self.file_bar.update(1)

    def docs(self, count):
        if self.doc_bar is not None:
            self.doc_bar.update(count)

    def close(self):
        for bar in (self.doc_bar, self.file_bar):
            if bar is not None:
                bar.close()


def default_report(message):
    """One line on stderr, above the progress bars if there are any."""
    from tqdm import tqdm

    tqdm.write(f"nerelproc batch: {message}", file=sys.stderr)
