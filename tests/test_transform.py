import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

from billing_digest import transform
from billing_digest.transform import Problems

DAY = dt.date(2026, 11, 27)
COLUMNS = ["invoice_id", "step", "kind", "status", "entity_id", "entity_name", "entity_cnpj", "customer_name",
           "invoice_number", "amount", "billing_date", "billing_type", "invoice_path", "error_code",
           "error_message", "attempts", "last_attempt_at"]


def row(invoice_id, step="nfse", kind="failed", status="rejected", entity_id=1, **kw):
    base = {"invoice_id": invoice_id, "step": step, "kind": kind, "status": status, "entity_id": entity_id,
            "entity_name": f"Empresa {entity_id}", "entity_cnpj": "11222333000181", "customer_name": "Cliente",
            "invoice_number": f"FAT-{invoice_id}", "amount": Decimal("100.00"), "billing_date": DAY,
            "billing_type": "automatic", "invoice_path": f"/faturamento/faturamentos/{invoice_id}",
            "error_code": "E1", "error_message": "Falhou", "attempts": 1, "last_attempt_at": None}
    base.update(kw)
    return base


def frame(*rows):
    return pd.DataFrame(list(rows), columns=COLUMNS)


def test_topics_follow_steps_and_unknowns_are_counted_not_shown():
    problems = Problems()
    df = transform.prepare_errors(frame(
        row(1, "nfse"), row(2, "boleto"), row(3, "charge_email"), row(4, "overdue_email"),
        row(5, "mark_billed"), row(6, "teleport"), row(7, status="weird"), row(8, entity_id=None),
    ), problems)
    assert dict(zip(df["invoice_id"], df["topic"], strict=True)) == {
        1: "nfse", 2: "boleto", 3: "notification", 4: "notification"}
    assert problems.as_dict() == {"step_not_in_digest": 1, "unknown_invoice": 1, "unknown_status": 1,
                                  "unknown_step": 1}


def test_missing_fields_get_placeholders_and_are_counted():
    problems = Problems()
    df = transform.prepare_errors(frame(
        row(1, customer_name=None, error_message="  ", amount=None, invoice_path=None),
        row(2, kind="missing", status=None, step="boleto", error_message=None),
        row(3, invoice_path="https://evil.example/phish"),
    ), problems).set_index("invoice_id")
    assert df.loc[1, "customer_name"] == transform.CUSTOMER_PLACEHOLDER
    assert df.loc[1, "error_message"] == transform.MESSAGE_PLACEHOLDER
    assert pd.isna(df.loc[1, "amount"])
    assert df.loc[1, "invoice_path"] == "/faturamento/faturamentos/1"
    assert df.loc[2, "error_message"] == "Nenhum boleto registrado para esta cobrança."
    assert df.loc[3, "invoice_path"] == "/faturamento/faturamentos/3"  # no foreign hosts in links
    assert problems.counts["missing_customer"] == 1
    assert problems.counts["missing_message"] == 1
    assert problems.counts["missing_amount"] == 1
    assert problems.counts["missing_invoice_path"] == 2


def test_amounts_are_rounded_to_cents_half_up():
    problems = Problems()
    df = transform.prepare_errors(frame(row(1, amount=Decimal("10.005")), row(2, amount=Decimal("7.1"))), problems)
    assert list(df["amount"]) == ["10.01", "7.10"]
    assert problems.counts["amount_rounded"] == 1


def test_control_characters_removed_and_long_messages_truncated_with_marker():
    problems = Problems()
    long = "x" * 2000
    df = transform.prepare_errors(frame(row(1, error_message="linha1\r\nlinha2\x00\x07fim"),
                                        row(2, error_message=long)), problems).set_index("invoice_id")
    assert df.loc[1, "error_message"] == "linha1 linha2 fim"
    assert len(df.loc[2, "error_message"]) == transform.MAX_MESSAGE_CHARS
    assert df.loc[2, "error_message"].endswith(transform.TRUNCATION_MARK)
    assert problems.counts["long_message_truncated"] == 1


def test_entity_digest_orders_topics_caps_items_and_keeps_full_count():
    rows = [row(i, "charge_email", amount=Decimal(i)) for i in range(1, 31)]
    rows += [row(100, "boleto"), row(101, "nfse"), row(200, "nfse", entity_id=2)]
    problems = Problems()
    payloads = transform.build_entity_digests(transform.prepare_errors(frame(*rows), problems), DAY, max_items=10)
    assert set(payloads) == {1, 2}
    p1 = payloads[1]
    assert [t["code"] for t in p1["topics"]] == ["nfse", "boleto", "notification"]
    notif = p1["topics"][2]
    assert (notif["total"], len(notif["items"]), notif["more"]) == (30, 10, 20)
    assert [i["amount"] for i in notif["items"]][:3] == ["30.00", "29.00", "28.00"]  # largest first
    assert p1["total"] == 32
    assert payloads[2]["total"] == 1 and payloads[2]["entity"]["name"] == "Empresa 2"


def test_clean_recipients_flags_invalid_and_duplicate_addresses():
    people = pd.DataFrame([
        {"entity_id": 1, "user_id": 10, "user_name": "Ana\r\nBcc: x@y.com", "email": "ana@a.com.br"},
        {"entity_id": 1, "user_id": 11, "user_name": "Bia", "email": "ANA@a.com.br"},
        {"entity_id": 1, "user_id": 12, "user_name": "Caio", "email": "caio@a.com.br\r\nBcc: evil@x.com"},
        {"entity_id": 1, "user_id": 13, "user_name": "Duda", "email": None},
        {"entity_id": 2, "user_id": 10, "user_name": "Ana", "email": "ana@a.com.br"},
    ])
    problems = Problems()
    out = transform.clean_recipients(people, problems).set_index(["entity_id", "user_id"])
    assert pd.isna(out.loc[(1, 10), "skip_reason"])
    assert out.loc[(1, 10), "user_name"] == "Ana Bcc: x@y.com"  # no line break left for a header
    assert out.loc[(1, 11), "skip_reason"] == "duplicate_address"
    assert out.loc[(1, 12), "skip_reason"] == "invalid_email"
    assert out.loc[(1, 13), "skip_reason"] == "invalid_email"
    assert pd.isna(out.loc[(2, 10), "skip_reason"])  # same user, other entity: its own digest


@pytest.mark.parametrize("n_entities,per_entity,max_batches", [(1, 3, 16), (50, 3, 4), (5000, 3, 16), (7, 1, 100)])
def test_batches_are_bounded_and_never_split_an_entity(n_entities, per_entity, max_batches):
    digests = pd.DataFrame([{"entity_id": e, "user_id": u} for e in range(n_entities) for u in range(per_entity)])
    batches = transform.assign_batches(digests, max_batches=max_batches, min_batch_size=2)
    assert batches.nunique() <= max_batches
    assert digests.assign(b=batches).groupby("entity_id")["b"].nunique().max() == 1
    assert batches.min() == 0
