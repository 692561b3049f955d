"""The dashboard's routes: server-rendered pages under ``/ui`` and the two actions.

Pages are plain ``def`` handlers (FastAPI runs them in its threadpool, so store reads never
block the event loop). The state-changing routes are the forms — log in, log out, approve,
reject — and every one of them is refused with a 403, changing nothing, when it comes from
another site: its ``Origin`` (or ``Referer``) must be this server's (or one of
``serving.allowed_origins``), and it must carry the page's form token (CSRF). Approve and
reject also need an operator: the session of a login (the cookie holds a random session
id, never the token; see :mod:`modelpilot.auth.sessions`) or an ``Authorization: Bearer``
header (then no form token is needed: a browser never adds that header to another site's
form). With ``serving.require_token_for_predict`` every page needs a login (401 and the
login form otherwise); the static files stay open. Wrong tokens count towards the
per-client lockout (:mod:`modelpilot.auth.guard`).
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from modelpilot.artifacts._keys import check_key
from modelpilot.auth import authenticate, bearer, role_allows
from modelpilot.auth.guard import WRONG_TOKEN
from modelpilot.auth.http import SESSION_COOKIE, RequestAuth, foreign_origin
from modelpilot.auth.sessions import (
    create_session,
    csrf_for_session,
    end_session,
    same,
    session_user,
)
from modelpilot.errors import ArtifactError, AuthError, Forbidden, ModelpilotError, NotFound
from modelpilot.serving.control import Version
from modelpilot.ui import pages, queries
from modelpilot.ui.review import decide

if TYPE_CHECKING:
    from modelpilot.artifacts import ArtifactStore
    from modelpilot.config import PilotConfig
    from modelpilot.store import Store, TokenRecord

log = logging.getLogger(__name__)
PREFIX = "/ui"
COOKIE = SESSION_COOKIE
CSRF_COOKIE = "modelpilot_csrf"
CSRF_FIELD = "csrf"
_HERE = Path(__file__).parent
_STATIC = {"ui.css": "text/css", "ui.js": "text/javascript"}


def _plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["num"] = _num
    env.filters["short"] = lambda s, n=12: "—" if s is None else str(s)[:n]
    env.filters["q"] = lambda s: quote(str(s), safe="")
    return env


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:,.{digits}f}"


def valid_key(key: str) -> bool:
    """True when ``key`` is a key the artifact store accepts (no '..', '//', backslash...)."""
    try:
        check_key(key)
    except ArtifactError:
        return False
    return True


def ui_router(cfg: PilotConfig, store: Store, artifacts: ArtifactStore, *, prefix: str = PREFIX,
              access: RequestAuth | None = None) -> APIRouter:
    """The dashboard as a router; ``app.include_router(ui_router(cfg, store, artifacts))``.

    Args:
        cfg: the config (thresholds, costs, the backtest folder, the token rules).
        store: the metadata store every page reads.
        artifacts: the artifact store (prediction log, monitoring details, backtest reports).
        prefix: where the pages live.
        access: the app's :class:`~modelpilot.auth.http.RequestAuth` (one is made when None),
            so a lockout applies to the API and the dashboard alike.

    Returns:
        An :class:`~fastapi.APIRouter` with the pages, the static files and the actions.
    """
    env = _environment()
    router = APIRouter(prefix=prefix, include_in_schema=False)
    access = access or RequestAuth(store, cfg)
    sc = cfg.serving
    secure = {"httponly": True, "samesite": "strict", "path": prefix}

    def csrf_expected(request: Request) -> str | None:
        """The form token this browser must post: from its session, or its pre-login cookie."""
        session = request.cookies.get(COOKIE)
        if session and access.identify(request) is not None and not bearer(request.headers.get("authorization")):
            return csrf_for_session(session)
        return request.cookies.get(CSRF_COOKIE)

    def render(request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        user = access.identify(request)
        token = csrf_expected(request)
        fresh = None if token else secrets.token_urlsafe(32)
        page = env.get_template(template).render(
            prefix=prefix, user=user, can_operate=bool(user and role_allows(user.role, "operator")),
            path=request.url.path, csrf=token or fresh, **ctx,
            # a closed server names no model to a visitor without a login
            all_models=store.list_models() if user or not sc.require_token_for_predict else [],
        )
        response = HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})
        if fresh:
            response.set_cookie(CSRF_COOKIE, fresh, secure=request.url.scheme == "https", **secure)  # type: ignore[arg-type]
        return response

    def page(handler: Callable[..., Response], *, open_: bool = False) -> Callable[..., Response]:
        """Render a user error (unknown model, bad token...) as an HTML page with its status.

        With ``serving.require_token_for_predict`` a page without a login is the login form
        with a 401 (nothing of the project is shown); ``open_`` pages (the login form, the
        form posts, which check for themselves) are exempt.
        """

        @functools.wraps(handler)
        def wrapped(request: Request, *args: Any, **kwargs: Any) -> Response:
            try:
                if sc.require_token_for_predict and not open_ and access.identify(request) is None:
                    return render(request, "login.html", status=401, title="Log in", next=_safe_next(
                        request.url.path, prefix), error="this server needs a token to show its data: log in")
                return handler(request, *args, **kwargs)
            except ModelpilotError as exc:
                response = render(request, "error.html", status=exc.status_code, title=exc.type_name, message=str(exc))
                response.headers.update(getattr(exc, "headers", None) or {})
                return response

        return wrapped

    def check_form(request: Request, form: dict[str, str], *, needs_token: bool = True) -> None:
        """Refuse a form posted from another site, or without this page's form token.

        Raises:
            Forbidden: a foreign origin, or a missing or wrong form token (403).
        """
        client = access.client(request)
        origin = foreign_origin(request, sc.allowed_origins)
        if origin is not None:
            access.guard.failure(client, kind="auth_forbidden", reason="form from a foreign origin",
                                 action=f"POST {request.url.path}"[:200])
            raise Forbidden(f"a form posted from {origin[:100]} to this dashboard is refused: only its own pages "
                            "may post (add the origin to serving.allowed_origins if it is yours)")
        if needs_token and not same(form.get(CSRF_FIELD), csrf_expected(request)):
            access.guard.failure(client, kind="auth_forbidden", reason="missing or wrong form token",
                                 action=f"POST {request.url.path}"[:200])
            raise Forbidden("the form's token is missing or out of date: reload the page and submit it again")

    # ------------------------------------------------------------------ static files

    @router.get("/static/plotly.min.js")
    def plotly_js() -> Response:
        return FileResponse(_plotly_js(), media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})

    @router.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in _STATIC:
            raise NotFound(f"no static file {name!r}")
        return FileResponse(_HERE / "static" / name, media_type=_STATIC[name],
                            headers={"Cache-Control": "public, max-age=3600"})

    # ------------------------------------------------------------------ pages

    @router.get("", response_class=HTMLResponse)
    @router.get("/", response_class=HTMLResponse)
    @page
    def overview(request: Request) -> Response:
        return render(request, "overview.html", title="Overview", **pages.overview(cfg, store))

    @router.get("/models/{name}", response_class=HTMLResponse)
    @page
    def model(request: Request, name: str) -> Response:
        return render(request, "model.html", title=name, done=request.query_params.get("done"),
                      **pages.model(cfg, store, name))

    @router.get("/models/{name}/monitoring", response_class=HTMLResponse)
    @page
    def monitoring(request: Request, name: str, range: str = "all") -> Response:  # noqa: A002
        return render(request, "monitoring.html", title=f"{name} · monitoring",
                      **pages.monitoring(cfg, store, artifacts, name, range))

    @router.get("/monitoring", response_class=HTMLResponse)
    @page
    def monitoring_default(request: Request) -> Response:
        return first_model_page(request, "monitoring")

    @router.get("/models/{name}/cost", response_class=HTMLResponse)
    @page
    def cost(request: Request, name: str) -> Response:
        return render(request, "cost.html", title=f"{name} · cost", **pages.cost(cfg, store, name))

    @router.get("/cost", response_class=HTMLResponse)
    @page
    def cost_default(request: Request) -> Response:
        return first_model_page(request, "cost")

    def first_model_page(request: Request, page_name: str) -> Response:
        """The first model's page, or the overview (with its empty state) when there is none."""
        names = store.list_models()
        if names:
            return RedirectResponse(f"{prefix}/models/{quote(names[0], safe='')}/{page_name}", status_code=307)
        return render(request, "overview.html", title="Overview", **pages.overview(cfg, store))

    @router.get("/devices", response_class=HTMLResponse)
    @page
    def devices(request: Request) -> Response:
        from modelpilot.edge.fleet import ROLLOUT, device_costs
        from modelpilot.edge.routes import fleet_rows

        model = cfg.model.name
        costs = {c["device"]: c for c in device_costs(cfg, store, model)}
        return render(request, "devices.html", title="Devices", model=model, rows=fleet_rows(store, model),
                      costs=costs, rollout=store.get_state(ROLLOUT, model), currency=cfg.costs.currency)

    @router.get("/runs", response_class=HTMLResponse)
    @page
    def runs(request: Request, model: str = "", kind: str = "") -> Response:
        return render(request, "runs.html", title="Runs", **pages.runs(store, model=model, kind=kind))

    @router.get("/runs/compare", response_class=HTMLResponse)
    @page
    def run_compare(request: Request, a: str, b: str) -> Response:
        return render(request, "run_compare.html", title=f"runs {a} and {b}", **pages.run_compare(store, a, b))

    @router.get("/runs/{run_id}", response_class=HTMLResponse)
    @page
    def run(request: Request, run_id: int) -> Response:
        return render(request, "run.html", title=f"run {run_id}", **pages.run(store, run_id))

    @router.get("/events", response_class=HTMLResponse)
    @page
    def events(request: Request, model: str = "", kind: str = "", since: str = "", until: str = "",
               limit: int = 200) -> Response:
        ctx = pages.events(store, model=model, kind=kind, since=queries.parse_time(since),
                           until=queries.parse_time(until), limit=max(1, min(limit, 2000)))
        return render(request, "events.html", title="Events", **ctx)

    @router.get("/backtests", response_class=HTMLResponse)
    @page
    def backtests(request: Request) -> Response:
        return render(request, "backtests.html", title="Backtests", **pages.backtests(cfg, artifacts))

    # a report is a standalone page: sandboxed, so its scripts never see the login cookie
    sandbox = {"Content-Security-Policy": "sandbox allow-scripts", "X-Content-Type-Options": "nosniff"}

    @router.get("/backtests/artifact/{key:path}")
    @page
    def backtest_artifact(request: Request, key: str) -> Response:
        if not valid_key(pages.BACKTEST_PREFIX + key):  # '..', '//', '\\': no such report
            raise NotFound(f"no backtest report {key!r} in the artifact store")
        data = artifacts.read_named(pages.BACKTEST_PREFIX + key)
        return HTMLResponse(data.decode("utf-8", "replace"), headers=sandbox)

    @router.get("/backtests/file/{name}")
    @page
    def backtest_file(request: Request, name: str) -> Response:
        path = pages.backtest_file(cfg, name)
        if path is None:
            raise NotFound(f"no backtest report {name!r} in {cfg.resolve_path('backtests')}")
        return FileResponse(path, media_type="text/html", headers=sandbox)

    # ------------------------------------------------------------------ login and actions

    @router.get("/login", response_class=HTMLResponse)
    @functools.partial(page, open_=True)
    def login_form(request: Request, next: str = "") -> Response:  # noqa: A002
        return render(request, "login.html", title="Log in", error=None, next=_safe_next(next, prefix))

    @router.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        form = await _form(request)
        return await _threaded(page(lambda req: _login(req, form), open_=True), request)

    def _login(request: Request, form: dict[str, str]) -> Response:
        check_form(request, form)
        client = access.client(request)
        target = _safe_next(form.get("next", ""), prefix)
        access.guard.check(client, "dashboard login")
        record = authenticate(store, form.get("token", "").strip())
        if record is None:
            access.guard.failure(client, kind="auth_failed", reason=WRONG_TOKEN, action="dashboard login")
            return render(request, "login.html", status=401, title="Log in", next=target,
                          error="unknown or revoked token: create one with 'modelpilot token create --role operator'")
        end_session(store, request.cookies.get(COOKIE))
        session = create_session(store, record, sc.session_ttl)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, session, secure=request.url.scheme == "https", max_age=int(sc.session_ttl),
                            **secure)  # type: ignore[arg-type]
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        form = await _form(request)
        return await _threaded(page(lambda req: _logout(req, form), open_=True), request)

    def _logout(request: Request, form: dict[str, str]) -> Response:
        check_form(request, form)
        end_session(store, request.cookies.get(COOKIE))
        response = RedirectResponse(f"{prefix}/", status_code=303)
        response.delete_cookie(COOKIE, **secure)  # type: ignore[arg-type]
        return response

    def _decide(request: Request, name: str, version: int, approved: bool, form: dict[str, str]) -> Response:
        verb = "approve" if approved else "reject"
        action = f"{verb} {name} v{version}"
        token = bearer(request.headers.get("authorization"))
        check_form(request, form, needs_token=token is None)
        client = access.client(request)
        user: TokenRecord | None
        if token is not None:
            user = access.require(client, token, "operator", action, name)
        else:
            access.guard.check(client, action)
            user = session_user(store, request.cookies.get(COOKIE))
            if user is None:
                access.guard.failure(client, kind="auth_failed", reason="missing token", action=action, model=name)
                raise AuthError(f"{action} needs an operator token: log in at {prefix}/login "
                                "(create one with 'modelpilot token create --role operator')")
            if not role_allows(user.role, "operator"):
                access.guard.failure(client, kind="auth_forbidden", reason=f"role {user.role} may not {action}",
                                     action=action, actor=user.name, model=name)
                raise Forbidden(f"token '{user.name}' has role {user.role}; {action} needs operator or higher")
        comment = form.get("comment")
        decide(store, cfg, name, version, approved=approved, actor=user.name, comment=comment or None,
               artifacts=artifacts)
        return RedirectResponse(f"{prefix}/models/{quote(name, safe='')}?done={verb}d-v{version}", status_code=303)

    @router.post("/models/{name}/versions/{version}/approve")
    async def approve(request: Request, name: str, version: Version) -> Response:
        form = await _form(request)
        return await _threaded(page(lambda req: _decide(req, name, version, True, form), open_=True), request)

    @router.post("/models/{name}/versions/{version}/reject")
    async def reject(request: Request, name: str, version: Version) -> Response:
        form = await _form(request)
        return await _threaded(page(lambda req: _decide(req, name, version, False, form), open_=True), request)

    return router


async def _threaded(fn: Callable[[Request], Response], request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, request)


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form body (the only kind the pages post), last value per field."""
    body = (await request.body())[:65536].decode("utf-8", "replace")
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


def _safe_next(target: str, prefix: str) -> str:
    """Only redirect inside the dashboard (no open redirect to another site)."""
    if target.startswith(prefix) and not target.startswith("//") and "\\" not in target:
        return target
    return f"{prefix}/"
