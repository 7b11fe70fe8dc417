"""Which addresses we send to, and in what form: one plain mailbox, validated by email-validator."""

import pytest

from billing_digest.mail.addresses import parse


@pytest.mark.parametrize("address", ["ana@acme.com.br", " Ana.Lima+fin@acme.com.br ", "a@b-c.io",
                                     "joão@acme.com.br", "ana@açúcar.com.br"])
def test_plain_mailboxes_are_valid(address):
    assert parse(address) is not None


@pytest.mark.parametrize("address", [None, "", "  ", "ana", "ana@", "@acme.com", "Ana <ana@acme.com>",
                                     "a@b.com, c@d.com", "a b@c.com", "a@b.com\r\nBcc: x@y.com", "a@-b.com", "a@b",
                                     "a..b@x.com", ".a@x.com", "a.@x.com", "a@b@c.com", "a@x..com", '"a b"@x.com',
                                     "a@[127.0.0.1]", "a@localhost", "a@intranet.local", "a@x.test",
                                     "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 63 + ".com",  # 259
                                     "a" * 65 + "@x.com"])  # local part over 64
def test_anything_else_is_not(address):
    assert parse(address) is None


def test_an_internationalised_domain_goes_out_in_idna_form():
    a = parse("Ana@Açúcar.com.br")
    assert a is not None
    assert a.smtp == "Ana@xn--acar-0oa8i.com.br" and a.display == "Ana@açúcar.com.br"
    assert not a.needs_smtputf8 and a.key == "ana@xn--acar-0oa8i.com.br"


def test_a_non_ascii_local_part_needs_smtputf8():
    a = parse("João@ACME.com.br")
    assert a is not None and a.needs_smtputf8 and a.smtp == "João@acme.com.br" and a.domain == "acme.com.br"


def test_the_same_mailbox_written_differently_has_one_key():
    forms = [" ana@açúcar.com.br", "ANA@AÇÚCAR.com.br", "ana@xn--acar-0oa8i.com.br"]
    assert {parse(f).key for f in forms} == {"ana@xn--acar-0oa8i.com.br"}
    # NFC: "ã" typed as "a" + combining tilde is the same mailbox as the composed "ã"
    assert parse("joa\u0303o@x.com.br").key == parse("jo\u00e3o@x.com.br").key
    assert parse("ß@x.com").key != parse("ss@x.com").key  # lower case, not casefold


def test_at_most_254_characters():
    local, label = "a" * 60, "b" * 60
    address = f"{local}@{label}.{label}.{label}.{'c' * (254 - 61 - 3 * 61 - 4)}.com"
    assert len(address) == 254 and parse(address) is not None
    assert parse("a" + address) is None


def test_the_address_rules_are_stated_once():
    """Issue 16: only mail/addresses.py says what an address is; the build, the send-time check and the
    suppression list call it (no second regex, no second email-validator call)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    restating = re.compile(r"email_validator|validate_email|EMAIL_RE|is_valid_email")
    offenders = [str(p.relative_to(root)) for p in [*root.glob("plugins/**/*.py"), *root.glob("dags/*.py")]
                 if p.name != "addresses.py" and restating.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
    users = {p.relative_to(root).as_posix() for p in root.glob("plugins/**/*.py")
             if "from billing_digest.mail.addresses import" in p.read_text(encoding="utf-8")}
    assert {"plugins/billing_digest/transform.py", "plugins/billing_digest/delivery/eligibility.py",
            "plugins/billing_digest/delivery/prepare.py"} <= users
