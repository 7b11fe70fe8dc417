"""A vectorised encoder for ``COPY ... FROM STDIN (FORMAT BINARY)`` and the COPY that streams it.

A chunk of rows is described column by column (``Column``): numpy arrays for numbers, dates, timestamps and
booleans, and for text a list of segments (``Literal``, ``Pooled``, ``Digits``) that are concatenated per
row. ``encode_binary_rows`` lays the whole chunk out in one uint8 buffer by vectorised byte scatter, with
no per-row Python, which keeps both the Python side and the server side of a bulk load cheap.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
from psycopg.copy import QueuedLibpqWriter

PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 00:00 UTC in Unix microseconds
PG_EPOCH_DATE = dt.date(2000, 1, 1)
_POWERS_OF_TEN = np.array([10**exponent for exponent in range(1, 19)], dtype=np.int64)
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_COPY_TRAILER = b"\xff\xff"
_FIXED_SIZE = {"int8": 8, "int4": 4, "bool": 1, "date": 4, "ts": 8, "num2": 14}


class Pool:
    """A vocabulary of strings stored in one UTF-8 buffer. Code 0 is always the empty string."""

    def __init__(self, strings: Sequence[str]) -> None:
        for string in strings:
            if "\x00" in string:
                raise ValueError(f"PostgreSQL text cannot hold NUL: {string!r}")
        encoded = [b"", *(string.encode() for string in strings)]
        self.strings: list[str] = ["", *strings]
        self.lengths = np.fromiter((len(b) for b in encoded), dtype=np.int64, count=len(encoded))
        self.offsets = np.concatenate(([0], np.cumsum(self.lengths)[:-1])).astype(np.int64)
        self.buf = np.frombuffer(b"".join(encoded) + b"\x00", dtype=np.uint8)
        self.maxlen = int(self.lengths.max())

    def __len__(self) -> int:
        return len(self.strings) - 1


class Literal:
    """The same bytes on every row."""

    def __init__(self, text: str) -> None:
        self.data = text.encode()

    def lengths(self, n: int) -> np.ndarray:
        return np.full(n, len(self.data), dtype=np.int64)

    def take(self, rows: Any) -> Literal:
        return self

    def write(self, buf: np.ndarray, positions: np.ndarray, lengths: np.ndarray) -> None:
        if self.data:
            buf[positions[:, None] + np.arange(len(self.data))] = np.frombuffer(self.data, dtype=np.uint8)


class Pooled:
    """A string picked per row from a pool by its code (code 0 = empty)."""

    def __init__(self, pool: Pool, codes: np.ndarray) -> None:
        self.pool = pool
        self.codes = codes

    @classmethod
    def of(cls, pool: Pool, index: np.ndarray, keep: np.ndarray | None = None) -> Pooled:
        """Row i gets ``pool`` string number ``index[i]`` (0-based), or nothing where ``keep`` is False."""
        codes = index.astype(np.int64) + 1
        if keep is not None:
            codes = np.where(keep, codes, 0)
        return cls(pool, codes)

    def lengths(self, n: int) -> np.ndarray:
        return self.pool.lengths[self.codes]

    def take(self, rows: Any) -> Pooled:
        return Pooled(self.pool, self.codes[rows])

    def write(self, buf: np.ndarray, positions: np.ndarray, lengths: np.ndarray) -> None:
        source = self.pool.buf
        if len(self.pool) <= 64:  # small vocabulary: one broadcast write per distinct string
            for code in np.unique(self.codes):
                size = int(self.pool.lengths[code])
                if size:
                    offset = int(self.pool.offsets[code])
                    buf[positions[self.codes == code][:, None] + np.arange(size)] = source[offset : offset + size]
            return
        total = int(lengths.sum())
        if total == 0:
            return
        source_starts = self.pool.offsets[self.codes]
        row_first_byte = np.cumsum(lengths) - lengths
        within = np.arange(total, dtype=np.int64) - np.repeat(row_first_byte, lengths)
        buf[np.repeat(positions, lengths) + within] = source[np.repeat(source_starts, lengths) + within]


class Digits:
    """A non-negative integer in decimal, zero-padded to ``width`` (scalar or per row)."""

    def __init__(self, values: np.ndarray, width: int | np.ndarray = 0, present: np.ndarray | None = None):
        self.values = values.astype(np.int64, copy=False)
        self.width = width
        self.present = present

    def lengths(self, n: int) -> np.ndarray:
        digit_count = np.maximum(self.width, 1 + np.searchsorted(_POWERS_OF_TEN, self.values, side="right"))
        return digit_count if self.present is None else np.where(self.present, digit_count, 0)

    def take(self, rows: Any) -> Digits:
        width = self.width if np.isscalar(self.width) else self.width[rows]  # type: ignore[index]
        present = None if self.present is None else self.present[rows]
        return Digits(self.values[rows], width, present)

    def write(self, buf: np.ndarray, positions: np.ndarray, lengths: np.ndarray) -> None:
        written = lengths > 0
        remaining = self.values[written].copy()
        digit_count = lengths[written]
        last_byte = positions[written] + digit_count - 1
        uniform = digit_count.size > 0 and bool((digit_count == digit_count[0]).all())
        for place in range(int(digit_count.max(initial=0))):  # least significant digit first
            if uniform:
                buf[last_byte - place] = 48 + remaining % 10
            else:
                has_place = digit_count > place
                buf[last_byte[has_place] - place] = 48 + remaining[has_place] % 10
            remaining //= 10


Segment = Literal | Pooled | Digits
Text = list[Segment]


def text_take(text: Text, rows: Any) -> Text:
    """The text of the given rows (an index array or a slice)."""
    return [segment.take(rows) for segment in text]


def text_keep(text: Text, keep: np.ndarray) -> Text:
    """Blank the text on rows where ``keep`` is False."""
    kept: Text = []
    for segment in text:
        if isinstance(segment, Literal):
            kept.append(Pooled(Pool([segment.data.decode()]), keep.astype(np.int64)))
        elif isinstance(segment, Pooled):
            kept.append(Pooled(segment.pool, np.where(keep, segment.codes, 0)))
        else:
            present = keep if segment.present is None else (keep & segment.present)
            kept.append(Digits(segment.values, segment.width, present))
    return kept


def text_choose(mask: np.ndarray, if_true: Text, if_false: Text) -> Text:
    """Row-wise choice between two texts of different shapes."""
    return text_keep(if_true, mask) + text_keep(if_false, ~mask)


@dataclass
class Column:
    """One column of a COPY BINARY chunk. kind: int8 | int4 | bool | date | ts | num2 | text."""

    kind: str
    data: Any  # ndarray (dates: days since 2000-01-01; ts: Unix microseconds; num2: cents) or Text
    null: np.ndarray | None = None


def nulls_where(is_null: np.ndarray) -> np.ndarray | None:
    """A column's null mask, or None when no row is null (the cheaper encoding)."""
    return is_null if is_null.any() else None


