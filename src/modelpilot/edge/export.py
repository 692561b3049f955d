"""``modelpilot edge export``: a version's pipeline as a signed bundle, optionally published."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelpilot.artifacts import get_json
from modelpilot.config import PilotConfig
from modelpilot.edge.bundle import build_bundle, load_signing_key, publish
from modelpilot.errors import ModelpilotError, NotFound


def registered_graph(artifacts: Any, record: Any) -> tuple[bytes, dict[str, Any]]:
    """The ONNX graph registered with a version, and what was recorded with it.

    Training converts every version and keeps the graph when it matches the pipeline on the
    validation rows (``lineage["onnx"]``, :func:`modelpilot.training.package.save_onnx`).

    Raises:
        ModelpilotError: the version has no graph, naming why (the step that did not
            convert, the parity figures, or a missing extra).
    """
    onnx = (record.lineage or {}).get("onnx") or {}
    if onnx.get("status") != "converted":
        why = onnx.get("reason") or "it was registered without an ONNX conversion"
        raise ModelpilotError(
            f"{record.model} v{record.version} has no ONNX graph for the edge: {why}. Fix the step named "
            "(or install 'modelpilot[edge]') and train again; the new version converts at registration"
        )
    return artifacts.get_bytes(onnx["key"]), onnx


def export_version(cfg: PilotConfig, store: Any, artifacts: Any, version: int | None = None, *,
                   out: str | Path | None = None, publish_it: bool = False) -> dict[str, Any]:
    """Build the signed bundle of ``version`` (default: the champion).

    Args:
        out: a folder to write ``<model>-v<N>.bundle.zip`` to.
        publish_it: also store it as the bundle devices pull for that version.

    Returns:
        ``model``, ``version``, ``bytes``, ``etag``, ``path`` (or None), ``published``.

    Raises:
        NotFound: no champion / no such version.
        ConfigError: no signing key (run ``modelpilot edge keygen``).
        ModelpilotError: the version has no ONNX graph (the message names why).
    """
    model = cfg.model.name
    if version is None:
        version = store.get_alias(model, "champion")
        if version is None:
            raise NotFound(f"model {model!r} has no champion yet: run 'modelpilot train' or pass --version")
    record = store.get_version(model, int(version))
    key = load_signing_key(cfg.resolve_path(cfg.edge.signing_key))
    graph, onnx = registered_graph(artifacts, record)
    reference = get_json(artifacts, record.reference_key) if record.reference_key else {"columns": {}}
    bundle = build_bundle(record, graph, reference, key, inputs=onnx["inputs"], output=onnx["output"],
                          target=cfg.model.target, segments=list(cfg.model.segments), parity=onnx.get("parity"))
    result: dict[str, Any] = {"model": model, "version": record.version, "bytes": len(bundle), "path": None,
                              "published": False}
    if out is not None:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{model}-v{record.version}.bundle.zip"
        path.write_bytes(bundle)
        result["path"] = str(path)
    entry = publish(store, artifacts, model, record.version, bundle) if publish_it else None
    from modelpilot.edge.bundle import etag_of

    result.update(etag=etag_of(bundle), published=entry is not None)
    return result


def fleet_pass(pilot: Any) -> dict[str, Any]:
    """One fleet tick with the pilot's parts; a retrain trains on the configured data at home
    (devices keep their rows), publishes the new version's bundle and starts the canary.

    A device's rows never come home, so the retrain reads ``data.source`` — the data home
    has; the canary across devices is what checks the new version on device data.
    """
    from modelpilot.edge.fleet import fleet_tick

    cfg, store, artifacts = pilot.cfg, pilot.store, pilot.artifacts

    def retrain(reason: str) -> int | None:
        champion = store.get_alias(cfg.model.name, "champion")
        result = pilot.train(kind="retrain", parent_version=champion, promote_first=False)
        if result.status != "registered":
            store.add_event("edge_retrain_rejected", model=cfg.model.name, subject=f"v{result.version}",
                            actor="edge", reason=f"v{result.version} was {result.status}; devices keep v{champion}")
            return None
        export_version(cfg, store, artifacts, result.version, publish_it=True)
        return int(result.version)

    return fleet_tick(cfg, store, artifacts, retrain=retrain)
