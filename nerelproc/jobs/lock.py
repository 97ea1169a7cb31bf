"""One writer at a time: an exclusive ``flock`` on a lock file.

    with exclusive_lock(out_dir / ".lock", busy=f"another nerelproc batch is working on {out_dir}"):
        ...  # a second process gets Locked at once, naming this one: pid, host, start time

The kernel releases a ``flock`` however its holder ends (an exception, SIGTERM, SIGKILL),
so a killed run never leaves a lock that blocks the next one. The file holds the
holder's pid, host and start time while it is held, and is removed on release.
"""

import fcntl
import os
import socket
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path


class Locked(RuntimeError):
    """Another process holds the lock (the commands exit 4)."""


@contextmanager
def exclusive_lock(path, busy):
    """Hold the lock file ``path`` for the block; raise ``Locked("{busy} ({holder}); exiting")``
    at once if another process holds it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _acquire(path, busy)
    try:
        started = datetime.fromtimestamp(time.time(), timezone.utc).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {started}\n".encode(), 0)
        yield
    finally:
        path.unlink(missing_ok=True)  # still held: whoever locks the old file now sees it is gone
        os.close(fd)


def _acquire(path, busy):
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "a process just starting"
            os.close(fd)
            raise Locked(f"{busy} ({holder}); exiting") from None
        except BaseException:
            os.close(fd)
            raise
        # Locked a file that its last holder removed on release: that lock guards nothing; again.
        try:
            if os.path.samestat(os.stat(path), os.fstat(fd)):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)
