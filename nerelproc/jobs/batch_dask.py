"""``nerelproc batch --dask``: the same work spread over Dask workers.

The unit of work is a *part*: a line range of an input file (a whole file unless it is
larger than ``--part-size``). A worker annotates a part into
``OUT_DIR/.nerelproc-parts/<key>.jsonl`` (written under a unique name, renamed into place
when complete, its counts and messages beside it in ``<key>.json``) and returns them.
The client concatenates a file's parts in order into the final output (atomically, gzip
as in one process) and only then records the file in the manifest. A document's output
depends on nothing but the document, and a part's records keep their line numbers in
the whole file, so the bytes are those of a single-process run.

A part's key is a hash of the input's sha256, the model, the output options and the
line range: a part finished before a run was killed is reused by the next run, and a
task that Dask runs twice (a worker lost mid-task is retried elsewhere) writes the
same bytes under the same name.

Each worker process loads the model once, on its first task, and keeps it (``_MODELS``);
its encoder threads are the host's cores divided by the Dask worker threads on that
host, unless ``--threads`` says otherwise. Workers must see the inputs, OUT_DIR and the
model at the same paths as the client (a shared file system).
"""

import os
import socket
import threading
import time
import uuid
from itertools import islice
from pathlib import Path

import orjson

from nerelproc.jobs.batch_manifest import record_failure, record_success
from nerelproc.jobs.exits import UsageError
from nerelproc.machine import cpu_model

PARTS_DIR = ".nerelproc-parts"  # finished line ranges, until their file is assembled
INSTALL_HINT = "pip install 'nerelproc[dask]'"
TASK_RETRIES = 2  # a task that raises is retried this often; a lost worker's task is always rescheduled
MAX_MESSAGES = 1000  # per part: the record errors sent back to the client


class MissingExtra(RuntimeError):
    """``--dask`` without the ``dask`` extra (exit 1)."""


def check_spec(spec):
    """``local:N`` -> ("local", N); ``tcp://host:port`` (or any Dask address) -> ("address", spec)."""
    if spec.startswith("local"):
        _, _, count = spec.partition(":")
        if not count:
            return "local", max(1, len(os.sched_getaffinity(0)))
        if not count.isdigit() or int(count) < 1:
            raise UsageError(f"--dask {spec}: expected local:N with N >= 1 worker processes")
        return "local", int(count)
    if "://" in spec:
        return "address", spec
    raise UsageError(f"--dask {spec}: expected local:N or a scheduler address like tcp://scheduler:8786")


def require_distributed():
    try:
        import distributed  # noqa: F401
    except ModuleNotFoundError:
        raise MissingExtra(f"--dask needs dask.distributed, which is not installed: {INSTALL_HINT}") from None


