"""The data team's failure alert: what it says."""

from types import SimpleNamespace

from billing_digest.airflow_glue.alerts import failure_message


def test_failure_message_names_the_run_task_and_error_and_says_what_to_do():
    context = {"dag_run": SimpleNamespace(run_id="scheduled__2026-11-27T09:30:00+00:00"),
               "task_instance": SimpleNamespace(task_id="check_quality"),
               "exception": ValueError("12 errors staged, above the sane bound of 2")}
    msg = failure_message("Fintera <notificacoes@fintera.com.br>", "dados@fintera.com.br", context)
    assert msg["To"] == "dados@fintera.com.br" and msg["Auto-Submitted"] == "auto-generated"
    assert msg["Subject"] == ("[billing_error_digest] run scheduled__2026-11-27T09:30:00+00:00 failed in task "
                              "check_quality")
    assert msg["Message-ID"].endswith("@fintera.com.br>")
    body = msg.get_content()
    assert "ValueError: 12 errors staged, above the sane bound of 2" in body
    assert "will not be sent again" in body and "clear the failed task" in body


def test_failure_message_without_a_task_instance_or_exception_still_reads():
    msg = failure_message("n@fintera.com.br", "dados@fintera.com.br", {"run_id": "manual__x", "reason": "timeout"})
    assert "run manual__x failed in task ?" in msg["Subject"]
    assert "timeout" in msg.get_content()


def test_a_held_day_says_held_nothing_sent_which_day_and_why():
    from airflow.sdk.exceptions import AirflowSensorTimeout

    from billing_digest.quality import DataQualityError

    base = {"dag_run": SimpleNamespace(run_id="manual__1"), "params": {"digest_date": "2026-11-27"}}
    held = failure_message("n@fintera.com.br", "dados@fintera.com.br", {
        **base, "task_instance": SimpleNamespace(task_id="check_quality"),
        "exception": DataQualityError("the digest of 2026-11-27 is held: 2026-11-27 is older than the history")})
    assert held["Subject"] == ("[billing_error_digest] digest of 2026-11-27 HELD, nothing sent: "
                               "held by the data checks")
    assert "older than the history" in held.get_content()
    late_data = failure_message("n@fintera.com.br", "dados@fintera.com.br", {
        **base, "task_instance": SimpleNamespace(task_id="wait_for_billing_data"),
        "exception": AirflowSensorTimeout("Sensor has timed out; run duration of 10800 seconds exceeds 10800")})
    assert late_data["Subject"].endswith("HELD, nothing sent: the billing data did not arrive")
    assert "task wait_for_billing_data" in " ".join(late_data.get_content().split())


def test_the_late_run_callback_emails_the_data_team(monkeypatch, smtp_sink):
    import asyncio
    import json

    from billing_digest.airflow_glue.late_alert import run_is_late
    from devtools.smtp_sink import airflow_connection

    monkeypatch.setenv("AIRFLOW_CONN_BILLING_SMTP", json.dumps(airflow_connection(smtp_sink.port)))
    monkeypatch.setenv("BILLING_DIGEST_ALERT_EMAIL", "dados@fintera.com.br")
    context = {"dag_run": {"dag_run_id": "scheduled__2026-11-27T09:30:00+00:00", "state": "running",
                           "queued_at": "2026-11-28T09:30:01+00:00"},
               "deadline": {"deadline_time": "2026-11-28T10:15:01+00:00"}}
    asyncio.run(run_is_late(context))
    [msg] = smtp_sink.messages
    assert msg.rcpt_tos == ["dados@fintera.com.br"]
    assert msg.message["Subject"] == ("[billing_error_digest] run scheduled__2026-11-27T09:30:00+00:00 is late: "
                                      "not finished by 2026-11-28T10:15:01+00:00")
    assert "waiting for the billing data" in " ".join(msg.message.get_content().split())


def test_a_long_alert_goes_on_the_wire_with_crlf_lines_smtp_accepts():
    from billing_digest.airflow_glue.alerts import wire_bytes

    long_error = ValueError("billing-digest refuses to start: " + "a reason that goes on " * 60)
    msg = failure_message("n@fintera.com.br", "dados@fintera.com.br", {"run_id": "r", "exception": long_error})
    raw = wire_bytes(msg)
    assert len(raw) > 1000 and b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
