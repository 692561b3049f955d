"""The dashboard's routes: server-rendered pages under ``/ui`` and the two actions.

Pages are plain ``def`` handlers (FastAPI runs them in its threadpool, so store reads never
block the event loop). The only state-changing routes are ``approve`` and ``reject``; they
take the operator token from the login cookie (HttpOnly, SameSite=Strict, so another site
cannot post with it) or an ``Authorization: Bearer`` header, and refuse with 401/403 —
changing nothing — without one.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from modelpilot.artifacts._keys import check_key
from modelpilot.auth import authenticate, bearer, require, role_allows
from modelpilot.errors import ArtifactError, ModelpilotError, NotFound
from modelpilot.serving.control import Version
from modelpilot.ui import pages, queries
from modelpilot.ui.review import decide

if TYPE_CHECKING:
    from modelpilot.artifacts import ArtifactStore
    from modelpilot.config import PilotConfig
    from modelpilot.store import Store

log = logging.getLogger(__name__)
PREFIX = "/ui"
COOKIE = "modelpilot_token"
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


def ui_router(cfg: PilotConfig, store: Store, artifacts: ArtifactStore, *, prefix: str = PREFIX) -> APIRouter:
    """The dashboard as a router; ``app.include_router(ui_router(cfg, store, artifacts))``.

    Args:
        cfg: the config (thresholds, costs, the backtest folder).
        store: the metadata store every page reads.
        artifacts: the artifact store (prediction log, monitoring details, backtest reports).
        prefix: where the pages live.

    Returns:
        An :class:`~fastapi.APIRouter` with the pages, the static files and the actions.
    """
    env = _environment()
    router = APIRouter(prefix=prefix, include_in_schema=False)

    def viewer(request: Request) -> Any:
        token = request.cookies.get(COOKIE) or bearer(request.headers.get("authorization"))
        return authenticate(store, token) if token else None

    def render(request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        user = viewer(request)
        page = env.get_template(template).render(
            prefix=prefix, user=user, can_operate=bool(user and role_allows(user.role, "operator")),
            path=request.url.path, all_models=store.list_models(), **ctx,
        )
        return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})

    def page(handler: Callable[..., Response]) -> Callable[..., Response]:
        """Render a user error (unknown model, bad token...) as an HTML page with its status."""

        @functools.wraps(handler)
        def wrapped(request: Request, *args: Any, **kwargs: Any) -> Response:
            try:
                return handler(request, *args, **kwargs)
            except ModelpilotError as exc:
                return render(request, "error.html", status=exc.status_code, title=exc.type_name, message=str(exc))

        return wrapped

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
    @page
    def login_form(request: Request, next: str = "") -> Response:  # noqa: A002
        return render(request, "login.html", title="Log in", error=None, next=_safe_next(next, prefix))

    @router.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        form = await _form(request)
        token = form.get("token", "").strip()
        target = _safe_next(form.get("next", ""), prefix)
        record = authenticate(store, token)
        if record is None:
            return render(request, "login.html", status=401, title="Log in", next=target,
                          error="unknown or revoked token: create one with 'modelpilot token create --role operator'")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path=prefix,
                            secure=request.url.scheme == "https", max_age=12 * 3600)
        return response

    @router.post("/logout")
    def logout() -> Response:
        response = RedirectResponse(f"{prefix}/", status_code=303)
        response.delete_cookie(COOKIE, path=prefix, httponly=True, samesite="strict")
        return response

    def _decide(request: Request, name: str, version: int, approved: bool, comment: str | None) -> Response:
        token = request.cookies.get(COOKIE) or bearer(request.headers.get("authorization"))
        verb = "approve" if approved else "reject"
        user = require(store, token, "operator", action=f"{verb} {name} v{version}", model=name)
        decide(store, cfg, name, version, approved=approved, actor=user.name, comment=comment or None,
               artifacts=artifacts)
        return RedirectResponse(f"{prefix}/models/{quote(name, safe='')}?done={verb}d-v{version}", status_code=303)

    @router.post("/models/{name}/versions/{version}/approve")
    async def approve(request: Request, name: str, version: Version) -> Response:
        comment = (await _form(request)).get("comment")
        return await _threaded(page(lambda req: _decide(req, name, version, True, comment)), request)

    @router.post("/models/{name}/versions/{version}/reject")
    async def reject(request: Request, name: str, version: Version) -> Response:
        comment = (await _form(request)).get("comment")
        return await _threaded(page(lambda req: _decide(req, name, version, False, comment)), request)

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
