"""Reading user-given files as bounded streams: import lists (CSV, JSON) and small TOML files.

An import file is never read whole: it is decoded in chunks, cut into CSV lines or JSON list
items as it goes, and refused as soon as it passes the size limit (default 1 GiB) or one line or
item passes the row limit (default 1 MiB), so `/dev/zero` or a file without line breaks costs a
megabyte, not the machine. Every refusal is an ImportRefused naming the file and what to change.
"""

from __future__ import annotations

import codecs
import errno
import io
import itertools
import json
import os
import stat
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inventory.errors import ImportRefused

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30
DEFAULT_MAX_BYTES = GIB
DEFAULT_MAX_ROW = MIB
SMALL_FILE_MAX_BYTES = 16 * MIB
"""Config, policy and credential files are a few kilobytes; more is a mistake (or a device)."""

_CHUNK = 256 * KIB
_BOM = b"\xef\xbb\xbf"
_WHITESPACE = " \t\r\n"


def size_text(count: int) -> str:
    """1073741824 -> "1 GiB", 1048576 -> "1 MiB", 1500 -> "1,500 bytes"."""
    for unit, name in ((GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")):
        if count >= unit and count % unit == 0:
            return f"{count // unit} {name}"
    return f"{count:,} bytes"


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """How much of an import file is read: the whole file, and one CSV line or JSON item."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_row: int = DEFAULT_MAX_ROW

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_row < 1:
            raise ValueError("import limits must be at least 1 byte")


def _refuse(source: str, reason: str) -> ImportRefused:
    return ImportRefused(f"cannot import {source}: {reason}")


def _open(path: Path) -> io.BufferedReader:
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise _refuse(str(path), "no such file") from None
    except IsADirectoryError:
        raise _refuse(str(path), "it is a directory") from None
    except PermissionError:
        raise _refuse(str(path), "permission denied") from None
    except OSError as exc:
        raise _refuse(str(path), exc.strerror or str(exc)) from None
    return handle


class TextStream:
    """The UTF-8 text of an import file, decoded chunk by chunk with the BOM removed.

    Decoding errors name the byte, its offset and line, as a user needs to fix the file. The
    size limit is checked up front for regular files and while reading for pipes and devices.
    """

    def __init__(self, path: Path, limits: ReadLimits | None = None) -> None:
        self.path = path
        self.source = str(path)
        self.limits = limits or ReadLimits()
        self._head: list[str] = []
        self._chunks = self._decode()

    def refuse(self, reason: str) -> ImportRefused:
        """An ImportRefused for this file."""
        return _refuse(self.source, reason)

    def _too_large(self) -> ImportRefused:
        return self.refuse(
            f"larger than the import limit of {size_text(self.limits.max_bytes)} "
            "(raise it with --max-bytes or POLYFLEET_IMPORT_MAX_BYTES)"
        )

    def _decode(self) -> Iterator[str]:
        limit = self.limits.max_bytes
        with _open(self.path) as handle:
            info = os.fstat(handle.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size > limit:
                raise self._too_large()
            decoder = codecs.getincrementaldecoder("utf-8")("strict")
            read = 0  # bytes consumed so far
            lines = 0  # newlines in them
            first = True
            while True:
                data = handle.read(min(_CHUNK, limit + 1 - read))
                if first:
                    first = False
                    if data.startswith(_BOM):
                        data, read = data[len(_BOM) :], len(_BOM)
                final = not data
                pending = decoder.getstate()[0]
                try:
                    text = decoder.decode(data, final)
                except UnicodeDecodeError as exc:
                    whole = pending + data
                    offset = read - len(pending) + exc.start
                    line = lines + whole.count(b"\n", 0, exc.start) + 1
                    byte = whole[exc.start] if exc.start < len(whole) else whole[-1]
                    raise self.refuse(
                        f"not UTF-8 text; byte 0x{byte:02x} at byte offset {offset} (line {line}) "
                        "is not valid UTF-8 - save the file as UTF-8"
                    ) from None
                read += len(data)
                if read > limit:
                    raise self._too_large()
                lines += data.count(b"\n")
                if text:
                    yield text
                if final:
                    return

    def first_char(self) -> str:
        """The first character that is not white space ("" if none); reads only that far."""
        for text in self._head:
            stripped = text.lstrip(_WHITESPACE)
            if stripped:
                return stripped[0]
        for text in self._chunks:
            self._head.append(text)
            stripped = text.lstrip(_WHITESPACE)
            if stripped:
                return stripped[0]
        return ""

    def chunks(self) -> Iterator[str]:
        """The decoded text in order, from the start (what `first_char` peeked included)."""
        while self._head:
            yield self._head.pop(0)
        yield from self._chunks

    def lines(self) -> Iterator[str]:
        """Physical lines with their endings, split on CR, LF or CRLF as csv expects.

        A line longer than the row limit ends the import; it is what a binary file or one
        without line breaks looks like, and csv would otherwise hold it whole.
        """
        limit = self.limits.max_row
        carry = ""
        number = 0
        for text in self.chunks():
            pieces = io.StringIO(carry + text, newline="").readlines()
            # the last piece may go on in the next chunk (a CR too: it may be half of a CRLF)
            carry = pieces.pop() if not pieces[-1].endswith("\n") else ""
            if len(carry) > limit or (pieces and max(map(len, pieces)) > limit):
                long = next((i for i, piece in enumerate(pieces) if len(piece) > limit), None)
                raise self.refuse(
                    f"line {number + 1 + (len(pieces) if long is None else long)} is longer than "
                    f"the row limit of {size_text(limit)} (not a text list, or raise the "
                    "limit with POLYFLEET_IMPORT_MAX_ROW_BYTES)"
                )
            number += len(pieces)
            yield from pieces
        if carry:
            yield carry

    def json_items(self, what: str) -> Iterator[tuple[int, object]]:
        """(1-based index, value) of each item of a top-level JSON list, one item in memory.

        `what` names the items in messages ("device objects"). The whole document is refused,
        with line and column, if it is not valid JSON, not a list, empty, or nested too deeply.
        """
        return _JsonListReader(self, what).items()


class _JsonListReader:
    """Walks `[item, item, ...]` with json's own decoder, holding one row limit of text."""

    def __init__(self, stream: TextStream, what: str) -> None:
        self.stream = stream
        self.what = what
        self.limit = stream.limits.max_row
        self.chunks = stream.chunks()
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.base_line = 1  # line and column (0-based) of buf[0]
        self.base_col = 0
        self.decoder = json.JSONDecoder()

    def _fill(self) -> None:
        """Make sure a row limit of text lies ahead of `pos` (or the end of the file)."""
        if self.eof or len(self.buf) - self.pos > self.limit:
            return
        gone = self.buf[: self.pos]
        newline = gone.rfind("\n")
        if newline < 0:
            self.base_col += len(gone)
        else:
            self.base_line += gone.count("\n")
            self.base_col = len(gone) - newline - 1
        parts = [self.buf[self.pos :]]
        size = len(parts[0])
        while size <= 2 * self.limit:
            text = next(self.chunks, None)
            if text is None:
                self.eof = True
                break
            parts.append(text)
            size += len(text)
        self.buf = "".join(parts)
        self.pos = 0

    def _where(self, index: int) -> str:
        before = self.buf.count("\n", 0, index)
        newline = self.buf.rfind("\n", 0, index)
        column = index - newline if before else self.base_col + index + 1
        return f"line {self.base_line + before} column {column}"

    def _skip_space(self) -> str:
        """The next character that is not white space ("" at the end of the file)."""
        while True:
            self._fill()
            buf, pos = self.buf, self.pos
            while pos < len(buf) and buf[pos] in _WHITESPACE:
                pos += 1
            self.pos = pos
            if pos < len(buf):
                return buf[pos]
            if self.eof:
                return ""

    def _invalid(self, msg: str, index: int) -> ImportRefused:
        return self.stream.refuse(f"not valid JSON ({msg} at {self._where(index)})")

    def _value(self, name: str) -> object:
        """The JSON value at `pos` (`name` says which in messages: "item 3")."""
        self._fill()
        start = self.pos
        too_long = (
            f"{name} at {self._where(start)} is longer than the row limit of "
            f"{size_text(self.limit)}"
        )
        try:
            value, end = self.decoder.raw_decode(self.buf, start)
        except RecursionError:
            raise self.stream.refuse(
                f"{name} is nested too deeply (lists or objects within each other)"
            ) from None
        except json.JSONDecodeError as exc:
            if not self.eof and len(self.buf) - start > self.limit:
                raise self.stream.refuse(f"{too_long}, or not valid JSON ({exc.msg})") from None
            raise self._invalid(exc.msg, exc.pos) from None
        if end - start > self.limit:
            raise self.stream.refuse(too_long)
        self.pos = end
        return value

    def items(self) -> Iterator[tuple[int, object]]:
        first = self._skip_space()
        if not first:
            raise self.stream.refuse("the file is empty")
        if first != "[":
            found = self._value(
                "the JSON document"
            )  # not a list: say what it is (or why it is not JSON)
            raise self.stream.refuse(
                f"expected a JSON list of {self.what}, found {json_type(found)}"
            )
        self.pos += 1
        number = 0
        while True:
            char = self._skip_space()
            if char == "]" and number == 0:
                self.pos += 1
                self._expect_end()
                raise self.stream.refuse("the JSON list is empty, there are no rows")
            if not char:
                raise self._invalid("Expecting value", self.pos)
            number += 1
            yield number, self._value(f"item {number}")
            char = self._skip_space()
            if char == ",":
                self.pos += 1
            elif char == "]":
                self.pos += 1
                self._expect_end()
                return
            else:
                raise self._invalid("Expecting ',' delimiter", self.pos)

    def _expect_end(self) -> None:
        if self._skip_space():
            raise self._invalid("Extra data", self.pos)


def first_line(lines: Iterable[str]) -> tuple[str, Iterator[str]]:
    """The first non-blank line ("" if none) and an iterator over all the lines, from the start."""
    rest = iter(lines)
    head: list[str] = []
    for text in rest:
        head.append(text)
        if text.strip():
            return text, itertools.chain(head, rest)
    return "", iter(head)


def json_type(value: object) -> str:
    """How messages name a JSON value's type: "an object", "a list", "null", ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def read_small_text(path: Path, limit: int = SMALL_FILE_MAX_BYTES) -> str:
    """A small UTF-8 file (config, policy, credentials) read whole, but never more than `limit`.

    Raises what `Path.read_text` raises (OSError, UnicodeDecodeError), so callers' handling is
    unchanged; a file over the limit is an OSError(EFBIG) whose strerror says so.
    """
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise OSError(
            errno.EFBIG, f"larger than {size_text(limit)}, not a settings file", str(path)
        )
    return data.decode("utf-8")


def parse_toml(text: str, **options: Any) -> dict[str, Any]:
    """tomllib.loads, with nesting too deep for the parser reported as a TOMLDecodeError."""
    try:
        return tomllib.loads(text, **options)
    except RecursionError:
        raise tomllib.TOMLDecodeError(
            "nested too deeply (arrays or tables within each other)"
        ) from None
