"""``nerelproc batch``: incremental, cron-safe, and over Dask."""

import gzip
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from blocking import without
from needs import need

from nerelproc.jobs.exits import UsageError
from nerelproc.jobs.batch import LineSplitter, find_inputs
from nerelproc.jobs.batch_manifest import without_timings

ROOT = Path(__file__).resolve().parents[1]


# -- pure parts: no model ------------------------------------------------------------------


def test_line_ranges_cover_every_line_once(tmp_path):
    from nerelproc.jobs.batch_dask import part_records
    from nerelproc.io.readers import read_jsonl

    rng = random.Random(14)
    for trial in range(40):
        lines = [orjson.dumps({"text": "x" * rng.randrange(0, 60)}) if rng.random() > 0.2 else b"  "
                 for _ in range(rng.randrange(0, 30))]
        data = b"\n".join(lines) + (b"\n" if rng.random() > 0.5 else b"")
        splitter = LineSplitter(part_size=rng.choice([1, 7, 50, 200, 10_000]))
        chunk = rng.choice([1, 3, 64, 1 << 20])
        for start in range(0, len(data), chunk):
            splitter.feed(data[start:start + chunk])
        count, parts = splitter.finish()
        assert count == len(data.splitlines(keepends=True))
        assert sum(part.count for part in parts) == count
        assert [part.first for part in parts] == [1 + sum(p.count for p in parts[:i]) for i in range(len(parts))]
        for part in parts[:-1]:
            assert part.offset == 0 or data[part.offset - 1:part.offset] == b"\n"
        path = tmp_path / (f"{trial}.jsonl.gz" if trial % 2 else f"{trial}.jsonl")
        path.write_bytes(gzip.compress(data) if trial % 2 else data)
        whole = [(r.line, r.id, r.error, r.source, r.blank) for r in read_jsonl(path)]
        pieces = [(r.line, r.id, r.error, r.source, r.blank)
                  for part in parts for r in part_records(path, part.offset, part.first, part.count)]
        assert pieces == whole, trial


