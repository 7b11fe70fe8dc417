"""Planning the day's batches: only batches with something to send, labelled for the UI."""

import datetime as dt

from billing_digest import build, extract, plan
from billing_digest.settings import Settings
from billing_digest.window import window_for_date
from tests.world import local

DAY = dt.date(2026, 11, 27)


def test_labels_cut_names_at_a_word_and_say_how_many_emails():
    assert plan.short_name("Padaria Pão & Cia") == "Padaria Pão & Cia"
    assert plan.short_name("Comércio de Materiais Elétricos Santa Luzia LTDA") == "Comércio de Materiais…"
    assert plan.short_name("Supercalifragilisticexpialidocious Ltda") == "Supercalifragilisticexpiali…"
    assert plan.batch_label(0, 1, "Acme", "Acme") == "batch 0: Acme (1 e-mail)"
    assert plan.batch_label(2, 9, "Acme", "Zeta") == "batch 2: Acme … Zeta (9 e-mails)"


def test_a_batch_is_labelled_with_its_first_and_last_company_in_sending_order(world, conn):
    # entity ids ascend in this order, names do not: the label follows the ids (the sending order)
    names = ["Zeta Serviços", "Alfa Comércio", "Meio Termo"]
    for name in names:
        entity = world.entity(name)
        world.user(f"Pessoa {name}", f"p{len(name)}@{name.split()[0].lower()}.com.br", [entity])
        inv = world.invoice(entity, local(DAY, 9), boleto=False, notification=False)
        world.attempt(inv, "nfse", "failed", local(DAY, 9, 1), "erro")
    window = window_for_date(DAY)
    extract.stage_errors(conn, window)
    build.build_and_stage(conn, window, Settings())
    batches = plan.plan_batches(conn, DAY)
    assert [(b.batch, b.digests, b.label) for b in batches] == [
        (0, 3, "batch 0: Zeta Serviços … Meio Termo (3 e-mails)")]
    conn.execute("UPDATE digest.deliveries SET state = 'sent'")
    assert plan.plan_batches(conn, DAY) == []
    assert [b.digests for b in plan.plan_batches(conn, DAY, resend=True)] == [3]


def test_a_finished_batch_s_label_agrees_with_what_this_run_did():
    from billing_digest.handoffs import BatchPlan

    planned = BatchPlan(dt.date(2026, 11, 27), 1, 61, plan.batch_label(1, 61, "Acme", "Zeta"))
    assert plan.done_label(planned, {"locked_by_other_run": 61}) == (
        "batch 1: Acme … Zeta (61 e-mails planned: 0 sent by this run, 61 held by another run of the day (it sends "
        "them))")
    assert plan.done_label(planned, {"sent": 59, "failed": 1, "skipped:opted_out": 1}) == (
        "batch 1: Acme … Zeta (61 e-mails planned: 59 sent by this run, 1 failed, 1 skipped)")
    assert plan.done_label(planned, {"sent": 40, "deferred_quota": 21}) == (  # the quota's rest is said, not silent
        "batch 1: Acme … Zeta (61 e-mails planned: 40 sent by this run, 21 waiting for the daily quota)")
