"""The send-time check of who may receive a digest."""

import pytest

from billing_digest.delivery.eligibility import ineligible_reason

OK = {"user_active": True, "entity_active": True, "has_access": True, "opted_in": True, "email": "ana@acme.com.br"}


def test_an_active_user_with_access_who_opted_in_may_receive():
    assert ineligible_reason(OK) is None


@pytest.mark.parametrize("change,reason", [
    ({"user_active": False}, "user_inactive"), ({"entity_active": False}, "entity_inactive"),
    ({"has_access": False}, "access_revoked"), ({"opted_in": False}, "opted_out"),
    ({"email": None}, "invalid_email"), ({"email": "Ana <ana@acme.com.br>"}, "invalid_email"),
    ({"email": "a..b@acme.com.br"}, "invalid_email"), ({"suppressed": True}, "suppressed"),
    ({"opted_in": False, "suppressed": True}, "opted_out"),  # a choice of the user outranks the bounce
    ({"user_active": False, "opted_in": False}, "user_inactive"),  # the first reason is the one recorded
])
def test_each_reason_not_to_send(change, reason):
    assert ineligible_reason({**OK, **change}) == reason