def start_client(spec):
    """A ``distributed.Client`` (and the LocalCluster it owns, if any)."""
    import logging

    from distributed import Client, LocalCluster

    kind, value = check_spec(spec)
    if kind == "local":
        cluster = LocalCluster(n_workers=value, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
        return Client(cluster), cluster
    client = Client(value, timeout="30s")
    client.wait_for_workers(1, timeout=120)
    return client, None


def worker_info():
    """Runs on each worker: where it is and what it has."""
    return {"host": socket.gethostname(), "cores": _cores(), "cpu": cpu_model(), "pid": os.getpid()}


def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def threads_by_host(client, threads):
    """Encoder threads per worker: ``threads`` if given, else the host's cores shared out
    among the Dask worker threads on that host (at least 1)."""
    infos = client.run(worker_info)
    nthreads = client.nthreads()
    per_host, cores = {}, {}
    for address, info in infos.items():
        per_host[info["host"]] = per_host.get(info["host"], 0) + nthreads.get(address, 1)
        cores[info["host"]] = info["cores"]
    return {host: threads or max(1, cores[host] // count) for host, count in per_host.items()}, infos


# -- on the worker ---------------------------------------------------------------------

_MODELS = {}  # (model_dir, backend, threads, batch_windows) -> [predictor, identity, lock, loads]
_MODELS_LOCK = threading.Lock()
LOADS = {"count": 0}  # model loads in this process (a test checks: once per worker)


def cached_predictor(model_dir, backend, threads, batch_windows):
    from nerelproc.runtime.bundle import load_predictor, model_identity

    key = (str(model_dir), backend, threads, batch_windows)
    with _MODELS_LOCK:
        if key not in _MODELS:
            predictor = load_predictor(model_dir, backend=backend, threads=threads, batch_windows=batch_windows)
            LOADS["count"] += 1
            _MODELS[key] = (predictor, model_identity(model_dir), threading.Lock())
        return _MODELS[key]


def part_records(path, offset, first, count):
    """The records of lines ``first .. first+count-1`` of a feed file, numbered as in the whole
    file (a missing id defaults to the line number, so the numbers must be the file's)."""
    import gzip

    from nerelproc.io.readers import is_gzip, read_jsonl_lines

    opener = gzip.open if is_gzip(path) else open
    with opener(path, "rb") as file:
        file.seek(offset)
        yield from read_jsonl_lines(islice(file, count), first_line=first)


def run_part(task):
    """A Dask task: annotate one part into its part file; return its counts and messages."""
    from nerelproc.io.writers import atomic_output
    from nerelproc.jobs.annotate import Options, annotate_records
    from nerelproc.jobs.resume import JsonlOutput

    started = time.time()
    part_path, meta_path = Path(task["part_path"]), Path(task["meta_path"])
    if part_path.exists() and meta_path.exists():  # a duplicate run of a finished task
        return orjson.loads(meta_path.read_bytes())
    host = socket.gethostname()
    threads = task["threads"].get(host) or task["threads_default"]
    predictor, identity, lock = cached_predictor(task["model_dir"], task["backend"], threads, task["batch_size"])
    path = Path(task["input"])
    stat = path.stat()
    if stat.st_size != task["size"] or stat.st_mtime_ns != task["mtime_ns"]:
        raise RuntimeError(f"{path} changed since the run planned it; it is retried by the next run")
    messages, dropped = [], [0]

    def report(message):
        if len(messages) < MAX_MESSAGES:
            messages.append(message)
        else:
            dropped[0] += 1

    temporary = part_path.with_name(f"{part_path.stem}.{uuid.uuid4().hex}.tmp.jsonl")
    out = JsonlOutput(temporary)
    try:
        with lock:  # one predictor per process: Dask threads of one worker take turns
            stats = annotate_records(part_records(path, task["offset"], task["first"], task["count"]),
                                     predictor, Options(**task["options"]), out, report)
        out.close()
    except BaseException:
        out.abandon()
        raise
    if dropped[0]:
        messages.append(f"... and {dropped[0]} more record errors in lines {task['first']}+{task['count']}")
    result = {
        "stats": {"records": stats.records, "written": stats.written, "failed": stats.failed, "blank": stats.blank},
        "messages": messages, "cpu": cpu_model(), "host": host, "pid": os.getpid(), "loads": LOADS["count"],
        "threads": threads, "model_identity": identity, "seconds": round(time.time() - started, 3),
    }
    with atomic_output(meta_path, fsync=False) as file:
        file.write(orjson.dumps(result))
    os.replace(temporary, part_path)  # the part exists whole, or not at all
    return result


# -- on the client -----------------------------------------------------------------------


def part_key(f, part, settings):
    import hashlib

    text = orjson.dumps([f.sha256, settings.model_identity, settings.output_options(), part.offset, part.first,
                         part.count])
    return hashlib.sha256(text).hexdigest()[:32]


def run_dask(todo, out_dir, settings, manifest, result, spec, report, bars):
    from distributed import as_completed

    parts_dir = Path(out_dir) / PARTS_DIR
    parts_dir.mkdir(parents=True, exist_ok=True)
    started_at = {f.rel: time.time() for f in todo}
    client, cluster = start_client(spec)
    try:
        try:
            threads, infos = threads_by_host(client, settings.threads)
        except Exception as error:  # noqa: BLE001 - e.g. a worker without nerelproc
            raise RuntimeError(f"the Dask workers cannot run nerelproc ({type(error).__name__}: {error}); "
                               "every worker needs the same nerelproc installed") from error
        report(f"dask: {len(infos)} workers on {len(threads)} host(s), {sum(len(f.parts) for f in todo)} parts "
               f"for {len(todo)} files; encoder threads per worker: "
               + ", ".join(f"{count} on {host}" for host, count in sorted(threads.items())))
        options = {"buffer": settings.options.buffer, "scores": settings.options.scores,
                   "keep_input": settings.options.keep_input}
        pending = {}  # rel -> {index: key} of parts still running
        done_parts = {f.rel: {} for f in todo}  # rel -> {index: result}
        keys_of = {f.rel: [] for f in todo}
        by_key = {}  # task key -> [(file, index)]
        futures = []
        for f in todo:
            pending[f.rel] = {}
            for index, part in enumerate(f.parts):
                key = part_key(f, part, settings)
                keys_of[f.rel].append(key)
                by_key.setdefault(key, []).append((f, index))
                part_path, meta_path = parts_dir / f"{key}.jsonl", parts_dir / f"{key}.json"
                if part_path.exists() and meta_path.exists():  # finished by a run that was killed
                    done_parts[f.rel][index] = orjson.loads(meta_path.read_bytes())
                    continue
                pending[f.rel][index] = key
                if len(by_key[key]) > 1:
                    continue  # the same part of an identical file: one task for both
                task = {
                    "input": str(f.path), "size": f.size, "mtime_ns": f.mtime_ns, "offset": part.offset,
                    "first": part.first, "count": part.count, "part_path": str(part_path),
                    "meta_path": str(meta_path), "model_dir": str(settings.model_dir),
                    "backend": settings.backend, "batch_size": settings.batch_size, "threads": threads,
                    "threads_default": settings.threads or 1, "options": options,
                }
                futures.append(client.submit(run_part, task, key=f"nerelproc-part-{key}", retries=TASK_RETRIES))
        finished = set()

        def try_finish(f):
            if f.rel in finished or pending[f.rel] or f.rel in failed_files:
                return
            finished.add(f.rel)
            finish_file(f, done_parts[f.rel], keys_of[f.rel], out_dir, settings, manifest, result,
                        started_at[f.rel], report, bars, by_key)

        failed_files = {}
        for f in todo:  # files with nothing to run (empty, or every part reused)
            try_finish(f)
        for future in as_completed(futures):
            key = future.key.removeprefix("nerelproc-part-")
            value = error = None
            try:
                value = future.result()
            except Exception as failure:  # noqa: BLE001 - after Dask's retries (KilledWorker, a bad file)
                error = failure
            future.release()
            for f, index in by_key[key]:
                if f.rel in finished or f.rel in failed_files:
                    continue
                if error is None and value["model_identity"] != settings.model_identity:
                    error = RuntimeError(f"worker {value['host']} has another model at {settings.model_dir} "
                                         f"(sha256 {value['model_identity'][:12]}…)")
                if error is not None:
                    failed_files[f.rel] = error
                    record_failure(f, error, manifest, result, report, started_at[f.rel])
                    bars.file_done()
                    continue
                del pending[f.rel][index]
                done_parts[f.rel][index] = value
                bars.docs(value["stats"]["written"])
                for message in value["messages"]:
                    report(f"{f.rel}: {message}")
                try_finish(f)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    if not result.failed:
        _remove_leftovers(parts_dir)


def finish_file(f, parts, keys, out_dir, settings, manifest, result, started, report, bars, by_key):
    """Concatenate a file's parts in order into its output; record it; drop parts no longer needed."""
    from nerelproc.jobs.resume import JsonlOutput, Stats

    parts_dir = Path(out_dir) / PARTS_DIR
    stats = Stats()
    try:
        out = JsonlOutput(Path(out_dir) / f.rel, settings.output_identity(f))
        try:
            for key in keys:
                with open(parts_dir / f"{key}.jsonl", "rb") as part:
                    for chunk in iter(lambda: part.read(1 << 20), b""):
                        out.file.write(chunk)
            if not f.unchanged_since_planned():
                raise RuntimeError("the input changed while it was annotated; it is retried by the next run")
        except BaseException:
            out.abandon()
            raise
        out.close()
    except Exception as error:  # noqa: BLE001
        record_failure(f, error, manifest, result, report, started)
        bars.file_done()
        return
    for index in range(len(keys)):
        for name in ("records", "written", "failed", "blank"):
            setattr(stats, name, getattr(stats, name) + parts[index]["stats"][name])
    machine = {"cpus": [parts[i]["cpu"] for i in range(len(keys))] or [cpu_model()],
               "hosts": [parts[i]["host"] for i in range(len(keys))] or [socket.gethostname()]}
    record_success(f, stats, machine, out_dir, settings, manifest, result, started)
    bars.file_done()
    for key in keys:  # the parts of this file, unless an identical file still needs them
        users = by_key.get(key, [])
        if all(other.rel in set(result.done) | set(result.failed) for other, _ in users):
            for suffix in (".jsonl", ".json"):
                (parts_dir / f"{key}{suffix}").unlink(missing_ok=True)


def _remove_leftovers(parts_dir):
    """After a run with no failure: parts of earlier runs that no file needs any more."""
    for path in parts_dir.iterdir():
        try:
            path.unlink()
        except OSError:
            pass
    try:
        parts_dir.rmdir()
    except OSError:
        pass
