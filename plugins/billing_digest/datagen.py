"""Synthetic data for the billing source schema (``billing.*``), for tests, demos and benchmarks.

``generate()`` applies ``include/sql/schema/001_billing_source.sql``, empties the billing tables (not
``notification_kinds``) and loads a deterministic, realistic data set around one digest day:

* the digest day ``digest_date`` covers the window ``[digest_date 06:30, digest_date + 1 06:30)`` in ``tz``;
* invoices are billed on the digest day and on about ``history_invoices / day_invoices`` days before it;
* ``step_attempts`` holds the attempts of the last ``history_days`` days (the digest day included), as the
  product keeps 7 days of attempts; older invoices have none;
* about ``error_rate`` of every day's invoices carry a planted problem (a failed/rejected step with no later
  success, or a required step that never happened), concentrated on a few entities ("incidents": the city
  hall is down, the bank agreement is misconfigured...) plus sporadic errors on a small share of entities;
* noise the digest must *not* report: failures retried successfully, ``pending`` attempts that later
  succeeded, failures outside the window (history days).

Everything is built column-wise with numpy and streamed with ``COPY ... FROM STDIN (FORMAT BINARY)``; the
binary rows are assembled by vectorised byte scatter (no per-row Python), which keeps both the Python side
and the server side cheap. Same seed + scale + date (+ same numpy/Faker versions) give identical data.

CLI: ``python -m billing_digest.datagen --dsn DSN --scale S --date 2026-11-28 [--seed 42]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import logging
import sys
import time
import unicodedata
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import psycopg
from psycopg.copy import QueuedLibpqWriter

log = logging.getLogger(__name__)

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "include" / "sql" / "schema" / "001_billing_source.sql"
WINDOW_CUTOFF = dt.time(6, 30)  # a digest day runs from 06:30 local to 06:30 local the next day

# Tables this module owns (loaded in this order; truncated together). notification_kinds is seeded by DDL.
TABLES: tuple[str, ...] = (
    "entities",
    "users",
    "user_entity_access",
    "notification_preferences",
    "customers",
    "contracts",
    "invoices",
    "step_attempts",
)


@dataclass(frozen=True)
class Scale:
    """Size of a generated data set.

    ``users_per_entity`` is the size of the ``users`` table relative to ``entities`` (every user belongs to
    one "home" entity); ``billing_users_per_entity`` is the mean number of those users holding billing
    access (``user_entity_access``) to their entity. ``history_invoices`` are billed on the days before the
    digest day (about ``day_invoices`` a day); ``history_days`` is how many days of attempts the attempts
    table keeps, the digest day included.
    """

    entities: int
    users_per_entity: float
    history_invoices: int
    day_invoices: int
    error_rate: float = 0.03
    history_days: int = 7
    billing_users_per_entity: float = 3.0
    contracts_per_day_invoice: float = 10.0


SCALES: dict[str, Scale] = {
    "XS": Scale(entities=20, users_per_entity=4.0, history_invoices=6_000, day_invoices=300),
    "S": Scale(entities=1_000, users_per_entity=4.0, history_invoices=100_000, day_invoices=3_300),
    "M": Scale(entities=10_000, users_per_entity=4.0, history_invoices=1_000_000, day_invoices=33_000),
    "L": Scale(entities=100_000, users_per_entity=10.0, history_invoices=10_000_000, day_invoices=330_000),
}

# --------------------------------------------------------------------------------------------------
# Domain vocabulary
# --------------------------------------------------------------------------------------------------

STEPS: tuple[str, ...] = ("nfse", "boleto", "charge_email", "mark_billed", "overdue_email")
ST_NFSE, ST_BOLETO, ST_CHARGE, ST_MARK, ST_OVERDUE = range(5)
STATUSES: tuple[str, ...] = ("success", "failed", "rejected", "pending")
S_SUCCESS, S_FAILED, S_REJECTED, S_PENDING = range(4)
# Notification kinds, in the sort order of their codes (the primary key order of preferences).
KINDS: tuple[str, ...] = ("billing_errors", "contract_readjustment", "payables_due", "receivables_due")


@dataclass(frozen=True)
class ErrorKind:
    """One realistic failure of a billing step. ``placeholder`` is appended to ``message`` per row."""

    step: int
    code: str
    status: int
    message: str
    placeholder: str | None = None  # "city" | "email"
    weight: float = 1.0  # relative frequency among sporadic failures of the step
    transient: bool = False  # typically succeeds on a retry


_EMAIL_STEPS = (ST_CHARGE, ST_OVERDUE)


def _email_errors(step: int) -> list[ErrorKind]:
    return [
        ErrorKind(step, "550", S_REJECTED, "550 5.1.1 Caixa postal inexistente: ", "email", 5.0),
        ErrorKind(step, "554", S_REJECTED, "Mensagem rejeitada pelo servidor de destino (spam)", None, 2.0),
        ErrorKind(step, "552", S_REJECTED, "552 5.2.2 Caixa postal cheia: ", "email", 1.5),
        ErrorKind(step, "553", S_REJECTED, "553 5.1.3 Endereço de e-mail inválido: ", "email", 1.0),
        ErrorKind(
            step,
            "421",
            S_FAILED,
            "421 4.7.0 Servidor de destino temporariamente indisponível, tente novamente mais tarde",
            None,
            1.0,
            True,
        ),
        ErrorKind(
            step, "535", S_FAILED, "Falha de autenticação no servidor SMTP de envio (535 5.7.8)", None, 0.2
        ),
    ]


ERRORS: tuple[ErrorKind, ...] = (
    # NFS-e: the city hall rejects the RPS (rejected) or cannot be reached (failed).
    ErrorKind(
        ST_NFSE, "E160", S_REJECTED, "E160 - Código de serviço inválido para o município de ", "city", 3
    ),
    ErrorKind(ST_NFSE, "E45", S_REJECTED, "E45 - CNPJ do tomador inválido", None, 2.0),
    ErrorKind(ST_NFSE, "E10", S_REJECTED, "E10 - RPS já informado", None, 1.0),
    ErrorKind(
        ST_NFSE, "E181", S_REJECTED, "E181 - Alíquota do ISS inválida para o código de serviço", None, 1
    ),
    ErrorKind(ST_NFSE, "TIMEOUT", S_FAILED, "Prefeitura fora do ar (timeout após 60s)", None, 3.0, True),
    ErrorKind(
        ST_NFSE, "HTTP_503", S_FAILED, "Webservice da prefeitura indisponível (HTTP 503)", None, 1.5, True
    ),
    ErrorKind(ST_NFSE, "CERT_EXPIRED", S_FAILED, "Certificado digital A1 da empresa vencido", None, 0.3),
    # Boleto: the bank refuses the registration (rejected) or its API fails (failed).
    ErrorKind(ST_BOLETO, "48", S_REJECTED, "Banco recusou o registro: CEP do pagador inválido", None, 3.0),
    ErrorKind(
        ST_BOLETO, "46", S_REJECTED, "Banco recusou o registro: CPF/CNPJ do pagador inválido", None, 1.5
    ),
    ErrorKind(ST_BOLETO, "09", S_REJECTED, "Banco recusou o registro: nosso número duplicado", None, 0.7),
    ErrorKind(
        ST_BOLETO, "CONV_SEM_CARTEIRA", S_FAILED, "Convênio bancário sem carteira cadastrada", None, 0.5
    ),
    ErrorKind(
        ST_BOLETO, "BANK_TIMEOUT", S_FAILED, "Timeout na API de registro do banco (30s)", None, 1.5, True
    ),
    ErrorKind(ST_BOLETO, "HTTP_401", S_FAILED, "Credenciais da API do banco expiradas (HTTP 401)", None, 0.3),
    # Emails to the customer (charge and overdue notices).
    *_email_errors(ST_CHARGE),
    *_email_errors(ST_OVERDUE),
    # Marking the invoice as billed.
    ErrorKind(
        ST_MARK,
        "LOCK_TIMEOUT",
        S_FAILED,
        "Falha ao marcar como faturado: tempo limite de bloqueio excedido",
        None,
        1.0,
        True,
    ),
    ErrorKind(
        ST_MARK, "ERP_500", S_FAILED, "Falha ao atualizar o status no ERP integrado (HTTP 500)", None, 1, True
    ),
)


def _err(step: int, code: str) -> int:
    return next(i for i, e in enumerate(ERRORS) if e.step == step and e.code == code)


# Incidents: one error hitting (almost) every invoice of an entity for a while. (error index, max attempts)
INCIDENTS: tuple[tuple[int, int], ...] = (
    (_err(ST_NFSE, "TIMEOUT"), 3),
    (_err(ST_NFSE, "E160"), 1),
    (_err(ST_NFSE, "CERT_EXPIRED"), 2),
    (_err(ST_BOLETO, "CONV_SEM_CARTEIRA"), 1),
    (_err(ST_BOLETO, "HTTP_401"), 3),
    (_err(ST_CHARGE, "554"), 1),
    (_err(ST_CHARGE, "535"), 2),
)

CITIES: tuple[str, ...] = (
    "São Paulo",
    "Rio de Janeiro",
    "Belo Horizonte",
    "Curitiba",
    "Porto Alegre",
    "Campinas",
    "Barueri",
    "Florianópolis",
    "Recife",
    "Salvador",
    "Fortaleza",
    "Goiânia",
    "Brasília",
    "Vitória",
    "Santos",
    "São José dos Campos",
    "Ribeirão Preto",
    "Joinville",
    "Londrina",
    "Uberlândia",
    "Manaus",
    "Belém",
    "Natal",
    "João Pessoa",
    "Maceió",
    "Sorocaba",
    "Osasco",
    "Niterói",
    "Blumenau",
    "Caxias do Sul",
)
SEGMENTS: tuple[str, ...] = (
    "Tecnologia",
    "Consultoria",
    "Serviços",
    "Engenharia",
    "Contabilidade",
    "Educação",
    "Logística",
    "Saúde",
    "Software",
    "Marketing",
    "Advocacia",
    "Arquitetura",
    "Telecom",
    "Segurança",
    "Facilities",
    "Medicina Diagnóstica",
    "Odontologia",
    "Academia",
    "Imobiliária",
    "Comunicação",
)
CONNECTORS: tuple[str, ...] = (" & ", " e ", " ")
ROLE_MAILBOXES: tuple[str, ...] = (
    "financeiro",
    "contato",
    "contasapagar",
    "nfe",
    "fiscal",
    "cobranca",
    "adm",
    "faturamento",
)
FREEMAIL: tuple[str, ...] = (
    "gmail.com",
    "hotmail.com",
    "outlook.com",
    "yahoo.com.br",
    "uol.com.br",
    "bol.com.br",
    "terra.com.br",
)

# --------------------------------------------------------------------------------------------------
# Vectorised COPY BINARY encoder
# --------------------------------------------------------------------------------------------------

_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 00:00 UTC in Unix microseconds
_UNIX_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_PG_EPOCH_DATE = dt.date(2000, 1, 1)
_POW10 = np.array([10**k for k in range(1, 19)], dtype=np.int64)
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_COPY_TRAILER = b"\xff\xff"
_FIXED_SIZE = {"int8": 8, "int4": 4, "bool": 1, "date": 4, "ts": 8, "num2": 14}


class Pool:
    """A vocabulary of strings stored in one UTF-8 buffer. Index 0 is always the empty string."""

    def __init__(self, strings: Sequence[str]) -> None:
        for s in strings:
            if "\x00" in s:
                raise ValueError(f"PostgreSQL text cannot hold NUL: {s!r}")
        enc = [b"", *(s.encode() for s in strings)]
        self.strings: list[str] = ["", *strings]
        self.lengths = np.fromiter((len(b) for b in enc), dtype=np.int64, count=len(enc))
        self.offsets = np.concatenate(([0], np.cumsum(self.lengths)[:-1])).astype(np.int64)
        self.buf = np.frombuffer(b"".join(enc) + b"\x00", dtype=np.uint8)
        self.maxlen = int(self.lengths.max())

    def __len__(self) -> int:
        return len(self.strings) - 1


class _Lit:
    """The same bytes on every row."""

    def __init__(self, s: str) -> None:
        self.data = s.encode()

    def lengths(self, n: int) -> np.ndarray:
        return np.full(n, len(self.data), dtype=np.int64)

    def take(self, idx: Any) -> _Lit:
        return self

    def write(self, buf: np.ndarray, pos: np.ndarray, lens: np.ndarray) -> None:
        if self.data:
            buf[pos[:, None] + np.arange(len(self.data))] = np.frombuffer(self.data, dtype=np.uint8)


class _Dict:
    """A string picked per row from a pool (code 0 = empty)."""

    def __init__(self, pool: Pool, codes: np.ndarray) -> None:
        self.pool = pool
        self.codes = codes

    @classmethod
    def of(cls, pool: Pool, idx: np.ndarray, keep: np.ndarray | None = None) -> _Dict:
        """Row i gets ``pool`` string number ``idx[i]`` (0-based), or nothing where ``keep`` is False."""
        codes = idx.astype(np.int64) + 1
        if keep is not None:
            codes = np.where(keep, codes, 0)
        return cls(pool, codes)

    def lengths(self, n: int) -> np.ndarray:
        return self.pool.lengths[self.codes]

    def take(self, idx: Any) -> _Dict:
        return _Dict(self.pool, self.codes[idx])

    def write(self, buf: np.ndarray, pos: np.ndarray, lens: np.ndarray) -> None:
        src = self.pool.buf
        if len(self.pool) <= 64:  # small vocabulary: one broadcast write per distinct string
            for code in np.unique(self.codes):
                size = int(self.pool.lengths[code])
                if size:
                    p = pos[self.codes == code]
                    o = int(self.pool.offsets[code])
                    buf[p[:, None] + np.arange(size)] = src[o : o + size]
            return
        total = int(lens.sum())
        if total == 0:
            return
        starts = self.pool.offsets[self.codes]
        first = np.cumsum(lens) - lens
        within = np.arange(total, dtype=np.int64) - np.repeat(first, lens)
        buf[np.repeat(pos, lens) + within] = src[np.repeat(starts, lens) + within]


class _Int:
    """A non-negative integer in decimal, zero-padded to ``width`` (scalar or per row)."""

    def __init__(self, values: np.ndarray, width: int | np.ndarray = 0, present: np.ndarray | None = None):
        self.values = values.astype(np.int64, copy=False)
        self.width = width
        self.present = present

    def lengths(self, n: int) -> np.ndarray:
        nd = np.maximum(self.width, 1 + np.searchsorted(_POW10, self.values, side="right"))
        return nd if self.present is None else np.where(self.present, nd, 0)

    def take(self, idx: Any) -> _Int:
        width = self.width if np.isscalar(self.width) else self.width[idx]  # type: ignore[index]
        present = None if self.present is None else self.present[idx]
        return _Int(self.values[idx], width, present)

    def write(self, buf: np.ndarray, pos: np.ndarray, lens: np.ndarray) -> None:
        rows = lens > 0
        v = self.values[rows].copy()
        ln = lens[rows]
        last = pos[rows] + ln - 1
        uniform = ln.size > 0 and bool((ln == ln[0]).all())
        for j in range(int(ln.max(initial=0))):
            if uniform:
                buf[last - j] = 48 + v % 10
            else:
                m = ln > j
                buf[last[m] - j] = 48 + v[m] % 10
            v //= 10


Segment = _Lit | _Dict | _Int
Text = list[Segment]


def _text_take(text: Text, idx: Any) -> Text:
    return [s.take(idx) for s in text]


def _text_keep(text: Text, keep: np.ndarray) -> Text:
    """Blank the text on rows where ``keep`` is False."""
    out: Text = []
    for s in text:
        if isinstance(s, _Lit):
            out.append(_Dict(Pool([s.data.decode()]), keep.astype(np.int64)))
        elif isinstance(s, _Dict):
            out.append(_Dict(s.pool, np.where(keep, s.codes, 0)))
        else:
            present = keep if s.present is None else (keep & s.present)
            out.append(_Int(s.values, s.width, present))
    return out


def _text_choose(mask: np.ndarray, if_true: Text, if_false: Text) -> Text:
    """Row-wise choice between two texts of different shapes."""
    return _text_keep(if_true, mask) + _text_keep(if_false, ~mask)


@dataclass
class Col:
    """One column of a COPY BINARY chunk. kind: int8 | int4 | bool | date | ts | num2 | text."""

    kind: str
    data: Any  # ndarray (dates: days since 2000-01-01; ts: Unix microseconds; num2: cents) or Text
    null: np.ndarray | None = None


def _put_be(buf: np.ndarray, pos: np.ndarray, values: np.ndarray, dtype: str) -> None:
    b = np.ascontiguousarray(values, dtype=dtype)
    width = b.dtype.itemsize
    buf[pos[:, None] + np.arange(width)] = b.view(np.uint8).reshape(-1, width)


def encode_binary_rows(cols: Sequence[Col], n: int) -> np.ndarray:
    """Encode ``n`` rows as COPY BINARY tuples (no file header/trailer) into a uint8 array."""
    lens: list[np.ndarray] = []
    seg_lens: list[list[np.ndarray]] = []
    for c in cols:
        if c.kind == "text":
            sl = [s.lengths(n) for s in c.data]
            ln = np.sum(sl, axis=0, dtype=np.int64) if sl else np.zeros(n, np.int64)
        else:
            sl = []
            ln = np.full(n, _FIXED_SIZE[c.kind], dtype=np.int64)
        if c.null is not None:
            ln = np.where(c.null, -1, ln)
        lens.append(ln)
        seg_lens.append(sl)
    row_size = 2 + np.sum([4 + np.maximum(ln, 0) for ln in lens], axis=0, dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(row_size)[:-1])).astype(np.int64)
    buf = np.empty(int(row_size.sum()), dtype=np.uint8)
    _put_be(buf, starts, np.full(n, len(cols)), ">i2")
    pos = starts + 2
    for c, ln, sl in zip(cols, lens, seg_lens, strict=True):
        _put_be(buf, pos, ln, ">i4")
        dpos = pos + 4
        rows: Any = slice(None) if c.null is None else np.flatnonzero(~c.null)
        if c.kind == "text":
            p = dpos[rows]
            for seg, slen in zip(c.data, sl, strict=True):
                seg_r = seg.take(rows) if c.null is not None else seg
                slen_r = slen[rows]
                seg_r.write(buf, p, slen_r)
                p = p + slen_r
        elif c.kind in ("int8", "ts"):
            v = c.data[rows].astype(np.int64)
            _put_be(buf, dpos[rows], v - _PG_EPOCH_US if c.kind == "ts" else v, ">i8")
        elif c.kind in ("int4", "date"):
            _put_be(buf, dpos[rows], c.data[rows], ">i4")
        elif c.kind == "bool":
            buf[dpos[rows]] = c.data[rows].astype(np.uint8)
        elif c.kind == "num2":
            cents = c.data[rows].astype(np.int64)
            if (cents < 0).any():
                raise ValueError("num2 supports non-negative amounts only")
            units, frac = np.divmod(cents, 100)
            k = len(cents)
            # numeric: ndigits=3, weight=1, sign=+, dscale=2, then base-10000 digits (PG strips zeros).
            words = np.empty((k, 7), dtype=">i2")
            words[:, 0], words[:, 1], words[:, 2], words[:, 3] = 3, 1, 0, 2
            words[:, 4] = units // 10_000
            words[:, 5] = units % 10_000
            words[:, 6] = frac * 100
            buf[dpos[rows][:, None] + np.arange(14)] = words.view(np.uint8).reshape(k, 14)
        else:
            raise ValueError(f"unknown column kind {c.kind}")
        pos = dpos + np.maximum(ln, 0)
    return buf


def copy_binary(
    cur: psycopg.Cursor[Any],
    table: str,
    columns: Sequence[str],
    n: int,
    make_cols: Callable[[slice], list[Col]],
    *,
    chunk: int = 500_000,
    freeze: bool = False,
) -> None:
    """COPY ``n`` rows into ``table``; ``make_cols(slice)`` builds the columns of one chunk of rows."""
    opts = "FORMAT BINARY, FREEZE" if freeze else "FORMAT BINARY"
    stmt = f"COPY {table} ({', '.join(columns)}) FROM STDIN ({opts})"
    with cur.copy(stmt, writer=QueuedLibpqWriter(cur)) as cp:
        cp.write(_COPY_SIGNATURE)
        for start in range(0, n, chunk):
            sl = slice(start, min(n, start + chunk))
            buf = encode_binary_rows(make_cols(sl), sl.stop - sl.start)
            cp.write(memoryview(buf))
        cp.write(_COPY_TRAILER)


# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------


def _rng(seed: int, name: str, *extra: int) -> np.random.Generator:
    """An independent, deterministic random stream per component."""
    return np.random.default_rng([seed, zlib.crc32(name.encode()), *extra])


def _unix_us(d: dt.datetime) -> int:
    return (d.astimezone(dt.UTC) - _UNIX_EPOCH) // dt.timedelta(microseconds=1)


def window_bounds(digest_date: dt.date, tz: str = "America/Sao_Paulo") -> tuple[dt.datetime, dt.datetime]:
    """The digest window ``[digest_date 06:30, digest_date + 1 06:30)`` as aware datetimes."""
    z = ZoneInfo(tz)
    start = dt.datetime.combine(digest_date, WINDOW_CUTOFF, tzinfo=z)
    end = dt.datetime.combine(digest_date + dt.timedelta(days=1), WINDOW_CUTOFF, tzinfo=z)
    return start, end


def _slug(s: str) -> str:
    ascii_ = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_.lower() if ch.isalnum())


def _check_digit(digits: np.ndarray, weights: Sequence[int]) -> np.ndarray:
    r = (digits @ np.asarray(weights, dtype=np.int64)) % 11
    return np.where(r < 2, 0, 11 - r)


def _digits(x: np.ndarray, n: int) -> np.ndarray:
    return (x[:, None] // (10 ** np.arange(n - 1, -1, -1, dtype=np.int64))) % 10


def _with_check_digits(d: np.ndarray, w1: Sequence[int], w2: Sequence[int]) -> np.ndarray:
    d = d.astype(np.int64, copy=False)
    dv1 = _check_digit(d, w1)
    dv2 = _check_digit(np.column_stack([d, dv1]), w2)
    base = d @ (10 ** np.arange(d.shape[1] - 1, -1, -1, dtype=np.int64))
    return base * 100 + dv1 * 10 + dv2


_CNPJ_W1 = (5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
_CNPJ_W2 = (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)


def cnpj_from_digits(d12: np.ndarray) -> np.ndarray:
    """Valid 14-digit CNPJs (as integers) from (n, 12) digit matrices (8-digit root + 4-digit branch)."""
    return _with_check_digits(d12, _CNPJ_W1, _CNPJ_W2)


def cpf_from_digits(d9: np.ndarray) -> np.ndarray:
    """Valid 11-digit CPFs (as integers) from (n, 9) digit matrices."""
    return _with_check_digits(d9, range(10, 1, -1), range(11, 1, -1))


def _unique_ints(r: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    """``n`` distinct integers in [low, high), in random order."""
    out = np.unique(r.integers(low, high, int(n * 1.1) + 16))
    while len(out) < n:
        out = np.unique(np.concatenate([out, r.integers(low, high, n)]))
    return r.permutation(out)[:n]


def _weighted_order(r: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """A random permutation where heavier items tend to come first (sampling without replacement)."""
    keys = r.exponential(size=len(weights)) / np.maximum(weights, 1e-12)
    return np.argsort(keys, kind="stable")


def _group_rank(groups: np.ndarray, r: np.random.Generator | None = None) -> np.ndarray:
    """Rank of each row within its group (0-based), in row order or in random order if ``r`` is given."""
    order = (
        np.lexsort((r.random(len(groups)), groups)) if r is not None else np.argsort(groups, kind="stable")
    )
    g = groups[order]
    is_first = np.r_[True, g[1:] != g[:-1]]
    first_pos = np.maximum.accumulate(np.where(is_first, np.arange(len(g)), 0))
    rank = np.empty(len(g), dtype=np.int64)
    rank[order] = np.arange(len(g)) - first_pos
    return rank


def _ids(r: np.random.Generator, n: int, start: int, max_gap: int = 3) -> np.ndarray:
    """Increasing ids with small random gaps (deleted rows), like a real sequence."""
    return start + np.cumsum(r.integers(1, max_gap + 1, n, dtype=np.int64))


def _pick_columns(r: np.random.Generator, eligible: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """Per row, a column index drawn with ``weights`` among eligible columns; -1 if none is eligible."""
    w = eligible * np.asarray(weights, dtype=np.float64)
    cum = np.cumsum(w, axis=1)
    tot = cum[:, -1]
    u = r.random(len(w)) * tot
    idx = np.argmax(cum > u[:, None], axis=1)
    return np.where(tot > 0, idx, -1)


MIN = 60_000_000  # microseconds
HOUR = 60 * MIN
DAY = 24 * HOUR

# --------------------------------------------------------------------------------------------------
# Name pools
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pools:
    first: Pool
    first_slug: Pool
    last: Pool
    last_cap: Pool  # capitalised ("Da Silva"), to start a company name
    last_sp: Pool  # " " + last name
    last_slug: Pool
    connector: Pool
    segment_sp: Pool  # " " + segment
    segment_slug: Pool
    suffix_sp: Pool  # " " + company suffix
    city: Pool
    role: Pool
    freemail: Pool


@functools.lru_cache(maxsize=8)
def _pools(seed: int) -> _Pools:
    from faker import Faker

    fake = Faker("pt_BR")
    fake.seed_instance(seed)
    first = sorted({fake.first_name() for _ in range(5000)})
    last = sorted({fake.last_name() for _ in range(5000)})
    suffixes = sorted({fake.company_suffix() for _ in range(300)})
    return _Pools(
        first=Pool(first),
        first_slug=Pool([_slug(s) for s in first]),
        last=Pool(last),
        last_cap=Pool([s[:1].upper() + s[1:] for s in last]),
        last_sp=Pool([" " + s for s in last]),
        last_slug=Pool([_slug(s) for s in last]),
        connector=Pool(CONNECTORS),
        segment_sp=Pool([" " + s for s in SEGMENTS]),
        segment_slug=Pool([_slug(s) for s in SEGMENTS]),
        suffix_sp=Pool([" " + s for s in suffixes]),
        city=Pool(CITIES),
        role=Pool(ROLE_MAILBOXES),
        freemail=Pool(FREEMAIL),
    )


def _company_texts(r: np.random.Generator, pools: _Pools, n: int) -> tuple[Text, Text]:
    """Company names ("Silva & Souza Tecnologia Ltda.") and matching domains ("silvasouza.com.br")."""
    a = r.integers(0, len(pools.last), n)
    b = r.integers(0, len(pools.last), n)
    has_b = r.random(n) < 0.5
    conn = r.integers(0, len(pools.connector), n)
    seg = r.integers(0, len(pools.segment_sp), n)
    has_seg = r.random(n) < 0.6
    suf = r.integers(0, len(pools.suffix_sp), n)
    name: Text = [
        _Dict.of(pools.last_cap, a),
        _Dict.of(pools.connector, conn, has_b),
        _Dict.of(pools.last, b, has_b),
        _Dict.of(pools.segment_sp, seg, has_seg),
        _Dict.of(pools.suffix_sp, suf),
    ]
    domain: Text = [
        _Dict.of(pools.last_slug, a),
        _Dict.of(pools.last_slug, b, has_b),
        _Dict.of(pools.segment_slug, seg, has_seg),
        _Lit(".com.br"),
    ]
    return name, domain


def _person_parts(r: np.random.Generator, pools: _Pools, n: int) -> tuple[Text, np.ndarray, np.ndarray]:
    """Person names ("Maria Souza Lima"); returns name, first-name index and final-surname index."""
    f = r.integers(0, len(pools.first), n)
    l1 = r.integers(0, len(pools.last), n)
    l2 = r.integers(0, len(pools.last), n)
    has_l2 = r.random(n) < 0.55
    name: Text = [
        _Dict.of(pools.first, f),
        _Lit(" "),
        _Dict.of(pools.last, l1),
        _Dict.of(pools.last_sp, l2, has_l2),
    ]
    return name, f, np.where(has_l2, l2, l1)


# --------------------------------------------------------------------------------------------------
# The generated world
# --------------------------------------------------------------------------------------------------


@dataclass
class _Entities:
    n: int
    id: np.ndarray
    weight: np.ndarray
    cnpj: np.ndarray
    active: np.ndarray
    deleted_at: np.ndarray  # Unix us, -1 = NULL
    created_at: np.ndarray
    city: np.ndarray
    name: Text
    domain: Text


@dataclass
class _Users:
    n: int
    id: np.ndarray
    home: np.ndarray
    active: np.ndarray
    email_null: np.ndarray
    created_at: np.ndarray
    name: Text
    email: Text


@dataclass
class _Access:
    user: np.ndarray
    entity: np.ndarray
    granted_at: np.ndarray
    revoked_at: np.ndarray  # -1 = NULL


@dataclass
class _Prefs:
    user: np.ndarray
    kind: np.ndarray
    enabled: np.ndarray
    updated_at: np.ndarray


@dataclass
class _Customers:
    n: int
    id: np.ndarray
    entity: np.ndarray
    document: np.ndarray
    is_company: np.ndarray
    name: Text
    email: Text


@dataclass
class _Contracts:
    n: int
    id: np.ndarray
    entity: np.ndarray
    customer: np.ndarray
    req: np.ndarray  # (n, 3) bool: nfse, boleto, notification
    amount: np.ndarray  # cents


@dataclass
class _Invoices:
    n: int
    id: np.ndarray
    day: np.ndarray  # days before the digest day (0 = digest day)
    entity: np.ndarray
    contract: np.ndarray  # index into contracts, -1 = no contract
    customer: np.ndarray
    manual: np.ndarray
    amount: np.ndarray  # cents
    billing_date: np.ndarray  # days since 2000-01-01
    billed_at: np.ndarray
    year: np.ndarray
    seq: np.ndarray


@dataclass
class _Attempts:
    invoice: np.ndarray  # index into invoices
    step: np.ndarray
    status: np.ndarray
    error: np.ndarray  # index into ERRORS, -1 = none
    at: np.ndarray

    @staticmethod
    def concat(parts: Sequence[_Attempts]) -> _Attempts:
        return _Attempts(
            *(
                np.concatenate([getattr(p, f) for p in parts])
                for f in ("invoice", "step", "status", "error", "at")
            )
        )

    def sorted(self) -> _Attempts:
        o = np.argsort(self.at, kind="stable")
        return _Attempts(self.invoice[o], self.step[o], self.status[o], self.error[o], self.at[o])

    def __len__(self) -> int:
        return len(self.at)


@dataclass
class _Days:
    """Per day offset k (0 = digest day): the window start (Unix us) and the local date."""

    start: np.ndarray
    end: np.ndarray
    date: list[dt.date]


def _gen_days(digest_date: dt.date, tz: str, n_days: int) -> _Days:
    starts, ends, dates = [], [], []
    for k in range(n_days):
        d = digest_date - dt.timedelta(days=k)
        s, e = window_bounds(d, tz)
        starts.append(_unix_us(s))
        ends.append(_unix_us(e))
        dates.append(d)
    return _Days(np.array(starts, np.int64), np.array(ends, np.int64), dates)


def _entity_weights(r: np.random.Generator, n: int) -> np.ndarray:
    """Billing volume weights: lognormal, plus one "giant" per 10,000 entities with ~1% of the volume each
    (so that at scale L an incident at a giant produces thousands of errors)."""
    w = r.lognormal(0.0, 2.0, n)
    giants = np.argsort(w)[-max(1, n // 10_000) :]
    w[giants] = w.sum() * r.uniform(0.008, 0.015, len(giants))
    return w


def _gen_entities(sc: Scale, seed: int, pools: _Pools, days: _Days) -> _Entities:
    r = _rng(seed, "entities")
    n = sc.entities
    t0 = int(days.start[0])
    deleted = r.random(n) < 0.01
    active = ~deleted & (r.random(n) >= 0.025)
    # Deleted during the digest day: their window errors exist but they must get no digest.
    deleted_at = np.where(deleted, t0 + r.integers(0, 20 * HOUR, n), -1)
    name, domain = _company_texts(r, pools, n)
    return _Entities(
        n=n,
        id=_ids(r, n, 1000),
        weight=_entity_weights(r, n),
        cnpj=cnpj_from_digits(_digits(_unique_ints(r, n, 10_000_000, 100_000_000) * 10_000 + 1, 12)),
        active=active,
        deleted_at=deleted_at,
        created_at=t0 - r.integers(60 * DAY, 3000 * DAY, n),
        city=r.integers(0, len(pools.city), n),
        name=name,
        domain=domain,
    )


def _gen_users(sc: Scale, seed: int, pools: _Pools, ents: _Entities, days: _Days) -> _Users:
    r = _rng(seed, "users")
    n_e = ents.n
    n = max(n_e, round(n_e * sc.users_per_entity))
    p = np.sqrt(ents.weight)
    home = np.concatenate([np.arange(n_e), r.choice(n_e, n - n_e, p=p / p.sum())])
    home = home[r.permutation(n)]
    ids = _ids(r, n, 10_000)
    name, first, final = _person_parts(r, pools, n)
    email: Text = [
        _Dict.of(pools.first_slug, first),
        _Lit("."),
        _Dict.of(pools.last_slug, final),
        _Lit("+"),
        _Int(ids),
        _Lit("@"),
        *_text_take(ents.domain, home),
    ]
    t0 = int(days.start[0])
    return _Users(
        n=n,
        id=ids,
        home=home,
        active=r.random(n) >= 0.03,
        email_null=r.random(n) < 0.004,
        created_at=t0 - r.integers(2 * DAY, 2000 * DAY, n),
        name=name,
        email=email,
    )


def _gen_access(sc: Scale, seed: int, ents: _Entities, users: _Users, days: _Days) -> _Access:
    r = _rng(seed, "access")
    n_e, n_u = ents.n, users.n
    rank = _group_rank(users.home, r)
    n_billing = np.where(r.random(n_e) < 0.02, 0, 1 + r.poisson(max(sc.billing_users_per_entity - 1, 0), n_e))
    sel = np.flatnonzero(rank < n_billing[users.home])
    pairs_u = [sel]
    pairs_e = [users.home[sel]]
    # Some users (consultants, group companies) also see 1-3 other entities.
    multi = sel[r.random(len(sel)) < 0.04]
    if len(multi) and n_e > 1:
        k = r.integers(1, 4, len(multi))
        pairs_u.append(np.repeat(multi, k))
        pairs_e.append(r.choice(n_e, int(k.sum()), p=ents.weight / ents.weight.sum()))
    # A few accounting offices see many entities each.
    n_acc = max(1, n_e // 2500)
    for u in r.choice(n_u, min(n_acc, n_u), replace=False):
        m = int(r.integers(min(10, n_e), min(150, n_e) + 1))
        pairs_u.append(np.full(m, u))
        pairs_e.append(r.choice(n_e, m, replace=False))
    key = np.unique(np.concatenate(pairs_u).astype(np.int64) * n_e + np.concatenate(pairs_e))
    user, entity = np.divmod(key, n_e)
    t0 = int(days.start[0])
    n = len(key)
    granted = t0 - r.integers(2 * DAY, 1500 * DAY, n)
    revoked = r.random(n) < 0.03
    revoked_at = np.where(
        revoked, granted + ((t0 - DAY - granted) * r.uniform(0.1, 1.0, n)).astype(np.int64), -1
    )
    return _Access(user, entity, granted, revoked_at)


def _gen_prefs(seed: int, users: _Users, access: _Access, days: _Days) -> _Prefs:
    r = _rng(seed, "prefs")
    n = users.n
    has_access = np.bincount(access.user, minlength=n) > 0
    u = r.random(n)
    bill_row = np.where(has_access, u < 0.88, u < 0.12)
    bill_on = np.where(has_access, u < 0.80, u < 0.08)
    users_l, kinds_l, enabled_l = (
        [np.flatnonzero(bill_row)],
        [np.zeros(int(bill_row.sum()), np.int64)],
        [bill_on[bill_row]],
    )
    for k in range(1, len(KINDS)):
        row = r.random(n) < 0.3
        users_l.append(np.flatnonzero(row))
        kinds_l.append(np.full(int(row.sum()), k))
        enabled_l.append(r.random(int(row.sum())) < 0.7)
    user = np.concatenate(users_l)
    kind = np.concatenate(kinds_l)
    enabled = np.concatenate(enabled_l)
    o = np.lexsort((kind, user))
    t0 = int(days.start[0])
    updated = t0 - r.integers(DAY, 700 * DAY, len(o))
    return _Prefs(user[o], kind[o], enabled[o], updated)


def _gen_customers_contracts(
    sc: Scale, seed: int, pools: _Pools, ents: _Entities
) -> tuple[_Customers, _Contracts]:
    r = _rng(seed, "contracts")
    n_e = ents.n
    n_con = max(n_e, round(sc.contracts_per_day_invoice * sc.day_invoices))
    con_per_ent = 1 + r.multinomial(n_con - n_e, ents.weight / ents.weight.sum())
    cust_per_ent = np.maximum(1, np.ceil(0.85 * con_per_ent).astype(np.int64))
    n_cust = int(cust_per_ent.sum())
    cust_ent = np.repeat(np.arange(n_e), cust_per_ent)[r.permutation(n_cust)]
    cust_by_ent = np.argsort(cust_ent, kind="stable")
    cust_start = np.concatenate(([0], np.cumsum(cust_per_ent)[:-1]))
    con_ent = np.repeat(np.arange(n_e), con_per_ent)[r.permutation(n_con)]
    pick = (r.random(n_con) * cust_per_ent[con_ent]).astype(np.int64)
    con_cust = cust_by_ent[cust_start[con_ent] + pick]
    req = np.column_stack([r.random(n_con) < 0.85, r.random(n_con) < 0.70, r.random(n_con) < 0.90])
    amount = np.clip(np.round(np.exp(r.normal(np.log(60_000), 1.15, n_con))), 5_000, 5_000_000).astype(
        np.int64
    )
    contracts = _Contracts(n_con, _ids(r, n_con, 20_000, 2), con_ent, con_cust, req, amount)

    # Customers: companies (CNPJ, role mailbox at their domain) and people (CPF, free mail).
    rc = _rng(seed, "customers")
    is_company = rc.random(n_cust) < 0.55
    comp = np.flatnonzero(is_company)
    pers = np.flatnonzero(~is_company)
    d12 = np.zeros((len(comp), 12), np.int64)
    d12[:, :8] = rc.integers(0, 10, (len(comp), 8))
    d12[:, 11] = rc.integers(1, 5, len(comp))  # branch 0001..0004
    d9 = rc.integers(0, 10, (len(pers), 9))
    d9[:, 8] = np.where((d9 == d9[:, :1]).all(axis=1), (d9[:, 8] + 1) % 10, d9[:, 8])  # no 111.111.111-xx
    document = np.zeros(n_cust, np.int64)
    document[comp] = cnpj_from_digits(d12)
    document[pers] = cpf_from_digits(d9)
    c_name, c_domain = _company_texts(rc, pools, n_cust)
    p_name, first, final = _person_parts(rc, pools, n_cust)
    num = rc.integers(1, 100, n_cust)
    has_num = rc.random(n_cust) < 0.4
    c_email: Text = [_Dict.of(pools.role, rc.integers(0, len(pools.role), n_cust)), _Lit("@"), *c_domain]
    p_email: Text = [
        _Dict.of(pools.first_slug, first),
        _Lit("."),
        _Dict.of(pools.last_slug, final),
        _Int(num, 0, has_num),
        _Lit("@"),
        _Dict.of(pools.freemail, rc.integers(0, len(pools.freemail), n_cust)),
    ]
    customers = _Customers(
        n=n_cust,
        id=_ids(rc, n_cust, 50_000, 2),
        entity=cust_ent,
        document=document,
        is_company=is_company,
        name=_text_choose(is_company, c_name, p_name),
        email=_text_choose(is_company, c_email, p_email),
    )
    return customers, contracts


_WEEKDAY_WEIGHT = np.array([1.15, 1.1, 1.1, 1.1, 1.15, 0.45, 0.25])  # Monday..Sunday


def _gen_invoices(
    sc: Scale, seed: int, ents: _Entities, cons: _Contracts, days: _Days, n_hist_days: int
) -> _Invoices:
    r = _rng(seed, "invoices")
    w = np.array([_WEEKDAY_WEIGHT[days.date[k].weekday()] for k in range(1, n_hist_days + 1)])
    per_day = np.concatenate(([sc.day_invoices], r.multinomial(sc.history_invoices, w / w.sum())))
    # Each entity runs its automatic billing at a fixed hour (07:00..11:00 local).
    run_at = (30 + 60 * r.integers(0, 5, ents.n)) * MIN
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("day", "con", "manual", "nocon", "billed")}
    for k in range(n_hist_days, -1, -1):  # oldest first, so ids grow with billed_at
        n = int(per_day[k])
        con = r.integers(0, cons.n, n)
        nocon = r.random(n) < 0.015
        manual = nocon | (r.random(n) < 0.19)
        auto_off = run_at[cons.entity[con]] + np.minimum(r.exponential(20 * MIN, n), 3 * HOUR).astype(
            np.int64
        )
        manual_off = r.integers(90 * MIN, 13 * HOUR, n)
        billed = days.start[k] + np.where(manual, manual_off, auto_off) + r.integers(0, 1_000_000, n)
        o = np.argsort(billed, kind="stable")
        if k == 0 and n:
            billed[o[0]] = days.start[0]  # one invoice exactly at the window start (inclusive bound)
        for key, arr in (
            ("day", np.full(n, k)),
            ("con", con),
            ("manual", manual),
            ("nocon", nocon),
            ("billed", billed),
        ):
            parts[key].append(arr[o])
    day = np.concatenate(parts["day"])
    con = np.concatenate(parts["con"])
    nocon = np.concatenate(parts["nocon"])
    n = len(day)
    entity = cons.entity[con]
    variable = r.random(n) < 0.3
    amount = np.where(variable, np.round(cons.amount[con] * r.uniform(0.85, 1.25, n)), cons.amount[con])
    own_amount = np.clip(np.round(np.exp(r.normal(np.log(40_000), 1.2, n))), 5_000, 5_000_000)
    amount = np.clip(np.where(nocon, own_amount, amount), 5_000, 5_000_000).astype(np.int64)
    date_days = np.array([(days.date[k] - _PG_EPOCH_DATE).days for k in range(n_hist_days + 1)], np.int64)
    year = np.array([days.date[k].year for k in range(n_hist_days + 1)], np.int64)
    seq = _group_rank(entity) + r.integers(1, 3000, ents.n)[entity]
    return _Invoices(
        n=n,
        id=_ids(r, n, 100_000, 2),
        day=day,
        entity=entity,
        contract=np.where(nocon, -1, con),
        customer=cons.customer[con],
        manual=np.concatenate(parts["manual"]),
        amount=amount,
        billing_date=date_days[day],
        billed_at=np.concatenate(parts["billed"]),
        year=year[day],
        seq=seq,
    )


# Attempt plan per (invoice, step).
P_NONE, P_OK, P_PENDING_OK, P_RETRY_OK, P_FAIL, P_MISSING = range(6)
_FAIL_STEP_WEIGHTS = (0.35, 0.25, 0.32, 0.08)
_MISSING_STEP_WEIGHTS = (0.4, 0.35, 0.25, 0.0)
_RETRY_STEP_WEIGHTS = (0.35, 0.25, 0.3, 0.1)
_ERR_STEP = np.array([e.step for e in ERRORS])
_ERR_STATUS = np.array([e.status for e in ERRORS])
INCIDENT_SHARE = 0.6
MAX_INCIDENTS = 5


def _pick_errors(r: np.random.Generator, steps: np.ndarray, transient_only: bool = False) -> np.ndarray:
    """An error (index into ERRORS) per row for the given steps, drawn by catalog weights."""
    out = np.full(len(steps), -1, np.int64)
    for s in np.unique(steps):
        cand = [i for i, e in enumerate(ERRORS) if e.step == s]
        w = np.array(
            [ERRORS[i].weight * (0.15 if transient_only and not ERRORS[i].transient else 1.0) for i in cand]
        )
        rows = np.flatnonzero(steps == s)
        out[rows] = np.asarray(cand)[r.choice(len(cand), len(rows), p=w / w.sum())]
    return out


def _fail_counts(r: np.random.Generator, n: int) -> np.ndarray:
    return r.choice([1, 2, 3, 4, 5], n, p=[0.70, 0.18, 0.08, 0.03, 0.01])


@dataclass
class _DayResult:
    attempts: _Attempts
    unresolved: tuple[np.ndarray, np.ndarray, np.ndarray]  # invoice idx, step, error of failed steps
    missing: int
    cross_retry_failed: int
    incidents: int
    duplicates: int


def _gen_day_attempts(
    sc: Scale,
    seed: int,
    k: int,
    inv: _Invoices,
    cons: _Contracts,
    days: _Days,
    day_rows: slice,
    prev_unresolved: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
) -> _DayResult:
    """All attempts in the window of day k: the day's invoices, overdue emails and manual retries."""
    r = _rng(seed, "attempts", k)
    rows = np.arange(day_rows.start, day_rows.stop)
    n = len(rows)
    con = inv.contract[rows]
    nocon = con < 0
    req = np.zeros((n, 4), bool)
    req[:, :3] = cons.req[np.maximum(con, 0)] & ~nocon[:, None]
    present = req.copy()
    present[nocon, :3] = True  # invoices without a contract run every step
    present[:, ST_MARK] = True
    pat = np.where(present, P_OK, P_NONE).astype(np.int8)
    err = np.full((n, 4), -1, np.int64)
    nfail = np.zeros((n, 4), np.int64)
    problem = np.zeros(n, bool)
    target = round(sc.error_rate * n)

    # Incidents: an error hitting every invoice of an entity for a stretch of the day.
    ent = inv.entity[rows]
    by_ent = np.argsort(ent, kind="stable")
    uniq, first, cnt = np.unique(ent[by_ent], return_index=True, return_counts=True)
    budget = round(INCIDENT_SHARE * target)
    used = n_inc = 0
    for gi in _weighted_order(r, cnt.astype(np.float64) ** 2)[:50]:
        if used >= budget - 1 or n_inc >= MAX_INCIDENTS:
            break
        err_i, max_att = INCIDENTS[int(r.integers(len(INCIDENTS)))]
        s = ERRORS[err_i].step
        sel = by_ent[first[gi] : first[gi] + cnt[gi]]
        sel = sel[present[sel, s] & ~problem[sel]]
        take = min(len(sel), budget - used)
        if take < 2:
            continue
        if take < len(sel):  # a contiguous stretch of the day (rows are in billed_at order)
            start = int(r.integers(0, len(sel) - take + 1))
            sel = sel[start : start + take]
        pat[sel, s] = P_FAIL
        err[sel, s] = err_i
        nfail[sel, s] = r.integers(1, max_att + 1, len(sel))
        problem[sel] = True
        used += len(sel)
        n_inc += 1

    # Sporadic problems on a small, size-weighted set of entities.
    rest = target - used
    if rest > 0:
        inc_ent = np.unique(ent[problem])
        cand_g = np.flatnonzero(~np.isin(uniq, inc_ent))
        m = max(1, min(len(cand_g), round(rest / 3)))
        chosen = uniq[cand_g[_weighted_order(r, cnt[cand_g].astype(np.float64))[:m]]]
        pool = np.flatnonzero(np.isin(ent, chosen) & ~problem)
        sel = np.sort(r.choice(pool, min(rest, len(pool)), replace=False))
        missing_kind = r.random(len(sel)) < 0.25
        missing_kind[: 1 if len(sel) >= 2 else 0] = True  # so that even tiny days have a missing step
        free = pat[sel] == P_OK
        s_miss = _pick_columns(r, req[sel] & free, _MISSING_STEP_WEIGHTS)
        s_fail = _pick_columns(r, present[sel] & free, _FAIL_STEP_WEIGHTS)
        is_miss = missing_kind & (s_miss >= 0)
        mi = sel[is_miss]
        pat[mi, s_miss[is_miss]] = P_MISSING
        fi, fs = sel[~is_miss & (s_fail >= 0)], s_fail[~is_miss & (s_fail >= 0)]
        pat[fi, fs] = P_FAIL
        err[fi, fs] = _pick_errors(r, fs)
        nfail[fi, fs] = _fail_counts(r, len(fi))
        problem[sel] = True
        # A second failed step on some of them.
        two = sel[r.random(len(sel)) < 0.10]
        s2 = _pick_columns(r, present[two] & (pat[two] == P_OK), _FAIL_STEP_WEIGHTS)
        two, s2 = two[s2 >= 0], s2[s2 >= 0]
        pat[two, s2] = P_FAIL
        err[two, s2] = _pick_errors(r, s2)
        nfail[two, s2] = _fail_counts(r, len(two))

    # Noise the digest must not report: failures fixed by a retry, NFS-e pending then authorised.
    noisy = np.flatnonzero(r.random(n) < 0.025)
    s3 = _pick_columns(r, present[noisy] & (pat[noisy] == P_OK), _RETRY_STEP_WEIGHTS)
    noisy, s3 = noisy[s3 >= 0], s3[s3 >= 0]
    pat[noisy, s3] = P_RETRY_OK
    err[noisy, s3] = _pick_errors(r, s3, transient_only=True)
    nfail[noisy, s3] = r.choice([1, 2], len(noisy), p=[0.8, 0.2])
    pend = (pat[:, ST_NFSE] == P_OK) & (r.random(n) < 0.08)
    pat[pend, ST_NFSE] = P_PENDING_OK

    # Expand the plan into attempts, step after step.
    counts = np.select(
        [pat == P_OK, pat == P_PENDING_OK, pat == P_RETRY_OK, pat == P_FAIL], [1, 2, nfail + 1, nfail], 0
    ).astype(np.int64)
    parts: list[_Attempts] = []
    t_next = inv.billed_at[rows] + r.integers(2_000_000, 90_000_000, n)
    for s in range(4):
        c = counts[:, s]
        tot = int(c.sum())
        idx = np.repeat(np.arange(n), c)
        grp_first = np.cumsum(c) - c
        pos = np.arange(tot) - np.repeat(grp_first, c)
        gap = np.where(pos == 0, 0, r.integers(30_000_000, 20 * MIN, tot))
        cg = np.cumsum(gap)
        has = c > 0
        cg_first = np.zeros(n, np.int64)
        cg_first[has] = cg[grp_first[has]]
        at = np.repeat(t_next, c) + cg - np.repeat(cg_first, c)  # start + cumulated gaps within the step
        p = pat[idx, s]
        last = pos == c[idx] - 1
        e = err[idx, s]
        failing = (p == P_FAIL) | ((p == P_RETRY_OK) & ~last)
        status = np.where(failing, _ERR_STATUS[np.maximum(e, 0)], S_SUCCESS)
        status = np.where((p == P_PENDING_OK) & (pos == 0), S_PENDING, status)
        parts.append(_Attempts(rows[idx], np.full(tot, s), status, np.where(failing, e, -1), at))
        done = t_next.copy()
        done[has] = at[grp_first[has] + c[has] - 1]
        t_next = done + r.integers(1_000_000, 120_000_000, n)

    # Overdue notices for older invoices, sent in a morning batch.
    lo = np.searchsorted(-inv.day, -(k + 45), side="left")
    hi = np.searchsorted(-inv.day, -(k + 5), side="right")
    cand = np.arange(lo, hi)
    if len(cand):
        ccon = inv.contract[cand]
        cand = cand[(ccon < 0) | cons.req[np.maximum(ccon, 0), 2]]
    n_over = min(len(cand), round(0.08 * max(n, 1)))
    if n_over:
        ov = cand[r.choice(len(cand), n_over, replace=False)]
        u = r.random(n_over)
        o_pat = np.where(u < 0.02, P_FAIL, np.where(u < 0.03, P_RETRY_OK, P_OK))
        o_nfail = np.where(o_pat == P_FAIL, _fail_counts(r, n_over), r.integers(1, 3, n_over))
        o_err = _pick_errors(r, np.full(n_over, ST_OVERDUE))
        o_err = np.where(o_pat == P_RETRY_OK, _pick_errors(r, np.full(n_over, ST_OVERDUE), True), o_err)
        c = np.where(o_pat == P_OK, 1, np.where(o_pat == P_FAIL, o_nfail, o_nfail + 1))
        idx = np.repeat(np.arange(n_over), c)
        grp_first = np.cumsum(c) - c
        pos = np.arange(len(idx)) - np.repeat(grp_first, c)
        base = days.start[k] + 150 * MIN + r.integers(0, 90 * MIN, n_over)
        at = np.repeat(base, c) + pos * r.integers(5 * MIN, 40 * MIN, len(idx))
        last = pos == c[idx] - 1
        failing = (o_pat[idx] == P_FAIL) | ((o_pat[idx] == P_RETRY_OK) & ~last)
        e = o_err[idx]
        status = np.where(failing, _ERR_STATUS[e], S_SUCCESS)
        parts.append(_Attempts(ov[idx], np.full(len(idx), ST_OVERDUE), status, np.where(failing, e, -1), at))
        o_fail = o_pat == P_FAIL
        ov_unres = (ov[o_fail], np.full(int(o_fail.sum()), ST_OVERDUE), o_err[o_fail])
    else:
        ov_unres = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))

    # Someone retries a few of yesterday's failures by hand in the morning: half fail again.
    cross_failed = 0
    if prev_unresolved is not None and len(prev_unresolved[0]):
        pi, ps, pe = prev_unresolved
        pick = r.random(len(pi)) < 0.15
        pi, ps, pe = pi[pick], ps[pick], pe[pick]
        again = r.random(len(pi)) < 0.5
        status = np.where(again, _ERR_STATUS[pe], S_SUCCESS)
        at = days.start[k] + r.integers(90 * MIN, 5 * HOUR, len(pi))
        parts.append(_Attempts(pi, ps, status, np.where(again, pe, -1), at))
        cross_failed = int(again.sum())

    # A few failed attempts are recorded twice (same row, new id), as a retried insert would.
    att = _Attempts.concat(parts)
    failing_rows = np.flatnonzero(np.isin(att.status, (S_FAILED, S_REJECTED)))
    dup = failing_rows[r.random(len(failing_rows)) < 0.005]
    att = _Attempts.concat(
        [att, _Attempts(att.invoice[dup], att.step[dup], att.status[dup], att.error[dup], att.at[dup])]
    ).sorted()
    if len(att) and (att.at.min() < days.start[k] or att.at.max() >= days.end[k]):
        raise AssertionError(f"attempts of day {k} fall outside its window")
    fail_cells = np.argwhere(pat == P_FAIL)
    unresolved = (
        np.concatenate([rows[fail_cells[:, 0]], ov_unres[0]]),
        np.concatenate([fail_cells[:, 1], ov_unres[1]]),
        np.concatenate([err[fail_cells[:, 0], fail_cells[:, 1]], ov_unres[2]]),
    )
    return _DayResult(att, unresolved, int((pat == P_MISSING).sum()), cross_failed, n_inc, len(dup))


