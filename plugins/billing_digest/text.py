"""Plain-text helpers for what people read, shared by the e-mail (``mail/``) and the unsubscribe
pages (``unsubscribe/``): kept here, below both, so neither room imports the other's.

:func:`neutralise` is the one gate for untrusted text (error messages from the billing systems,
customer, company and user names, codes): whatever a source system or a user typed reaches the
subject, the HTML and text parts and the preview page only through it (issue 15).
"""

from __future__ import annotations

import re

# ANSI / ECMA-48 escape sequences, removed whole (not just their ESC, which would leave "[31m"):
# - CSI: ESC [ (or the C1 byte U+009B), parameter bytes 0x30-0x3F, intermediates 0x20-0x2F, a final byte;
# - OSC, DCS, SOS, PM, APC: ESC ] P X ^ _ (or C1 U+009D U+0090 U+0098 U+009E U+009F) up to the string
#   terminator (ESC \, U+009C or BEL), or to the end of the text when it never comes;
# - any other escape: ESC, intermediates, one final byte (e.g. ESC c, ESC ( B).
_ANSI = re.compile(
    r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    r"|(?:\x1b[\]PX^_]|[\x9d\x90\x98\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c|$)"
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?"
)
# Bidirectional formatting characters (Unicode TR9): the embeddings and overrides U+202A-U+202E and
# the isolates U+2066-U+2069 reorder what follows them ("Trojan Source", a file "invoice\u202efdp.exe"),
# and the implicit marks U+200E, U+200F and U+061C move punctuation and digits around them. Nothing
# a pt-BR billing text needs: all removed (the text's own right-to-left letters, if any, stay).
_BIDI = re.compile(r"[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# C0 and C1 controls, DEL, the Unicode line and paragraph separators and the BOM (zero-width no-break
# space): each run becomes one space, as clean_text did before, so "a\tb" stays two words.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff]+")
_CONTROL_KEEP_LINES = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]+")
# One scan decides: most texts (accents included) hold none of these and skip the substitutions
# (measured: 0.5 us a pt-BR error message instead of 7.9 us through all three).
_SUSPECT = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff]")


def neutralise(text: str, keep_line_breaks: bool = False) -> str:
    """``text`` without escape sequences (removed whole) and bidi controls (removed), other control
    characters as one space each run. Nothing else changes: escaping for HTML and headers, trimming
    and shortening stay the caller's. ``keep_line_breaks`` keeps LF (CRLF and CR become LF)."""
    if not _SUSPECT.search(text):
        return text
    text = _ANSI.sub("", text)
    text = _BIDI.sub("", text)
    if keep_line_breaks:
        return _CONTROL_KEEP_LINES.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _CONTROL.sub(" ", text)


def first_name(name: str | None) -> str:
    """The first word of a person's name ("" when there is none): how the e-mail and the pages greet."""
    parts = neutralise(name or "").split()
    return parts[0] if parts else ""
