"""The naive design, for the benchmark only (never deployed): one mapped task instance and one SMTP
connection per e-mail, as the SMTP provider's ``EmailOperator`` with ``.expand`` gives.

It reads the digests the real DAG staged (``digest.deliveries`` + ``digest.entity_digests``),
renders every e-mail in one task (its subject and HTML go through XCom, as such a design does),
then expands ``EmailOperator`` over them: one task instance per e-mail. No ledger, no locks.
"""

from __future__ import annotations

import pendulum
from airflow.providers.smtp.operators.smtp import EmailOperator
from airflow.sdk import Param, dag, get_current_context, task


@dag(
    dag_id="naive_billing_digest",
    schedule=None,
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    tags=["benchmark"],
    params={
        "digest_date": Param("2026-11-27", type="string", format="date"),
        "entity_ids": Param(None, type=["null", "array"], items={"type": "integer"}),
    },
)
def naive_billing_digest() -> None:
    @task
    def list_emails() -> list[dict]:
        import datetime as dt

        from billing_digest.airflow_glue import glue
        from billing_digest.mail.render import Recipient, Renderer

        params = get_current_context()["params"]
        with glue.billing_db() as conn:
            rows = conn.execute(
                "SELECT d.user_id, d.recipient_name, d.email, e.payload FROM digest.deliveries d"
                " JOIN digest.entity_digests e USING (digest_date, entity_id)"
                " WHERE d.digest_date = %s AND d.state <> 'skipped'"
                " AND (%s::bigint[] IS NULL OR d.entity_id = ANY(%s::bigint[]))"
                " ORDER BY d.entity_id, d.user_id",
                (dt.date.fromisoformat(params["digest_date"]), params["entity_ids"], params["entity_ids"]),
            ).fetchall()
        renderer = Renderer(glue.settings())
        now = dt.datetime.now(dt.UTC)
        emails = []
        for user_id, name, email, payload in rows:
            rendered = renderer.render(payload, Recipient(user_id, name or "", email), now)
            emails.append({"to": email, "subject": rendered.subject, "html_content": rendered.html})
        return emails

    EmailOperator.partial(
        task_id="send_email", conn_id="billing_smtp", from_email="notificacoes@fintera.com.br",
    ).expand_kwargs(list_emails())


naive_billing_digest()
