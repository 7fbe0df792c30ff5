"""Write failures a user can act on: a full disk, a quota, a read-only or
foreign-owned output folder become a :class:`StorageError` naming the path and
the free space, not an ``OSError`` traceback."""

from __future__ import annotations

import errno
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import MPMError

REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EFBIG: "the file is larger than allowed",
}


class StorageError(MPMError):
    """A file could not be written for a reason outside the program."""


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def existing_ancestor(path: str | Path) -> Path:
    """``path`` or its nearest ancestor that exists."""
    p = Path(path).absolute()
    while not p.exists() and p.parent != p:
        p = p.parent
    return p


def mount_point(path: str | Path) -> Path:
    """The mount point of the file system holding ``path``."""
    p = existing_ancestor(path)
    while not os.path.ismount(p) and p.parent != p:
        p = p.parent
    return p


def free_space(path: str | Path) -> str:
    """``"1.2 GB free of 50.0 GB"`` on the file system holding ``path``."""
    try:
        usage = shutil.disk_usage(existing_ancestor(path))
    except OSError:
        return "free space unknown"
    return f"{_human(usage.free)} free of {_human(usage.total)}"


_RUST_IO = re.compile(r"Os \{ code: (\d+)|\(os error (\d+)\)")


def error_number(exc: BaseException) -> int | None:
    """The errno of an ``OSError``, or of an I/O failure another library wraps
    in its own type (safetensors: ``IoError(Os { code: 28, ... })``)."""
    if isinstance(exc, OSError):
        return exc.errno
    match = _RUST_IO.search(str(exc))
    return int(match.group(1) or match.group(2)) if match else None


def storage_error(exc: BaseException, path: str | Path | None = None, what: str = "file",
                  note: str = "") -> StorageError | None:
    """The user-facing error for ``exc``, or None when it is not a storage problem."""
    if isinstance(exc, StorageError):
        return exc
    number = error_number(exc)
    reason = REASONS.get(number or 0)
    if reason is None:
        return None
    target = path if path is not None else getattr(exc, "filename", None)
    if target is None:  # e.g. a failed write() on an open file: the error carries no path
        message = f"a write failed: {reason}"
    else:
        message = f"cannot write {what} {target}: {reason} ({free_space(target)} on {mount_point(target)})"
    if number in (errno.ENOSPC, errno.EDQUOT):
        message += ". Free some space or choose another folder (run.output_dir)"
    elif number in (errno.EROFS, errno.EACCES, errno.EPERM):
        message += ". Choose a writable folder (run.output_dir / --output-dir)"
    if note:
        message += f". {note}"
    error = StorageError(message)
    error.errno = number  # type: ignore[attr-defined]
    return error


@contextmanager
def writing(path: str | Path, what: str = "file", note: str = "") -> Iterator[None]:
    """Turn a storage ``OSError`` raised inside the block into a :class:`StorageError`."""
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:  # OSError, or a library's wrapped I/O error
        error = storage_error(exc, path, what, note)
        if error is None:
            raise
        raise error from None


def check_writable(folder: str | Path) -> str | None:
    """Why ``folder`` (created if missing) cannot be written, or None; probes
    with a real file, since ``os.access`` says yes to root on any folder."""
    folder = Path(folder)
    base = existing_ancestor(folder)
    if not base.is_dir():
        return f"{base} is not a folder"
    probe = base / f".mpm-write-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"  # unique across processes
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        reason = REASONS.get(exc.errno or 0, exc.strerror or str(exc))
        return f"cannot write to {base}: {reason} ({free_space(base)})"
    return None
