"""API tokens with roles: ``viewer`` < ``operator`` < ``admin``.

A token is shown once when it is created (``modelpilot token create --role operator``)
and only its SHA-256 hash is stored. Every action that changes what is served (aliases,
rollouts, approvals) needs at least ``operator``. A failed attempt is written to the audit
log without the token.

>>> role_allows("admin", "operator"), role_allows("viewer", "operator")
(True, False)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from modelpilot.errors import AuthError, ConfigError, Forbidden
from modelpilot.store import Store, TokenRecord

ROLES: dict[str, int] = {"viewer": 0, "operator": 1, "admin": 2}
PREFIX = "mp_"


def hash_token(token: str) -> str:
    """The stored form of a token (tokens are random, so a plain SHA-256 is enough)."""
    return hashlib.sha256(token.encode()).hexdigest()


def role_allows(role: str, needed: str) -> bool:
    """Whether ``role`` may do what ``needed`` may."""
    return ROLES.get(role, -1) >= ROLES[needed]


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


def require(store: Store, token: str | None, needed: str, *, action: str, model: str | None = None) -> TokenRecord:
    """The token's record if its role allows ``needed``; otherwise log the attempt and raise.

    Raises:
        AuthError: no token or an unknown/revoked one (401).
        Forbidden: the token's role is below ``needed`` (403).
    """
    record = authenticate(store, token)
    if record is None:
        store.add_event(
            "auth_failed", model=model, subject=action, actor="anonymous",
            reason="missing token" if not token else "unknown or revoked token",
        )
        raise AuthError(
            f"{action} needs an {needed} token: send 'Authorization: Bearer <token>' "
            f"(create one with 'modelpilot token create --role {needed}')"
        )
    if not role_allows(record.role, needed):
        store.add_event(
            "auth_forbidden", model=model, subject=action, actor=record.name,
            reason=f"role {record.role} may not {action} (needs {needed})",
        )
        raise Forbidden(f"token '{record.name}' has role {record.role}; {action} needs {needed} or higher")
    return record
