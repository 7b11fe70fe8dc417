"""The data team's failure alert: what it says."""

import datetime as dt
import pickle
from types import SimpleNamespace

from billing_digest.airflow_glue.alert_messages import failure_message
from billing_digest.window import window_for_date


def test_failure_message_names_the_run_task_and_error_and_says_what_to_do():
    window = window_for_date(dt.date(2026, 11, 27))
    context = {"dag_run": SimpleNamespace(run_id="scheduled__2026-11-27T09:30:00+00:00"),
               "task_instance": SimpleNamespace(task_id="check_quality"), "logical_date": window.start,
               "data_interval_start": window.start, "data_interval_end": window.end,
               "exception": ValueError("12 errors staged, above the sane bound of 2")}
    msg = failure_message("Fintera <notificacoes@fintera.com.br>", "dados@fintera.com.br", context)
    assert msg["To"] == "dados@fintera.com.br" and msg["Auto-Submitted"] == "auto-generated"
    assert msg["Subject"] == ("[billing_error_digest] digest of 27/11/2026: run scheduled__2026-11-27T09:30:00+00:00 "
                              "failed in task check_quality")
    assert msg["Message-ID"].endswith("@fintera.com.br>")
    body = msg.get_content()
    assert "ValueError: 12 errors staged, above the sane bound of 2" in body
    assert "will not be sent again" in body and "clear the failed task" in body


def test_failure_message_without_a_task_instance_or_exception_still_reads():
    msg = failure_message("n@fintera.com.br", "dados@fintera.com.br", {"run_id": "manual__x", "reason": "timeout"})
    assert "digest of an unknown day: run manual__x failed in task ?" in msg["Subject"]
    assert "timeout" in msg.get_content()


def test_a_held_day_says_held_nothing_sent_which_day_and_why():
    from airflow.sdk.exceptions import AirflowSensorTimeout

    from billing_digest.quality import DataQualityError, Problem

    base = {"dag_run": SimpleNamespace(run_id="manual__1"), "params": {"digest_date": "2026-11-27"}}
    held = failure_message("n@fintera.com.br", "dados@fintera.com.br", {
        **base, "task_instance": SimpleNamespace(task_id="check_quality"),
        "exception": DataQualityError(dt.date(2026, 11, 27), (Problem("coverage", "2026-11-27 is older than the "
                                                                              "history"),))})
    assert held["Subject"] == ("[billing_error_digest] digest of 27/11/2026 HELD, nothing sent: "
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
                           "logical_date": "2026-11-27T09:30:00Z", "data_interval_start": "2026-11-27T09:30:00Z",
                           "data_interval_end": "2026-11-28T09:30:00Z", "queued_at": "2026-11-28T09:30:01+00:00"},
               "deadline": {"deadline_time": "2026-11-28T10:15:01+00:00"}}
    asyncio.run(run_is_late(context))
    [msg] = smtp_sink.messages
    assert msg.rcpt_tos == ["dados@fintera.com.br"]
    assert msg.message["Subject"] == ("[billing_error_digest] digest of 27/11/2026 is late: run "
                                      "scheduled__2026-11-27T09:30:00+00:00 not finished by 28/11/2026 07:15 "
                                      "(America/Sao_Paulo)")
    ended = {**context, "dag_run": {**context["dag_run"], "state": "failed"}}
    asyncio.run(run_is_late(ended))  # outside a triggerer the snapshot's state decides: ended, no alert
    assert len(smtp_sink.messages) == 1
    assert "waiting for the billing data" in " ".join(msg.message.get_content().split())


def test_a_long_alert_goes_on_the_wire_with_crlf_lines_smtp_accepts():
    from billing_digest.airflow_glue.alert_messages import wire_bytes

    long_error = ValueError("billing-digest refuses to start: " + "a reason that goes on " * 60)
    msg = failure_message("n@fintera.com.br", "dados@fintera.com.br", {"run_id": "r", "exception": long_error})
    raw = wire_bytes(msg)
    assert len(raw) > 1000 and b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


def test_only_a_queued_or_running_run_is_late_and_the_state_looked_up_now_wins():
    from billing_digest.airflow_glue.alerts import is_late

    assert is_late("running", None) and is_late("queued", "queued") and is_late(None, None)
    assert not is_late("failed", "running") and not is_late("success", None) and not is_late(None, "failed")


def test_a_held_day_s_problems_are_typed_and_survive_pickling():
    from billing_digest.airflow_glue.alert_messages import held_reason
    from billing_digest.quality import DataQualityError, Problem

    exc = DataQualityError(dt.date(2026, 11, 27), (Problem("volume", "a | b"), Problem("coverage", "c")))
    again = pickle.loads(pickle.dumps(exc))
    assert again.problems == exc.problems and again.digest_date == exc.digest_date
    assert held_reason(again) == "held by the data checks:\n- a | b\n- c"  # a "|" in a reason stays in its line


def test_a_held_re_run_of_a_day_already_sent_does_not_say_nothing_was_sent():
    from billing_digest.quality import DataQualityError, Problem

    window = window_for_date(dt.date(2026, 11, 27))
    context = {"dag_run": SimpleNamespace(run_id="manual__2"),
               "task_instance": SimpleNamespace(task_id="check_quality"),
               "data_interval_start": window.start, "data_interval_end": window.end,
               "exception": DataQualityError(window.digest_date, (Problem("volume", "volume anomaly: x"),))}
    msg = failure_message("n@fintera.com.br", "dados@fintera.com.br", context, sent_before=61)
    assert "nothing sent" not in msg["Subject"]
    assert msg["Subject"] == ("[billing_error_digest] digest of 27/11/2026 held in run manual__2: this run sent "
                              "nothing; 61 digests of that day were already sent")
