"""The operator endpoints: approve, reject, promote, roll back (operator token required).

Each handler checks the ``Authorization: Bearer <token>`` header first — a missing or
unknown token is a 401, a role below ``operator`` a 403, both logged as events without
the token and neither changes anything — then calls the same function the CLI calls
(:mod:`modelpilot.rollout.review`), with the token's name as the actor, and refreshes the
model cache so the next request already sees the change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, Path, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from modelpilot.errors import ModelNotFound, RequestError
from modelpilot.serving.cache import ModelCache
from modelpilot.serving.schema import MalformedRequest, loads

#: a version number in a URL: the store keeps 64-bit integers, so larger ones are a 422
Version = Annotated[int, Path(ge=1, le=2**63 - 1, description="the model version number")]


def _body(raw: bytes, allowed: set[str]) -> dict[str, Any]:
    if not raw.strip():
        return {}
    doc = loads(raw)
    if not isinstance(doc, dict):
        raise MalformedRequest(f"the body must be a JSON object with {sorted(allowed)}")
    extra = doc.keys() - allowed
    if extra:
        raise RequestError(f"unknown field(s) {sorted(extra)}: send only {sorted(allowed)}")
    for key in allowed - {"version", "force"}:  # the typed fields are checked by their route
        if doc.get(key) is not None and not isinstance(doc[key], str):
            raise RequestError(f"'{key}' must be a string")
    return doc


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def add_control_routes(
    app: FastAPI, cfg: Any, store: Any, artifacts: Any, cache: ModelCache,
    authorize: Callable[..., Awaitable[Any]],
) -> None:
    """Mount the operator endpoints on ``app``."""
    from modelpilot.rollout import review
    from modelpilot.serving.app import _guard

    async def operator(request: Request, action: str, name: str) -> str:
        record = await authorize(request, "operator", action, name)
        return str(record.name)

    def known(name: str) -> None:
        if name not in store.list_models():
            raise ModelNotFound(f"no model named {name!r}: 'modelpilot status' lists the models")

    async def done(result: dict[str, Any]) -> Response:
        await run_in_threadpool(cache.refresh)
        if getattr(app.state, "webhooks", None) is not None:  # the decision's events go out now
            app.state.webhooks.kick()
        return _json(result)

    @app.post("/v1/models/{name}/versions/{version}/approve", tags=["operator"],
              summary="Approve a candidate awaiting approval (operator token)")
    @_guard
    async def approve(name: str, version: Version, request: Request) -> Response:
        actor = await operator(request, "approve", name)
        body = _body(await request.body(), {"comment"})
        known(name)
        decision = await run_in_threadpool(
            lambda: review.approve(store, cfg, name, version, actor, body.get("comment"), artifacts=artifacts)
        )
        return await done({"model": name, "version": version, "approved": True, "by": actor,
                           "rollout": decision.status, "reason": decision.reason})

    @app.post("/v1/models/{name}/versions/{version}/reject", tags=["operator"],
              summary="Reject a candidate awaiting approval (operator token)")
    @_guard
    async def reject(name: str, version: Version, request: Request) -> Response:
        actor = await operator(request, "reject", name)
        body = _body(await request.body(), {"comment"})
        known(name)
        await run_in_threadpool(review.reject, store, name, version, actor, body.get("comment"))
        return await done({"model": name, "version": version, "approved": False, "by": actor})

    @app.post("/v1/models/{name}/promote", tags=["operator"],
              summary="Make a version the champion now (operator token)")
    @_guard
    async def promote(name: str, request: Request) -> Response:
        actor = await operator(request, "promote", name)
        body = _body(await request.body(), {"version", "reason", "force"})
        version = body.get("version")
        if type(version) is not int or not 1 <= version < 2**63:
            raise RequestError('send {"version": N, "reason": "..."}: the version to promote, as an integer')
        force = body.get("force", False)
        if type(force) is not bool:
            raise RequestError('"force" must be true or false: true promotes a rejected version')
        known(name)
        result = await run_in_threadpool(
            lambda: review.promote_manual(store, name, version, actor, body.get("reason") or "",
                                          artifacts=artifacts, force=force))
        return await done(result)

    @app.post("/v1/models/{name}/rollback", tags=["operator"],
              summary="Stop the rollout, or restore the previous champion (operator token)")
    @_guard
    async def rollback(name: str, request: Request) -> Response:
        actor = await operator(request, "rollback", name)
        body = _body(await request.body(), {"reason"})
        known(name)
        result = await run_in_threadpool(review.rollback, store, name, actor, body.get("reason") or "")
        return await done(result)
