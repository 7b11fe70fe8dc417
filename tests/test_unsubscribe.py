import pytest

from billing_digest.unsubscribe import InvalidToken, make_token, verify

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
