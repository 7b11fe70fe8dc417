import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

from billing_digest import assemble, batching, transform
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


def build(*rows, max_items=20, max_per_cause=5):
    return assemble.build_entity_digests(transform.prepare_errors(frame(*rows), Problems()), DAY,
                                          max_items=max_items, max_per_cause=max_per_cause)


def listed(topic):
    return [i["invoice_id"] for c in topic["causes"] for i in c["invoices"]]


def test_entity_digest_orders_topics_and_keeps_full_counts():
    rows = [row(i, "charge_email", amount=Decimal(i), error_message=f"Falhou {i}") for i in range(1, 31)]
    rows += [row(100, "boleto"), row(101, "nfse"), row(200, "nfse", entity_id=2)]
    payloads = build(*rows, max_items=10)
    assert set(payloads) == {1, 2}
    p1 = payloads[1]
    assert [t["code"] for t in p1["topics"]] == ["nfse", "boleto", "notification"]
    notif = p1["topics"][2]
    # 30 different messages: 30 causes of one invoice; the 10 biggest listed, the others counted
    assert notif["total"] == 30 and len(notif["causes"]) == 10
    assert (notif["other_causes"], notif["other_errors"]) == (20, 20)
    assert [c["invoices"][0]["amount"] for c in notif["causes"]][:3] == ["30.00", "29.00", "28.00"]  # largest first
    assert p1["total"] == 32
    assert payloads[2]["total"] == 1 and payloads[2]["entity"]["name"] == "Empresa 2"


BANK_401 = "Credenciais da API do banco expiradas (HTTP 401)"


def test_one_cause_is_one_block_with_exact_count_and_total():
    rows = [row(i, "boleto", status="failed", error_code="HTTP_401", error_message=BANK_401,
                amount=Decimal(f"{i}.10")) for i in range(1, 21)]
    rows.append(row(99, "boleto", error_code="48", error_message="Banco recusou o registro: CEP do pagador inválido",
                    amount=Decimal("5000")))
    topic = build(*rows)[1]["topics"][0]
    assert topic["total"] == 21 and len(topic["causes"]) == 2
    block, single = topic["causes"]
    assert (block["count"], block["amount_total"], block["amounts_missing"], block["more"]) == (20, "212.00", 0, 15)
    assert (block["step"], block["kind"], block["status"], block["code"], block["message"]) == (
        "boleto", "failed", "failed", "HTTP_401", BANK_401)
    assert [i["invoice_id"] for i in block["invoices"]] == [20, 19, 18, 17, 16]  # biggest amounts first
    assert all(i["detail"] is None for i in block["invoices"])
    # the biggest block comes first even though the other cause's single invoice is worth more
    assert (single["count"], single["amount_total"], single["more"], listed(topic)[-1]) == (1, "5000.00", 0, 99)
    assert (topic["other_causes"], topic["other_errors"]) == (0, 0)


def test_causes_rank_by_invoices_then_total_amount():
    rows = [row(1, error_code="A", amount=Decimal("10")), row(2, error_code="A", amount=Decimal("10")),
            row(3, error_code="B", amount=Decimal("50")), row(4, error_code="B", amount=None),
            row(5, error_code="C", amount=None), row(6, error_code="C", amount=None),
            row(7, error_code="D", amount=Decimal("900"))]
    causes = build(*rows)[1]["topics"][0]["causes"]
    assert [(c["code"], c["count"], c["amount_total"], c["amounts_missing"]) for c in causes] == [
        ("B", 2, "50.00", 1), ("A", 2, "20.00", 0), ("C", 2, None, 2), ("D", 1, "900.00", 0)]


def test_a_topic_lists_a_bounded_number_of_invoices_over_its_causes():
    rows = [row(100 * c + i, error_code=f"C{c}", amount=Decimal(100 - i)) for c in range(1, 5) for i in range(c + 5)]
    rows += [row(900 + i, error_code=f"S{i}") for i in range(3)]     # three causes of one invoice
    topic = build(*rows, max_items=12, max_per_cause=5)[1]["topics"][0]
    assert [(c["code"], len(c["invoices"]), c["more"]) for c in topic["causes"]] == [
        ("C4", 5, 4), ("C3", 5, 3), ("C2", 2, 5)]
    assert (topic["other_causes"], topic["other_errors"]) == (4, 6 + 3)
    assert topic["total"] == sum(c["count"] for c in topic["causes"]) + topic["other_errors"] == 33
    nothing = build(*rows, max_items=0)[1]["topics"][0]
    assert nothing["causes"] == [] and (nothing["other_causes"], nothing["other_errors"]) == (7, 33)


def test_what_differs_between_a_blocks_invoices_is_each_ones_detail():
    bounce = "550 5.1.1 Caixa postal inexistente: "
    rows = [row(i, "charge_email", error_code="550", error_message=bounce + f"financeiro@cliente{i}.com.br",
                amount=Decimal(10 * i)) for i in (1, 2, 3)]
    block = build(*rows)[1]["topics"][0]["causes"][0]
    assert block["count"] == 3 and block["message"] == bounce + "…"
    assert [(i["invoice_id"], i["detail"]) for i in block["invoices"]] == [
        (3, "financeiro@cliente3.com.br"), (2, "financeiro@cliente2.com.br"), (1, "financeiro@cliente1.com.br")]
    assert block["invoices"][0]["message"] == bounce + "financeiro@cliente3.com.br"  # each keeps its own message


def test_a_missing_step_and_a_failed_one_are_two_causes_and_a_lone_error_is_unchanged():
    rows = [row(1, "boleto", kind="missing", status=None, error_code=None, error_message=None),
            row(2, "boleto", kind="missing", status=None, error_code=None, error_message=None),
            row(3, "boleto", status="failed", error_code=None, error_message=None)]
    causes = build(*rows)[1]["topics"][0]["causes"]
    assert [(c["kind"], c["count"], c["message"]) for c in causes] == [
        ("missing", 2, "Nenhum boleto registrado para esta cobrança."),
        ("failed", 1, transform.MESSAGE_PLACEHOLDER)]
    lone = causes[1]["invoices"][0]
    assert lone["message"] == causes[1]["message"] and lone["detail"] is None and lone["invoice_id"] == 3


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
    batches = batching.assign_batches(digests, max_batches=max_batches, min_batch_size=2)
    assert batches.nunique() <= max_batches
    assert digests.assign(b=batches).groupby("entity_id")["b"].nunique().max() == 1
    assert batches.min() == 0


def test_worst_first_puts_the_most_errors_then_the_largest_amount_in_the_first_batches():
    errors = pd.DataFrame([
        {"entity_id": 1, "invoice_id": 10, "amount": "5.00"},
        {"entity_id": 2, "invoice_id": 20, "amount": "900.00"}, {"entity_id": 2, "invoice_id": 21, "amount": "1.00"},
        {"entity_id": 3, "invoice_id": 30, "amount": "50.00"}, {"entity_id": 3, "invoice_id": 31, "amount": "2.00"},
        {"entity_id": 4, "invoice_id": 40, "amount": None},
    ])
    rank = batching.worst_first(errors)
    assert list(rank.sort_values().index) == [2, 3, 1, 4]  # 2 errors (larger amount first), then 1 error
    digests = pd.DataFrame([{"entity_id": e, "user_id": u} for e in (1, 2, 3, 4) for u in (1, 2)])
    batches = batching.assign_batches(digests, max_batches=4, min_batch_size=2, rank=rank)
    assert dict(zip(digests["entity_id"], batches, strict=True)) == {2: 0, 3: 1, 1: 2, 4: 3}
