"""One cause, one block: which errors of a company's topic share a cause, and how the block reads.

Pure functions, no pandas. The transform groups a topic's errors by :func:`cause_key`; the block
shows the message once (:func:`summarise`: what differs between its invoices, such as each
customer's bounced address, becomes "…" in the shared text and each invoice's ``detail``); the
renderer shows the code only when the message does not already say it (:func:`code_in_message`).

A message is split into literal text and *variable* tokens, the parts that name one invoice
rather than the error (docs/data-model.md, "Causes", has the table):

- variable: e-mail addresses, URLs, dates and times, ``R$`` amounts, and numbers that look like
  identifiers or quantities: four or more digits (``FAT-2026-004512``, protocols, CNPJ/CPF, CEP),
  or digits joined by ``. , / -`` (``1.234,56``, ``116/03``, ``01310-100``), or any number right
  after an identifier word (``nº 12``, ``nota 7``, ``lote 3``, ``RPS 45``, ``#9``);
- kept (they name the error): the error's own code where the message repeats it (``E181``,
  ``0042``), SMTP enhanced status codes (``5.1.1``), a number right after a code word
  (``código 0042``, ``HTTP 401``, ``status 1001``, ``erro 500``), and other numbers of one to
  three digits (``550``, ``401``, bank return code ``48``, ``60s``).

When unsure, a number is kept: two blocks of one cause cost a line, one block of two causes hides one.
The key also compares case-, accent- and whitespace-insensitively and ignores trailing punctuation.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from typing import NamedTuple

ELLIPSIS = "…"

_CODE_WORDS = r"c[óo]d(?:igo)?|code|erro|error|status|http|smtp|retorno|motivo|rejei[çc][ãa]o"
_ID_WORDS = (r"n[º°]|no\.|n\.|n[úu]mero|nota|nfs-?e|nf|fatura|faturamento|rps|protocolo|lote|pedido|"
             r"t[íi]tulo|boleto|documento|id")
_NUMBER = r"\d+(?:[.,/-]\d+)*"
# Each token's pattern, and the characters it can start with (None: any).
_EMAIL = (r"(?P<email>(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+)", None)
_URL = (r"(?P<url>\b(?:https?://|www\.)[^\s<>\"']*[^\s<>\"'.,;:!?)\]])", "hw")
_MONEY = (r"(?P<money>R\$\s*-?\d[\d.,]*\d|R\$\s*\d)", "r")
_NUMERIC = (
    # ISO date (and time), dd/mm/yyyy (and time): before numbers, which would split them.
    r"(?P<date>\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
    r"|\b\d{1,2}/\d{1,2}/\d{2,4}(?:,?\s+(?:[àa]s\s+)?\d{1,2}[:h]\d{2}(?::\d{2})?)?)",
    r"(?P<time>\b\d{1,2}(?::\d{2}){1,2}\b|\b\d{1,2}h\d{2}\b)",
    r"(?P<smtp>\b[245]\.\d{1,3}\.\d{1,3}\b)",
    rf"(?P<num>{_NUMBER})",
)
# What comes right before a number decides for it (searched in the few characters before it).
_CODE_WORD_BEFORE = re.compile(rf"\b(?:{_CODE_WORDS})[\s:#º°.-]*$", re.IGNORECASE)
_ID_WORD_BEFORE = re.compile(rf"(?:\b(?:{_ID_WORDS})|#)[\s:#º°.-]*$", re.IGNORECASE)
_LOOK_BACK = 16
# A message without any of these has no variable token (the common case: skip the scan).
_MAY_VARY = re.compile(r"[\d@]|https?://|www\.", re.IGNORECASE)
_HAS_URL = re.compile(r"https?://|www\.", re.IGNORECASE)
_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")
_WHITESPACE = re.compile(r"\s+")
_TOKENS = re.compile(r"[0-9a-z]+")


class Split(NamedTuple):
    """A message as literal text around its variable tokens: ``literals[0] values[0] literals[1] …``."""

    literals: tuple[str, ...]
    kinds: tuple[str, ...]      # per value: email, url, date, time, money, number
    values: tuple[str, ...]


@functools.lru_cache(maxsize=1024)
def _pattern(code: str | None, email: bool, url: bool, money: bool) -> re.Pattern[str]:
    """The tokens a message can hold. A scan only tries them where one can start (a lookahead on
    the first character): five times faster on long messages than trying every token everywhere."""
    parts: list[tuple[str, str | None]] = []
    code = (code or "").strip()
    if code:
        # The error's own code, wherever the message repeats it, is literal text.
        parts.append((rf"(?P<own>(?<![0-9A-Za-z]){re.escape(code)}(?![0-9A-Za-z]))", code[0]))
    parts += [token for token, wanted in ((_EMAIL, email), (_URL, url), (_MONEY, money)) if wanted]
    parts += [(p, "0") for p in _NUMERIC]
    starts = [first for _, first in parts]
    alternatives = "|".join(p for p, _ in parts)
    if None in starts:
        return re.compile(alternatives, re.IGNORECASE)
    chars = "".join(sorted({re.escape(ch) for first in starts for ch in str(first)} - {"0"}))
    return re.compile(rf"(?=[\d{chars}])(?:{alternatives})", re.IGNORECASE)


def _is_variable_number(token: str) -> bool:
    return any(sep in token for sep in ".,/-") or sum(ch.isdigit() for ch in token) >= 4


@functools.lru_cache(maxsize=65536)
def split_message(message: str, code: str | None = None) -> Split:
    """The message's literal text and variable tokens (see the module's rules)."""
    if not _MAY_VARY.search(message):
        return Split((message,), (), ())
    literals: list[str] = []
    kinds: list[str] = []
    values: list[str] = []
    start = 0  # where the current literal began
    pattern = _pattern(code, "@" in message, bool(_HAS_URL.search(message)), "R$" in message)
    for m in pattern.finditer(message):
        group = m.lastgroup
        if group in ("own", "smtp"):
            continue  # literal
        if group == "num":
            before = max(0, m.start() - _LOOK_BACK)
            if _CODE_WORD_BEFORE.search(message, before, m.start()):
                continue
            if not (_ID_WORD_BEFORE.search(message, before, m.start()) or _is_variable_number(m.group(0))):
                continue
            kind = "number"
        else:
            kind = str(group)
        literals.append(message[start:m.start()])
        kinds.append(kind)
        values.append(m.group(0))
        start = m.end()
    literals.append(message[start:])
    return Split(tuple(literals), tuple(kinds), tuple(values))


def _fold(text: str) -> str:
    """Case-, accent- and whitespace-insensitive form."""
    if not text.isascii():
        text = _COMBINING.sub("", unicodedata.normalize("NFKD", text))
    return _WHITESPACE.sub(" ", text.casefold()).strip()


def normalise_code(code: str | None) -> str:
    """``"HTTP_401"``, ``"http-401 "`` -> ``"http_401"``; None or blank -> ``""``."""
    return "_".join(_TOKENS.findall(_fold(code or "")))


@functools.lru_cache(maxsize=65536)
def message_skeleton(message: str, code: str | None = None) -> str:
    """The message with each variable token replaced by ``<kind>``, folded, without trailing punctuation."""
    split = split_message(message, code)
    parts = [split.literals[0]]
    for kind, literal in zip(split.kinds, split.literals[1:], strict=True):
        parts.append(f"<{kind}>")
        parts.append(literal)
    return _fold("".join(parts)).rstrip(" .;:!")


def cause_key(step: str, kind: str, status: str | None, code: str | None, message: str) -> str:
    """The cause of an error: its step, kind (failed / missing), status, code and message skeleton.

    Errors of one company's topic with the same key are one block in the e-mail."""
    return f"{step}|{kind}|{status or ''}|{normalise_code(code)}|{message_skeleton(message, code)}"


