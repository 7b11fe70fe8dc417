"""Build small, explicit billing worlds in the real database for tests.

Every row a test depends on is written by the test itself, so assertions are about known data.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

SP = ZoneInfo("America/Sao_Paulo")
LOADER_HEARTBEAT_INVOICE = -1  # attempts of no real invoice: "the data is loaded up to here"


def local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=SP)


@dataclass
class World:
    conn: psycopg.Connection
    ids: itertools.count = field(default_factory=lambda: itertools.count(1000))

    def _insert(self, table: str, **values: Any) -> None:
        query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier("billing", table), sql.SQL(", ").join(map(sql.Identifier, values)),
            sql.SQL(", ").join(map(sql.Placeholder, values)))
        self.conn.execute(query, values)

    def entity(self, name: str, cnpj: str = "11222333000181", **kw: Any) -> int:
        eid = next(self.ids)
        self._insert("entities", id=eid, name=name, cnpj=cnpj, **kw)
        return eid

    def user(self, name: str, email: str | None, entities: list[int] = (), opted_in: bool | None = True,
             active: bool = True) -> int:
        uid = next(self.ids)
        self._insert("users", id=uid, name=name, email=email, active=active)
        for eid in entities:
            self._insert("user_entity_access", user_id=uid, entity_id=eid)
        if opted_in is not None:
            self._insert("notification_preferences", user_id=uid, kind="billing_errors", enabled=opted_in)
        return uid

    def invoice(self, entity_id: int, billed_at: dt.datetime, *, customer: str | None = "Cliente Exemplo",
                amount: Any = "1500.00", billing_type: str = "automatic", nfse: bool = True,
                boleto: bool = True, notification: bool = True, path: str | None = "default",
                number: str | None = None) -> int:
        cid, kid, iid = next(self.ids), next(self.ids), next(self.ids)
        self._insert("customers", id=cid, entity_id=entity_id, name=customer, document="12345678909")
        self._insert("contracts", id=kid, entity_id=entity_id, customer_id=cid, requires_nfse=nfse,
                     requires_boleto=boleto, requires_notification=notification)
        self._insert("invoices", id=iid, entity_id=entity_id, contract_id=kid, customer_id=cid,
                     number=number or f"FAT-{iid}", billing_type=billing_type, amount=amount,
                     billing_date=billed_at.astimezone(SP).date(), billed_at=billed_at,
                     path=f"/faturamento/faturamentos/{iid}" if path == "default" else path)
        return iid

    def attempt(self, invoice_id: int, step: str, status: str, at: dt.datetime,
                message: str | None = None, code: str | None = None) -> None:
        self._insert("step_attempts", invoice_id=invoice_id, step=step, status=status, attempted_at=at,
                     error_message=message, error_code=code)

    def all_ok(self, invoice_id: int, at: dt.datetime,
               steps: tuple[str, ...] = ("nfse", "boleto", "charge_email")) -> None:
        for i, step in enumerate(steps):
            self.attempt(invoice_id, step, "success", at + dt.timedelta(minutes=i + 1))

    def data_loaded_until(self, at: dt.datetime) -> None:
        """The billing data is complete up to ``at``: an attempt recorded then (the freshness gate's
        default test is the latest recorded attempt). It belongs to no invoice the digest reads."""
        self.attempt(LOADER_HEARTBEAT_INVOICE, "mark_billed", "success", at)
