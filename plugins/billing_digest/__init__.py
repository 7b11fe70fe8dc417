"""billing-digest: the daily e-mail of billing errors per (user, company). See docs/architecture.md."""

DAG_ID = "billing_error_digest"
NOTIFICATION_KIND = "billing_errors"