def _put_big_endian(buf: np.ndarray, positions: np.ndarray, values: np.ndarray, dtype: str) -> None:
    encoded = np.ascontiguousarray(values, dtype=dtype)
    width = encoded.dtype.itemsize
    buf[positions[:, None] + np.arange(width)] = encoded.view(np.uint8).reshape(-1, width)


def _field_lengths(column: Column, n: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Byte length of the column's field on each row (-1 = NULL), and of each text segment."""
    segment_lengths: list[np.ndarray] = []
    if column.kind == "text":
        segment_lengths = [segment.lengths(n) for segment in column.data]
        lengths = np.sum(segment_lengths, axis=0, dtype=np.int64) if segment_lengths else np.zeros(n, np.int64)
    else:
        lengths = np.full(n, _FIXED_SIZE[column.kind], dtype=np.int64)
    if column.null is not None:
        lengths = np.where(column.null, -1, lengths)
    return lengths, segment_lengths


def _write_text(
    buf: np.ndarray, positions: np.ndarray, rows: Any, column: Column, segment_lengths: list[np.ndarray]
) -> None:
    position = positions[rows]
    for segment, lengths in zip(column.data, segment_lengths, strict=True):
        segment_rows = segment.take(rows) if column.null is not None else segment
        row_lengths = lengths[rows]
        segment_rows.write(buf, position, row_lengths)
        position = position + row_lengths


def _write_numeric(buf: np.ndarray, positions: np.ndarray, cents: np.ndarray) -> None:
    """numeric with 2 decimals: ndigits=3, weight=1, sign=+, dscale=2, then base-10000 digits."""
    cents = cents.astype(np.int64)
    if (cents < 0).any():
        raise ValueError("num2 supports non-negative amounts only")
    units, fraction = np.divmod(cents, 100)
    words = np.empty((len(cents), 7), dtype=">i2")
    words[:, 0], words[:, 1], words[:, 2], words[:, 3] = 3, 1, 0, 2
    words[:, 4] = units // 10_000
    words[:, 5] = units % 10_000
    words[:, 6] = fraction * 100
    buf[positions[:, None] + np.arange(14)] = words.view(np.uint8).reshape(len(cents), 14)


def _write_fixed(buf: np.ndarray, positions: np.ndarray, kind: str, values: np.ndarray) -> None:
    if kind in ("int8", "ts"):
        values = values.astype(np.int64)
        _put_big_endian(buf, positions, values - PG_EPOCH_US if kind == "ts" else values, ">i8")
    elif kind in ("int4", "date"):
        _put_big_endian(buf, positions, values, ">i4")
    elif kind == "bool":
        buf[positions] = values.astype(np.uint8)
    elif kind == "num2":
        _write_numeric(buf, positions, values)
    else:
        raise ValueError(f"unknown column kind {kind}")


def encode_binary_rows(columns: Sequence[Column], n: int) -> np.ndarray:
    """Encode ``n`` rows as COPY BINARY tuples (no file header/trailer) into a uint8 array."""
    fields = [_field_lengths(column, n) for column in columns]
    row_size = 2 + np.sum([4 + np.maximum(lengths, 0) for lengths, _ in fields], axis=0, dtype=np.int64)
    row_start = np.concatenate(([0], np.cumsum(row_size)[:-1])).astype(np.int64)
    buf = np.empty(int(row_size.sum()), dtype=np.uint8)
    _put_big_endian(buf, row_start, np.full(n, len(columns)), ">i2")
    position = row_start + 2
    for column, (lengths, segment_lengths) in zip(columns, fields, strict=True):
        _put_big_endian(buf, position, lengths, ">i4")
        data_position = position + 4
        rows: Any = slice(None) if column.null is None else np.flatnonzero(~column.null)
        if column.kind == "text":
            _write_text(buf, data_position, rows, column, segment_lengths)
        else:
            _write_fixed(buf, data_position[rows], column.kind, column.data[rows])
        position = data_position + np.maximum(lengths, 0)
    return buf


def copy_binary(
    cur: psycopg.Cursor[Any],
    table: str,
    column_names: Sequence[str],
    n: int,
    make_columns: Callable[[slice], list[Column]],
    *,
    chunk: int = 500_000,
    freeze: bool = False,
) -> None:
    """COPY ``n`` rows into ``table``; ``make_columns(slice)`` builds the columns of one chunk of rows."""
    options = "FORMAT BINARY, FREEZE" if freeze else "FORMAT BINARY"
    statement = f"COPY {table} ({', '.join(column_names)}) FROM STDIN ({options})"
    with cur.copy(statement, writer=QueuedLibpqWriter(cur)) as copy:
        copy.write(_COPY_SIGNATURE)
        for start in range(0, n, chunk):
            rows = slice(start, min(n, start + chunk))
            copy.write(memoryview(encode_binary_rows(make_columns(rows), rows.stop - rows.start)))
        copy.write(_COPY_TRAILER)
