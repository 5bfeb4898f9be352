"""Text safe for a terminal: the one function every line netdsl prints goes through.

Why: file names, folder (class) names, spec lines and data set names come from users and from
files, and a terminal obeys what it is sent. An ESC sequence in a folder name can rewrite the
screen or the window title, a C1 control (U+009B is CSI on 8-bit terminals) does the same, and a
bidirectional override (U+202E, "Trojan Source") makes a line read differently from what it is.
`printable` replaces each such character with a visible stand-in:

- C0 controls (but the line break) and DEL: their Unicode pictures, one column each (NUL -> ␀,
  ESC -> ␛, CR -> ␍), so a caret under an echoed source line still lines up; a tab is one space;
- C1 controls, bidirectional marks, embeddings, overrides and isolates, line/paragraph separators,
  zero-width space and BOM: a `\\u202e`-style escape;
- lone surrogates (a file name's undecodable bytes, kept by Python as U+DC80..U+DCFF): `\\xff`.
"""

from __future__ import annotations

import re

_PICTURES = {**{code: chr(0x2400 + code) for code in range(32)}, 0x09: " ", 0x7F: "\u2421"}
_UNSAFE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff\ud800-\udfff]"
)
_LINE_BREAK = re.compile("\n")


def _stand_in(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code in _PICTURES:
        return _PICTURES[code]
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the original byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, newlines: bool = True) -> str:
    """`text` with every terminal control, bidi and undecodable character made visible (see above);
    line breaks are kept, unless `newlines` is False (a name, which must stay on one line: ␊)."""
    text = _UNSAFE.sub(_stand_in, str(text))
    return text if newlines else _LINE_BREAK.sub("\u240a", text)
