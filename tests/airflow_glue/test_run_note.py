"""What the data team reads of a run in the Airflow UI."""

import datetime as dt

from billing_digest.airflow_glue import run_note
from billing_digest.airflow_glue.alert_messages import quota_message
from billing_digest.summary import RunSummary, format_table

DAY = dt.date(2026, 11, 27)


def summary(**kw) -> RunSummary:
    base = dict(digest_date=DAY, errors_by_topic={"nfse": 18, "boleto": 78, "notification": 18},
                entities_with_errors=16, digests=78, bad_input={"step_not_in_digest": 3},
                this_run={"sent": 77, "failed": 1}, ledger={"sent": {"-": 77}, "failed": {"550": 1}},
                emails_sent_this_run=77, run_id="scheduled__x")
    return RunSummary(**{**base, **kw})


def test_the_note_says_the_day_and_its_counts():
    note = run_note.note(summary())
    assert note.startswith("**Digest of 27/11/2026**: 77 sent · 1 failed · 0 deferred · 114 errors\n")
    assert "errors: 114 (Nota Fiscal 18 · Cobrança (Boleto Bancário) 78 · Notificação ao cliente 18) in 16 companies" \
        in note
    assert "this run: sent 77, failed 1" in note and "the day's ledger (78 digests): sent 77, failed 1" in note
    assert "@" not in note and len(note) <= run_note.NOTE_LIMIT


def test_an_accepted_anomaly_is_recorded_and_the_label_is_one_short_line():
    note = run_note.note(summary(accepted_anomaly=("2026-11-27: 4,000 errors in topic Cobrança ...",)))
    assert "**sent despite a volume anomaly** (accept_anomaly)" in note
    assert run_note.label(summary()) == "27/11/2026: 77 sent · 1 failed · 0 deferred · 114 errors"


def test_a_held_day_says_so_and_is_cut_to_airflow_s_limit():
    note = run_note.held_note(DAY, "check_quality", "held by the data checks:\n- " + "x" * 5000)
    assert note.startswith("**Digest of 27/11/2026 HELD, nothing sent**: held by the data checks (task `check_quality`)"
                           "\n\n- xxx")
    assert len(note) == run_note.NOTE_LIMIT and note.endswith("…")


def test_the_note_says_how_many_errors_had_a_guide_and_which_causes_had_none():
    top = tuple({"cause": f"boleto C{i}: causa {i}", "invoices": 10 - i, "companies": 1} for i in range(5))
    note = run_note.note(summary(errors_with_guide=57, unguided_causes=top))
    assert ("- errors with a guide: 50% (57 of 114); without one: boleto C0: causa 0 (10 invoices, 1 companies); "
            "boleto C1: causa 1 (9 invoices, 1 companies); boleto C2: causa 2 (8 invoices, 1 companies)") in note
    assert "C3" not in note and len(note) <= run_note.NOTE_LIMIT
    assert "without one" not in run_note.note(summary(errors_with_guide=114))
    assert "guide" not in run_note.note(summary(errors_by_topic={"nfse": 0}))


def test_a_dry_run_says_so_first_and_never_claims_it_sent():
    dry = summary(mode="dry run: nothing sent, no ledger row changed", this_run={}, emails_sent_this_run=0,
                  accepted_anomaly=("2026-11-27: 4,000 errors in topic Cobrança ...",))
    note = run_note.note(dry)
    assert note.startswith("**Digest of 27/11/2026 (DRY RUN)**: 0 sent")
    assert "- mode: dry run: nothing sent, no ledger row changed" in note
    assert "sent despite" not in note and "volume anomaly accepted, but nothing sent (dry run)" in note
    assert run_note.label(dry).startswith("27/11/2026 (DRY RUN): 0 sent")


def test_the_volume_not_judged_and_another_run_s_digests_are_said():
    note = run_note.note(summary(volume_note="3 trailing reported day(s) with invoices, fewer than 5",
                                 this_run={"locked_by_other_run": 61}, emails_sent_this_run=0))
    assert "- volume not judged: 3 trailing reported day(s) with invoices, fewer than 5" in note
    assert note.startswith("**Digest of 27/11/2026**: 0 sent · 0 failed · 0 deferred · 114 errors · 61 held by "
                           "another run of the day")
    assert "61 digests were being sent by another run of 27/11/2026 at the same time" in note


def test_a_held_re_run_of_a_sent_day_and_a_failed_run_say_what_happened():
    held = run_note.held_note(DAY, "check_quality", "held by the data checks:\n- x", sent_before=61)
    assert held.startswith("**Digest of 27/11/2026 HELD in this run, which sent nothing (61 digests of that day "
                           "were sent earlier)**")
    failed = run_note.failed_note(DAY, "wait_for_billing_data", "AirflowFailException: billing-digest refuses to "
                                  "start: the setting unsubscribe_secret is the default")
    assert failed.startswith("**Digest of 27/11/2026 FAILED in task `wait_for_billing_data`**\n\n"
                             "- AirflowFailException")


def test_the_note_says_how_long_delivery_took_its_rate_and_the_throttle_replies():
    note = run_note.note(summary(delivery_seconds=3.85, throttled=4))
    assert "- delivery: 3.9 s, 20.0 e-mails/s, 4 throttle replies" in note
    assert "delivery:" not in run_note.note(summary())  # nothing delivered (a dry run, a held day): no line


def test_a_day_cut_short_by_the_providers_daily_quota_says_so_first_and_names_no_failure():
    s = summary(this_run={"sent": 40, "deferred_quota": 38}, emails_sent_this_run=40, run_id="r1",
                ledger={"sent": {"-": 40}, "deferred": {"quota": 38}})
    note = run_note.note(s)
    first, second = note.splitlines()[:2]
    assert "40 sent · 0 failed · 0 deferred" in first and "38 waiting for the daily quota" in first
    assert "daily quota was reached" in second and "38 digests left deferred" in second
    assert "DAILY QUOTA REACHED: left deferred" in format_table(s) and "ledger: deferred (quota)" in format_table(s)
    alert = quota_message("digest@x.com.br", "data@x.com.br", "billing_error_digest", s, 40)
    assert "27/11/2026" in alert["Subject"] and "38 digests wait" in alert["Subject"]
    assert "quota of 40 messages per 24 hours" in alert.get_content()
    assert "38 waiting" not in run_note.note(summary())  # no quota line on an ordinary day
