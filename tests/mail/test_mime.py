"""The MIME skeleton: 7-bit headers, RFC 2047 words, quoted-printable bodies."""

import pytest

from billing_digest.mail.render import Recipient
from tests.digests import NOW, parse, payload
from tests.digests import renderer as make_renderer


@pytest.fixture(scope="module")
def renderer():
    return make_renderer()


def test_non_ascii_subject_is_rfc2047_encoded_ascii_on_the_wire(renderer):
    raw = renderer.message(payload(entity={"id": 7, "name": "Ótica São João " * 8, "cnpj": None}),
                           Recipient(5, "Conceição", "c@exemplo.com.br"), NOW)[1]
    head = raw.split(b"\r\n\r\n", 1)[0]
    head.decode("ascii")  # every header is 7-bit
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    msg = parse(raw)
    assert msg["Subject"].startswith("Ótica São João Ótica São João")
    assert msg["To"].addresses[0].display_name == "Conceição"
