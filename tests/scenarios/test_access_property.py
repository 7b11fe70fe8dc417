"""Property: over random worlds, nobody ever reads another company's invoices, nobody opted out or
inactive receives anything, and every (user, entity) that should receive gets exactly one e-mail."""

from __future__ import annotations

import datetime as dt
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_digest import build, extract, plan
from billing_digest.delivery.deliver import DeliveryOptions, deliver_batch
from billing_digest.delivery.smtp import SmtpSettings
from billing_digest.mail.render import Renderer
from billing_digest.settings import Settings
from billing_digest.window import window_for_date
from tests.world import World, local

DAY = dt.date(2026, 11, 27)
WINDOW = window_for_date(DAY)
TABLES = ("billing.step_attempts, billing.invoices, billing.contracts, billing.customers, "
          "billing.notification_preferences, billing.user_entity_access, billing.users, billing.entities, "
          "digest.errors, digest.entity_digests, digest.deliveries")

worlds = st.fixed_dictionaries({
    "entities": st.lists(st.fixed_dictionaries({
        "active": st.booleans() | st.just(True),
        "deleted": st.booleans().map(lambda b: b and False) | st.booleans(),
        "errors": st.lists(st.sampled_from(["nfse", "boleto", "charge_email", "overdue_email", "missing",
                                            "recovered"]), max_size=5),
    }), min_size=1, max_size=4),
    "users": st.lists(st.fixed_dictionaries({
        "active": st.booleans() | st.just(True),
        "opted_in": st.sampled_from([True, True, False, None]),
        "access": st.sets(st.integers(0, 3), max_size=4),
        "revoked": st.sets(st.integers(0, 3), max_size=2),
    }), min_size=1, max_size=6),
})


def build_world(world: World, spec: dict) -> tuple[list[int], list[int], dict[int, int]]:
    entity_ids, user_ids, invoice_entity = [], [], {}
    for n, e in enumerate(spec["entities"]):
        eid = world.entity(f"Empresa {n}", active=e["active"])
        if e["deleted"]:
            world.conn.execute("UPDATE billing.entities SET deleted_at = now() WHERE id = %s", (eid,))
        entity_ids.append(eid)
        for kind in e["errors"]:
            inv = world.invoice(eid, local(DAY, 9))
            invoice_entity[inv] = eid
            world.all_ok(inv, local(DAY, 9), steps=("nfse", "charge_email") if kind == "missing" else
                         tuple(s for s in ("nfse", "boleto", "charge_email") if s != kind))
            if kind == "recovered":
                world.attempt(inv, "nfse", "failed", local(DAY, 8), "erro")
            elif kind != "missing":
                world.attempt(inv, kind, "rejected", local(DAY, 10), f"erro {kind}")
    for n, u in enumerate(spec["users"]):
        access = [entity_ids[i] for i in sorted(u["access"]) if i < len(entity_ids)]
        uid = world.user(f"Pessoa {n}", f"pessoa{n}@exemplo.com.br", access, opted_in=u["opted_in"],
                         active=u["active"])
        for i in u["revoked"]:
            if i < len(entity_ids):
                world.conn.execute("UPDATE billing.user_entity_access SET revoked_at = now() "
                                   "WHERE user_id = %s AND entity_id = %s", (uid, entity_ids[i]))
        user_ids.append(uid)
    return entity_ids, user_ids, invoice_entity


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=worlds)
def test_no_leak_no_unwanted_mail_exactly_one_per_eligible_pair(conn, smtp_sink, spec):
    conn.execute(f"TRUNCATE {TABLES}")
    smtp_sink.messages.clear()
    world = World(conn)
    entity_ids, user_ids, invoice_entity = build_world(world, spec)

    extract.stage_errors(conn, WINDOW)
    build.build_and_stage(conn, WINDOW, Settings(min_batch_size=1, max_batches=3))
    for b in plan.plan_batches(conn, DAY):
        deliver_batch(conn, SmtpSettings(port=smtp_sink.port), Renderer(Settings()), DAY, b.batch,
                      DeliveryOptions())

    has_error = {entity_ids[n] for n, e in enumerate(spec["entities"])
                 if any(k != "recovered" for k in e["errors"])}
    expected = set()
    for n, u in enumerate(spec["users"]):
        for i in u["access"] - u["revoked"]:
            if i >= len(entity_ids):
                continue
            e = spec["entities"][i]
            if u["active"] and u["opted_in"] and e["active"] and not e["deleted"] and entity_ids[i] in has_error:
                expected.add((entity_ids[i], user_ids[n]))

    got = []
    for m in smtp_sink.messages:
        msg = m.message
        entity, user = map(int, re.findall(r"entity=(\d+); user=(\d+)", msg["X-Billing-Digest"])[0])
        assert m.rcpt_tos == [f"pessoa{user_ids.index(user)}@exemplo.com.br"]
        text = msg.get_body(("plain",)).get_content()
        for invoice in map(int, re.findall(r"/faturamento/faturamentos/(\d+)\?", text)):
            assert invoice_entity[invoice] == entity, "an invoice of another company leaked"
        got.append((entity, user))
    assert len(got) == len(set(got)), "a digest was sent twice"
    assert set(got) == expected
