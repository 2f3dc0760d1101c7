"""Source text as the parser reads it: one line ending, no byte-order mark.

Every entry point (a file, a string, the formatter, the editor) passes its text through
`normalize` before parsing, so a CR-only or CRLF file parses as its LF twin (a `#` comment ends
at any line ending, not at the end of the file) and, since the program's hash is taken on this
text, gives the same numbers; diagnostics show the normalised lines.
"""

from __future__ import annotations

BOM = "\ufeff"


def normalize(text: str) -> str:
    """`text` with a leading UTF-8 byte-order mark removed and CRLF and lone CR turned into LF."""
    if text.startswith(BOM):
        text = text[len(BOM) :]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text
