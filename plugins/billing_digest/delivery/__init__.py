"""Delivery: SMTP, the ledger, who may receive at send time."""
