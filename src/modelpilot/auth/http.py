"""Who is asking, over HTTP: bearer tokens, dashboard sessions, lockouts, closed routes.

One :class:`RequestAuth` per app (``app.state.auth``), shared by the API routes, the
operator endpoints and the dashboard, so a client locked out on one is locked out on all.

* :meth:`RequestAuth.authorize` — the bearer token's record if its role suffices, else
  401/403 (or 429 while the client is locked out). Tokens that passed are remembered for
  :data:`TOKEN_TTL` seconds so a protected predict path does not query the store on every
  request (a revoked token stops working within that time).
* :meth:`RequestAuth.authorize_feedback` — the safety rule for labels: once any active
  token exists (``serving.require_token_for_feedback``, default on), or when
  ``serving.require_token_for_predict`` closes the server, feedback needs ``labeler``.
* :class:`ReadAccessMiddleware` — with ``serving.require_token_for_predict`` every route
  that reveals project data (model info, ``/metrics``, the OpenAPI document and docs, the
  operator endpoints) needs at least a ``viewer`` token; ``/healthz`` stays open, the
  dashboard checks its own sessions.
* :func:`foreign_origin` — the Origin check of the dashboard's forms.
"""

from __future__ import annotations

import math
import time
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from modelpilot import auth
from modelpilot.auth.guard import WRONG_TOKEN, FailureGuard, TooManyAttempts
from modelpilot.auth.sessions import session_user
from modelpilot.errors import ModelpilotError
from modelpilot.store import TokenRecord

TOKEN_TTL = 5.0
SESSION_COOKIE = "modelpilot_session"


class RequestAuth:
    """Authentication of HTTP requests for one app; see the module docstring.

    Args:
        store: the metadata store (tokens, sessions, the audit log).
        cfg: the config (``serving`` section: the token rules, the lockout, sessions).
    """

    def __init__(self, store: Any, cfg: Any) -> None:
        sc = cfg.serving
        self.store, self.cfg = store, cfg
        self.guard = FailureGuard(store, max_failures=sc.auth_max_failures, window=sc.auth_failure_window,
                                  lockout=sc.auth_lockout)
        self._passed: dict[str, tuple[TokenRecord, float]] = {}
        self._exist: tuple[bool, float] = (False, -math.inf)

    @staticmethod
    def client(request: Request) -> str:
        """The client a lockout applies to: the peer address."""
        return request.client.host if request.client else "unknown"

    def require(self, client: str, token: str | None, needed: str, action: str, model: str | None) -> TokenRecord:
        """:func:`modelpilot.auth.require` with failures counted per client (blocking)."""
        def sink(kind: str, reason: str, actor: str) -> None:
            self.guard.failure(client, kind=kind, reason=reason, action=action, actor=actor, model=model)

        return auth.require(self.store, token, needed, action=action, model=model, on_failure=sink)

    async def authorize(self, request: Request, needed: str, action: str, model: str | None = None) -> TokenRecord:
        """The bearer token's record if its role allows ``needed``.

        Raises:
            TooManyAttempts: the client is locked out (429, ``Retry-After``).
            AuthError: no token, or an unknown or revoked one (401).
            Forbidden: the role is too low (403).
        """
        client = self.client(request)
        self.guard.check(client, action)
        token = auth.bearer(request.headers.get("authorization"))
        if token is not None:
            hit = self._passed.get(token)
            if hit is not None and hit[1] > time.monotonic() and auth.role_allows(hit[0].role, needed):
                return hit[0]
        record = await run_in_threadpool(self.require, client, token, needed, action, model)
        if token is not None:
            if len(self._passed) > 10_000:
                self._passed.clear()
            self._passed[token] = (record, time.monotonic() + TOKEN_TTL)
        return record

    async def tokens_exist(self) -> bool:
        """Whether any active token exists (re-read at most every :data:`TOKEN_TTL` seconds)."""
        known, at = self._exist
        if time.monotonic() - at > TOKEN_TTL:
            known = await run_in_threadpool(auth.tokens_exist, self.store)
            self._exist = (known, time.monotonic())
        return known

    async def authorize_feedback(self, request: Request, model: str) -> TokenRecord | None:
        """The labeler who sends feedback, or None while feedback is open (no token yet)."""
        sc = self.cfg.serving
        if sc.require_token_for_predict or (sc.require_token_for_feedback and await self.tokens_exist()):
            return await self.authorize(request, "labeler", "feedback", model)
        return None

    def identify(self, request: Request) -> TokenRecord | None:
        """Who a dashboard request comes from: a bearer header or the session cookie (blocking).

        A wrong bearer token counts as a failed attempt; a locked-out client is refused.

        Raises:
            TooManyAttempts: the client is locked out.
        """
        if hasattr(request.state, "mp_user"):
            user: TokenRecord | None = request.state.mp_user
            return user
        client = self.client(request)
        token = auth.bearer(request.headers.get("authorization"))
        session = request.cookies.get(SESSION_COOKIE)
        if token is None and session is None:
            user = None
        else:
            try:
                self.guard.check(client, f"dashboard {request.url.path}"[:200])
            except TooManyAttempts:
                request.state.mp_user = None  # the error page renders as anonymous, counted once
                raise
            if token is not None:
                user = auth.authenticate(self.store, token)
                if user is None:
                    self.guard.failure(client, kind="auth_failed", reason=WRONG_TOKEN,
                                       action=f"dashboard {request.url.path}"[:200])
            else:
                user = session_user(self.store, session)
        request.state.mp_user = user
        return user

    def close(self) -> None:
        """Write the audit rows of every open window (the server is stopping)."""
        self.guard.flush(everything=True)


