"""What counts as an e-mail address we may send to, and the one form we send it in: stated once,
here (issue 16), and used by the build (``transform.clean_recipients``), the send-time check
(``delivery.eligibility``) and the suppression list.

Validated by ``email-validator`` (syntax only, no DNS: ``check_deliverability=False``), not by a
regular expression: RFC 5321/5322/6531 rules a regex gets wrong (dots at the ends of the local part
or twice in a row, 254 characters at most, internationalised domains and local parts).

- an internationalised domain (``ana@açúcar.com.br``) goes out in IDNA form
  (``ana@xn--acar-0oa8i.com.br``): any server takes it;
- a non-ASCII local part (``joão@acme.com.br``, RFC 6531) can only travel with SMTPUTF8:
  :attr:`Address.needs_smtputf8`, decided against the server at send time;
- one mailbox only: display names, quoted local parts, IP-literal domains, special-use domains
  (``.local``, ``.test``, ``localhost``) and domains without a dot are refused.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

#: The Airflow Trigger form's check of an address (a JSON Schema ``pattern``: the form cannot call Python;
#: the DAG file states it literally, tests/airflow_glue/test_run_params.py keeps the two equal). ASCII
#: and coarser than :func:`parse`, which decides (``run_params`` checks ``redirect_to`` with it).
FORM_PATTERN = (r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")

#: RFC 5321 4.5.3.1.3: a path holds at most 256 octets, brackets included: 254 for the address.
MAX_LENGTH = 254


@dataclass(frozen=True)
class Address:
    """A valid address in the forms the rest of the code needs."""

    smtp: str             # what RCPT TO and the To header carry: local part as given (NFC), domain in IDNA
    display: str          # the same with the domain in Unicode (what a person reads)
    needs_smtputf8: bool  # the local part is not ASCII: only a server offering SMTPUTF8 can take it
    key: str              # the identity of the mailbox: duplicates and the suppression list compare this

    @property
    def domain(self) -> str:
        return self.smtp.rsplit("@", 1)[1]


@functools.lru_cache(maxsize=65536)
def parse(address: str | None) -> Address | None:
    """The address normalised, or None when it is not one plain deliverable mailbox (surrounding
    whitespace ignored). Cached: email-validator takes ~60 us an address, and a delivery asks about
    each one a few times (eligibility, the suppression list, the envelope)."""
    if not address or not address.strip():
        return None
    try:
        valid = validate_email(address.strip(), check_deliverability=False, allow_smtputf8=True,
                               allow_quoted_local=False, allow_domain_literal=False, allow_display_name=False,
                               strict=True)  # strict: the local part at most 64 octets (RFC 5321)
    except EmailNotValidError:
        return None
    smtp = f"{valid.local_part}@{valid.ascii_domain}"
    if len(smtp.encode("utf-8")) > MAX_LENGTH:
        return None
    # The local part is case-sensitive by the RFCs but not by any mail system our clerks use:
    # compared in lower case (not casefold: "ß" must not become the distinct mailbox "ss"),
    # as the ledger always did.
    return Address(smtp=smtp, display=valid.normalized, needs_smtputf8=not valid.local_part.isascii(),
                   key=smtp.lower())