# --------------------------------------------------------------------------------------------------
# Expected results (what the digest must report for the digest day)
# --------------------------------------------------------------------------------------------------


def _expected(
    day0: _DayResult,
    inv: _Invoices,
    cons: _Contracts,
    ents: _Entities,
    users: _Users,
    access: _Access,
    prefs: _Prefs,
) -> dict[str, int]:
    a = day0.attempts
    df = pd.DataFrame(
        {
            "inv": a.invoice,
            "step": a.step,
            "tf": np.where(np.isin(a.status, (S_FAILED, S_REJECTED)), a.at, -1),
            "ts": np.where(a.status == S_SUCCESS, a.at, -1),
            "nf": np.isin(a.status, (S_FAILED, S_REJECTED)).astype(np.int64),
        }
    )
    df = df.drop_duplicates()  # duplicated attempt rows (same step and time) count once
    g = df.groupby(["inv", "step"]).agg(tf=("tf", "max"), ts=("ts", "max"), nf=("nf", "sum"))
    failed = g[(g.tf >= 0) & (g.ts < g.tf)]
    retried = g[(g.tf >= 0) & (g.ts > g.tf)]
    f_inv = failed.index.get_level_values("inv").to_numpy()
    f_step = failed.index.get_level_values("step").to_numpy()

    # Missing: invoices billed in the window whose contract requires a step that has no attempt at all.
    rows = np.flatnonzero(inv.day == 0)
    con = inv.contract[rows]
    req = cons.req[np.maximum(con, 0)] & (con >= 0)[:, None]
    have = np.zeros((len(rows), 3), bool)
    in_day = (a.invoice >= rows[0]) & (a.step < 3) if len(rows) else np.zeros(len(a), bool)
    have[a.invoice[in_day] - rows[0], a.step[in_day]] = True
    m_r = np.nonzero(req & ~have)[0]
    if len(m_r) != day0.missing:
        raise AssertionError("planted missing steps do not match the attempts")
    err_inv = np.concatenate([f_inv, rows[m_r]])
    per_ent = np.bincount(inv.entity[err_inv], minlength=ents.n)
    digest_ent = (per_ent > 0) & ents.active & (ents.deleted_at < 0)
    enabled_users = np.zeros(users.n, bool)
    on = (prefs.kind == 0) & prefs.enabled
    enabled_users[prefs.user[on]] = True
    ok_user = users.active & ~users.email_null & enabled_users
    recipients = digest_ent[access.entity] & (access.revoked_at < 0) & ok_user[access.user]
    overdue_failed = int((f_step == ST_OVERDUE).sum())
    return {
        "expected_failed_steps": len(failed),
        "expected_missing_steps": len(m_r),
        "expected_errors": len(failed) + len(m_r),
        "expected_failed_overdue_emails": overdue_failed,
        "expected_failed_multi_attempt": int((failed.nf > 1).sum()),
        "expected_failed_after_cross_day_retry": day0.cross_retry_failed,
        "expected_problem_invoices": len(np.unique(err_inv)),
        "expected_error_entities": int((per_ent > 0).sum()),
        "expected_max_errors_per_entity": int(per_ent.max(initial=0)),
        "expected_digest_entities": int(digest_ent.sum()),
        "expected_deliveries": int(recipients.sum()),
        "retried_then_succeeded_steps": len(retried),
        "pending_then_succeeded_steps": int((a.status == S_PENDING).sum()),
        "incident_entities": day0.incidents,
        "duplicate_attempt_rows": day0.duplicates,
    }


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def apply_schema(conn: psycopg.Connection[Any], path: Path = SCHEMA_FILE) -> None:
    """Run the (idempotent) billing DDL."""
    conn.execute(path.read_text())  # type: ignore[arg-type]