def test_inputs_keep_their_relative_paths(tmp_path):
    for name in ("feeds/a.jsonl", "feeds/x/b.JSONL.GZ", "feeds/x/skip.txt", "feeds/.hidden/c.jsonl",
                 "feeds/out/d.jsonl", "other/a.jsonl"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = find_inputs([tmp_path / "feeds"], tmp_path / "feeds" / "out")
    assert [f.rel for f in found] == ["a.jsonl", "x/b.JSONL.GZ"]
    found = find_inputs([str(tmp_path / "feeds" / "*" / "*.JSONL.GZ")], tmp_path / "o")
    assert [f.rel for f in found] == ["x/b.JSONL.GZ"]
    with pytest.raises(ValueError, match="same output a.jsonl"):
        find_inputs([tmp_path / "feeds" / "a.jsonl", tmp_path / "other" / "a.jsonl"], tmp_path / "o")


def test_an_output_never_lands_on_an_input(tmp_path):
    """An input named inside OUT_DIR (its output would be the file itself, or another input),
    or an OUT_DIR whose folder links to a feed folder: a usage error, before anything is written."""
    feeds, out = tmp_path / "feeds", tmp_path / "out"
    for name in ("a.jsonl", "day/b.jsonl"):
        (feeds / name).parent.mkdir(parents=True, exist_ok=True)
        (feeds / name).write_bytes(b'{"text": "x"}\n')
    for inputs, out_dir in (([feeds / "a.jsonl"], feeds), ([feeds / "day" / "b.jsonl"], feeds),
                            ([str(feeds / "*.jsonl")], feeds), ([str(feeds / "day" / "*.jsonl")], feeds)):
        with pytest.raises(UsageError, match="OUT_DIR"):
            find_inputs(inputs, out_dir)
    out.mkdir()
    (out / "day").symlink_to(feeds / "day", target_is_directory=True)
    with pytest.raises(UsageError, match="would overwrite the input .*b.jsonl"):
        find_inputs([feeds], out)
    (out / "day").unlink()
    os.link(feeds / "a.jsonl", out / "a.jsonl")  # a hard link: the same device and inode
    with pytest.raises(UsageError, match="would overwrite the input .*a.jsonl"):
        find_inputs([feeds], out)
    (out / "a.jsonl").unlink()
    assert [f.rel for f in find_inputs([feeds], out)] == ["a.jsonl", "day/b.jsonl"]
    # the command: exit 2, and nothing written (no manifest, no lock) before the model is even read
    before = sorted(p for p in tmp_path.rglob("*"))
    result = subprocess.run([sys.executable, "-m", "nerelproc", "batch", str(feeds / "a.jsonl"), "-o", str(feeds),
                             "--model", str(tmp_path / "no-model")], capture_output=True, cwd=ROOT)
    assert result.returncode == 2 and "is inside OUT_DIR" in result.stderr.decode(), result.stderr.decode()
    assert sorted(p for p in tmp_path.rglob("*")) == before


NO_DISTRIBUTED = without(("distributed", "dask"))


def test_dask_without_the_extra_says_what_to_install(tmp_path):
    command = [sys.executable, "-c", NO_DISTRIBUTED, "batch", str(tmp_path), "-o", str(tmp_path / "out"),
               "--dask", "local:2"]
    result = subprocess.run(command, capture_output=True, cwd=ROOT)
    assert result.returncode == 1
    assert "pip install 'nerelproc[dask]'" in result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()


# -- with a tiny model -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nerel_lines(nerel_dir):
    """Raw NEREL JSONL lines (with their gold annotations: batch drops them)."""
    return (nerel_dir / "jsonl" / "train.jsonl").read_bytes().splitlines(keepends=True)


def command(inputs, out_dir, model, *extra):
    return [sys.executable, "-m", "nerelproc", "batch", *map(str, inputs), "-o", str(out_dir),
            "--model", str(model), "--quiet", *map(str, extra)]


def batch(inputs, out_dir, model, *extra):
    return subprocess.run(command(inputs, out_dir, model, "--threads", 1, *extra), capture_output=True, cwd=ROOT)


def write_feeds(folder, lines, spec):
    """spec: {relative name: (start, stop)} over ``lines``; ``.gz`` names are gzipped."""
    for name, (start, stop) in spec.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = b"".join(lines[start:stop])
        path.write_bytes(gzip.compress(data, mtime=0) if name.endswith(".gz") else data)


def outputs(out_dir):
    """{relative path: bytes} of every file under out_dir but the manifest, lock and hidden work files."""
    return {p.relative_to(out_dir).as_posix(): p.read_bytes() for p in sorted(Path(out_dir).rglob("*"))
            if p.is_file() and not p.name.startswith(".") and p.name != "manifest.json"
            and ".nerelproc-parts" not in p.parts}


def manifest(out_dir):
    return orjson.loads((Path(out_dir) / "manifest.json").read_bytes())


def test_rerun_annotates_only_the_new_file(tiny_model, nerel_lines, tmp_path):
    feeds, out = tmp_path / "feeds", tmp_path / "out"
    write_feeds(feeds, nerel_lines, {"a.jsonl": (0, 4), "day/b.jsonl.gz": (4, 7), "day/c.jsonl": (7, 9)})
    first = batch([feeds], out, tiny_model)
    assert first.returncode == 0, first.stderr.decode()
    assert "3 input files: 3 annotated, 0 skipped (unchanged), 0 failed" in first.stderr.decode()
    before = outputs(out)
    assert set(before) == {"a.jsonl", "day/b.jsonl.gz", "day/c.jsonl"}
    assert gzip.decompress(before["day/b.jsonl.gz"]).count(b"\n") == 3
    stamps = {name: (out / name).stat().st_mtime_ns for name in before}
    entries = manifest(out)["files"]
    assert entries["a.jsonl"]["records"] == 4 and entries["a.jsonl"]["status"] == "ok"
    assert set(entries["a.jsonl"]["input"]) == {"path", "size", "mtime_ns", "sha256"}
    assert entries["a.jsonl"]["cpus"] and entries["a.jsonl"]["finished"]

    write_feeds(feeds, nerel_lines, {"day/d.jsonl": (9, 11)})
    second = batch([feeds], out, tiny_model)
    assert second.returncode == 0, second.stderr.decode()
    assert "4 input files: 1 annotated, 3 skipped (unchanged), 0 failed; 2 documents" in second.stderr.decode()
    after = outputs(out)
    assert set(after) == set(before) | {"day/d.jsonl"}
    for name in before:  # untouched: same bytes, same file
        assert after[name] == before[name] and (out / name).stat().st_mtime_ns == stamps[name]
    assert {name: manifest(out)["files"][name] for name in entries} == entries
    assert manifest(out)["files"]["day/d.jsonl"]["written"] == 2

    # touched but not changed: skipped; changed: redone; another model: everything redone
    os.utime(feeds / "a.jsonl", ns=(1, 1))
    write_feeds(feeds, nerel_lines, {"day/c.jsonl": (7, 10)})
    third = batch([feeds], out, tiny_model)
    assert "4 input files: 1 annotated, 3 skipped" in third.stderr.decode(), third.stderr.decode()
    assert manifest(out)["files"]["a.jsonl"]["input"]["mtime_ns"] == 1
    assert manifest(out)["files"]["day/c.jsonl"]["records"] == 3
    assert outputs(out)["a.jsonl"] == before["a.jsonl"]

    import shutil

    other = tmp_path / "model2"
    shutil.copytree(tiny_model, other)
    (other / "nerelproc.json").write_bytes((other / "nerelproc.json").read_bytes() + b"\n")
    kept = batch([feeds], out, other, "--ignore-model-change")
    assert "0 annotated, 4 skipped" in kept.stderr.decode(), kept.stderr.decode()
    redone = batch([feeds], out, other)
    assert "4 annotated, 0 skipped" in redone.stderr.decode(), redone.stderr.decode()
    assert {entry["model"] for entry in manifest(out)["files"].values()} == {manifest(out)["model"]["identity"]}


def test_no_names_leaves_out_normal_forms_and_groups_and_counts_as_another_output(tiny_model, nerel_lines, tmp_path):
    import shutil

    from tiny_model import finding_entities

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    finding_entities(model)  # entities, so that names have something to name
    feeds, out = tmp_path / "feeds", tmp_path / "out"
    write_feeds(feeds, nerel_lines, {"a.jsonl": (0, 2)})
    with_names = batch([feeds], out, model)
    assert with_names.returncode == 0, with_names.stderr.decode()
    records = [orjson.loads(line) for line in (out / "a.jsonl").read_bytes().splitlines()]
    assert all(r["entities"] and "normal" in r and "groups" in r for r in records)
    without = batch([feeds], out, model, "--no-names")
    assert "1 annotated, 0 skipped" in without.stderr.decode(), without.stderr.decode()  # another output: redone
    records = [orjson.loads(line) for line in (out / "a.jsonl").read_bytes().splitlines()]
    assert all(r["entities"] and "normal" not in r and "groups" not in r for r in records)


def test_an_unreadable_file_fails_alone_and_is_retried(tiny_model, nerel_lines, tmp_path):
    feeds, out = tmp_path / "feeds", tmp_path / "out"
    write_feeds(feeds, nerel_lines, {"a.jsonl": (0, 2), "b.jsonl.gz": (2, 5)})
    (feeds / "b.jsonl.gz").write_bytes((feeds / "b.jsonl.gz").read_bytes()[:-20])  # truncated mid-write
    first = batch([feeds], out, tiny_model)
    assert first.returncode == 1, first.stderr.decode()
    assert "b.jsonl.gz: not annotated" in first.stderr.decode()
    assert "2 input files: 1 annotated, 0 skipped (unchanged), 1 failed" in first.stderr.decode()
    assert set(outputs(out)) == {"a.jsonl"} and manifest(out)["files"]["b.jsonl.gz"]["status"] == "failed"
    write_feeds(feeds, nerel_lines, {"b.jsonl.gz": (2, 5)})
    young = batch([feeds], out, tiny_model, "--min-age", 3600)
    assert young.returncode == 0 and "1 left for later (--min-age)" in young.stderr.decode()
    second = batch([feeds], out, tiny_model)
    assert second.returncode == 0, second.stderr.decode()
    assert "1 annotated, 1 skipped" in second.stderr.decode()
    assert manifest(out)["files"]["b.jsonl.gz"]["status"] == "ok"


def test_a_dry_run_counts_only_what_it_would_annotate(tiny_model, nerel_lines, tmp_path):
    """A file that --min-age holds back is not "to annotate": the dry run says what a run would do."""
    feeds, out = tmp_path / "feeds", tmp_path / "out"
    write_feeds(feeds, nerel_lines, {"a.jsonl": (0, 2), "b.jsonl": (2, 4)})
    assert batch([feeds], out, tiny_model).returncode == 0
    write_feeds(feeds, nerel_lines, {"c.jsonl": (4, 6)})  # new, and written just now
    young = batch([feeds], out, tiny_model, "--dry-run", "--min-age", 3600)
    stderr = young.stderr.decode()
    assert young.returncode == 0, stderr
    assert "3 input files: 0 to annotate, 2 unchanged, 1 left for later (--min-age)" in stderr
    assert "would annotate" not in stderr
    now = batch([feeds], out, tiny_model, "--dry-run")
    assert "would annotate c.jsonl (new)" in now.stderr.decode()
    assert "3 input files: 1 to annotate, 2 unchanged" in now.stderr.decode()
    assert not (out / "c.jsonl").exists()


def wait_for(condition, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def partial_lines(path):
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_a_second_concurrent_run_is_refused(tiny_model, nerel_lines, tmp_path):
    feeds, out = tmp_path / "feeds", tmp_path / "out"
    write_feeds(feeds, nerel_lines * 3, {"big.jsonl": (0, len(nerel_lines) * 3)})  # long enough: killed below
    first = subprocess.Popen(command([feeds], out, tiny_model, "--threads", 1, "--buffer", 2), cwd=ROOT,
                             stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: partial_lines(out / ".big.jsonl.partial") >= 2)
        started = time.time()
        second = batch([feeds], out, tiny_model)
        assert second.returncode == 4, second.stderr.decode()
        assert "another nerelproc batch is working on" in second.stderr.decode()
        assert f"pid {first.pid}" in second.stderr.decode()
        assert time.time() - started < 30 and first.poll() is None
        assert not (out / "big.jsonl").exists()
    finally:
        first.kill()
        first.wait()
    # the lock dies with its holder: the next run is not refused
    assert batch([feeds], out, tiny_model, "--dry-run").returncode == 0


def test_killed_run_resumes_to_the_same_bytes(tiny_model, nerel_lines, tmp_path):
    feeds = tmp_path / "feeds"
    lines = nerel_lines[:130] + [b"{broken\n", b"\n"] + nerel_lines[130:200]
    write_feeds(feeds, lines, {"1.jsonl": (0, 40), "2.jsonl.gz": (40, 160), "3.jsonl": (160, 202)})
    reference = batch([feeds], tmp_path / "whole", tiny_model, "--buffer", 4)
    assert reference.returncode == 3, reference.stderr.decode()  # one broken line

    out = tmp_path / "out"
    run = subprocess.Popen(command([feeds], out, tiny_model, "--threads", 1, "--buffer", 4), cwd=ROOT,
                           stderr=subprocess.DEVNULL)
    assert wait_for(lambda: partial_lines(out / ".2.jsonl.gz.partial") >= 20)
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert set(outputs(out)) == {"1.jsonl"}  # finished before the kill: kept; the rest: no final name
    assert set(manifest(out)["files"]) == {"1.jsonl"}
    resumed = batch([feeds], out, tiny_model, "--buffer", 4)
    assert resumed.returncode == 3, resumed.stderr.decode()
    stderr = resumed.stderr.decode()
    assert "2.jsonl.gz: resuming after" in stderr
    assert "3 input files: 2 annotated, 1 skipped (unchanged), 0 failed" in stderr
    assert outputs(out) == outputs(tmp_path / "whole")
    assert without_timings(manifest(out)) == without_timings(manifest(tmp_path / "whole"))
    assert not [p.name for p in out.rglob(".*") if p.name != ".lock"]  # no partials left


# -- Dask ------------------------------------------------------------------------------------


@pytest.fixture
def distributed():
    return need("distributed")


def test_dask_local_gives_the_same_bytes(distributed, tiny_model, nerel_lines, tmp_path):
    feeds = tmp_path / "feeds"
    lines = nerel_lines[:30] + [b"\n", b"not json\n"] + nerel_lines[30:50]
    write_feeds(feeds, lines, {"a.jsonl": (0, 25), "b/c.jsonl.gz": (25, 52), "b/empty.jsonl": (0, 0),
                               "d.jsonl": (40, 44)})
    single = batch([feeds], tmp_path / "single", tiny_model, "--scores")
    assert single.returncode == 3, single.stderr.decode()
    spread = batch([feeds], tmp_path / "dask", tiny_model, "--scores", "--dask", "local:2", "--part-size", "16K")
    assert spread.returncode == 3, spread.stderr.decode()
    stderr = spread.stderr.decode()
    assert "dask: 2 workers" in stderr and " parts for 4 files" in stderr
    assert int(stderr.split(" parts for")[0].rsplit(" ", 1)[1]) > 8  # the big files were split
    assert outputs(tmp_path / "dask") == outputs(tmp_path / "single")
    assert without_timings(manifest(tmp_path / "dask")) == without_timings(manifest(tmp_path / "single"))
    assert not (tmp_path / "dask" / ".nerelproc-parts").exists()


def test_a_killed_worker_loses_nothing(distributed, tiny_model, nerel_lines, tmp_path):
    import nerelproc.jobs.batch_dask

    feeds = tmp_path / "feeds"
    write_feeds(feeds, nerel_lines, {"big.jsonl": (0, 240), "small.jsonl": (240, 250)})
    reference = batch([feeds], tmp_path / "single", tiny_model)
    assert reference.returncode == 0, reference.stderr.decode()

    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    client = distributed.Client(cluster)
    try:
        pids = client.run(os.getpid)
        out = tmp_path / "dask"
        run = subprocess.Popen(command([feeds], out, tiny_model, "--threads", 1, "--dask", cluster.scheduler_address,
                                       "--part-size", "24K"), cwd=ROOT, stderr=subprocess.PIPE)
        parts = out / ".nerelproc-parts"

        def busy():  # a part is half-written and both workers have work
            assert run.poll() is None, "the run ended before a worker could be killed"
            processing = client.processing()
            writing = any(partial_lines(p) >= 1 for p in parts.glob(".*.partial")) if parts.exists() else False
            return writing and all(processing.get(address) for address in pids)

        assert wait_for(busy)
        victim, lost = next((address, keys) for address, keys in client.processing().items() if keys)
        os.kill(pids[victim], signal.SIGKILL)
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr.decode()
        assert outputs(out) == outputs(tmp_path / "single")
        assert without_timings(manifest(out)) == without_timings(manifest(tmp_path / "single"))
        assert not parts.exists()  # the killed task's half-written part is gone too
        # the victim's task was taken from it and run again elsewhere
        stories = [[(event[1], event[2]) for event in cluster.scheduler.story(key)] for key in lost]
        assert any(("processing", "released") in story and story[-2:] == [("processing", "memory"),
                                                                            ("memory", "forgotten")]
                   for story in stories), stories
        client.wait_for_workers(2, timeout=300)  # a new worker process starts slowly on busy cores
        assert set(client.run(os.getpid).values()) != set(pids.values())  # the victim was replaced
        survivor = next(address for address in pids if address != victim)
        loads = client.run(lambda: nerelproc.jobs.batch_dask.LOADS["count"], workers=[survivor])
        assert loads == {survivor: 1}  # many tasks, one model load
    finally:
        client.close()
        cluster.close()
