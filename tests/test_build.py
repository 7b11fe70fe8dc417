"""The build step's database side: who may and wants to know (the build/recipients.sql reader)."""

import pytest

from billing_digest import build


@pytest.fixture
def acme(world):
    return world.entity("Acme LTDA")


def test_recipients_are_active_users_with_access_who_opted_in(world, conn, acme):
    other = world.entity("Outra SA")
    gone = world.entity("Fechada ME", active=False)
    ok = world.user("Ok", "ok@a.com", [acme, other, gone])
    world.user("Opted out", "out@a.com", [acme], opted_in=False)
    world.user("No preference row", "none@a.com", [acme], opted_in=None)
    world.user("Inactive", "inactive@a.com", [acme], active=False)
    revoked = world.user("Revoked", "rev@a.com", [acme])
    conn.execute("UPDATE billing.user_entity_access SET revoked_at = now() WHERE user_id = %s", (revoked,))
    world.user("Only other", "other@a.com", [other])
    people = build.recipients(conn, [acme, gone])
    assert sorted(zip(people["entity_id"], people["user_id"], strict=True)) == [(acme, ok)]