def _drop_constraints_and_indexes(conn: psycopg.Connection[Any], keep_foreign_keys: bool) -> list[str]:
    """Drop the keys, foreign keys and indexes of the loaded tables (a bulk load into bare tables followed by
    index builds is several times faster); return the SQL that recreates them, in a valid order.

    With ``keep_foreign_keys`` the foreign keys stay (the caller disables their triggers for the load, which
    spares validating them again over millions of rows), and so do the keys they reference."""
    oids = [f"billing.{t}" for t in TABLES]
    cons = conn.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), contype FROM pg_constraint c"
        " WHERE contype IN ('f', 'p', 'u') AND conrelid = ANY(%s::regclass[])"
        " AND NOT (%s AND (contype = 'f' OR EXISTS (SELECT 1 FROM pg_constraint f"
        "                  WHERE f.contype = 'f' AND f.conindid = c.conindid)))"
        " ORDER BY contype = 'f' DESC, conrelid, conname",
        (oids, keep_foreign_keys),
    ).fetchall()
    idx = conn.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " WHERE i.indrelid = ANY(%s::regclass[])"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"
        " ORDER BY 1",
        (oids,),
    ).fetchall()
    for table, name, _, _ in cons:  # foreign keys first: they depend on the keys
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')  # type: ignore[arg-type]
    for name, _ in idx:
        conn.execute(f"DROP INDEX {name}")  # type: ignore[arg-type]
    keys = [f'ALTER TABLE {t} ADD CONSTRAINT "{n}" {d}' for t, n, d, kind in cons if kind != "f"]
    fks = [f'ALTER TABLE {t} ADD CONSTRAINT "{n}" {d}' for t, n, d, kind in cons if kind == "f"]
    return keys + [d for _, d in idx] + fks


