"""API tokens with roles: ``viewer`` < ``labeler`` < ``operator`` < ``admin``.

A token is shown once when it is created (``modelpilot token create --role operator``)
and only its SHA-256 hash is stored. What each role may do:

* ``viewer``: read — predict, model info, the dashboard, ``/metrics`` (when
  ``serving.require_token_for_predict`` closes them).
* ``labeler``: a viewer that may also send feedback labels. Labels decide what the next
  model learns, so once any token exists ``/feedback`` needs this role (safety rule,
  ``serving.require_token_for_feedback``); a labeler cannot approve, promote or roll back.
* ``operator``: everything that changes what is served (aliases, rollouts, approvals).
* ``admin``: also creates and revokes tokens.

A device token (``modelpilot edge device add``) is a token with the role ``device``, named
``device:<name>``, outside the ladder: it may only send that device's reports and pull its
bundle (:func:`require_device`), and it does not count as "a token exists" (registering a
device does not close the CLI or feedback).

Failed attempts are written to the audit log without the token: here one row per attempt
(the CLI's local checks); an HTTP server aggregates them per client and window instead
(:mod:`modelpilot.auth.guard`).

>>> role_allows("admin", "operator"), role_allows("viewer", "operator")
(True, False)
>>> role_allows("labeler", "labeler"), role_allows("labeler", "operator")
(True, False)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable

from modelpilot.errors import AuthError, ConfigError, Forbidden
from modelpilot.store import Store, TokenRecord

ROLES: dict[str, int] = {"viewer": 0, "labeler": 1, "operator": 2, "admin": 3}
PREFIX = "mp_"
DEVICE_ROLE = "device"

# ``on_failure(kind, reason, actor)``: where a failed check goes instead of its own event row
FailureSink = Callable[[str, str, str], None]


def hash_token(token: str) -> str:
    """The stored form of a token (tokens are random, so a plain SHA-256 is enough)."""
    return hashlib.sha256(token.encode()).hexdigest()


def role_allows(role: str, needed: str) -> bool:
    """Whether ``role`` may do what ``needed`` may."""
    return ROLES.get(role, -1) >= ROLES[needed]


def tokens_exist(store: Store) -> bool:
    """Whether any active token exists (from then on, changing things needs one)."""
    return any(t.active and t.role != DEVICE_ROLE for t in store.list_tokens())


def create_token(store: Store, name: str, role: str) -> str:
    """Create a token and return it; it is never stored or shown again.

    Raises:
        ConfigError: an unknown role.
    """
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    token = PREFIX + secrets.token_urlsafe(32)
    store.create_token(name, role, hash_token(token))
    return token


def authenticate(store: Store, token: str | None) -> TokenRecord | None:
    """The active token record for ``token``, or None."""
    if not token:
        return None
    record = store.find_token(hash_token(token))
    # compare again in constant time: the lookup by hash is an index probe, not a secret check
    if record is not None and hmac.compare_digest(record.token_hash, hash_token(token)):
        return record
    return None


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def require(
    store: Store, token: str | None, needed: str, *, action: str, model: str | None = None,
    on_failure: FailureSink | None = None,
) -> TokenRecord:
    """The token's record if its role allows ``needed``; otherwise log the attempt and raise.

    Args:
        on_failure: receives ``(kind, reason, actor)`` of a failed check instead of an event
            row being written here (an HTTP server aggregates them per client).

    Raises:
        AuthError: no token or an unknown/revoked one (401).
        Forbidden: the token's role is below ``needed`` (403).
    """
    def failed(kind: str, reason: str, actor: str) -> None:
        if on_failure is not None:
            on_failure(kind, reason, actor)
        else:
            store.add_event(kind, model=model, subject=action, actor=actor, reason=reason)

    record = authenticate(store, token)
    if record is None:
        failed("auth_failed", "missing token" if not token else "unknown or revoked token", "anonymous")
        article = "an" if needed[0] in "aeiou" else "a"
        raise AuthError(
            f"{action} needs {article} {needed} token: send 'Authorization: Bearer <token>' "
            f"(create one with 'modelpilot token create --role {needed}')"
        )
    if not role_allows(record.role, needed):
        failed("auth_forbidden", f"role {record.role} may not {action} (needs {needed})", record.name)
        raise Forbidden(f"token '{record.name}' has role {record.role}; {action} needs {needed} or higher")
    return record


def create_device_token(store: Store, device: str) -> str:
    """Create the token of an edge device and return it (shown once, like every token)."""
    token = PREFIX + secrets.token_urlsafe(32)
    store.create_token(f"device:{device}", DEVICE_ROLE, hash_token(token))
    return token


def require_device(store: Store, token: str | None, device: str, *, on_failure: FailureSink | None = None) -> TokenRecord:
    """The token's record if it is ``device``'s own device token.

    Raises:
        AuthError: no token or an unknown/revoked one (401).
        Forbidden: a valid token of another device or a person (403).
    """
    action = f"edge device {device}"
    record = authenticate(store, token)
    if record is None:
        reason = "missing token" if not token else "unknown or revoked token"
        if on_failure is not None:
            on_failure("auth_failed", reason, "anonymous")
        raise AuthError(f"{action} needs its device token: send 'Authorization: Bearer <token>' "
                        f"(printed by 'modelpilot edge device add {device}')")
    if record.role != DEVICE_ROLE or record.name != f"device:{device}":
        if on_failure is not None:
            on_failure("auth_forbidden", f"token {record.name} is not the token of device {device}", record.name)
        raise Forbidden(f"token '{record.name}' is not the token of device {device!r}; each device sends "
                        "with its own token")
    return record
