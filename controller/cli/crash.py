"""The last line of defence of every command: an unexpected error is one line and a log file.

A user (or cron's mail) should never get a Python traceback: it hides the one line that matters
and may carry internals. The traceback goes to a file in the user's log directory instead
(`POLYFLEET_LOG_DIR` overrides it), readable by the user only, and the message says where.
"""

from __future__ import annotations

import os
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path

from platformdirs import user_log_dir

LOG_DIR_ENV = "POLYFLEET_LOG_DIR"


def log_dir() -> Path:
    """Where crash logs go: POLYFLEET_LOG_DIR, else the platform's per-user log directory."""
    override = os.environ.get(LOG_DIR_ENV)
    if override:
        return Path(override).expanduser()
    return Path(user_log_dir("polyfleet", appauthor=False))


def write_crash_log(exc: BaseException, command: str | None) -> Path:
    """Write the traceback of `exc` to a new file (mode 0600) and return its path."""
    directory = log_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = datetime.now(UTC)
    path = directory / f"crash-{now:%Y%m%dT%H%M%S}-{os.getpid()}.log"
    # The command name only, not its arguments: those may hold a token or a password.
    header = [
        f"polyfleet internal error at {now.isoformat()}",
        f"command: polyfleet {command or '(none)'}",
        f"python: {sys.version.split()[0]} on {sys.platform}",
        "",
    ]
    body = "".join(traceback.format_exception(exc))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(header) + body)
    return path


def report_internal_error(exc: BaseException, command: str | None) -> None:
    """Print the one-line message for `exc` on stderr, with the log file (or why there is none)."""
    summary = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
    try:
        where = f"details in {write_crash_log(exc, command)}"
    except OSError as log_error:
        where = f"no log written ({log_error.strerror or log_error} in {log_dir()})"
    sys.stderr.write(f"polyfleet: internal error: {summary}; {where}\n")
    sys.stderr.flush()
