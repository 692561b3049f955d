"""Dashboard login sessions: a random session id in the cookie, its hash in the store.

Logging in with a token creates a session: a fresh random id (256 bits) goes to the
browser in an HttpOnly, SameSite=Strict cookie; the store keeps only the id's SHA-256
hash, the token's hash (to find its name and role, and to end the session when the token
is revoked) and the expiry. The bearer token itself never reaches the cookie. Logging out
deletes the stored session, so a copied cookie stops working at once; an expired one is
refused and removed at the next login. Sessions live in the store (state namespace
``ui_sessions``), so every server replica sees the same ones.

The form token against cross-site requests (CSRF) of a logged-in page is derived from the
session id (an HMAC), so it cannot be computed without the cookie; before login it is a
random value in its own cookie, posted back with the form (double submit).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

from modelpilot.auth import hash_token
from modelpilot.store import TokenRecord

NAMESPACE = "ui_sessions"


def create_session(store: Any, record: TokenRecord, ttl: float) -> str:
    """Start a session for ``record`` lasting ``ttl`` seconds; returns the session id."""
    session_id = secrets.token_urlsafe(32)
    now = time.time()
    store.put_state(NAMESPACE, hash_token(session_id), {
        "token_hash": record.token_hash, "name": record.name, "created_at": now, "expires_at": now + ttl,
    })
    for key, value in store.list_state(NAMESPACE).items():  # forget the expired ones
        if float(value.get("expires_at", 0)) < now:
            store.delete_state(NAMESPACE, key)
    return session_id


def session_user(store: Any, session_id: str | None) -> TokenRecord | None:
    """The token behind a live session, or None (unknown, expired, logged out, token revoked)."""
    if not session_id or len(session_id) > 128:
        return None
    value = store.get_state(NAMESPACE, hash_token(session_id))
    if value is None or float(value.get("expires_at", 0)) < time.time():
        return None
    record: TokenRecord | None = store.find_token(value["token_hash"])
    return record


def end_session(store: Any, session_id: str | None) -> bool:
    """Log out: the session stops working at once; True when it existed."""
    if not session_id or len(session_id) > 128:
        return False
    return bool(store.delete_state(NAMESPACE, hash_token(session_id)))


def csrf_for_session(session_id: str) -> str:
    """The form token of a logged-in page (an HMAC of the session id)."""
    return hmac.new(session_id.encode(), b"modelpilot form token", hashlib.sha256).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two form tokens (False when either is missing)."""
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))
