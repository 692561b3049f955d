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
    tokens_exist,
)
from modelpilot.auth.guard import WRONG_TOKEN, FailureGuard, TooManyAttempts
from modelpilot.auth.sessions import NAMESPACE as SESSION_NAMESPACE
from modelpilot.auth.sessions import create_session, csrf_for_session, end_session, session_user
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
    ("viewer", "viewer", True), ("viewer", "labeler", False), ("viewer", "operator", False), ("viewer", "admin", False),
    ("labeler", "viewer", True), ("labeler", "labeler", True), ("labeler", "operator", False), ("labeler", "admin", False),
    ("operator", "viewer", True), ("operator", "labeler", True), ("operator", "operator", True), ("operator", "admin", False),
    ("admin", "viewer", True), ("admin", "labeler", True), ("admin", "operator", True), ("admin", "admin", True),
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

def test_labeler_sits_between_viewer_and_operator(store: Store) -> None:
    labeler = create_token(store, "labels", "labeler")
    assert require(store, labeler, "labeler", action="feedback").name == "labels"
    assert require(store, labeler, "viewer", action="predict").name == "labels"
    with pytest.raises(Forbidden, match="has role labeler; promote needs operator"):
        require(store, labeler, "operator", action="promote")
    assert [r for r in ROLES if role_allows(r, "labeler")] == ["labeler", "operator", "admin"]


def test_tokens_exist_counts_only_active_tokens(store: Store) -> None:
    assert not tokens_exist(store)
    create_token(store, "a", "admin")
    assert tokens_exist(store)
    store.revoke_token(store.list_tokens()[0].id)
    assert not tokens_exist(store)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_guard_locks_out_after_max_wrong_tokens_and_releases_after_the_lockout(store: Store) -> None:
    clock = FakeClock()
    guard = FailureGuard(store, max_failures=3, window=60, lockout=120, clock=clock)
    for _ in range(2):
        guard.failure("10.0.0.1", kind="auth_failed", reason=WRONG_TOKEN, action="predict")
    guard.check("10.0.0.1", "predict")  # two wrong tokens: not yet
    guard.failure("10.0.0.1", kind="auth_failed", reason=WRONG_TOKEN, action="predict")
    with pytest.raises(TooManyAttempts, match="refused for 120 more seconds") as caught:
        guard.check("10.0.0.1", "predict")
    assert caught.value.status_code == 429 and caught.value.headers == {"Retry-After": "120"}
    guard.check("10.0.0.2", "predict")  # another client is not affected
    clock.now += 119
    with pytest.raises(TooManyAttempts):
        guard.check("10.0.0.1", "predict")
    clock.now += 2
    guard.failure("10.0.0.3", kind="auth_failed", reason="missing token", action="predict")
    assert guard._locked == {}  # an ended lockout is forgotten even if its client never returns
    guard.check("10.0.0.1", "predict")
    rows = list(reversed(store.events(kind="auth_failed")))
    assert [(r.numbers["count"], r.numbers["locked_out_seconds"]) for r in rows] == [
        (3, 120),  # written when the lockout started
        (2, None),  # the two refusals while locked out, once their window ended
    ]


def test_the_guard_writes_one_row_per_client_and_window(store: Store) -> None:
    clock = FakeClock()
    guard = FailureGuard(store, max_failures=1000, window=60, clock=clock)
    for i in range(40):
        guard.failure(f"10.0.0.{i % 2}", kind="auth_failed", reason="missing token", action="read /metrics")
    guard.failure("10.0.0.0", kind="auth_forbidden", reason="role viewer may not promote", action="promote",
                  actor="dash", model="churn")
    assert store.events(kind=["auth_failed", "auth_forbidden"]) == []  # the window is still open
    clock.now += 61
    guard.failure("10.0.0.9", kind="auth_failed", reason="missing token", action="read /metrics")  # flushes
    rows = store.events(kind=["auth_failed", "auth_forbidden"])
    assert sorted((r.subject, r.kind, r.numbers["count"]) for r in rows) == [
        ("client 10.0.0.0", "auth_failed", 20), ("client 10.0.0.0", "auth_forbidden", 1),
        ("client 10.0.0.1", "auth_failed", 20),
    ]
    forbidden = next(r for r in rows if r.kind == "auth_forbidden")
    assert forbidden.actor == "dash" and forbidden.model == "churn"
    assert guard.flush(everything=True) == 1  # 10.0.0.9's window, at shutdown
    # missing tokens never lock a client out
    guard.check("10.0.0.0", "read /metrics")


def test_sessions_store_only_hashes_expire_and_end(store: Store) -> None:
    token = create_token(store, "ops", "operator")
    record = authenticate(store, token)
    assert record is not None
    session = create_session(store, record, ttl=60)
    assert session != token and session_user(store, session) == record
    assert list(store.list_state(SESSION_NAMESPACE)) == [hash_token(session)]
    assert session_user(store, "not-a-session") is None and session_user(store, "x" * 500) is None
    assert csrf_for_session(session) != csrf_for_session(create_session(store, record, ttl=60))
    assert end_session(store, session) and session_user(store, session) is None
    expired = create_session(store, record, ttl=-1)
    assert session_user(store, expired) is None
    create_session(store, record, ttl=60)  # a login forgets the expired sessions
    assert hash_token(expired) not in store.list_state(SESSION_NAMESPACE)
