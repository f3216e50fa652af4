"""The CLI's consoles: whatever they are given to print is shown as data, never obeyed.

Stored values and user-given IDs reach messages and tables (issue 9: the MAC `00:04:f2:cd:ab:01`
showed as `00:04:f2💿ab:01`, a site named `[link=…]…[/link]` became a hyperlink, `[blink]` made
ESC[5m). So every console of the CLI is a `DataConsole`: a string it prints is taken literally
(no rich markup, no emoji codes, no highlighting) with control characters spelled out, whatever a
caller asks for. Our own styling (a red `error:`) is built as `Text` by `labelled()`, whose
message part is escaped the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from rich.console import Console, JustifyMethod, OverflowMethod
from rich.style import Style
from rich.text import Text

from controller.cli.plain_table import PIPE_WIDTH
from inventory.safe_text import printable


class DataConsole(Console):
    """A rich console that never interprets the text it is given: markup, emoji codes and
    highlighting are off whatever a caller asks, control characters are shown escaped."""

    def render_str(
        self,
        text: str,
        *,
        style: str | Style = "",
        justify: JustifyMethod | None = None,
        overflow: OverflowMethod | None = None,
        emoji: bool | None = None,
        markup: bool | None = None,
        highlight: bool | None = None,
        highlighter: Callable[[str | Text], Text] | None = None,
    ) -> Text:
        return super().render_str(
            printable(text, keep_newlines=True),
            style=style,
            justify=justify,
            overflow=overflow,
            emoji=False,
            markup=False,
            highlight=False,
        )


def data_console(stream: TextIO) -> Console:
    """A console for stdout or stderr: a terminal's own width, else PIPE_WIDTH; rich turns
    colour off by itself when the stream is not a terminal (and honours NO_COLOR)."""
    width = None if stream.isatty() else PIPE_WIDTH
    return DataConsole(
        file=stream, soft_wrap=True, width=width, markup=False, emoji=False, highlight=False
    )


def styled(text: str, style: str) -> Text:
    """`text` in `style`, taken literally (our styling on a line that may hold values)."""
    return Text(printable(text, keep_newlines=True), style=style)


def labelled(label: str, style: str, message: str) -> Text:
    """`label` in `style`, then `message` as literal text (`error:` and the like)."""
    return Text.assemble(styled(label, style), " ", printable(message, keep_newlines=True))