def _can_disable_triggers(conn: psycopg.Connection[Any]) -> bool:
    """Whether the session may set session_replication_role (superusers only)."""
    row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    return bool(row and row[0])


def _bool_null(values: np.ndarray) -> np.ndarray | None:
    return values if values.any() else None


def generate(
    conn: psycopg.Connection[Any],
    *,
    scale: Scale | str,
    digest_date: dt.date,
    seed: int = 42,
    tz: str = "America/Sao_Paulo",
) -> dict[str, int]:
    """Load a synthetic billing data set around ``digest_date`` (the day whose window is reported).

    Applies the DDL, empties the billing tables and loads them with COPY in one transaction (a savepoint
    if the caller has one open; the caller then commits), then ANALYZEs them.

    Returns the row count of every loaded table, plus what the digest of ``digest_date`` must find (all
    counted over the window [digest_date 06:30, digest_date + 1 06:30) in ``tz``):

    * ``expected_failed_steps``: (invoice, step) pairs with a failed/rejected attempt in the window and no
      later success before the window end (overdue notices of old invoices and yesterday's failures retried
      in the window included); ``expected_failed_multi_attempt`` of them failed at several distinct times;
    * ``expected_missing_steps``: (invoice, step) pairs of invoices billed in the window whose contract
      requires the step (nfse, boleto, charge_email) and that have no attempt at all;
    * ``expected_errors``, ``expected_problem_invoices``, ``expected_error_entities``,
      ``expected_max_errors_per_entity``; ``expected_digest_entities`` (error entities that are active and
      not deleted); ``expected_deliveries``: (entity, user) pairs of those entities whose user has unrevoked
      access, is active, has an e-mail and has the ``billing_errors`` preference enabled;
    * noise that must not be reported: ``retried_then_succeeded_steps``, ``pending_then_succeeded_steps``,
      ``duplicate_attempt_rows`` (exact copies of failed attempts, to be counted once).
    """
    sc = SCALES[scale.upper()] if isinstance(scale, str) else scale
    if seed < 0:
        raise ValueError("seed must be >= 0")
    t_start = time.perf_counter()
    n_hist_days = max(sc.history_days, round(sc.history_invoices / max(sc.day_invoices, 1)))
    days = _gen_days(digest_date, tz, n_hist_days + 1)
    pools = _pools(seed)
    ents = _gen_entities(sc, seed, pools, days)
    users = _gen_users(sc, seed, pools, ents, days)
    access = _gen_access(sc, seed, ents, users, days)
    prefs = _gen_prefs(seed, users, access, days)
    custs, cons = _gen_customers_contracts(sc, seed, pools, ents)
    inv = _gen_invoices(sc, seed, ents, cons, days, n_hist_days)
    log.info("generated master data and %d invoices in %.1fs", inv.n, time.perf_counter() - t_start)

    counts: dict[str, int] = {}
    was_idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with conn.transaction(), conn.cursor() as cur:
        apply_schema(conn)
        cur.execute("SET LOCAL maintenance_work_mem = '512MB'")
        # A superuser can switch the foreign-key triggers off for the load (the data is consistent by
        # construction, and tests check it); others drop the foreign keys and add them back, validated.
        superuser = _can_disable_triggers(conn)
        if superuser:
            cur.execute("SET LOCAL session_replication_role = replica")
        recreate = _drop_constraints_and_indexes(conn, keep_foreign_keys=superuser)
        cur.execute("TRUNCATE " + ", ".join(f"billing.{t}" for t in TABLES) + " RESTART IDENTITY")

        def load(table: str, columns: Sequence[str], n: int, make: Callable[[slice], list[Col]]) -> None:
            t = time.perf_counter()
            copy_binary(cur, f"billing.{table}", columns, n, make, freeze=True)
            counts[table] = n
            log.info("loaded %-26s %10d rows in %6.1fs", table, n, time.perf_counter() - t)

        e_del = ents.deleted_at
        load(
            "entities",
            ("id", "name", "cnpj", "active", "deleted_at", "created_at"),
            ents.n,
            lambda s: [
                Col("int8", ents.id[s]),
                Col("text", _text_take(ents.name, s)),
                Col("text", [_Int(ents.cnpj[s], 14)]),
                Col("bool", ents.active[s]),
                Col("ts", e_del[s], _bool_null(e_del[s] < 0)),
                Col("ts", ents.created_at[s]),
            ],
        )
        load(
            "users",
            ("id", "name", "email", "active", "created_at"),
            users.n,
            lambda s: [
                Col("int8", users.id[s]),
                Col("text", _text_take(users.name, s)),
                Col("text", _text_take(users.email, s), _bool_null(users.email_null[s])),
                Col("bool", users.active[s]),
                Col("ts", users.created_at[s]),
            ],
        )
        load(
            "user_entity_access",
            ("user_id", "entity_id", "granted_at", "revoked_at"),
            len(access.user),
            lambda s: [
                Col("int8", users.id[access.user[s]]),
                Col("int8", ents.id[access.entity[s]]),
                Col("ts", access.granted_at[s]),
                Col("ts", access.revoked_at[s], _bool_null(access.revoked_at[s] < 0)),
            ],
        )
        kind_pool = Pool(KINDS)
        load(
            "notification_preferences",
            ("user_id", "kind", "enabled", "updated_at"),
            len(prefs.user),
            lambda s: [
                Col("int8", users.id[prefs.user[s]]),
                Col("text", [_Dict.of(kind_pool, prefs.kind[s])]),
                Col("bool", prefs.enabled[s]),
                Col("ts", prefs.updated_at[s]),
            ],
        )
        load(
            "customers",
            ("id", "entity_id", "name", "document", "email"),
            custs.n,
            lambda s: [
                Col("int8", custs.id[s]),
                Col("int8", ents.id[custs.entity[s]]),
                Col("text", _text_take(custs.name, s)),
                Col("text", [_Int(custs.document[s], np.where(custs.is_company[s], 14, 11))]),
                Col("text", _text_take(custs.email, s)),
            ],
        )
        load(
            "contracts",
            ("id", "entity_id", "customer_id", "requires_nfse", "requires_boleto", "requires_notification"),
            cons.n,
            lambda s: [
                Col("int8", cons.id[s]),
                Col("int8", ents.id[cons.entity[s]]),
                Col("int8", custs.id[cons.customer[s]]),
                Col("bool", cons.req[s, 0]),
                Col("bool", cons.req[s, 1]),
                Col("bool", cons.req[s, 2]),
            ],
        )
        type_pool = Pool(("automatic", "manual"))
        path_lit, fat_lit, dash_lit = _Lit("/faturamento/faturamentos/"), _Lit("FAT-"), _Lit("-")

        def invoice_cols(s: slice) -> list[Col]:
            c = inv.contract[s]
            return [
                Col("int8", inv.id[s]),
                Col("int8", ents.id[inv.entity[s]]),
                Col("int8", cons.id[np.maximum(c, 0)], _bool_null(c < 0)),
                Col("int8", custs.id[inv.customer[s]]),
                Col("text", [fat_lit, _Int(inv.year[s]), dash_lit, _Int(inv.seq[s], 6)]),
                Col("text", [_Dict.of(type_pool, inv.manual[s].astype(np.int64))]),
                Col("num2", inv.amount[s]),
                Col("date", inv.billing_date[s]),
                Col("ts", inv.billed_at[s]),
                Col("text", [path_lit, _Int(inv.id[s])]),
            ]

        load(
            "invoices",
            (
                "id",
                "entity_id",
                "contract_id",
                "customer_id",
                "number",
                "billing_type",
                "amount",
                "billing_date",
                "billed_at",
                "path",
            ),
            inv.n,
            invoice_cols,
        )

        # Attempts: the last history_days windows, oldest first, ids in time order.
        t = time.perf_counter()
        day_bounds = np.searchsorted(-inv.day, -np.arange(n_hist_days + 1), side="left")
        day_end = np.searchsorted(-inv.day, -np.arange(n_hist_days + 1), side="right")
        results: list[_DayResult] = []
        prev = None
        for k in range(sc.history_days - 1, -1, -1):
            res = _gen_day_attempts(sc, seed, k, inv, cons, days, slice(day_bounds[k], day_end[k]), prev)
            prev = res.unresolved
            results.append(res)
        att = _Attempts.concat([res.attempts for res in results])
        log.info("generated %d attempts in %.1fs", len(att), time.perf_counter() - t)
        att_id = np.arange(1, len(att) + 1, dtype=np.int64)
        step_pool, status_pool = Pool(STEPS), Pool(STATUSES)
        code_pool = Pool([e.code for e in ERRORS])
        msg_pool = Pool([e.message for e in ERRORS])
        err_city = np.array([e.placeholder == "city" for e in ERRORS] + [False])
        err_email = np.array([e.placeholder == "email" for e in ERRORS] + [False])
        pools = _pools(seed)

        def attempt_cols(s: slice) -> list[Col]:
            e = att.error[s]
            no_err = _bool_null(e < 0)
            ev = np.where(e < 0, len(ERRORS), e)  # sentinel row of the placeholder tables
            i = att.invoice[s]
            msg: Text = [
                _Dict.of(msg_pool, np.maximum(e, 0)),
                _Dict.of(pools.city, ents.city[inv.entity[i]], err_city[ev]),
                *_text_keep(_text_take(custs.email, inv.customer[i]), err_email[ev]),
            ]
            return [
                Col("int8", att_id[s]),
                Col("int8", inv.id[i]),
                Col("text", [_Dict.of(step_pool, att.step[s])]),
                Col("text", [_Dict.of(status_pool, att.status[s])]),
                Col("text", [_Dict.of(code_pool, np.maximum(e, 0))], no_err),
                Col("text", msg, no_err),
                Col("ts", att.at[s]),
            ]

        load(
            "step_attempts",
            ("id", "invoice_id", "step", "status", "error_code", "error_message", "attempted_at"),
            len(att),
            attempt_cols,
        )
        cur.execute(
            "SELECT setval(pg_get_serial_sequence('billing.step_attempts', 'id'), %s, true)",
            (max(len(att), 1),),
        )
        t = time.perf_counter()
        if superuser:
            cur.execute("SET LOCAL session_replication_role = origin")
        for stmt in recreate:
            cur.execute(stmt)  # type: ignore[arg-type]
        log.info("rebuilt keys, indexes and foreign keys in %.1fs", time.perf_counter() - t)

    t = time.perf_counter()
    for table in TABLES:
        conn.execute(f"ANALYZE billing.{table}")  # type: ignore[arg-type]
    if was_idle and not conn.autocommit:
        conn.commit()
    log.info("analyzed in %.1fs", time.perf_counter() - t)

    counts.update(_expected(results[-1], inv, cons, ents, users, access, prefs))
    counts["history_invoices"] = int((inv.day > 0).sum())
    counts["day_invoices"] = int((inv.day == 0).sum())
    counts["window_attempts"] = len(results[-1].attempts)
    counts["elapsed_ms"] = round((time.perf_counter() - t_start) * 1000)
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m billing_digest.datagen", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--dsn", required=True, help="PostgreSQL connection string")
    parser.add_argument("--scale", default="S", choices=sorted(SCALES), help="data set size")
    parser.add_argument("--date", required=True, type=dt.date.fromisoformat, help="digest day (YYYY-MM-DD)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--tz", default="America/Sao_Paulo")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    t = time.perf_counter()
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        counts = generate(conn, scale=args.scale, digest_date=args.date, seed=args.seed, tz=args.tz)
    print(json.dumps(counts, indent=2))
    print(f"elapsed: {time.perf_counter() - t:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
