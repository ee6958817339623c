"""Text from events and rule files made safe for a terminal cell.

Event data is attacker-controlled: a service name can carry ESC sequences (move the cursor, rewrite
earlier lines, set the window title), C1 controls, or bidi overrides that make `exe.txt` read as
`txt.exe`. Every cell shows such characters as visible escapes (`\\x1b`, `\\u202e`) instead of
sending them, and rich markup in the text prints as text.
"""

from __future__ import annotations

import re

from rich.markup import escape

# C0 controls (tab and newline included: a newline in a cell could forge a row), DEL, C1 controls,
# and the Unicode bidi controls and isolates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def plain_text(value: object) -> str:
    """The text with every control or bidi character replaced by a visible escape."""
    text = "" if value is None else str(value)
    return _UNSAFE.sub(_visible, text)


def terminal_text(value: object) -> str:
    """`plain_text`, then rich-markup-escaped: what goes into a rich table cell or console line."""
    return escape(plain_text(value))
