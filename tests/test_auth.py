"""API tokens: stored hashed, roles ordered, failures logged without the token."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelpilot.auth import authenticate, bearer, create_token, hash_token, require, role_allows
from modelpilot.errors import AuthError, ConfigError, Forbidden
from modelpilot.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.close()


def test_tokens_are_stored_hashed_and_roles_are_ordered(store: Store) -> None:
    token = create_token(store, "ci", "operator")
    (record,) = store.list_tokens()
    assert record.token_hash == hash_token(token) and token not in str(record)
    assert authenticate(store, token) == record
    assert require(store, token, "viewer", action="predict").name == "ci"
    assert role_allows("admin", "operator") and not role_allows("viewer", "operator")
    with pytest.raises(ConfigError, match="unknown role 'root'"):
        create_token(store, "x", "root")


def test_failures_raise_and_are_logged_without_the_token(store: Store) -> None:
    viewer = create_token(store, "dash", "viewer")
    with pytest.raises(AuthError, match="needs an operator token"):
        require(store, None, "operator", action="promote", model="churn")
    with pytest.raises(AuthError, match="needs an operator token"):
        require(store, "mp_guess", "operator", action="promote", model="churn")
    with pytest.raises(Forbidden, match="has role viewer"):
        require(store, viewer, "operator", action="rollback", model="churn")
    events = store.events(kind=["auth_failed", "auth_forbidden"])
    assert [e.reason for e in reversed(events)] == [
        "missing token", "unknown or revoked token", "role viewer may not rollback (needs operator)",
    ]
    assert all("mp_" not in e.reason + str(e.numbers) for e in events)


def test_revoked_tokens_stop_working(store: Store) -> None:
    token = create_token(store, "old", "admin")
    store.revoke_token(store.list_tokens()[0].id)
    assert authenticate(store, token) is None
    assert bearer("Bearer abc") == "abc" and bearer("Basic abc") is None and bearer(None) is None
