import pytest

from billing_digest.unsubscribe.tokens import InvalidToken, make_token, verify

SECRET = "k" * 32


def test_valid_token_round_trips():
    token = make_token(SECRET, 42, "billing_errors", expires_at=2_000)
    assert verify(SECRET, token, now=1_000).user_id == 42
    assert verify(SECRET, token, now=1_000, expected_user_id=42).kind == "billing_errors"


def test_expired_token_is_refused():
    token = make_token(SECRET, 42, "billing_errors", expires_at=2_000)
    with pytest.raises(InvalidToken, match="expired"):
        verify(SECRET, token, now=2_000)


@pytest.mark.parametrize("tamper", [
    lambda t: t.replace("42.", "43.", 1),                 # another user
    lambda t: t.replace("billing_errors", "payables_due"),  # another kind
    lambda t: t.replace(".2000.", ".9999.", 1),           # longer life
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # forged signature
    lambda t: t + ".x",
    lambda t: "garbage",
])
def test_tampered_token_is_refused(tamper):
    token = make_token(SECRET, 42, "billing_errors", expires_at=2_000)
    with pytest.raises(InvalidToken):
        verify(SECRET, tamper(token), now=1_000)


def test_other_secret_and_wrong_user_are_refused():
    token = make_token(SECRET, 42, "billing_errors", expires_at=2_000)
    with pytest.raises(InvalidToken, match="signature"):
        verify("another-secret", token, now=1_000)
    with pytest.raises(InvalidToken, match="another user"):
        verify(SECRET, token, now=1_000, expected_user_id=7)


def test_the_link_points_to_the_unsubscribe_url_setting_or_to_the_product():
    from billing_digest.settings import Settings
    from billing_digest.unsubscribe.tokens import endpoint, link

    product = Settings(base_url="https://app.exemplo.com.br/")
    assert endpoint(product) == "https://app.exemplo.com.br/notificacoes/cancelar"
    assert link(product, "1.billing_errors.2.s/ig=") == (
        "https://app.exemplo.com.br/notificacoes/cancelar?token=1.billing_errors.2.s%2Fig%3D")
    own = Settings(unsubscribe_url="https://sair.exemplo.com.br/cancelar?origem=email")
    assert link(own, "t") == "https://sair.exemplo.com.br/cancelar?origem=email&token=t"


def test_the_e_mail_uses_the_same_link_in_the_header_and_the_footer():
    import re

    from billing_digest.mail.render import Recipient, Renderer
    from billing_digest.settings import Settings
    from tests.digests import NOW, parse, payload

    renderer = Renderer(Settings(unsubscribe_secret=SECRET, unsubscribe_url="http://127.0.0.1:8099/notificacoes/cancelar"))
    msg = parse(renderer.message(payload(), Recipient(5, "Maria", "m@exemplo.com.br"), NOW)[1])
    https = re.findall(r"<([^>]+)>", msg["List-Unsubscribe"])[0]
    assert https.startswith("http://127.0.0.1:8099/notificacoes/cancelar?token=5.billing_errors.")
    assert https in msg.get_body(("plain",)).get_content()
    assert f'href="{https}"' in msg.get_body(("html",)).get_content()
