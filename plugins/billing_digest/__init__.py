"""billing-digest: every morning, one e-mail per (user, company) listing yesterday's failed invoices.

The map of the package (tests/test_package_map.py keeps it true to the tree). Only ``airflow_glue/``
imports Airflow (with ``dags/`` and the preview plugin; ruff's banned-api enforces it): everything
else is plain Python, tested without Airflow.

Shared contracts
    window          which day a run reports (the window [D-1 06:30, D 06:30)) and the DAG's schedule
    settings        every setting, typed and validated (pydantic-settings)
    secret_check    fail closed: a known or too short unsubscribe secret refuses to run (runs, the service)
    handoffs        the typed values tasks hand each other through XCom
    payload         the stored digest of one company and day (the JSON the e-mail is rendered from)
    topics          the three topics, their steps, and what a missing step reads as
    causes          which errors share a cause (one block in the e-mail), and how its message reads
    guides          what to do about a cause: the catalogue of known causes (include/causes), matching, coverage
    product         the product's paths under base_url (invoices, preferences, the unsubscribe mount)
    text            text helpers shared by mail/ and unsubscribe/: neutralise untrusted text, first names
    sql             loads include/sql/<step>/<name>.sql; applies the schema

The DAG's steps, in order
    freshness       wait_for_billing_data: has the billing data caught up with the window's end?
    extract         extract_errors: stage the window's failed and missing steps (SQL)
    quality         check_quality: hold a day the data cannot support (coverage, volume, systemic)
    coverage        the coverage guard: does the attempt history cover the window?
    volume          the volume guard: is a topic wildly off its trailing days?
    build           build_digests: payloads and ledger rows of the day, staged in PostgreSQL
    transform       build's validation (pure pandas): bad rows counted, placeholders, recipients
    assemble        build's payloads (pure): grouped by company, topic and cause, budgeted, with guides
    batching        build's batches (pure): whole companies, the worst first
    bounces         read_bounces: DSNs of the bounce mailbox (VERP, flufl.bounce), recorded as suppressions
    plan            plan_batches: the batches with something to send, labelled for the UI
    summary         summarize: counts by topic, outcome and reason; the day's report
    retention       apply_retention: delete our tables' rows past their settings, in bounded chunks
    holds           held days remembered (digest.day_holds): why, for the history page and the preview
    history         the days compared: what the history page charts over a period

Rooms
    mail/           what a recipient reads, rendered and encoded (no I/O)
        render      a company's digest for one recipient: subject, text, HTML, the whole message
        views       the company's part, formatted once for its recipients: labels, links, views
        templates   the Jinja2 templates, compiled once, CSS inlined
        formatting  pt-BR money, dates, CNPJ (Babel)
        headers     Message-ID, List-Unsubscribe, Auto-Submitted and the other headers
        mime        the multipart/alternative message, quoted-printable, RFC 2047
        addresses   what counts as an address we may send to, and its form (email-validator: IDNA, SMTPUTF8)
    delivery/       sending: SMTP, the ledger, who may receive at send time, the provider's pace
        deliver     one batch: lock, decide, render, send, record; at most the message in flight repeats
        prepare     a batch's rows locked, read, decided and rendered, in sending order; rows held elsewhere
        options     how one deliver task sends its batch (DeliveryOptions)
        jobs        what the preparing thread hands the SMTP thread; chunks; what stops a batch early
        sender      the batch's SMTP thread: messages in order, at the cluster's pace
        retry       what to do after a refusal: permanent, transient (backoff), throttled (retry, pause)
        accounting  each outcome counted for the batch's report and written to the ledger
        pace        the cluster's send rate: leases of send slots from a PostgreSQL row, AIMD on throttles
        quota       the provider's daily quota, cluster-wide: a message reserved before it is sent
        smtp        an SMTP client: connect (TLS, login), one transaction per message, reconnect when dropped
        smtp_replies    what a refusal means: permanent, transient, a throttle, the server unavailable
        ledger      the ledger's states and lock key, stated once
        ledger_writer   the ledger's durable, ordered writes in a thread of their own
        eligibility     who may receive now (access, opt-in, address, suppression), decided at send time
        suppression     the suppression list: bounces classified and scored, checked at send time, lifted
    unsubscribe/    the one-click unsubscribe (RFC 8058)
        tokens      HMAC tokens and the link the e-mails carry
        app         the service (FastAPI): confirm on GET, unsubscribe on POST
        preferences  the service's database side: read the alert, turn it off (recorded), health
        server      serves the app on its own (uvicorn)
    airflow_glue/   Airflow: connections, Variables, task bodies beyond wiring, alerts, metrics, notes
        glue        connections, the settings Variable, metrics emission, the run note through the REST API
        alerts      e-mails to the data team, sent: a failed or held run, the daily quota, a late run
        alert_messages  what those e-mails say, and what they read from a callback's context (pure text)
        late_alert  the Deadline Alert's callback, light to import at parse time
        metrics     what a run tells StatsD/OpenTelemetry (pure)
        run_note    the run's note and label in the UI (pure text)
        run_params  a run's parameters read once into one typed shape; the delivery options built there
        day_runs    one run per digest day at a time: wait while an earlier run of the day is active
        bounce_mailbox  the read_bounces step: the bounce mailbox over IMAP (connection billing_bounces)
        wait_for_data   the wait_for_billing_data sensor's poke: parameters, window, one run per day, freshness
        summarize       the summarize step: the run's counts saved, logged, emitted as metrics, noted in the UI
"""

DAG_ID = "billing_error_digest"
NOTIFICATION_KIND = "billing_errors"
