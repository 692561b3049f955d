"""``modelpilot import mlflow``: registered models, versions, aliases, runs and safe model files.

For each registered model of an MLflow tracking server or store, each version becomes a
version of the modelpilot model of the same name, in MLflow's order, with:

* its run (kind ``mlflow``): parameters, every metric point with its step and time, the run's
  name and tags; the version's ``metrics`` are the run's last values;
* its model file, only when it is a scikit-learn model saved in the skops format whose types
  all pass modelpilot's model allowlist and that answers a probe prediction — the same bar
  as any model modelpilot serves. Anything else (a pickle or cloudpickle file, another
  flavor, a refused type) is never loaded: the version is recorded ``archived`` with a
  ``note`` saying why, so the history is complete and nothing unsafe can serve;
* its lineage: MLflow's model name, version, run id, source, tags and creation time.

Aliases are set on the imported versions whose model file was imported; an alias that
already exists in modelpilot is left alone (modelpilot's own decisions win). Importing again
adds only what is new: versions carry the idempotency key ``mlflow:<name>:<version>``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from modelpilot.artifacts import ArtifactStore
from modelpilot.errors import ConfigError, ModelpilotError
from modelpilot.store import Store

ACTOR = "mlflow import"
RUN_KIND = "mlflow"
_TYPES = {"double": "float", "float": "float", "long": "int", "integer": "int", "boolean": "bool",
          "string": "string", "datetime": "string", "binary": "string"}
_RUN_STATUS = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "failed"}


def _client(tracking_uri: str, registry_uri: str | None) -> Any:
    try:
        from mlflow import MlflowClient
    except ImportError:
        raise ConfigError("'modelpilot import mlflow' needs the MLflow client: pip install 'modelpilot[mlflow]' "
                          "(it installs mlflow-skinny)") from None
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or tracking_uri)


def _pages(search: Any, **kwargs: Any) -> Iterator[Any]:
    token = None
    while True:
        page = search(page_token=token, **kwargs)
        yield from page
        token = page.token
        if not token:
            return


def redact(uri: str) -> str:
    """A URI without the password of its user info (lineage must not keep secrets)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def import_mlflow(store: Store, artifacts: ArtifactStore, tracking_uri: str, *, registry_uri: str | None = None,
                  models: Iterable[str] | None = None) -> dict[str, Any]:
    """Copy the registered models at ``tracking_uri`` into ``store`` and ``artifacts``.

    Args:
        store, artifacts: modelpilot's store and artifact store.
        tracking_uri: the MLflow tracking URI (``sqlite:///mlflow.db``, ``http://host:5000``...).
        registry_uri: the model registry's URI when it is not the tracking URI.
        models: only these registered models (default: all).

    Returns:
        ``{"tracking_uri", "models": [{"name", "imported", "existing", "aliases",
        "skipped_aliases", "versions": [{"mlflow_version", "version", "status", "artifact",
        "note"}]}]}``.

    Raises:
        ConfigError: the MLflow client is not installed, or a model named in ``models`` does
            not exist in MLflow.
    """
    client = _client(tracking_uri, registry_uri)
    wanted = list(models or [])
    try:
        registered = [client.get_registered_model(n) for n in wanted] if wanted else list(
            _pages(client.search_registered_models, max_results=100))
    except Exception as exc:  # MlflowException: unreachable server, unknown model, bad URI
        raise ConfigError(f"cannot read registered models from {redact(tracking_uri)}: {exc}") from None
    importer = _Importer(store, artifacts, client, tracking_uri)
    return {"tracking_uri": redact(tracking_uri), "models": [importer.model(rm) for rm in registered]}


