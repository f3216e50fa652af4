"""One translation of a transport library's exceptions into device errors, by a table.

Each transport (http.py, ssh.py) lists the library's exceptions and the device error each
becomes, most specific first; `translated` applies the table once around the library calls, so
a new library exception is one row, not another `except` in a ladder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from device_drivers.errors import DeviceError

Subject = TypeVar("Subject")
"""What the messages name: an HTTP exchange, an SSH connection attempt."""

Caught = type[BaseException] | tuple[type[BaseException], ...]
ErrorTable = tuple[tuple[Caught, Callable[[Any, Subject], DeviceError]], ...]
"""(library exception class(es), builds the device error from the exception and the subject);
the first row that matches wins."""


@contextmanager
def translated(table: ErrorTable[Subject], subject: Subject) -> Iterator[None]:
    """Raise the table's device error for a library exception; our own DeviceErrors (and
    anything the table does not name) pass through unchanged."""
    try:
        yield
    except DeviceError:
        raise
    except Exception as exc:
        for library_error, device_error in table:
            if isinstance(exc, library_error):
                raise device_error(exc, subject) from exc
        raise
