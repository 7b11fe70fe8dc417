"""The DAG's ``read_bounces`` step: the bounce mailbox (Airflow connection ``billing_bounces``, an
``imap`` connection read with the IMAP provider's hook) drained into the suppression list before
the day's digests are sent (:mod:`billing_digest.bounces` does the work, without Airflow).

Optional and never in the way: without the connection the step logs that and passes; when the
mailbox cannot be read the step logs a warning and passes too (the day's digests still go out;
the messages stay in the mailbox for the next run).
"""

from __future__ import annotations

import imaplib
import logging
import os
from collections import Counter

from billing_digest import bounces
from billing_digest.delivery.suppression import SuppressionPolicy
from billing_digest.settings import Settings

log = logging.getLogger(__name__)

BOUNCES_CONN_ID = os.environ.get("BILLING_DIGEST_BOUNCES_CONN_ID", "billing_bounces")


def read_bounces(settings: Settings) -> dict[str, int]:
    """Drain the bounce mailbox; counts by outcome (``messages``, ``hard_bounce``, ``soft_bounce``,
    ``newly_suppressed``, ``not_a_bounce``, ``unverified``...)."""
    from airflow.providers.imap.hooks.imap import ImapHook
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    from billing_digest.airflow_glue.glue import billing_db

    try:
        Connection.get(BOUNCES_CONN_ID)
    except AirflowNotFoundException:
        log.info("no Airflow connection %r: asynchronous bounces are not read (docs/bounces-and-addresses.md)",
                 BOUNCES_CONN_ID)
        return {"no_connection": 1}
    outcomes: Counter[str] = Counter()
    policy = SuppressionPolicy.from_settings(settings)
    try:
        with billing_db() as conn, ImapHook(imap_conn_id=BOUNCES_CONN_ID) as hook:
            conn.autocommit = True
            assert hook.mail_client is not None
            outcomes["messages"] = bounces.drain(
                hook.mail_client, settings.bounce_folder, settings.bounce_done_folder,
                lambda raw: bounces.record_report(conn, raw, settings.bounce_address, settings.unsubscribe_secrets,
                                                  policy, outcomes))
    except (OSError, imaplib.IMAP4.error, RuntimeError) as exc:
        log.warning("the bounce mailbox (connection %r) could not be read: %s: %s; the digests go out anyway, "
                    "the messages left are read next time", BOUNCES_CONN_ID, type(exc).__name__, exc)
        outcomes["mailbox_error"] += 1
    log.info("bounce mailbox: %s", dict(sorted(outcomes.items())))
    return dict(sorted(outcomes.items()))
