"""API tokens: stored hashed, roles ordered, failures logged without the token."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelpilot.auth import (
    ROLES,
    authenticate,
    bearer,
    create_token,
    hash_token,
    require,
    role_allows,
)
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


@pytest.mark.parametrize(("role", "needed", "allowed"), [
    ("viewer", "viewer", True), ("viewer", "operator", False), ("viewer", "admin", False),
    ("operator", "viewer", True), ("operator", "operator", True), ("operator", "admin", False),
    ("admin", "viewer", True), ("admin", "operator", True), ("admin", "admin", True),
    ("root", "viewer", False), ("", "viewer", False),
])
def test_role_allows_every_pair_of_roles(role: str, needed: str, allowed: bool) -> None:
    assert role_allows(role, needed) is allowed


@pytest.mark.parametrize(("role", "needed", "allowed"), [
    ("viewer", "operator", False), ("operator", "operator", True), ("operator", "admin", False), ("admin", "admin", True),
])
def test_require_lets_exactly_the_allowed_roles_through(store: Store, role: str, needed: str, allowed: bool) -> None:
    token = create_token(store, f"{role}-user", role)
    if allowed:
        assert require(store, token, needed, action="promote").role == role
        assert store.events(kind="auth_forbidden") == []
    else:
        with pytest.raises(Forbidden, match=f"has role {role}; promote needs {needed}"):
            require(store, token, needed, action="promote")
        assert [e.actor for e in store.events(kind="auth_forbidden")] == [f"{role}-user"]


def test_failed_attempts_are_logged_with_model_action_and_actor(store: Store) -> None:
    viewer = create_token(store, "dash", "viewer")
    with pytest.raises(AuthError):
        require(store, None, "operator", action="promote", model="churn")
    with pytest.raises(Forbidden):
        require(store, viewer, "operator", action="rollback", model="fraud")
    forbidden, failed = store.events(kind=["auth_failed", "auth_forbidden"])
    assert (failed.kind, failed.model, failed.subject, failed.actor) == ("auth_failed", "churn", "promote", "anonymous")
    assert (forbidden.kind, forbidden.model, forbidden.subject, forbidden.actor) == (
        "auth_forbidden", "fraud", "rollback", "dash")


def test_tokens_carry_256_random_bits_and_unknown_roles_list_the_valid_ones(store: Store) -> None:
    token = create_token(store, "ci", "viewer")
    assert len(token) == len("mp_") + 43  # 32 random bytes, URL-safe base64
    with pytest.raises(ConfigError, match="choose one of " + re.escape(", ".join(ROLES))):
        create_token(store, "x", "superuser")


def test_bearer_takes_everything_after_the_scheme() -> None:
    assert bearer("Bearer  mp_abc ") == "mp_abc"
    assert bearer("bearer mp_abc") == "mp_abc"
    assert bearer("Bearer ") is None and bearer("Bearer") is None and bearer("") is None
