"""The digest's headers: identity, automated-sender and one-click unsubscribe headers, no injection."""

import re

import pytest

from billing_digest.mail import mime
from billing_digest.mail.headers import Sender
from billing_digest.mail.render import Recipient
from billing_digest.unsubscribe.tokens import verify
from tests.digests import NOW, SECRET, parse, payload
from tests.digests import renderer as make_renderer


@pytest.fixture(scope="module")
def renderer():
    return make_renderer()


def test_headers_cannot_be_injected(renderer):
    raw = renderer.message(payload(entity={"id": 7, "name": "ACME\r\nBcc: evil@x.com", "cnpj": None}),
                           Recipient(5, "Maria\r\nBcc: evil@x.com", "m@exemplo.com.br"), NOW)[1]
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    assert not re.search(r"^Bcc:", head, re.M)
    msg = parse(raw)
    assert msg["Bcc"] is None
    assert len(msg["To"].addresses) == 1
    with pytest.raises(ValueError):
        mime.address("x", "a@b.com\r\nBcc: evil@x.com, c@d.com")


def test_automated_sender_headers_and_one_click_unsubscribe(renderer):
    msg = parse(renderer.message(payload(), Recipient(5, "Maria", "m@exemplo.com.br"), NOW)[1])
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["List-Id"] == "Erros de faturamento <billing_errors.fintera.com.br>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Date"]
    https, mailto = re.findall(r"<([^>]+)>", msg["List-Unsubscribe"])
    assert mailto.startswith("mailto:suporte@fintera.com.br")
    token = re.search(r"token=([^&]+)", https).group(1)
    unsub = verify(SECRET, token.replace("%2F", "/").replace("%3D", "="), now=NOW.timestamp(), expected_user_id=5)
    assert (unsub.user_id, unsub.kind) == (5, "billing_errors")


def test_sender_needs_an_address():
    assert Sender.parse("Fintera <notificacoes@fintera.com.br>").domain == "fintera.com.br"
    with pytest.raises(ValueError, match="sender must contain an address"):
        Sender.parse("Fintera")