class Summary(NamedTuple):
    message: str                       # shown once for the block
    details: tuple[str | None, ...]    # per message: what its variable parts say that the others' don't


def summarise(messages: Sequence[str], code: str | None = None) -> Summary:
    """The block's message and each invoice's detail, for messages of one cause (same key).

    A variable token with the same value in every message stays in the shared text; one that
    differs becomes "…" there, and each message's values of those tokens are its detail
    (e.g. the customer's bounced address). The first message's wording is the block's."""
    if not messages:
        raise ValueError("a cause has at least one message")
    first = messages[0]
    if all(m == first for m in messages):
        return Summary(first, (None,) * len(messages))
    splits = [split_message(m, code) for m in messages]
    slots = len(splits[0].values)
    if any(len(s.values) != slots for s in splits):  # not one cause: never merge words silently
        return Summary(first, tuple(None if m == first else m for m in messages))
    varying = [len({s.values[i] for s in splits}) > 1 for i in range(slots)]
    head = splits[0]
    text = head.literals[0] + "".join(
        (ELLIPSIS if varying[i] else head.values[i]) + head.literals[i + 1] for i in range(slots))
    details = tuple(", ".join(s.values[i] for i in range(slots) if varying[i]) or None for s in splits)
    return Summary(text, details)


@functools.lru_cache(maxsize=4096)
def code_in_message(code: str | None, message: str) -> bool:
    """Whether the message already says the code (tokens compared case- and separator-insensitively):
    ``E181`` in "E181 - Alíquota…", ``550`` in "550 5.1.1 …", ``HTTP_401`` in "(HTTP 401)"."""
    wanted = _TOKENS.findall(_fold(code or ""))
    if not wanted:
        return False
    tokens = _TOKENS.findall(_fold(message))
    n = len(wanted)
    return any(tokens[i:i + n] == wanted for i in range(len(tokens) - n + 1))
