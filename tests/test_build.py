"""The build step's database side: who may and wants to know (the build/recipients.sql reader)."""

import datetime as dt

import pytest

from billing_digest import build, extract
from billing_digest.settings import Settings
from billing_digest.window import window_for_date
from tests.world import local

WINDOW = window_for_date(dt.date(2026, 11, 27))


@pytest.fixture
def acme(world):
    return world.entity("Acme LTDA")


def test_recipients_are_active_users_with_access_who_opted_in(world, conn, acme):
    other = world.entity("Outra SA")
    gone = world.entity("Fechada ME", active=False)
    ok = world.user("Ok", "ok@a.com", [acme, other, gone])
    out = world.user("Opted out", "out@a.com", [acme], opted_in=False)
    world.user("No preference row", "none@a.com", [acme], opted_in=None)
    world.user("Inactive", "inactive@a.com", [acme], active=False)
    revoked = world.user("Revoked", "rev@a.com", [acme])
    conn.execute("UPDATE billing.user_entity_access SET revoked_at = now() WHERE user_id = %s", (revoked,))
    world.user("Only other", "other@a.com", [other])
    people, declined = build.recipients(conn, [acme, gone])
    assert sorted(zip(people["entity_id"], people["user_id"], strict=True)) == [(acme, ok)]
    assert sorted(zip(declined["entity_id"], declined["user_id"], strict=True)) == [(acme, out)]
    assert list(people.columns) == list(declined.columns) == build.RECIPIENT_COLUMNS


def failing_invoice(world, entity):
    invoice = world.invoice(entity, local(WINDOW.digest_date, 9))
    world.all_ok(invoice, local(WINDOW.digest_date, 9), steps=("boleto", "charge_email"))
    world.attempt(invoice, "nfse", "rejected", local(WINDOW.digest_date, 9, 5), "E160")


def test_users_who_turned_the_alert_off_get_a_skipped_ledger_row_not_an_email(world, conn, acme):
    failing_invoice(world, acme)
    ok = world.user("Ok", "shared@a.com", [acme])
    out = world.user("Opted out", "shared@a.com", [acme], opted_in=False)  # same address, listed later
    world.user("No preference row", "none@a.com", [acme], opted_in=None)
    world.user("Inactive, off", "inactive@a.com", [acme], opted_in=False, active=False)
    extract.stage_errors(conn, WINDOW)
    built = build.build_and_stage(conn, WINDOW, Settings())
    rows = conn.execute("SELECT user_id, state, reason FROM digest.deliveries ORDER BY user_id").fetchall()
    assert rows == [(ok, "pending", None), (out, "skipped", "opted_out")]  # not a duplicate_address of Ok
    assert (built.digests, built.entities_without_recipient) == (1, 0)
    assert "duplicate_address" not in built.problems


def test_a_company_whose_only_user_turned_the_alert_off_has_no_recipient(world, conn, acme):
    failing_invoice(world, acme)
    world.user("Opted out", "out@a.com", [acme], opted_in=False)
    extract.stage_errors(conn, WINDOW)
    built = build.build_and_stage(conn, WINDOW, Settings())
    assert (built.digests, built.entities_without_recipient) == (0, 1)
    assert conn.execute("SELECT state, reason FROM digest.deliveries").fetchall() == [("skipped", "opted_out")]


def test_each_cause_gets_its_guide_in_the_stored_payload_and_the_day_its_coverage(world, conn, acme):
    """Issue 19: the build reads the shipped catalogue; the guide is stored with the cause (the preview
    shows what was sent) and the day's figures say how many errors had one."""
    world.user("Ok", "ok@a.com", [acme])
    at = local(WINDOW.digest_date, 9)
    for _ in range(3):
        invoice = world.invoice(acme, at)
        world.all_ok(invoice, at, steps=("nfse", "charge_email"))
        world.attempt(invoice, "boleto", "failed", at + dt.timedelta(minutes=5),
                      "Credenciais da API do banco expiradas (HTTP 401)", "HTTP_401")
    invoice = world.invoice(acme, at)
    world.all_ok(invoice, at, steps=("nfse", "charge_email"))
    world.attempt(invoice, "boleto", "rejected", at + dt.timedelta(minutes=5), "Título em cartório", "97")
    extract.stage_errors(conn, WINDOW)
    built = build.build_and_stage(conn, WINDOW, Settings())
    assert (built.errors, built.errors_with_guide) == (4, 3)
    assert built.unguided_causes == ({"cause": "boleto 97: titulo em cartorio", "invoices": 1, "companies": 1},)
    payload = conn.execute("SELECT payload FROM digest.entity_digests").fetchone()[0]
    guides = [(c["code"], c["guide"] and c["guide"]["fix"]) for c in payload["topics"][0]["causes"]]
    assert guides == [("HTTP_401", "company"), ("97", None)]
