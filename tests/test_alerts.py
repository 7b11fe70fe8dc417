"""The data team's failure alert: what it says."""

from types import SimpleNamespace

from billing_digest.alerts import failure_message


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


def test_a_long_alert_goes_on_the_wire_with_crlf_lines_smtp_accepts():
    from billing_digest.alerts import wire_bytes

    long_error = ValueError("billing-digest refuses to start: " + "a reason that goes on " * 60)
    msg = failure_message("n@fintera.com.br", "dados@fintera.com.br", {"run_id": "r", "exception": long_error})
    raw = wire_bytes(msg)
    assert len(raw) > 1000 and b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
