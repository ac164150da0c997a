"""Output for a terminal that user data cannot take over.

CSV values, file names and school names end up in what the command line prints (`status
--upload N` lists every issue with its value).  An escape sequence in one of them would be
obeyed by the terminal: clear the screen, rewrite earlier lines, set the window title, hide
text.  Every character that controls a terminal or reorders text is therefore printed as a
visible escape (`\\u001b`, `\\u202e`) instead; line breaks and tabs of our own output stay.
The escape is the JSON one: in `--json` output (where json.dumps already escaped C0
controls) it keeps the same value, so one filter serves both.
"""

from __future__ import annotations

import io
import re
from typing import Any, TextIO

# C0 controls but tab and newline, DEL, C1 controls; bidirectional overrides, isolates and
# marks; the Unicode line and paragraph separators
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def _visible(match: re.Match) -> str:
    return f"\\u{ord(match.group()):04x}"


def terminal_safe(text: str) -> str:
    """`text` with every terminal control character shown as a \\uXXXX escape."""
    return _UNSAFE.sub(_visible, text)


class SafeStream(io.TextIOBase):
    """A text stream that writes through `terminal_safe`; bytes written to `.buffer` (a
    download to stdout is the file itself) pass unchanged."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(terminal_safe(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def buffer(self) -> Any:
        return self._stream.buffer

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._stream.encoding
