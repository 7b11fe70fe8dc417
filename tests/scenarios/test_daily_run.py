"""The whole DAG through real Airflow (dag.test) against a real PostgreSQL and a real SMTP server."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re

import pytest

from devtools import embedded_pg
from devtools.smtp_sink import SmtpSink
from devtools.smtp_sink import airflow_connection as smtp_conn
from tests.world import local

DAY = dt.date(2026, 11, 27)
RUN_AFTER = dt.datetime(2026, 11, 28, 6, 30, tzinfo=local(DAY, 0).tzinfo)


@pytest.fixture
def scenario(world):
    acme = world.entity("Acme Serviços LTDA", cnpj="11222333000181")
    beta = world.entity("Beta & Filhos ME", cnpj="45723174000110")
    quiet = world.entity("Sem Erros SA")
    people = {
        "ana": world.user("Ana Lima", "ana@acme.com.br", [acme, beta, quiet]),
        "bruno": world.user("Bruno Reis", "bruno@acme.com.br", [acme]),
        "caio": world.user("Caio Dias", "caio@beta.com.br", [beta]),
        "duda": world.user("Duda Opt-out", "duda@acme.com.br", [acme], opted_in=False),
        "eva": world.user("Eva Sem Acesso", "eva@outra.com.br", [quiet]),
        "fabio": world.user("Fabio Inativo", "fabio@acme.com.br", [acme], active=False),
    }
    invoices = {}
    # Acme: NFS-e rejected (Nota Fiscal), boleto missing (Cobrança), charge e-mail bounced (Notificação)
    i = invoices["acme_nfse"] = world.invoice(acme, local(DAY, 9), customer="Cliente Um", amount="1234.56")
    world.all_ok(i, local(DAY, 9), steps=("boleto", "charge_email"))
    world.attempt(i, "nfse", "rejected", local(DAY, 9, 5), "E160 - Código de serviço inválido", "E160")
    i = invoices["acme_boleto"] = world.invoice(acme, local(DAY, 10), customer="Cliente Dois", amount="99.90")
    world.all_ok(i, local(DAY, 10), steps=("nfse", "charge_email"))
    i = invoices["acme_email"] = world.invoice(acme, local(DAY, 11), customer="Cliente Três", amount="10.00",
                                               billing_type="manual")
    world.all_ok(i, local(DAY, 11), steps=("nfse", "boleto"))
    world.attempt(i, "charge_email", "rejected", local(DAY, 11, 5), "550 5.1.1 Caixa postal inexistente")
    # Acme: failed then succeeded on a retry in the window: NOT reported
    i = invoices["acme_recovered"] = world.invoice(acme, local(DAY, 12), customer="Cliente Recuperado")
    world.all_ok(i, local(DAY, 12), steps=("boleto", "charge_email"))
    world.attempt(i, "nfse", "failed", local(DAY, 12, 1), "Prefeitura fora do ar")
    world.attempt(i, "nfse", "success", local(DAY, 14))
    # Beta: boleto refused by the bank
    i = invoices["beta_boleto"] = world.invoice(beta, local(DAY, 9), customer="Cliente Beta", amount="5000")
    world.all_ok(i, local(DAY, 9), steps=("nfse", "charge_email"))
    world.attempt(i, "boleto", "rejected", local(DAY, 9, 2), "Banco recusou o registro: CEP do pagador inválido")
    # Quiet: everything fine
    i = world.invoice(quiet, local(DAY, 9))
    world.all_ok(i, local(DAY, 9))
    world.data_loaded_until(local(DAY + dt.timedelta(days=1), 6, 0))
    return {"acme": acme, "beta": beta, "quiet": quiet, **people, "invoices": invoices}


def bodies(message):
    return (message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content())


def test_daily_run_delivers_one_email_per_user_and_entity(airflow_env, scenario, smtp_sink, conn):
    run = airflow_env().test(logical_date=RUN_AFTER)
    assert run.state == "success"

    got = {(m.rcpt_tos[0], m.message["Subject"]): m.message for m in smtp_sink.messages}
    assert sorted(got) == [
        ("ana@acme.com.br", "Acme Serviços LTDA: 3 erros de faturamento em 27/11/2026"),
        ("ana@acme.com.br", "Beta & Filhos ME: 1 erro de faturamento em 27/11/2026"),
        ("bruno@acme.com.br", "Acme Serviços LTDA: 3 erros de faturamento em 27/11/2026"),
        ("caio@beta.com.br", "Beta & Filhos ME: 1 erro de faturamento em 27/11/2026"),
    ]  # no duda (opted out), eva (no errors at her company), fabio (inactive); nothing for 'quiet'
    text, html = bodies(got[("bruno@acme.com.br", "Acme Serviços LTDA: 3 erros de faturamento em 27/11/2026")])
    order = [text.index(t) for t in ("== Nota Fiscal", "== Cobrança (Boleto Bancário)", "== Notificação ao cliente")]
    assert order == sorted(order)
    inv = scenario["invoices"]
    for key in ("acme_nfse", "acme_boleto", "acme_email"):
        link = f"https://app.exemplo.com.br/faturamento/faturamentos/{inv[key]}?"
        assert link in text and f'href="{link}' in html
    assert f"/faturamentos/{inv['acme_recovered']}?" not in text  # succeeded on a retry in the window
    assert "Cliente Recuperado" not in text
    assert "R$\xa01.234,56" in text and "Boleto não emitido" in text and "550 5.1.1 Caixa postal" in text
    assert f"/faturamentos/{inv['beta_boleto']}" not in text  # never another company's invoice
    beta_text, _ = bodies(got[("caio@beta.com.br", "Beta & Filhos ME: 1 erro de faturamento em 27/11/2026")])
    assert "Banco recusou o registro" in beta_text and "Acme" not in beta_text

    summary = conn.execute("SELECT state, count(*) FROM digest.deliveries WHERE digest_date = %s GROUP BY 1",
                           (DAY,)).fetchall()
    assert dict(summary) == {"sent": 4, "skipped": 1}  # duda turned the alert off: skipped, opted_out


def test_rerun_of_the_same_day_sends_nothing_twice(airflow_env, scenario, smtp_sink, conn):
    assert airflow_env().test(logical_date=RUN_AFTER).state == "success"
    assert len(smtp_sink.messages) == 4
    # `airflow dags test billing_error_digest 2026-11-27`: a bare date (midnight UTC) names the same digest day
    again = airflow_env().test(logical_date=dt.datetime(2026, 11, 27, tzinfo=dt.UTC))
    assert again.state == "success"
    assert again.get_task_instance("summarize").xcom_pull(task_ids="summarize")["digest_date"] == "2026-11-27"
    assert len(smtp_sink.messages) == 4
    ids = [m.message["Message-ID"] for m in smtp_sink.messages]
    assert len(set(ids)) == 4 and all(re.fullmatch(r"<billing-errors\.2026-11-27\.\d+\.\d+@fintera\.com\.br>", i)
                                      for i in ids)


def test_manual_run_parameters_dry_run_and_entity_filter(airflow_env, scenario, smtp_sink, conn):
    assert airflow_env().test(logical_date=RUN_AFTER, run_conf={"dry_run": True}).state == "success"
    assert smtp_sink.messages == []
    # a dry run changes no ledger row, and leaves no day report (no volume baseline)
    assert conn.execute("SELECT count(*) FROM digest.deliveries").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM digest.day_reports").fetchone()[0] == 0
    conf = {"entity_ids": [scenario["beta"]], "digest_date": "2026-11-27"}
    assert airflow_env().test(logical_date=RUN_AFTER, run_conf=conf).state == "success"
    assert sorted(m.rcpt_tos[0] for m in smtp_sink.messages) == ["ana@acme.com.br", "caio@beta.com.br"]


def test_a_failed_run_alerts_the_data_team_and_sends_no_digest(airflow_env, scenario, smtp_sink, monkeypatch):
    monkeypatch.setenv("BILLING_DIGEST_MAX_ERRORS_PER_DAY", "2")  # the day has 5: the quality check fails
    monkeypatch.setenv("BILLING_DIGEST_ALERT_EMAIL", "dados@fintera.com.br")
    run = airflow_env().test(logical_date=RUN_AFTER)
    assert run.state == "failed"
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["dados@fintera.com.br"]]
    alert = smtp_sink.messages[0].message
    assert alert["Subject"] == ("[billing_error_digest] digest of 27/11/2026 HELD, nothing sent: "
                                "held by the data checks")
    body = " ".join(alert.get_content().split())
    assert "task check_quality" in body and "above the sane bound of 2" in body and "run the day again" in body


def test_secrets_stay_out_of_logs_output_and_xcom(airflow_db, db_dsn, scenario, monkeypatch, capfd, caplog):
    caplog.set_level(logging.INFO)
    password, secret = "pw-Sup3r-S3cret", "hmac-S3cret-value"
    with SmtpSink(auth=("digest", password)) as sink:
        monkeypatch.setenv("AIRFLOW_CONN_BILLING_DB", json.dumps(embedded_pg.airflow_connection(db_dsn)))
        monkeypatch.setenv("AIRFLOW_CONN_BILLING_SMTP", json.dumps(
            {**smtp_conn(sink.port), "login": "digest", "password": password}))
        monkeypatch.setenv("BILLING_DIGEST_UNSUBSCRIBE_SECRET", secret)
        from airflow.dag_processing.dagbag import DagBag
        from conftest import ROOT

        dag = DagBag(dag_folder=str(ROOT / "dags")).dags["billing_error_digest"]
        run = dag.test(logical_date=RUN_AFTER)
        assert run.state == "success" and len(sink.messages) == 4
    out, err = capfd.readouterr()
    logged = caplog.text
    assert "Billing error digest for 27/11/2026 (run " in logged  # the summary table is in the task log
    assert "XCom not found" not in out + err + logged  # summarize reads the mapped reports in one slice
    for value in (password, secret):
        assert value not in out and value not in err and value not in logged
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        values = [str(x.value) for x in session.query(XComModel).filter(XComModel.run_id == run.run_id)]
    assert values and not any(password in v or secret in v or "@acme.com.br" in v for v in values)
