"""Fixtures of the whole-run scenarios (the session's real parts are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.scenarios.crashkit import OwnPostgres, own_postgres


@pytest.fixture
def own_pg() -> Iterator[OwnPostgres]:
    """A PostgreSQL server of this test's own, which it may SIGKILL and restart (billing DB, schema applied)."""
    with own_postgres() as server:
        yield server
