"""The prediction server: predict, feedback, model info, health and Prometheus metrics.

Handlers parse, call and serialise. The predict path reads the raw body, validates it
against the served version's signature straight into NumPy columns (``schema.py``),
builds ONE DataFrame, predicts, answers with orjson, and hands the rows to the log
writer's queue — no IO and no pydantic on the response path. The model cache and the log
writer live in the app's lifespan: started on startup, and on shutdown the writer drains
and writes every logged row.

Errors: one handler maps every :class:`ModelpilotError` to its status and
``{"error": {"type", "message"}}``; anything unexpected is a 500 whose body says nothing
about the cause (the traceback goes to the server log). Each error is counted in
``/metrics``.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelpilot.auth.http import ReadAccessMiddleware, RequestAuth
from modelpilot.config import PilotConfig
from modelpilot.data.online import FeatureTable, enrich_body
from modelpilot.errors import ModelNotFound, ModelpilotError, NotFound, RequestError
from modelpilot.serving import docs
from modelpilot.serving.cache import FaultInjector, LoadedModel, ModelCache
from modelpilot.serving.champion_metrics import ChampionCollector
from modelpilot.serving.explain import TRUE as EXPLAIN_TRUE
from modelpilot.serving.explain import Explainer
from modelpilot.serving.feedback import FeedbackDesk
from modelpilot.serving.isolation import BatchLane, ProcessLane
from modelpilot.serving.labels import LabelDomain
from modelpilot.serving.limits import BodyLimitMiddleware
from modelpilot.serving.metrics import CONTENT_TYPE_LATEST, ServingMetrics
from modelpilot.serving.predlog import (
    FeedbackBatch,
    PredictionBatch,
    PredictionLogReader,
    PredictionLogWriter,
    now_us,
)
from modelpilot.serving.retired import RetiredShadow
from modelpilot.serving.routing import ShadowScorer, answer, error_batch
from modelpilot.serving.schema import (
    MalformedRequest,
    ParsedRequest,
    finite_or_none,
    loads,
    new_ids,
    parse_ids,
)
from modelpilot.serving.uncertainty import Uncertainty

if TYPE_CHECKING:
    from modelpilot.artifacts import ArtifactStore

log = logging.getLogger(__name__)

ExtraLifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
_JSON = "application/json"
_NUMPY = orjson.OPT_SERIALIZE_NUMPY
# Predict in the threadpool (True) or on the event loop (False). Measured with
# benchmarks/bench_serving.py: see docs/serving.md for the figures behind the choice.
PREDICT_IN_THREADPOOL = False


class RecentIds:
    """The ids of the most recent predictions (bounded), to check feedback without IO.

    Only touched from the event loop thread, so it needs no lock.
    """

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._ids: set[str] = set()
        self._batches: deque[list[str]] = deque()
        self._size = 0

    def add(self, ids: list[str]) -> None:
        self._batches.append(ids)
        self._ids.update(ids)
        self._size += len(ids)
        while self._size > self.capacity and len(self._batches) > 1:
            old = self._batches.popleft()
            self._size -= len(old)
            self._ids.difference_update(old)

    def __contains__(self, item: object) -> bool:
        return item in self._ids


class InternalError(ModelpilotError):
    """An unexpected failure; the message is generic on purpose (details go to the log)."""

    status_code = 500


_INTERNAL = "internal server error; the server log has the details"
Handler = TypeVar("Handler", bound=Callable[..., Awaitable[Response]])


def _guard(handler: Handler) -> Handler:
    """Turn an unexpected exception into :class:`InternalError` inside the route.

    Starlette's catch-all handler answers a 500 but then re-raises, and uvicorn closes the
    connection; raising a ModelpilotError instead keeps the connection and the server clean.
    """

    @functools.wraps(handler)
    async def guarded(*args: Any, **kwargs: Any) -> Response:
        try:
            return await handler(*args, **kwargs)
        except (ModelpilotError, StarletteHTTPException):
            raise
        except Exception as exc:
            log.exception("unexpected error in %s", handler.__name__)
            raise InternalError(_INTERNAL) from exc

    return guarded  # type: ignore[return-value]


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload, option=_NUMPY), status_code=status, media_type=_JSON)


def create_app(
    cfg: PilotConfig,
    store: Any,
    artifacts: ArtifactStore,
    *,
    extra_lifespan: ExtraLifespan | None = None,
    replica_id: str | None = None,
    fault_injector: FaultInjector | None = None,
) -> FastAPI:
    """Build the ASGI app serving every model of ``store``'s champion aliases.

    Args:
        cfg: the config (``serving`` section: limits, log flushing, refresh interval).
        store: the metadata store (aliases and versions are read from it).
        artifacts: the artifact store holding the model files and the prediction log.
        extra_lifespan: an async context manager factory entered inside the server's own
            lifespan (e.g. to run the controller or mount the UI's resources).
        replica_id: names this replica's log segments (random by default).
        fault_injector: a testing aid passed to the model cache (see ``cache.py``): makes
            a served model raise, stall or return garbage. Never set it in production.

    Returns:
        The FastAPI app; its state holds ``cache``, ``writer``, ``metrics`` and ``recent``.
    """
    sc = cfg.serving
    metrics = ServingMetrics()
    metrics.registry.register(ChampionCollector(store))  # the champions' stored performance

    def on_swap(name: str, old: int | None, new: int) -> None:
        metrics.model_version.labels(name).set(new)
        served = cache.get(name)
        if served is not None:
            metrics.set_runtime(name, served.runtime)
        if old is not None:
            metrics.swaps.labels(name).inc()

    cache = ModelCache(store, artifacts, refresh_interval=sc.refresh_interval, on_swap=on_swap,
                       fault_injector=fault_injector)
    writer = PredictionLogWriter(
        artifacts, flush_rows=sc.log_flush_rows, flush_interval=sc.log_flush_interval,
        replica_id=replica_id,
        on_written=lambda model, kind, rows: metrics.logged_rows.labels(model, kind).inc(rows),
        on_error=lambda exc: metrics.log_write_errors.inc(),
        on_quarantine=lambda model, kind, rows, reason, key: _quarantined(
            store, metrics, model, kind, rows, reason, key),
    )
    metrics.log_pending_rows.set_function(lambda: float(writer.pending_rows))
    recent = RecentIds()
    desk = FeedbackDesk(
        artifacts, writer,
        hold=sc.feedback_hold if sc.feedback_hold is not None else 2 * sc.log_flush_interval + 30,
        poll=max(0.1, min(1.0, sc.log_flush_interval / 5)),
        on_resolved=lambda model, rows: metrics.feedback_rows.labels(model, "resolved").inc(rows),
        on_dropped=lambda model, rows: metrics.feedback_rows.labels(model, "dropped").inc(rows),
    )
    readers: dict[str, PredictionLogReader] = {}
    retired = RetiredShadow(store, cache, writer, cfg.costs.counterfactual, refresh_interval=sc.refresh_interval)
    shadow = ShadowScorer(cache, writer, retired=retired)
    key_field = cfg.rollout.key_field
    online = FeatureTable.of(cfg)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        writer.start()
        shadow.start()
        await run_in_threadpool(cache.load_all)
        cache.start()
        try:
            if extra_lifespan is None:
                yield
            else:
                async with extra_lifespan(app):
                    yield
        finally:
            cache.stop()
            if app.state.webhooks is not None:
                await run_in_threadpool(app.state.webhooks.join, 5.0)
            await run_in_threadpool(access.close)
            await run_in_threadpool(shadow.stop)
            await run_in_threadpool(lane.close)
            await run_in_threadpool(desk.close)  # held labels go to the writer before it drains
            await run_in_threadpool(writer.close)
            for reader in readers.values():
                reader.close()

    app = FastAPI(title="modelpilot", version="0.1.0", lifespan=lifespan)
    app.state.cache, app.state.writer, app.state.metrics = cache, writer, metrics
    app.state.recent, app.state.config, app.state.store = recent, cfg, store
    app.state.shadow, app.state.desk = shadow, desk
    app.state.webhooks = _webhooks(cfg, store)
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=sc.max_body_bytes,
        on_reject=lambda: metrics.count_error("PayloadTooLarge", 413),
    )
    _add_error_handlers(app, metrics, cache)
    access = app.state.auth = RequestAuth(store, cfg)  # tokens, sessions, lockouts (auth/http.py)
    if sc.require_token_for_predict:
        app.add_middleware(ReadAccessMiddleware, access=access)

    async def model_for(name: str) -> LoadedModel:
        model = cache.get(name)
        if model is None:
            model = await run_in_threadpool(cache.load, name)
        return model

    def reader_for(name: str) -> PredictionLogReader:
        if name not in readers:
            readers[name] = PredictionLogReader(artifacts, name)
        return readers[name]

    app.state.reader_for = reader_for

    def label_domain(name: str, model: LoadedModel) -> LabelDomain:
        """The labels the champion (and a challenger in a rollout) accepts."""
        domain = LabelDomain.of(model.record)
        rollout = cache.rollout(name)
        return domain if rollout is None else domain.union(LabelDomain.of(rollout.challenger.record))
    authorize = access.authorize

    lane = (ProcessLane(sc.batch_workers, sc.batch_queue, store_url=cfg.store_url,
                        artifacts_url=cfg.artifacts_url, options=cfg.artifacts.options,
                        replica_id=writer.replica_id)
            if sc.batch_lane == "process" else BatchLane(sc.batch_workers, sc.batch_queue))
    app.state.lane = lane

    explainer = Explainer(artifacts)
    uncertainty = Uncertainty(artifacts)

    def answer_plain(name: str, model: LoadedModel, parsed: ParsedRequest, ids: list[str],
                     start: float, explain: bool = False, bounds: bool = False) -> bytes:
        """Predict, serialise and log one request; runs on the loop or on a lane thread."""
        out = cache.predict(model, parsed.columns)
        labels = out.labels if out.labels.dtype.kind == "f" else out.labels.tolist()
        payload: dict[str, Any] = {"predictions": labels, "ids": ids, "model_version": model.version}
        if out.probabilities is not None:
            payload["probabilities"] = out.probabilities
        if explain:
            payload["explanations"] = explainer.rows(model, parsed.columns)
        if bounds:
            payload.update(uncertainty.answer(model, out))
        content = orjson.dumps(payload, option=_NUMPY)
        elapsed = time.perf_counter() - start
        writer.log_predictions(
            PredictionBatch(
                model=name, ids=ids, version=model.version, predictions=out.labels,
                scores=out.scores, probabilities=out.probabilities, features=parsed.columns,
                latency_ms=elapsed * 1000.0,
            )
        )
        metrics.observe_predict(name, model.version, elapsed)
        return content

    @app.post("/v1/models/{name}/predict", **docs.PREDICT)
    @_guard
    async def predict(name: str, request: Request) -> Response:
        start, started_mono = time.perf_counter(), time.monotonic()
        body = await request.body()
        if sc.require_token_for_predict:
            await authorize(request, "viewer", "predict", name)
        model = cache.get(name) or await model_for(name)
        if online is not None:  # instances may carry only an entity key (data/online.py)
            body = await run_in_threadpool(enrich_body, online, body, model.schema.names)
        rollout = cache.rollout(name)
        large = len(body) > sc.offload_bytes  # a large batch: off the event loop (isolation.py)

        def parse() -> tuple[ParsedRequest, list[str]]:
            parsed = model.schema.parse(body, max_instances=sc.max_instances)
            return parsed, parsed.ids if parsed.ids is not None else new_ids(parsed.n)

        explain = request.query_params.get("explain", "").lower() in EXPLAIN_TRUE
        bounds = request.query_params.get("intervals", "").lower() in EXPLAIN_TRUE
        if explain or bounds:
            # explained requests, and those asking for intervals or prediction sets, are
            # answered by the champion (never routed to a challenger: the calibration is the
            # champion's), off the event loop: up to (features + 1) x 4 predictions per row
            # for an explanation's walk
            if bounds:
                # a version without calibration: 422 before predicting (the first read may reach S3)
                await run_in_threadpool(uncertainty.conformal, model)
            parsed, ids = await run_in_threadpool(parse)
            content = await run_in_threadpool(answer_plain, name, model, parsed, ids, start, explain, bounds)
            recent.add(ids)
            return Response(content, media_type=_JSON)

        if rollout is not None and not rollout.state.shadow:
            parsed, ids = await lane.run(parse) if large else parse()
            return await _predict_routed(name, model, rollout, parsed.columns, ids, start)
        columns: dict[str, Any] | None
        sample: tuple[list[str], dict[str, Any]] | None = None  # the retired sample, from a lane process
        if large and isinstance(lane, ProcessLane):  # in another process: not even the GIL is shared
            # the lane process logs the rows itself unless a rollout's shadow needs every
            # column here; the retired champion's sample comes back alone (isolation.py)
            fraction = cfg.costs.counterfactual.fraction if retired.wanted(name, model.version) else 0.0
            got = await lane.predict(name, model.version, body, sc.max_instances,
                                     log_rows=sc.lane_log_rows if rollout is None else 0, started=started_mono,
                                     retired_fraction=fraction)
            ids, content = got.ids, got.content
            elapsed = time.perf_counter() - start
            if got.logged:
                metrics.logged_rows.labels(name, "predictions").inc(got.logged)
            for report in got.quarantined:
                await run_in_threadpool(_quarantined, store, metrics, *report)
            columns, sample = None, got.sample
            if got.rows is not None:  # not logged by the lane: the server's writer does it
                got.rows.latency_ms = elapsed * 1000.0
                writer.log_predictions(got.rows)
                columns = got.rows.features
            metrics.observe_predict(name, model.version, elapsed)
        elif large:
            def whole() -> tuple[ParsedRequest, list[str], bytes]:
                parsed, ids = parse()
                return parsed, ids, answer_plain(name, model, parsed, ids, start)

            parsed, ids, content = await lane.run(whole)
            columns = parsed.columns
        else:
            parsed, ids = parse()
            if PREDICT_IN_THREADPOOL:
                content = await run_in_threadpool(answer_plain, name, model, parsed, ids, start)
            else:
                content = answer_plain(name, model, parsed, ids, start)
            columns = parsed.columns
        recent.add(ids)
        if columns is None:  # logged by a lane process: at most the retired sample came back
            if sample is not None and sample[0]:
                shadow.submit_retired(name, model.version, sample[1], sample[0])
        elif rollout is not None:  # shadow: a copy for the challenger, after the answer is ready
            shadow.submit(name, rollout.challenger, columns, ids)
        elif retired.wanted(name, model.version):  # the retired champion's sample (ROI)
            shadow.submit_retired(name, model.version, columns, ids)
        return Response(content, media_type=_JSON)

    async def _predict_routed(name: str, model: LoadedModel, rollout: Any, columns: dict[str, Any],
                              ids: list[str], start: float) -> Response:
        """A/B and canary: each instance answered by the version its routing key selects."""
        ans = await answer(cache, model, rollout, columns, ids, key_field)
        labels = ans.labels if ans.labels.dtype.kind == "f" else ans.labels.tolist()
        payload: dict[str, Any] = {"predictions": labels, "ids": ids, "model_version": ans.version}
        if ans.versions is not None:
            payload["model_versions"] = ans.versions
        if ans.probabilities is not None:
            payload["probabilities"] = ans.probabilities
        content = orjson.dumps(payload, option=_NUMPY)
        elapsed = time.perf_counter() - start
        whole = len(ans.parts) == 1 and ans.failed is None
        for served_by, idx, out in ans.parts:
            writer.log_predictions(PredictionBatch(
                model=name, ids=ids if whole else [ids[i] for i in idx], version=served_by.version,
                predictions=out.labels, scores=out.scores, probabilities=out.probabilities,
                features=columns if whole else {k: v[idx] for k, v in columns.items()},
                latency_ms=elapsed * 1000.0,
            ))
            metrics.observe_predict(name, served_by.version, elapsed)
        if ans.failed is not None:
            writer.log_predictions(error_batch(
                name, rollout.challenger, [ids[i] for i in ans.failed],
                {k: v[ans.failed] for k, v in columns.items()}, elapsed * 1000.0,
            ))
        recent.add(ids)
        return Response(content, media_type=_JSON)

    @app.post("/v1/models/{name}/feedback", **docs.FEEDBACK)
    @_guard
    async def feedback(name: str, request: Request) -> Response:
        body = await request.body()
        await access.authorize_feedback(request, name)
        model = await model_for(name)
        ids, raw_labels, rewards = _parse_feedback(loads(body))
        labels = label_domain(name, model).parse(ids, raw_labels)
        rest = [i for i in ids if i not in recent]
        found = await run_in_threadpool(reader_for(name).known_ids, rest) if rest else set()
        keep = [k for k, i in enumerate(ids) if i in recent or i in found]
        held = [k for k, i in enumerate(ids) if i not in recent and i not in found]
        if len(held) > desk.room():
            raise NotFound(
                f"{len(held)} of the {len(ids)} ids were not predicted by model {name!r} yet "
                f"(e.g. {[ids[k] for k in held[:3]]}) and {desk.held} labels already wait for "
                f"their predictions: send the ids returned by POST /v1/models/{name}/predict"
            )
        ts = now_us()
        if keep:
            writer.log_feedback(
                FeedbackBatch(
                    model=name, ids=[ids[k] for k in keep], labels=[labels[k] for k in keep],
                    rewards=None if rewards is None else [rewards[k] for k in keep], ts_us=ts,
                )
            )
        if held:  # perhaps served by another replica that has not flushed yet (feedback.py)
            desk.hold(name, [ids[k] for k in held], [labels[k] for k in held],
                      None if rewards is None else [rewards[k] for k in held], ts)
            metrics.feedback_rows.labels(name, "held").inc(len(held))
        status = 202 if held else 200
        metrics.count_request(name, str(model.version), "feedback", status)
        return _json({"accepted": len(keep), "held": len(held), "held_ids": [ids[k] for k in held[:10]]},
                     status)

    @app.get("/v1/models/{name}", **docs.MODEL_INFO)
    @_guard
    async def model_info(name: str) -> Response:
        info = await run_in_threadpool(_describe, store, name, cfg)
        served = cache.get(name)
        info["serving"] = None if served is None else {"version": served.version, "runtime": served.runtime}
        return _json(info)

    from modelpilot.integrations.analysis import add_analysis_routes
    from modelpilot.serving.control import add_control_routes

    add_control_routes(app, cfg, store, artifacts, cache, authorize)
    from modelpilot.edge.routes import add_edge_routes  # device reports in, signed bundles out

    add_edge_routes(app, cfg, store, artifacts, access)
    add_analysis_routes(app, cfg, store)  # Argo Rollouts / Flagger analysis (integrations/analysis.py)

    @app.get("/healthz", **docs.HEALTH)
    async def healthz() -> Response:
        ok, reason = writer.healthy
        if not ok:  # a load balancer stops sending traffic whose log would be lost
            return _json({"status": "unhealthy", "reason": reason, "models": cache.loaded()}, 503)
        return _json({"status": "ok", "models": cache.loaded()})

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        # off the event loop: the champions' series may read the store (champion_metrics.py)
        return Response(await run_in_threadpool(metrics.render), media_type=CONTENT_TYPE_LATEST)

    from modelpilot.ui import ui_router  # the dashboard, at /ui

    app.include_router(ui_router(cfg, store, artifacts, access=access))
    return app


def _webhooks(cfg: PilotConfig, store: Any) -> Any:
    """The webhook outbox sender the operator routes kick (None without ``webhooks:``).

    Raises:
        ConfigError: a webhook's ``secret_env`` variable is not set (the server does not start).
    """
    if not cfg.webhooks:
        return None
    from modelpilot.integrations.webhooks import WebhookDispatcher, start_cursors

    start_cursors(store, [h.name for h in cfg.webhooks])
    return WebhookDispatcher(cfg.webhooks, store)


def _parse_feedback(doc: Any) -> tuple[list[str], list[Any], list[float | None] | None]:
    if not isinstance(doc, dict) or not isinstance(doc.get("ids"), list):
        raise MalformedRequest(
            'a feedback body is {"ids": [...], "labels": [...], "rewards": [...]?}'
        )
    extra = doc.keys() - {"ids", "labels", "rewards"}
    if extra:
        raise RequestError(f"unknown field(s) {sorted(extra)}: send only ids, labels and rewards")
    n = len(doc["ids"])
    if n == 0:
        raise RequestError("'ids' is empty: send at least one id with its label")
    ids = parse_ids(doc["ids"], n) or []
    raw_labels = doc.get("labels")
    if not isinstance(raw_labels, list) or len(raw_labels) != n:
        raise RequestError(f"'labels' must be a list with one label per id ({n})")
    rewards = doc.get("rewards")
    if rewards is not None:
        if not isinstance(rewards, list) or len(rewards) != n:
            raise RequestError(f"'rewards' must be a list with one number (or null) per id ({n})")
        bad = [i for i, v in enumerate(rewards) if not finite_or_none(v)]
        if bad:
            raise RequestError(f"rewards must be finite numbers or null; entries {bad[:5]} are not")
        rewards = [None if v is None else float(v) for v in rewards]
    return ids, raw_labels, rewards


def _quarantined(store: Any, metrics: ServingMetrics, model: str, kind: str, rows: int, reason: str,
                 key: str) -> None:
    """Rows the log could not encode: counted, and one event in the audit log."""
    metrics.log_quarantined_rows.labels(model, kind).inc(rows)
    store.add_event(
        "log_rows_quarantined", model=model, subject=kind,
        reason=f"{rows} {kind} rows cannot be written to the prediction log ({reason}); kept in {key or '-'}",
        numbers={"rows": rows, "key": key},
    )


def _onnx_summary(lineage: Any) -> dict[str, Any] | None:
    """A version's ONNX graph as the model info shows it: status, key and parity figures."""
    info = (lineage or {}).get("onnx")
    if not isinstance(info, dict):
        return None  # registered before graphs were stored
    return {k: info[k] for k in ("status", "key", "reason", "parity", "bytes") if k in info}


def _describe(store: Any, name: str, cfg: Any = None) -> dict[str, Any]:
    if name not in store.list_models():
        raise ModelNotFound(f"no model named {name!r}: 'modelpilot status' lists the models")
    aliases = {k: int(v) for k, v in store.aliases(name).items()}
    champion = aliases.get("champion")
    versions = [
        {
            "version": v.version, "status": v.status, "task": v.task, "metrics": v.metrics,
            "created_at": v.created_at.isoformat(), "description": v.description,
            "onnx": _onnx_summary(v.lineage),
        }
        for v in store.list_versions(name)
    ]
    from modelpilot.rollout.state import describe

    rollout = describe(store, name, cfg)
    live = rollout is not None and rollout["status"] == "in_progress"
    traffic = rollout["traffic"] if live and rollout else ({} if champion is None else {str(champion): 1.0})
    return {
        "name": name, "champion": champion, "aliases": aliases, "versions": versions,
        "challengers": [rollout["candidate"]] if live and rollout else [], "traffic": traffic,
        "rollout": rollout,
    }


def _add_error_handlers(app: FastAPI, metrics: ServingMetrics, cache: ModelCache) -> None:
    def account(request: Request, type_name: str, status: int) -> None:
        metrics.count_error(type_name, status)
        name = request.scope.get("path_params", {}).get("name")
        model = cache.get(name) if isinstance(name, str) else None
        endpoint = request.url.path.rsplit("/", 1)[-1] if name else request.url.path.strip("/")
        metrics.count_request(
            model.name if model else "unknown", str(model.version) if model else "",
            endpoint if endpoint in ("predict", "feedback") else "other", status,
        )

    @app.exception_handler(ModelpilotError)
    async def modelpilot_error(request: Request, exc: ModelpilotError) -> Response:
        status = exc.status_code
        account(request, exc.type_name, status)
        if status >= 500 and not isinstance(exc, InternalError):
            log.error("%s on %s: %s", exc.type_name, request.url.path, exc)
        response = _json(exc.to_dict(), status)
        response.headers.update(getattr(exc, "headers", None) or {})
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        account(request, "HTTPError", exc.status_code)
        body = {"error": {"type": "HTTPError", "message": str(exc.detail)}}
        return _json(body, exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        account(request, "RequestError", 422)
        return _json({"error": {"type": "RequestError", "message": str(exc.errors())}}, 422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        account(request, "InternalError", 500)
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _json(InternalError(_INTERNAL).to_dict(), 500)

