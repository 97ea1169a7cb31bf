"""``OUT_DIR/manifest.json``: what ``nerelproc batch`` records of each input file.

Per input (its path relative to its root): the input's identity (path, size, mtime,
sha256), the model's identity and the output options, the output's size and sha256,
the record counts, the status (``ok``, ``some_failed``, ``failed`` with its error), the
CPUs and hosts that did it, and when. A rerun reads it to decide what to do again.
``batch.py`` (one process) and ``batch_dask.py`` (Dask workers) record through here.
"""

import time
from datetime import datetime, timezone
from pathlib import Path

import orjson

from nerelproc.io.files import file_sha256
from nerelproc.io.writers import atomic_output, remove_stale_temporaries

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
TIMING_FIELDS = ("started", "finished", "seconds")  # what differs between two runs of the same work
SAVE_INTERVAL = 1.0  # seconds: the manifest is rewritten after a file at most this often


class Manifest:
    """``OUT_DIR/manifest.json``: ``{"version", "model", "options", "last_run", "files": {rel: entry}}``,
    rewritten atomically (sorted keys) after every file."""

    def __init__(self, out_dir):
        self.path = Path(out_dir) / MANIFEST_NAME
        self.data = {"version": MANIFEST_VERSION, "files": {}}
        self.saved = float("-inf")
        remove_stale_temporaries(self.path)  # a killed run's half-written manifest (we hold the lock)
        if self.path.exists():
            try:
                data = orjson.loads(self.path.read_bytes())
            except orjson.JSONDecodeError as error:
                raise ValueError(f"{self.path} is not JSON ({error}); move it away to start over") from None
            if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
                raise ValueError(f"{self.path} is not a nerelproc batch manifest (version {MANIFEST_VERSION})")
            self.data = data

    @property
    def files(self):
        return self.data["files"]

    def save(self, force=True):
        """Write it atomically; unless ``force``, at most once a ``SAVE_INTERVAL`` (a run of many
        small files would otherwise rewrite a large manifest for each). A finished file that a
        killed run had not recorded yet is annotated again by the next run, to the same bytes."""
        if not force and time.monotonic() - self.saved < SAVE_INTERVAL:
            return
        with atomic_output(self.path) as file:
            file.write(orjson.dumps(self.data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
        self.saved = time.monotonic()


def without_timings(manifest_data):
    """A manifest with what differs between two runs of the same work removed (for comparisons)."""
    data = {key: value for key, value in manifest_data.items() if key != "last_run"}
    data["files"] = {
        rel: {key: value for key, value in entry.items() if key not in TIMING_FIELDS}
        for rel, entry in manifest_data["files"].items()
    }
    return data


def record_success(f, stats, machine, out_dir, settings, manifest, result, started):
    output = out_dir / f.rel
    entry = {
        "input": f.identity(),
        "model": settings.model_identity,
        "options": settings.output_options(),
        "output": {"path": f.rel, "size": output.stat().st_size, "sha256": file_sha256(output)},
        "records": stats.records,
        "written": stats.written,
        "failed": stats.failed,
        "blank": stats.blank,
        "status": "some_failed" if stats.failed else "ok",
        "cpus": sorted(set(machine["cpus"])),
        "hosts": sorted(set(machine["hosts"])),
        "started": iso(started),
        "finished": now_iso(),
        "seconds": round(time.time() - started, 3),
    }
    manifest.files[f.rel] = entry
    manifest.save(force=False)  # only after the output is in place
    result.done.append(f.rel)
    for name in ("records", "written", "failed", "blank"):
        setattr(result.stats, name, getattr(result.stats, name) + getattr(stats, name))


def record_failure(f, error, manifest, result, report, started):
    message = one_line(error)
    report(f"{f.rel}: not annotated: {message}")
    manifest.files[f.rel] = {
        "input": f.identity(), "status": "failed", "error": message,
        "started": iso(started), "finished": now_iso(), "seconds": round(time.time() - started, 3),
    }
    manifest.save(force=False)
    result.failed.append(f.rel)


def iso(timestamp):
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


def now_iso():
    return iso(time.time())


def one_line(error):
    text = str(error) or type(error).__name__
    if isinstance(error, (EOFError, OSError)) or type(error).__name__ in ("error", "BadGzipFile"):
        text = f"{type(error).__name__}: {text}"
    return " ".join(text.split())