class _Importer:
    def __init__(self, store: Store, artifacts: ArtifactStore, client: Any, tracking_uri: str) -> None:
        self.store, self.artifacts, self.client = store, artifacts, client
        self.tracking_uri = tracking_uri
        self._runs: dict[str, int] = {}

    def model(self, rm: Any) -> dict[str, Any]:
        name = rm.name
        self.store.create_model(name, rm.description or None)
        self._runs.update({str(r.tags["mlflow_run_id"]): r.id for r in self.store.list_runs(
            model=name, kind=RUN_KIND, limit=1_000_000) if r.tags.get("mlflow_run_id")})
        quoted = name.replace("'", "\\'")
        found = sorted(_pages(self.client.search_model_versions, filter_string=f"name='{quoted}'", max_results=1000),
                       key=lambda mv: int(mv.version))
        aliases: dict[int, list[str]] = {}
        for alias, version in (getattr(rm, "aliases", None) or {}).items():
            aliases.setdefault(int(version), []).append(alias)
        rows, imported, existing = [], 0, 0
        numbers: dict[int, tuple[int, bool]] = {}  # MLflow version -> (modelpilot version, servable)
        for mv in found:
            row = self.version(name, mv, aliases.get(int(mv.version), []))
            imported += row.pop("new")
            existing += 0 if row["imported_now"] else 1
            numbers[int(mv.version)] = (row["version"], row["artifact"] is not None)
            rows.append(row)
        set_aliases, skipped = {}, {}
        for version, names in sorted(aliases.items()):
            target = numbers.get(version)
            for alias in sorted(names):
                if target is None:
                    skipped[alias] = f"MLflow v{version} was not found"
                elif not target[1]:
                    skipped[alias] = f"MLflow v{version}'s model file was not imported"
                else:
                    why = self.alias(name, alias, target[0], version)
                    if why:
                        skipped[alias] = why
                    else:
                        set_aliases[alias] = target[0]
        return {"name": name, "imported": imported, "existing": existing, "aliases": set_aliases,
                "skipped_aliases": skipped, "versions": rows}

    def alias(self, name: str, alias: str, version: int, mlflow_version: int) -> str | None:
        current = self.store.get_alias(name, alias)
        if current == version:
            return None
        if current is not None:
            return f"modelpilot's alias {alias!r} already points at v{current}; left as it is"
        self.store.set_alias(name, alias, version, actor=ACTOR, expected_current=None,
                             reason=f"alias {alias!r} of MLflow v{mlflow_version}, imported",
                             numbers={"mlflow_version": mlflow_version})
        return None

    def version(self, name: str, mv: Any, aliases: list[str]) -> dict[str, Any]:
        key = f"mlflow:{name}:{mv.version}"
        known = self.store.find_version_by_key(name, key)
        if known is not None:
            note = known.lineage.get("mlflow", {}).get("note")
            return {"mlflow_version": int(mv.version), "version": known.version, "status": known.status,
                    "artifact": known.artifact_key or None, "note": note, "imported_now": False, "new": 0}
        run_id, metrics = self.run(name, mv.run_id) if mv.run_id else (None, {})
        model = self.model_file(name, mv)
        note = model.get("note")
        lineage = {"source": "mlflow", "mlflow": {
            "tracking_uri": redact(self.tracking_uri), "model": name, "version": int(mv.version),
            "run_id": mv.run_id, "source": mv.source, "tags": dict(mv.tags or {}), "aliases": sorted(aliases),
            "created": _time(mv.creation_timestamp), "stage": getattr(mv, "current_stage", None), "note": note}}
        record = self.store.register_version(
            name, run_id=run_id, artifact_key=model.get("key") or "", reference_key=None,
            signature=model.get("signature") or [], task=model.get("task") or "unknown",
            classes=model.get("classes"), metrics=metrics, lineage=lineage,
            status="registered" if note is None else "archived",
            description=mv.description or (f"imported from MLflow; {note}" if note else "imported from MLflow"),
            idempotency_key=key)
        return {"mlflow_version": int(mv.version), "version": record.version, "status": record.status,
                "artifact": model.get("key") if note is None else None, "note": note, "imported_now": True,
                "new": 1}

    def run(self, name: str, mlflow_run_id: str) -> tuple[int | None, dict[str, float]]:
        """The modelpilot run of an MLflow run (imported once) and its last metric values."""
        try:
            src = self.client.get_run(mlflow_run_id)
        except Exception:  # the run was deleted in MLflow: the version keeps its id in the lineage
            return None, {}
        latest = {k: float(v) for k, v in src.data.metrics.items()}
        if mlflow_run_id in self._runs:
            return self._runs[mlflow_run_id], latest
        info = src.info
        user_tags = {k: v for k, v in src.data.tags.items() if not k.startswith("mlflow.")}
        run = self.store.create_run(name, kind=RUN_KIND, params=dict(src.data.params), tags={
            "name": info.run_name or mlflow_run_id, "mlflow_run_id": mlflow_run_id,
            "mlflow_experiment_id": info.experiment_id, "mlflow_tags": user_tags,
            "mlflow_start": _time(info.start_time), "mlflow_end": _time(info.end_time)})
        for key in src.data.metrics:
            for point in self.client.get_metric_history(mlflow_run_id, key):
                self.store.log_metric(run.id, key, point.value, point.step,
                                      timestamp=datetime.fromtimestamp(point.timestamp / 1000, UTC))
        self.store.finish_run(run.id, status=_RUN_STATUS.get(info.status, "finished"),
                              error=None if info.status == "FINISHED" else f"MLflow status {info.status}")
        self._runs[mlflow_run_id] = run.id
        return run.id, latest

    def model_file(self, name: str, mv: Any) -> dict[str, Any]:
        """``{"key", "signature", "task", "classes"}`` for a safe sklearn skops file, else ``{"note"}``."""
        import mlflow.artifacts

        try:
            uri = self.client.get_model_version_download_uri(name, mv.version)
            with tempfile.TemporaryDirectory(prefix="modelpilot-mlflow-") as tmp:
                meta_path = mlflow.artifacts.download_artifacts(artifact_uri=f"{uri.rstrip('/')}/MLmodel", dst_path=tmp,
                                                                tracking_uri=self.tracking_uri)
                meta = yaml.safe_load(Path(meta_path).read_text()) or {}
                flavor = (meta.get("flavors") or {}).get("sklearn")
                if flavor is None:
                    return {"note": f"its flavors are {sorted(meta.get('flavors') or {})}: only scikit-learn models "
                                    "are imported; the file was not loaded"}
                fmt = flavor.get("serialization_format")
                if fmt != "skops":
                    return {"note": f"the model file is a {fmt} file, which modelpilot never loads (unpickling runs "
                                    "code from the file); log it again with mlflow.sklearn.log_model(..., "
                                    "serialization_format='skops') and import again"}
                file = str(flavor.get("pickled_model") or "model.skops")
                if "/" in file or "\\" in file or file.startswith("."):
                    return {"note": f"the MLmodel names an unexpected model file {file!r}; not imported"}
                local = mlflow.artifacts.download_artifacts(artifact_uri=f"{uri.rstrip('/')}/{file}", dst_path=tmp,
                                                            tracking_uri=self.tracking_uri)
                data = Path(local).read_bytes()
        except ModelpilotError:
            raise
        except Exception as exc:  # MlflowException, OSError, YAML errors: the file cannot be read
            return {"note": f"its files could not be read ({type(exc).__name__}: {exc}); not imported"}
        return self._checked(name, mv, data, meta)

    def _checked(self, name: str, mv: Any, data: bytes, meta: dict[str, Any]) -> dict[str, Any]:
        from modelpilot.artifacts.models import check_model_bytes, load_model
        from modelpilot.errors import ArtifactError
        from modelpilot.rollout.probe import check_servable

        try:
            check_model_bytes(data, f"MLflow model {name!r} v{mv.version}")  # before anything is stored or loaded
            key = self.artifacts.put_bytes(data, suffix=".skops")
            estimator = load_model(self.artifacts, key)
        except ArtifactError as exc:
            return {"note": str(exc)}
        signature = _signature(meta, estimator)
        if not signature:
            return {"note": "neither the MLflow signature nor the model names its input columns, so no request "
                            "could be mapped to it; log it with a signature (infer_signature) and import again"}
        classes = getattr(estimator, "classes_", None)
        task = "classification" if classes is not None else "regression"
        found = {"key": key, "signature": signature, "task": task,
                 "classes": None if classes is None else [c.item() if hasattr(c, "item") else c for c in classes]}
        probe = _Probe(model=name, version=int(mv.version), artifact_key=key, **{
            k: found[k] for k in ("signature", "task", "classes")})
        try:
            check_servable(self.artifacts, probe)
        except ModelpilotError as exc:
            first = str(exc).splitlines()[0]
            return {"note": f"it does not answer modelpilot's probe prediction (ordinary, missing, extreme and unknown "
                            f"values), which every served version must: {first}… — log it as a Pipeline that "
                            "imputes missing values (SimpleImputer) and import again"}
        return found


class _Probe:
    """The fields of a version record :func:`check_servable` reads, before the version exists."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


def _signature(meta: dict[str, Any], estimator: Any) -> list[dict[str, str]]:
    import json

    raw = (meta.get("signature") or {}).get("inputs")
    if raw:
        try:
            cols = json.loads(raw) if isinstance(raw, str) else raw
            out = [{"name": str(c["name"]), "type": _TYPES.get(str(c.get("type")), "string")} for c in cols]
            if all(c["name"] for c in out):
                return out
        except (ValueError, KeyError, TypeError):
            pass
    names = getattr(estimator, "feature_names_in_", None)
    return [] if names is None else [{"name": str(n), "type": "float"} for n in names]


def _time(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat()
