"""Ledger facts are stated once: states, the advisory-lock key and the notification kind."""

import re

from conftest import ROOT

from billing_digest import NOTIFICATION_KIND
from billing_digest.delivery import ledger


def test_sendable_states():
    assert ledger.sendable_states() == ["pending", "deferred"]
    assert ledger.sendable_states(resend=True) == ["pending", "deferred", "sent", "failed"]
    assert set(ledger.STATES) == {"pending", "deferred", "sent", "failed", "skipped"}


def code_files():
    for folder, pattern in (("plugins", "*.py"), ("include/sql", "*.sql"), ("dags", "*.py")):
        yield from (ROOT / folder).rglob(pattern)


def test_the_lock_key_and_the_notification_kind_are_written_once():
    lock_key = re.compile(rf"\b{ledger.LOCK_KEY}\b")
    kind = re.compile(rf"['\"]{NOTIFICATION_KIND}['\"]")
    where_key = [p.relative_to(ROOT).as_posix() for p in code_files() if lock_key.search(p.read_text())]
    where_kind = [p.relative_to(ROOT).as_posix() for p in code_files() if kind.search(p.read_text())]
    assert where_key == ["plugins/billing_digest/delivery/ledger.py"]
    # The schema seeds the product's catalogue of kinds (source data); everything else binds the constant.
    assert sorted(where_kind) == ["include/sql/schema/001_billing_source.sql", "plugins/billing_digest/__init__.py"]


def test_no_code_restates_the_sendable_states():
    literal = re.compile(r"""['"]pending['"],\s*['"]deferred['"](?!,\s*['"]sent)""")  # not the schema's CHECK
    found = [p.relative_to(ROOT).as_posix() for p in code_files() if literal.search(p.read_text())]
    assert found == ["plugins/billing_digest/delivery/ledger.py"]
