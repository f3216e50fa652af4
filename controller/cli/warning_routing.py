"""Python warnings on the command line: ours stay visible, third-party ones go to debug logging.

A user of a cron tool cannot act on a library's deprecation notice (cryptography 51 warns that
DSA is deprecated whenever asyncssh is imported), so those are logged at debug level, visible
with `-v -v`, instead of being printed on stderr.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TextIO

# Our top-level packages: a warning whose source file lies in one of them is ours.
_OWN_ROOTS = tuple(
    str(Path(__file__).resolve().parents[2] / name) + "/"
    for name in ("inventory", "device_drivers", "controller", "agent", "simulator")
)
_LOG = logging.getLogger("polyfleet.warnings")
# Warnings raised before `-v` was parsed (a command's libraries are imported first): held here
# until `logging_configured()` replays them at the level logging now has.
_pending: list[tuple[int, str]] | None = None


def is_own_code(filename: str) -> bool:
    """True when `filename` (a warning's source file) belongs to polyfleet's own packages."""
    try:
        resolved = str(Path(filename).resolve())
    except (OSError, ValueError):
        return False
    return resolved.startswith(_OWN_ROOTS)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    text = f"{category.__name__}: {message} ({filename}:{lineno})"
    if is_own_code(filename):
        entry = (logging.WARNING, text)
    else:
        entry = (logging.DEBUG, f"third-party warning: {text}")
    if _pending is not None:
        _pending.append(entry)
    else:
        _LOG.log(*entry)


def route_warnings_to_logging() -> None:
    """Send every later warning through `logging` (see the module docstring)."""
    global _pending
    _pending = []
    warnings.showwarning = _show_warning


def logging_configured() -> None:
    """Logging has its handlers and level now: log the warnings held until this point."""
    global _pending
    held, _pending = _pending or [], None
    for level, text in held:
        _LOG.log(level, "%s", text)
