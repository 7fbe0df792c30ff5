"""One trainer per output folder: an exclusive lock held for a run's lifetime.

Two trainers writing the same ``run.output_dir`` interleave ``metrics.jsonl``,
overwrite each other's ``final/`` and delete each other's partial checkpoints.
:func:`run_lock` prevents that: it takes an OS-level lock (``fcntl.flock``) on
``<output_dir>/train.lock`` -- race-free, and released by the kernel when the
holder dies, even by ``kill -9`` -- and writes the holder (pid, host, start
time) into the file as JSON, which is what the refusal message names.

A lock file whose flock is free was left by a process that is gone (the
kernel dropped its lock): on this host it is taken over with a notice. A file
naming another host is not taken over (flock on some network filesystems is
local to each machine, so a free flock proves nothing there); the message says
to delete it when that run is gone.

Multi-process runs: rank 0 takes the lock for all ranks (trainer.py); a
``--nproc`` launcher takes it before writing anything and holds it for its
torchrun workers, whose rank 0 recognises it through ``HOLDER_ENV``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import MPMError

LOCK_NAME = "train.lock"
# Set by a launcher that holds the lock for its workers (``--nproc``): "pid@host:path".
HOLDER_ENV = "MPM_RUN_LOCK_HOLDER"


class RunLocked(MPMError):
    """Another live trainer holds the output folder."""


def _describe(holder: dict[str, Any]) -> str:
    return (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, "
            f"started {holder.get('started', '?')}")


def _read_holder(fd: int) -> dict[str, Any]:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = b""
    while chunk := os.read(fd, 65536):
        raw += chunk
    try:
        holder = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _holder_key(holder: dict[str, Any], path: Path) -> str:
    return f"{holder.get('pid')}@{holder.get('host')}:{os.path.abspath(path)}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """The held lock of one output folder; :meth:`release` (or leaving
    :func:`run_lock`) deletes the file and drops the flock."""

    def __init__(self, path: Path, fd: int | None, holder: dict[str, Any], inherited: bool = False) -> None:
        self.path, self._fd, self.holder = path, fd, holder
        self.inherited = inherited  # held by the launcher of this process, which releases it

    @property
    def held(self) -> bool:
        return self._fd is not None or self.inherited

    @contextlib.contextmanager
    def for_children(self) -> Iterator[None]:
        """Processes started inside the block (a launcher's workers) find the
        lock held for them (``HOLDER_ENV``) instead of refusing to run."""
        before = os.environ.get(HOLDER_ENV)
        os.environ[HOLDER_ENV] = _holder_key(self.holder, self.path)
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(HOLDER_ENV, None)
            else:
                os.environ[HOLDER_ENV] = before

    def release(self) -> None:
        if self._fd is None:
            return
        import fcntl

        fd, self._fd = self._fd, None
        try:
            # Unlink while still holding the flock: a waiter that opened the old
            # file sees it is no longer the path's file and opens the path again.
            with contextlib.suppress(FileNotFoundError):
                if os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                    os.unlink(self.path)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def acquire(output_dir: str | Path, notice: Callable[[str], None] | None = None) -> RunLock:
    """Lock ``output_dir`` (created if missing) for this process, or raise
    :class:`RunLocked` naming the folder and the live holder."""
    import fcntl

    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    say = notice or (lambda msg: print(msg, file=sys.stderr, flush=True))
    host = socket.gethostname()
    for _ in range(100):  # retried only when the file was replaced under us
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                holder = _read_holder(fd)
                if holder and os.environ.get(HOLDER_ENV) == _holder_key(holder, path):
                    return RunLock(path, None, holder, inherited=True)  # our launcher holds it for us
                raise RunLocked(
                    f"{folder} is in use by another training run ({_describe(holder)}); two runs in one "
                    f"run.output_dir would mix their metrics and checkpoints. Wait for it to finish, stop it, "
                    f"or train into another run.output_dir (lock file: {path})"
                ) from None
            try:
                same_file = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same_file = False
            if not same_file:  # the previous holder deleted it as we opened it: try the new one
                os.close(fd)
                fd = -1
                continue
            previous = _read_holder(fd)
            if previous and previous.get("host") != host:
                fcntl.flock(fd, fcntl.LOCK_UN)
                raise RunLocked(
                    f"{folder} holds the lock of a training run on another machine ({_describe(previous)}). "
                    f"If that run is no longer running, delete {path} and start again"
                )
            if previous and previous.get("pid") != os.getpid():
                pid = previous.get("pid")
                state = "no longer running" if isinstance(pid, int) and not _pid_alive(pid) else \
                    "no longer holding it"
                say(f"note: taking over the stale lock of {folder} left by {_describe(previous)} "
                    f"(that process is {state})")
            holder = {"pid": os.getpid(), "host": host,
                      "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime()),
                      "argv": sys.argv[:8]}
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, (json.dumps(holder) + "\n").encode("utf-8"))
            os.fsync(fd)
            lock, fd = RunLock(path, fd, holder), -1
            return lock
        finally:
            if fd >= 0:
                os.close(fd)
    raise RunLocked(f"could not lock {path}: it keeps being replaced by other processes")


@contextlib.contextmanager
def run_lock(output_dir: str | Path, notice: Callable[[str], None] | None = None) -> Iterator[RunLock]:
    """``with run_lock(run.output_dir): ...`` -- held until the block ends, however it ends."""
    lock = acquire(output_dir, notice)
    try:
        yield lock
    finally:
        lock.release()
