"""The rollout-analysis endpoint: is candidate N healthy against the champion?

``GET /v1/models/{name}/analysis?candidate=N`` answers ``Successful``, ``Failed`` or
``Inconclusive`` with the numbers behind it, for rollout controllers that ask a web service
(Argo Rollouts' ``web`` metric provider reads the JSON body; Flagger's webhooks read the
status code of ``POST``; docs/kubernetes.md). The verdict uses the canary's and the A/B
test's own code (:mod:`modelpilot.rollout.canary`, :mod:`modelpilot.rollout.ab`) on the
prediction log since the rollout (or the candidate's registration) began:

1. What modelpilot already decided wins: the candidate is the champion → Successful; its
   rollout ended ``rolled_back``/``rejected``/``superseded`` or the gate rejected it →
   Failed; it awaits a human approval → Inconclusive.
2. **Failed** — a canary health limit is breached over the period (error rate, latency
   against the champion's, prediction divergence, labelled metric beyond the tolerance), or
   the A/B test finds the challenger significantly worse.
3. **Successful** — no breach, the challenger answered at least the canary's hold
   (``rollout.canary.hold_requests``, at least 20 calls) and its latency could be judged
   against the champion's; or the A/B test finds it significantly better.
4. **Inconclusive** otherwise — the answer lists what evidence is missing. Argo pauses the
   rollout for a person on an inconclusive analysis; Flagger gets a non-2xx unless asked
   with ``inconclusive=pass``.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pandas as pd
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from modelpilot.errors import ModelNotFound, NotFound, RequestError
from modelpilot.rollout import state as st
from modelpilot.rollout.ab import ab_test, arm_values
from modelpilot.rollout.canary import MIN_HEALTH_ROWS, health, split_arms
from modelpilot.rollout.progressive import CHALLENGER_ALIAS, arm_numbers

SUCCESSFUL, FAILED, INCONCLUSIVE = "Successful", "Failed", "Inconclusive"


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null (an interval not known yet)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _verdict(out: dict[str, Any], phase: str, reason: str) -> dict[str, Any]:
    out.update(phase=phase, reason=reason, successful=phase == SUCCESSFUL, failed=phase == FAILED,
               inconclusive=phase == INCONCLUSIVE)
    return _finite(out)  # type: ignore[no-any-return]


def pick_candidate(store: Any, model: str, candidate: int | None) -> int:
    """The candidate asked for, else the one in the model's rollout, else its challenger alias.

    Raises:
        NotFound: none given and no rollout or challenger to take it from.
    """
    if candidate is not None:
        return candidate
    state, _ = st.load(store, model)
    if state is not None and state.active:
        return state.candidate
    challenger = store.get_alias(model, CHALLENGER_ALIAS)
    if challenger is None:
        raise NotFound(f"model {model!r} has no rollout in progress and no challenger: "
                       "name the version with ?candidate=N")
    return int(challenger)


def analyse(cfg: Any, store: Any, rows_since: Any, model: str, candidate: int | None = None) -> dict[str, Any]:
    """The verdict on ``candidate`` (see the module docstring).

    Args:
        cfg: the config (``rollout.canary`` limits, ``rollout.ab`` test, the primary metric).
        store: the metadata store.
        rows_since: ``rows_since(datetime | None) -> DataFrame`` of prediction-log rows joined
            with feedback, every role (the server passes its log reader).
        model: the model name.
        candidate: the version to judge (default: see :func:`pick_candidate`).

    Returns:
        ``{"phase", "reason", "successful", "failed", "inconclusive", "model", "candidate",
        "champion", ...}`` with the arms' numbers, the health numbers and the test's result.

    Raises:
        ModelNotFound: no such model or version, or the model has no champion.
        NotFound: no candidate given and none in a rollout.
    """
    if model not in store.list_models():
        raise ModelNotFound(f"no model named {model!r}: 'modelpilot status' lists the models")
    champion = store.get_alias(model, "champion")
    if champion is None:
        raise ModelNotFound(f"model {model!r} has no champion yet: run 'modelpilot train'")
    number = pick_candidate(store, model, candidate)
    version = store.get_version(model, number)
    state, _ = st.load(store, model)
    mine = state if state is not None and state.candidate == number else None
    out: dict[str, Any] = {"model": model, "candidate": number, "champion": int(champion),
                           "rollout": None if mine is None else {"id": mine.id, "strategy": mine.strategy,
                                                                 "status": mine.status}}
    if number == champion:
        return _verdict(out, SUCCESSFUL, f"v{number} is the champion")
    if mine is not None and not mine.active and mine.status != "promoted":
        why = (mine.decision or {}).get("reason", "")
        return _verdict(out, FAILED, f"the {mine.strategy} rollout of v{number} ended {mine.status}: {why}")
    if version.status == "rejected":
        return _verdict(out, FAILED, f"v{number} was rejected (see 'modelpilot events'); it will not be promoted")
    if version.status == "awaiting_approval":
        return _verdict(out, INCONCLUSIVE, f"v{number} waits for a human approval: 'modelpilot approve {number}'")

    since = datetime.fromisoformat(mine.log_since) if mine is not None else version.created_at
    rows = rows_since(since)
    shadow = mine.shadow if mine is not None else _only_shadow(rows, number)
    judged = st.RolloutState(model=model, id="analysis", strategy="analysis", candidate=number,
                             champion=int(champion), started_at=since.isoformat(), log_since=since.isoformat(),
                             shadow=shadow)
    champ, chal, errors = split_arms(rows, judged)
    metric = cfg.primary_metric
    breaches, numbers = health(cfg, judged, chal, errors, champ, chal, version.task, metric)
    ab = cfg.rollout.ab
    a, b = (arm_values(ab.decide_on, arm, version.task, metric) for arm in (champ, chal))
    result, needed = ab_test(ab, version.task, a, b)
    calls, hold = len(chal) + len(errors), max(cfg.rollout.canary.hold_requests or 0, MIN_HEALTH_ROWS)
    out.update(since=since.isoformat(), shadow=shadow, breaches=breaches, health=numbers,
               arms={"champion": arm_numbers(champ, version.task, metric),
                     "challenger": {**arm_numbers(chal, version.task, metric), "errors": len(errors)}},
               test=None if result is None else result.to_dict(), n_required=needed, calls=calls, hold=hold)
    significant = result is not None and result.significant(ab.alpha)
    if breaches:
        return _verdict(out, FAILED, "; ".join(breaches))
    if significant and result is not None and result.effect < 0:
        return _verdict(out, FAILED, f"{result.test}: challenger worse by {result.effect:+.4f} "
                                     f"(p={result.p_value:.3g}, n={result.n_champion}/{result.n_challenger})")
    if significant and result is not None:
        return _verdict(out, SUCCESSFUL, f"{result.test}: challenger better by {result.effect:+.4f} "
                                         f"(p={result.p_value:.3g}, n={result.n_champion}/{result.n_challenger})")
    missing = []
    if calls < hold:
        missing.append(f"{calls} of the {hold} challenger calls the canary holds for (rollout.canary.hold_requests)")
    if "latency_p99_ms" not in numbers:
        missing.append(numbers["latency"])
    out["missing"] = missing
    if missing:
        return _verdict(out, INCONCLUSIVE, "not enough evidence yet: " + "; ".join(missing))
    return _verdict(out, SUCCESSFUL, f"healthy on {calls} calls: {numbers['latency']}"
                    + ("" if result is None else f"; {result.test} p={result.p_value:.3g}, not worse"))


def _only_shadow(rows: pd.DataFrame, candidate: int) -> bool:
    """Whether the candidate only scored shadow copies (no answer of its own) in ``rows``."""
    if not len(rows):
        return False
    mine = rows[rows["model_version"] == candidate]
    return bool(len(mine)) and not bool((mine["role"] == "primary").any())


def _check_candidate(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or not 1 <= int(raw) < 2**63:
        raise RequestError(f"candidate must be a version number (a positive integer), got {raw!r}")
    return int(raw)


def add_analysis_routes(app: FastAPI, cfg: Any, store: Any) -> None:
    """Mount ``GET`` (Argo Rollouts) and ``POST`` (Flagger) ``/v1/models/{name}/analysis``.

    Both need a viewer token when ``serving.require_token_for_predict`` is on, like every
    read route.
    """
    from modelpilot.serving.app import _guard, _json
    from modelpilot.serving.schema import loads

    def judge(name: str, candidate: int | None) -> dict[str, Any]:
        reader = app.state.reader_for(name)
        return analyse(cfg, store, lambda since: reader.joined(since=since, role=None), name, candidate)

    @app.get("/v1/models/{name}/analysis", tags=["rollout controllers"],
             summary="Successful / Failed / Inconclusive for a candidate (Argo Rollouts web metric)")
    @_guard
    async def analysis(name: str, request: Request) -> Response:
        candidate = _check_candidate(request.query_params.get("candidate"))
        return _json(await run_in_threadpool(judge, name, candidate))

    @app.post("/v1/models/{name}/analysis", tags=["rollout controllers"],
              summary="The same verdict as a status code (Flagger webhook): 200 pass, 412 not yet or failed")
    @_guard
    async def analysis_hook(name: str, request: Request) -> Response:
        body = await request.body()
        doc = loads(body) if body.strip() else {}
        meta = doc.get("metadata") if isinstance(doc, dict) else None
        raw = request.query_params.get("candidate") or (meta.get("candidate") if isinstance(meta, dict) else None)
        candidate = _check_candidate(None if raw is None else str(raw))
        inconclusive = request.query_params.get("inconclusive", "fail")
        if inconclusive not in ("pass", "fail"):
            raise RequestError(f"inconclusive must be 'pass' or 'fail', got {inconclusive!r}")
        verdict = await run_in_threadpool(judge, name, candidate)
        ok = verdict["successful"] or (verdict["inconclusive"] and inconclusive == "pass")
        return _json(verdict, 200 if ok else 412)
