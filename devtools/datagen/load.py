"""The fast load of a generated data set into the ``billing`` tables, inside the caller's transaction.

``bulk_load`` drops the keys and indexes of the loaded tables (and their foreign keys, unless the session
may switch foreign-key triggers off with ``session_replication_role``), empties them with TRUNCATE, and
rebuilds everything once the rows are in; ``write_tables`` streams every table with COPY BINARY FREEZE.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg

from devtools.datagen.binary_copy import (
    Column,
    Digits,
    Literal,
    Pool,
    Pooled,
    Text,
    copy_binary,
    nulls_where,
    text_keep,
    text_take,
)
from devtools.datagen.catalogue import ERRORS, KINDS, STATUSES, STEPS, name_pools
from devtools.datagen.world import World

log = logging.getLogger(__name__)

# Tables this package loads (in this order; truncated together). notification_kinds is seeded by the DDL.
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


def _drop_constraints_and_indexes(conn: psycopg.Connection[Any], keep_foreign_keys: bool) -> list[str]:
    """Drop the keys, foreign keys and indexes of the loaded tables (a bulk load into bare tables followed by
    index builds is several times faster); return the SQL that recreates them, in a valid order.

    With ``keep_foreign_keys`` the foreign keys stay (the caller disables their triggers for the load, which
    spares validating them again over millions of rows), and so do the keys they reference."""
    tables = [f"billing.{table}" for table in TABLES]
    constraints = conn.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), contype FROM pg_constraint c"
        " WHERE contype IN ('f', 'p', 'u') AND conrelid = ANY(%s::regclass[])"
        " AND NOT (%s AND (contype = 'f' OR EXISTS (SELECT 1 FROM pg_constraint f"
        "                  WHERE f.contype = 'f' AND f.conindid = c.conindid)))"
        " ORDER BY contype = 'f' DESC, conrelid, conname",
        (tables, keep_foreign_keys),
    ).fetchall()
    indexes = conn.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " WHERE i.indrelid = ANY(%s::regclass[])"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"
        " ORDER BY 1",
        (tables,),
    ).fetchall()
    for table, name, _, _ in constraints:  # foreign keys first: they depend on the keys
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')  # type: ignore[arg-type]
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")  # type: ignore[arg-type]
    add = {
        (table, name): f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'
        for table, name, definition, _ in constraints
    }
    keys = [add[table, name] for table, name, _, kind in constraints if kind != "f"]
    foreign_keys = [add[table, name] for table, name, _, kind in constraints if kind == "f"]
    return keys + [definition for _, definition in indexes] + foreign_keys


def can_disable_triggers(conn: psycopg.Connection[Any]) -> bool:
    """Whether the session may set session_replication_role (superusers only)."""
    row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    return bool(row and row[0])


@contextmanager
def bulk_load(conn: psycopg.Connection[Any], cur: psycopg.Cursor[Any]) -> Iterator[None]:
    """Empty, bare ``billing`` tables for the block's COPYs; keys, indexes and foreign keys back after it.

    Must run inside a transaction (TRUNCATE and COPY FREEZE need it, SET LOCAL lasts until its end)."""
    cur.execute("SET LOCAL maintenance_work_mem = '512MB'")
    # A superuser can switch the foreign-key triggers off for the load (the data is consistent by
    # construction, and tests check it); others drop the foreign keys and add them back, validated.
    superuser = can_disable_triggers(conn)
    if superuser:
        cur.execute("SET LOCAL session_replication_role = replica")
    recreate = _drop_constraints_and_indexes(conn, keep_foreign_keys=superuser)
    cur.execute("TRUNCATE " + ", ".join(f"billing.{table}" for table in TABLES) + " RESTART IDENTITY")
    yield
    started = time.perf_counter()
    if superuser:
        cur.execute("SET LOCAL session_replication_role = origin")
    for statement in recreate:
        cur.execute(statement)  # type: ignore[arg-type]
    log.info("rebuilt keys, indexes and foreign keys in %.1fs", time.perf_counter() - started)


@dataclass(frozen=True)
class _Table:
    name: str
    columns: tuple[str, ...]
    rows: int
    make_columns: Callable[[slice], list[Column]]


def _entities(world: World) -> _Table:
    entities = world.entities
    return _Table(
        "entities",
        ("id", "name", "cnpj", "active", "deleted_at", "created_at"),
        entities.n,
        lambda rows: [
            Column("int8", entities.id[rows]),
            Column("text", text_take(entities.name, rows)),
            Column("text", [Digits(entities.cnpj[rows], 14)]),
            Column("bool", entities.active[rows]),
            Column("ts", entities.deleted_at[rows], nulls_where(entities.deleted_at[rows] < 0)),
            Column("ts", entities.created_at[rows]),
        ],
    )


def _users(world: World) -> _Table:
    users = world.users
    return _Table(
        "users",
        ("id", "name", "email", "active", "created_at"),
        users.n,
        lambda rows: [
            Column("int8", users.id[rows]),
            Column("text", text_take(users.name, rows)),
            Column("text", text_take(users.email, rows), nulls_where(users.no_email[rows])),
            Column("bool", users.active[rows]),
            Column("ts", users.created_at[rows]),
        ],
    )


def _user_entity_access(world: World) -> _Table:
    access, users, entities = world.access, world.users, world.entities
    return _Table(
        "user_entity_access",
        ("user_id", "entity_id", "granted_at", "revoked_at"),
        len(access.user),
        lambda rows: [
            Column("int8", users.id[access.user[rows]]),
            Column("int8", entities.id[access.entity[rows]]),
            Column("ts", access.granted_at[rows]),
            Column("ts", access.revoked_at[rows], nulls_where(access.revoked_at[rows] < 0)),
        ],
    )


def _notification_preferences(world: World) -> _Table:
    preferences, users = world.preferences, world.users
    kinds = Pool(KINDS)
    return _Table(
        "notification_preferences",
        ("user_id", "kind", "enabled", "updated_at"),
        len(preferences.user),
        lambda rows: [
            Column("int8", users.id[preferences.user[rows]]),
            Column("text", [Pooled.of(kinds, preferences.kind[rows])]),
            Column("bool", preferences.enabled[rows]),
            Column("ts", preferences.updated_at[rows]),
        ],
    )


def _customers(world: World) -> _Table:
    customers, entities = world.customers, world.entities
    return _Table(
        "customers",
        ("id", "entity_id", "name", "document", "email"),
        customers.n,
        lambda rows: [
            Column("int8", customers.id[rows]),
            Column("int8", entities.id[customers.entity[rows]]),
            Column("text", text_take(customers.name, rows)),
            Column("text", [Digits(customers.document[rows], np.where(customers.is_company[rows], 14, 11))]),
            Column("text", text_take(customers.email, rows)),
        ],
    )


def _contracts(world: World) -> _Table:
    contracts, entities, customers = world.contracts, world.entities, world.customers
    return _Table(
        "contracts",
        ("id", "entity_id", "customer_id", "requires_nfse", "requires_boleto", "requires_notification"),
        contracts.n,
        lambda rows: [
            Column("int8", contracts.id[rows]),
            Column("int8", entities.id[contracts.entity[rows]]),
            Column("int8", customers.id[contracts.customer[rows]]),
            Column("bool", contracts.requires[rows, 0]),
            Column("bool", contracts.requires[rows, 1]),
            Column("bool", contracts.requires[rows, 2]),
        ],
    )


def _invoices(world: World) -> _Table:
    invoices, entities, contracts, customers = world.invoices, world.entities, world.contracts, world.customers
    billing_types = Pool(("automatic", "manual"))
    path_prefix, number_prefix, dash = Literal("/faturamento/faturamentos/"), Literal("FAT-"), Literal("-")

    def make_columns(rows: slice) -> list[Column]:
        contract = invoices.contract[rows]
        return [
            Column("int8", invoices.id[rows]),
            Column("int8", entities.id[invoices.entity[rows]]),
            Column("int8", contracts.id[np.maximum(contract, 0)], nulls_where(contract < 0)),
            Column("int8", customers.id[invoices.customer[rows]]),
            Column("text", [number_prefix, Digits(invoices.year[rows]), dash, Digits(invoices.number[rows], 6)]),
            Column("text", [Pooled.of(billing_types, invoices.manual[rows].astype(np.int64))]),
            Column("num2", invoices.amount_cents[rows]),
            Column("date", invoices.billing_date[rows]),
            Column("ts", invoices.billed_at[rows]),
            Column("text", [path_prefix, Digits(invoices.id[rows])]),
        ]

    columns = ("id", "entity_id", "contract_id", "customer_id", "number", "billing_type", "amount")
    return _Table("invoices", (*columns, "billing_date", "billed_at", "path"), invoices.n, make_columns)


def _step_attempts(world: World, seed: int) -> _Table:
    """Attempts in time order, ids from 1; the message of some errors ends with the city or the e-mail."""
    attempts, invoices, entities = world.attempts, world.invoices, world.entities
    ids = np.arange(1, len(attempts) + 1, dtype=np.int64)
    steps, statuses = Pool(STEPS), Pool(STATUSES)
    codes, messages = Pool([kind.code for kind in ERRORS]), Pool([kind.message for kind in ERRORS])
    # Per error, with a last "no error" row: which placeholder its message ends with.
    ends_with_city = np.array([kind.placeholder == "city" for kind in ERRORS] + [False])
    ends_with_email = np.array([kind.placeholder == "email" for kind in ERRORS] + [False])
    cities = name_pools(seed).city

    def make_columns(rows: slice) -> list[Column]:
        error = attempts.error[rows]
        no_error = nulls_where(error < 0)
        error_or_none = np.where(error < 0, len(ERRORS), error)
        invoice = attempts.invoice[rows]
        customer_email = text_take(world.customers.email, invoices.customer[invoice])
        message: Text = [
            Pooled.of(messages, np.maximum(error, 0)),
            Pooled.of(cities, entities.city[invoices.entity[invoice]], ends_with_city[error_or_none]),
            *text_keep(customer_email, ends_with_email[error_or_none]),
        ]
        return [
            Column("int8", ids[rows]),
            Column("int8", invoices.id[invoice]),
            Column("text", [Pooled.of(steps, attempts.step[rows])]),
            Column("text", [Pooled.of(statuses, attempts.status[rows])]),
            Column("text", [Pooled.of(codes, np.maximum(error, 0))], no_error),
            Column("text", message, no_error),
            Column("ts", attempts.at[rows]),
        ]

    columns = ("id", "invoice_id", "step", "status", "error_code", "error_message", "attempted_at")
    return _Table("step_attempts", columns, len(attempts), make_columns)


def write_tables(cur: psycopg.Cursor[Any], world: World, seed: int) -> dict[str, int]:
    """COPY every table (inside ``bulk_load``); returns the row count of each."""
    counts: dict[str, int] = {}
    tables = (_entities, _users, _user_entity_access, _notification_preferences, _customers, _contracts, _invoices)
    for table in (*(make(world) for make in tables), _step_attempts(world, seed)):
        started = time.perf_counter()
        copy_binary(cur, f"billing.{table.name}", table.columns, table.rows, table.make_columns, freeze=True)
        counts[table.name] = table.rows
        log.info("loaded %-26s %10d rows in %6.1fs", table.name, table.rows, time.perf_counter() - started)
    cur.execute(
        "SELECT setval(pg_get_serial_sequence('billing.step_attempts', 'id'), %s, true)",
        (max(len(world.attempts), 1),),
    )
    return counts