def _error_response(exc: ModelpilotError) -> Response:
    return Response(orjson.dumps(exc.to_dict()), status_code=exc.status_code, media_type="application/json",
                    headers=getattr(exc, "headers", None))


class ReadAccessMiddleware:
    """Every route but ``/healthz`` and the dashboard needs a viewer token (pure ASGI).

    Installed only with ``serving.require_token_for_predict``. Predict and feedback check
    their own (finer) roles in their handlers and pass through here.
    """

    def __init__(self, app: ASGIApp, *, access: RequestAuth, dashboard: str = "/ui") -> None:
        self.app, self.access, self.dashboard = app, access, dashboard

    def _open(self, path: str) -> bool:
        if path in ("/healthz", "/") or path == self.dashboard or path.startswith(self.dashboard + "/"):
            return True
        return path.startswith("/v1/models/") and path.endswith(("/predict", "/feedback"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._open(scope["path"]):
            await self.app(scope, receive, send)
            return
        try:
            await self.access.authorize(Request(scope), "viewer", f"read {scope['path']}"[:200])
        except ModelpilotError as exc:
            await _error_response(exc)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _origin_of(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{scheme.lower()}://{rest.split('/', 1)[0].lower()}" if sep else ""


def foreign_origin(request: Request, allowed: list[str] | tuple[str, ...] = ()) -> str | None:
    """The origin of a cross-site request to this server, or None when it is same-site.

    The ``Origin`` header decides (``null`` — a sandboxed page, a file — is foreign); without
    it the ``Referer``; without both, a browser's ``Sec-Fetch-Site: cross-site``. A request
    carrying none of them (curl, a script) is not a browser's cross-site request.
    """
    own = {f"{request.url.scheme}://{request.headers.get('host', '')}".lower(), *(a.lower().rstrip("/") for a in allowed)}
    origin = request.headers.get("origin")
    if origin is not None:
        return None if origin.lower().rstrip("/") in own else origin
    referer = request.headers.get("referer")
    if referer:
        return None if _origin_of(referer) in own else _origin_of(referer) or referer[:100]
    if request.headers.get("sec-fetch-site") == "cross-site":
        return "a cross-site page"
    return None
