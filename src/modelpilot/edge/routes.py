"""The edge endpoints of the server: device reports in, bundles out.

* ``POST /v1/edge/{device}/report`` — one aggregate report, with the device's own token.
  200 ``{"accepted": true, "seq", "id"}``; a sequence number stored before is answered 200
  ``{"duplicate": true}`` and counted, so a device replaying its outbox after an outage
  never double-counts. A malformed report is a 422 naming the problem (counted on the
  device); an unknown device a 404.
* ``GET /v1/edge/{device}/bundle`` — the signed bundle the device should run
  (:func:`modelpilot.edge.fleet.desired_version`), with ``ETag``; ``If-None-Match`` with the
  current ETag answers 304 and no body.
* ``GET /v1/edge/devices`` — the fleet (viewer token when the server is closed).

The server only hands out bundles published beforehand (``modelpilot edge export --publish``
or the fleet loop); it never converts a model.
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from modelpilot import auth
from modelpilot.edge.bundle import published_bundle
from modelpilot.edge.fleet import desired_version, ingest
from modelpilot.edge.home import MalformedReport
from modelpilot.serving.schema import loads

#: a report holds counts only: a few kilobytes for hundreds of features
MAX_REPORT_BYTES = 4_000_000


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json", headers=headers)


def add_edge_routes(app: FastAPI, cfg: Any, store: Any, artifacts: Any, access: Any) -> None:
    """Mount the edge endpoints on ``app`` (``access``: the app's :class:`RequestAuth`)."""
    from modelpilot.serving.app import _guard

    async def device_token(request: Request, device: str) -> None:
        client = access.client(request)
        action = f"edge device {device}"
        access.guard.check(client, action)

        def sink(kind: str, reason: str, actor: str) -> None:
            access.guard.failure(client, kind=kind, reason=reason, action=action, actor=actor)

        token = auth.bearer(request.headers.get("authorization"))
        await run_in_threadpool(auth.require_device, store, token, device, on_failure=sink)

    @app.post("/v1/edge/{device}/report", tags=["edge"], summary="An edge device's aggregate report")
    @_guard
    async def report(device: str, request: Request) -> Response:
        wire = await request.body()
        await device_token(request, device)
        try:
            body = _inflate(wire) if request.headers.get("content-encoding", "").lower() == "gzip" else wire
            doc = loads(body)
        except Exception as exc:
            await run_in_threadpool(store.update_device_info, device, {"+": {"refused": 1}})
            raise MalformedReport(f"the report from {device!r} cannot be read (JSON, optionally gzip): {exc}") from None
        result = await run_in_threadpool(ingest, cfg, store, artifacts, device, doc, len(wire))
        return _json(result)

    @app.get("/v1/edge/{device}/bundle", tags=["edge"], summary="The signed bundle a device should run")
    @_guard
    async def bundle(device: str, request: Request) -> Response:
        await device_token(request, device)

        def find() -> tuple[bytes | None, str, int]:
            rec = store.get_device(device)
            version = desired_version(store, rec)
            from modelpilot.edge.bundle import published

            entry = published(store, rec.model, version)
            etag = entry["etag"] if entry else ""
            if entry and request.headers.get("if-none-match", "").strip('" ') == etag:
                return None, etag, version
            data, etag = published_bundle(store, artifacts, rec.model, version)
            return data, etag, version

        data, etag, version = await run_in_threadpool(find)
        headers = {"ETag": f'"{etag}"', "X-Model-Version": str(version)}
        if data is None:
            return Response(status_code=304, headers=headers)
        return Response(data, media_type="application/zip", headers=headers)

    @app.get("/v1/edge/devices", tags=["edge"], summary="The fleet: devices, versions, last reports, drift")
    @_guard
    async def devices(request: Request) -> Response:
        if cfg.serving.require_token_for_predict:
            await access.authorize(request, "viewer", "list edge devices")
        rows = await run_in_threadpool(fleet_rows, store, cfg.model.name)
        return _json({"devices": rows})


def _inflate(data: bytes) -> bytes:
    """A gzip body, refused when it inflates past :data:`MAX_REPORT_BYTES` (a zip bomb)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = inflater.decompress(data, MAX_REPORT_BYTES)
    if inflater.unconsumed_tail:
        raise MalformedReport(f"the report inflates past {MAX_REPORT_BYTES:,} bytes; a report holds counts only")
    return out


def fleet_rows(store: Any, model: str | None = None) -> list[dict[str, Any]]:
    """One plain row per device: version, pin, last report, counters, drift verdict."""
    out = []
    for d in store.list_devices(model):
        drift = d.info.get("drift") or {}
        out.append({
            "device": d.device, "model": d.model, "version": d.version, "pinned_version": d.pinned_version,
            "last_seq": d.last_seq, "last_report_at": d.last_report_at.isoformat() if d.last_report_at else None,
            "reports": int(d.info.get("reports", 0)), "duplicates": int(d.info.get("duplicates", 0)),
            "refused": int(d.info.get("refused", 0)), "bundle_refused": int(d.info.get("bundle_refused", 0)),
            "rows": int(d.info.get("rows", 0)), "bytes_sent": int(d.info.get("bytes", 0)),
            "flagged": bool(drift.get("flagged")), "drift_share": drift.get("drift_share"),
            "drifted_features": drift.get("drifted_features") or [],
        })
    return out
