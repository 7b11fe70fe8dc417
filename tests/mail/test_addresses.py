"""Which addresses we send to: one plain mailbox, nothing else."""

import pytest

from billing_digest.mail.addresses import is_valid_email


@pytest.mark.parametrize("address", ["ana@acme.com.br", " Ana.Lima+fin@acme.com.br ", "a@b-c.io"])
def test_plain_mailboxes_are_valid(address):
    assert is_valid_email(address)


@pytest.mark.parametrize("address", [None, "", "ana", "ana@", "@acme.com", "Ana <ana@acme.com>", "a@b.com, c@d.com",
                                     "a b@c.com", "a@b.com\r\nBcc: x@y.com", "a@-b.com", "a@b"])
def test_anything_else_is_not(address):
    assert not is_valid_email(address)
