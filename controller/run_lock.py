"""A non-blocking, process-wide lock so two cron runs of the same job never overlap.

`fcntl.flock` on a lock file: the kernel drops the lock when the holder exits or dies, so a
crashed run never leaves a stale lock behind (the file itself stays, which is harmless). The
holder writes its PID and start time into the file so the run that is refused can say who holds
it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from platformdirs import user_data_dir

from controller.errors import ControllerError

APP_NAME = "polyfleet"


class LockHeld(ControllerError):
    """Another process holds the lock; the message names the file and, if known, the holder."""

    def __init__(self, path: Path, holder: str | None, job: str = "run") -> None:
        self.path = path
        self.holder = holder
        who = f" ({holder})" if holder else ""
        super().__init__(f"another {job}{who} holds {path}")


class LockUnavailable(ControllerError):
    """The lock file cannot be created or opened (missing directory, permissions)."""


def default_lock_path(job: str, key: str) -> Path:
    """A lock file in the user data dir (next to the default store; $XDG_RUNTIME_DIR is often
    unset under cron), one per job and per store `key`, so runs on different stores don't block."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]
    return Path(user_data_dir(APP_NAME, appauthor=False)) / f"{job}-{digest}.lock"


class RunLock:
    """`with RunLock(path, job="health run"):` holds an exclusive flock or raises LockHeld at
    once; `job` names what holds it in the message."""

    def __init__(self, path: Path, *, job: str = "run") -> None:
        self.path = path
        self.job = job
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise LockUnavailable(
                f"cannot open lock file {self.path}: {exc.strerror or exc}"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise LockHeld(self.path, holder, self.job) from None
        except OSError as exc:
            os.close(fd)
            raise LockUnavailable(f"cannot lock {self.path}: {exc.strerror or exc}") from exc
        started = datetime.now(UTC).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, started {started}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the descriptor drops the flock

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_holder(fd: int) -> str | None:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        return None
    return text or None
