"""Topics and steps: every step the digest reports has a topic, and the e-mail a pt-BR label for it."""

from billing_digest import topics
from billing_digest.mail import views


def test_every_reported_step_has_one_topic_in_the_emails_order():
    assert [t.title for t in topics.TOPICS] == ["Nota Fiscal", "Cobrança (Boleto Bancário)", "Notificação ao cliente"]
    assert set(topics.STEP_TOPIC) == {"nfse", "boleto", "charge_email", "overdue_email"}
    assert not set(topics.STEP_TOPIC) & topics.STEPS_NOT_IN_DIGEST


def test_every_step_and_outcome_has_a_label_and_missing_steps_a_message():
    for step in topics.STEP_TOPIC:
        for status in topics.FAILED_STATUSES:
            assert (step, status) in views.PROBLEMS
    for step in topics.MISSING_STEP_MESSAGES:
        assert (step, "missing") in views.PROBLEMS
