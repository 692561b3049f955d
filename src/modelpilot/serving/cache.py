"""The model cache: the version an alias points at, loaded, and hot-swapped when it moves.

A :class:`LoadedModel` is immutable: the fitted pipeline, its request schema and its
classes. The cache holds one mapping ``name -> LoadedModel`` and replaces the WHOLE
mapping with one reference assignment (atomic under the GIL) after the new version is
completely loaded and warmed up. A request reads the mapping once and keeps the object it
got, so requests in flight during a swap finish on the old model and none of them fails.

A background thread polls the store's aliases every ``refresh_interval`` seconds; a model
never requested is loaded on its first request. The same poll reads each model's rollout
state (:mod:`modelpilot.rollout.state`): while a shadow, A/B or canary rollout is in
progress the challenger version is kept loaded next to the champion, and the request path
reads both from memory (:meth:`ModelCache.rollout`) — never from the store.

``fault_injector`` is a testing aid: a callable ``(model, columns) -> Prediction | None``
that :meth:`ModelCache.predict` calls before the model. It may raise (a failing model),
sleep (a slow one) or return a :class:`Prediction` (garbage); None means "predict
normally". It exists so tests can make a real served challenger faulty without custom
classes in the model file (skops refuses those). Never set it in production.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from modelpilot.artifacts import load_model
from modelpilot.errors import ModelNotFound, NotFound
from modelpilot.serving.fastpath import FastPredict, compile_pipeline, nulls_as_nan
from modelpilot.serving.schema import RequestSchema

if TYPE_CHECKING:
    from modelpilot.artifacts import ArtifactStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Prediction:
    """Model output for n rows."""

    labels: np.ndarray  # object array of class labels (JSON values), or float64 (regression)
    scores: np.ndarray  # float64, see the prediction log's ``score`` column
    probabilities: np.ndarray | None  # float64 (n, n_classes), classifiers only


FaultInjector = Callable[["LoadedModel", dict[str, np.ndarray]], "Prediction | None"]


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """One model version ready to predict. Immutable; shared by concurrent requests."""

    name: str
    version: int
    record: Any  # ModelVersionRecord
    pipeline: Any
    schema: RequestSchema
    classes: np.ndarray | None
    loaded_at: float
    fast: FastPredict | None = None  # see fastpath.py; None = the plain pipeline
    onnx: Any = None  # a modelpilot.onnx.OnnxRunner checked at load, or None

    @property
    def task(self) -> str:
        return str(self.record.task)

    @property
    def runtime(self) -> str:
        """What computes the predictions: ``onnxruntime``, ``fastpath`` or ``sklearn``."""
        return "onnxruntime" if self.onnx is not None else "fastpath" if self.fast is not None else "sklearn"

    def predict_columns(self, columns: dict[str, np.ndarray]) -> Prediction:
        """Predict from one NumPy column per feature (the server's request form): the
        version's ONNX graph when it passed its load check, else the verified fast path,
        else ONE DataFrame through the pipeline."""
        if self.onnx is not None:
            raw = self.onnx.run(columns)
        elif self.fast is None:
            return self.predict(pd.DataFrame(nulls_as_nan(columns), copy=False))
        else:
            raw = self.fast(columns)
        if self.classes is None:
            values = np.asarray(raw, dtype=np.float64)
            return Prediction(values, values, None)
        return self._from_proba(np.asarray(raw, dtype=np.float64))

    def _from_proba(self, proba: np.ndarray) -> Prediction:
        assert self.classes is not None  # only called for classifiers
        labels = self.classes[proba.argmax(axis=1)]
        scores = proba[:, 1] if proba.shape[1] == 2 else proba.max(axis=1)
        return Prediction(labels, scores, proba)

    def predict(self, frame: pd.DataFrame) -> Prediction:
        """Predict one DataFrame (signature columns). Classifiers call ``predict_proba``
        once and take the arg-max, rather than paying for the pipeline twice."""
        pipe = self.pipeline
        if self.classes is None:
            values = np.asarray(pipe.predict(frame), dtype=np.float64)
            return Prediction(values, values, None)
        if hasattr(pipe, "predict_proba"):
            return self._from_proba(np.asarray(pipe.predict_proba(frame), dtype=np.float64))
        labels = np.asarray(pipe.predict(frame), dtype=object)
        return Prediction(labels, np.full(len(labels), np.nan), None)


@dataclass(frozen=True, slots=True)
class ActiveRollout:
    """A rollout in progress as the request path sees it: its state and the loaded challenger."""

    state: Any  # modelpilot.rollout.state.RolloutState
    challenger: LoadedModel


def load_version(store: Any, artifacts: ArtifactStore, name: str, version: int) -> LoadedModel:
    """Load one registered version from the artifact store and warm it up.

    Raises:
        ModelNotFound: no such model or version.
        ArtifactError: the model file is missing, corrupt or holds untrusted types.
    """
    try:
        record = store.get_version(name, version)
    except NotFound:
        raise ModelNotFound(f"model {name!r} has no version {version}") from None
    pipeline = load_model(artifacts, record.artifact_key)
    classes = None
    if record.task == "classification" and record.classes is not None:
        classes = np.empty(len(record.classes), dtype=object)
        classes[:] = list(record.classes)
    schema = RequestSchema(list(record.signature))
    proba = classes is not None and hasattr(pipeline, "predict_proba")
    probe = _probe(schema, pipeline)
    fast = compile_pipeline(pipeline, schema.names, probe, proba=proba)
    usable = proba or classes is None
    return LoadedModel(
        name=name, version=int(record.version), record=record, pipeline=pipeline,
        schema=schema, classes=classes, loaded_at=time.time(),
        fast=fast if usable else None,
        onnx=load_graph(artifacts, record, pipeline, probe) if usable else None,
    )


def load_graph(artifacts: ArtifactStore, record: Any, pipeline: Any, probe: dict[str, np.ndarray]) -> Any:
    """The version's ONNX graph in onnxruntime, if it has one that answers like the pipeline.

    The graph was compared with the pipeline when it was registered; it is compared again
    here, on the probe rows (ordinary, missing, extreme and unknown values), within the
    same tolerances (:mod:`modelpilot.onnx`), because the file is read back from storage
    and onnxruntime may differ from the one that checked it. Any failure — onnxruntime
    not installed, an unreadable graph, a difference — is logged and returns None: the
    server then uses the fast path or scikit-learn.
    """
    info = (record.lineage or {}).get("onnx") or {}
    if info.get("status") != "converted" or not info.get("key"):
        return None
    where = f"model {record.model!r} v{record.version}"
    try:
        from modelpilot.onnx import OnnxRunner, available, compare

        if not available():
            log.info("%s has an ONNX graph but onnxruntime is not installed (pip install "
                     "'modelpilot[edge]'); serving it with scikit-learn", where)
            return None
        runner = OnnxRunner(artifacts.get_bytes(info["key"]), info["inputs"], info["output"])
        frame = pd.DataFrame(nulls_as_nan(probe), copy=False)
        classifier = record.task == "classification"
        expected = pipeline.predict_proba(frame) if classifier else pipeline.predict(frame)
        parity = compare("classification" if classifier else "regression", expected, runner.run(probe))
    except Exception:
        log.warning("%s: its ONNX graph cannot run; serving it with scikit-learn", where, exc_info=True)
        return None
    if not parity.passed:
        log.warning("%s: its ONNX graph differs from the pipeline (%s); not using it", where, parity.describe())
        return None
    return runner


def _probe(schema: RequestSchema, pipeline: Any) -> dict[str, np.ndarray]:
    """A few rows to verify the fast path on (and warm the model up with): ordinary,
    missing and extreme numbers; known, missing and unknown categories."""
    known: dict[str, list[Any]] = {}
    ct = pipeline.steps[0][1] if hasattr(pipeline, "steps") else None
    for _, transformer, selected in getattr(ct, "transformers_", []):
        last = transformer.steps[-1][1] if hasattr(transformer, "steps") else transformer
        names = selected if isinstance(selected, list) else []
        for col, cats in zip(names, getattr(last, "categories_", []), strict=False):
            known[col] = [c for c in list(cats)[:3] if isinstance(c, str | int)]
    cols: dict[str, np.ndarray] = {}
    for name in schema.names:
        if name in schema.numeric:
            cols[name] = np.array([0.0, 1.5, np.nan, -1e3, 1e6])
        else:
            values = (known.get(name, []) + ["__unknown__", None, "a", "b", "c"])[:4] + [None]
            col = np.empty(5, dtype=object)
            col[:] = values
            cols[name] = col
    return cols


class ModelCache:
    """Loaded models by name, following a store alias (``champion`` by default).

    Thread-safe. :meth:`get` is a dict lookup for the request path; :meth:`load` resolves
    the alias and loads (slow: run it off the event loop).

    Args:
        store: the metadata store (``get_alias``, ``get_version``, ``list_models``).
        artifacts: where the model files are.
        alias: the alias served.
        refresh_interval: seconds between alias polls of the background refresher.
        on_swap: called ``(name, old_version | None, new_version)`` after each install.
    """

    def __init__(
        self,
        store: Any,
        artifacts: ArtifactStore,
        *,
        alias: str = "champion",
        refresh_interval: float = 1.0,
        on_swap: Callable[[str, int | None, int], None] | None = None,
        keep_versions: int = 8,
        fault_injector: FaultInjector | None = None,
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.alias = alias
        self.refresh_interval = refresh_interval
        self._on_swap = on_swap
        self._models: dict[str, LoadedModel] = {}
        self._versions: OrderedDict[tuple[str, int], LoadedModel] = OrderedDict()
        self._keep = keep_versions
        self._lock = threading.RLock()  # serialises loads, never held by get()
        # one refresh at a time: a poll that read the alias before a promote or a rollback
        # must not install its older answer after the refresh that followed it
        self._refreshing = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rollouts: dict[str, ActiveRollout] = {}
        self.fault_injector = fault_injector

    # ------------------------------------------------------------------ request path

    def rollout(self, name: str) -> ActiveRollout | None:
        """The rollout in progress for ``name`` as of the last refresh (no IO)."""
        return self._rollouts.get(name)

    def predict(self, model: LoadedModel, columns: dict[str, np.ndarray]) -> Prediction:
        """``model.predict_columns(columns)``, through the fault injector when one is set."""
        if self.fault_injector is not None:
            injected = self.fault_injector(model, columns)
            if injected is not None:
                return injected
        return model.predict_columns(columns)

    def get(self, name: str) -> LoadedModel | None:
        """The loaded model for ``name`` or None (no IO; safe on the event loop)."""
        return self._models.get(name)

    def loaded(self) -> dict[str, int]:
        return {name: m.version for name, m in self._models.items()}

    # ------------------------------------------------------------------ loading

    def _alias_version(self, name: str) -> int:
        try:
            version = self.store.get_alias(name, self.alias)
        except NotFound:
            version = None
        if version is None:
            if name not in self.store.list_models():
                raise ModelNotFound(
                    f"no model named {name!r}: train one with 'modelpilot train' or check the "
                    "name in the URL (GET /healthz lists the loaded models)"
                )
            raise ModelNotFound(
                f"model {name!r} has no {self.alias!r} version yet: promote one with "
                f"'modelpilot promote {name} VERSION'"
            )
        return int(version)

    def load(self, name: str) -> LoadedModel:
        """Load (or return) the version the alias points at and install it.

        Raises:
            ModelNotFound: no such model, or the alias is unset.
        """
        with self._lock:
            current = self._models.get(name)
            if current is not None:
                return current
            return self._install(name, self.version(name, self._alias_version(name)))

    def version(self, name: str, version: int) -> LoadedModel:
        """A specific version (kept in a small LRU cache; for challengers and rollouts)."""
        key = (name, int(version))
        with self._lock:
            found = self._versions.get(key)
            if found is not None:
                self._versions.move_to_end(key)
                return found
        loaded = load_version(self.store, self.artifacts, name, int(version))
        with self._lock:
            self._versions[key] = loaded
            while len(self._versions) > self._keep:
                self._versions.popitem(last=False)
        return loaded

    def _install(self, name: str, model: LoadedModel) -> LoadedModel:
        old = self._models.get(name)
        models = dict(self._models)
        models[name] = model
        self._models = models  # the one atomic swap
        if self._on_swap is not None:
            self._on_swap(name, None if old is None else old.version, model.version)
        if old is not None:
            log.info("model %s: now serving version %s (was %s)", name, model.version, old.version)
        return model

    def load_all(self) -> None:
        """Load every model that has the alias set (errors are logged, not raised)."""
        for name in self.store.list_models():
            try:
                self.load(name)
            except Exception as exc:  # a broken model must not keep the others from serving
                level = logging.INFO if isinstance(exc, ModelNotFound) else logging.ERROR
                log.log(level, "not serving model %s: %s", name, exc)
        self.refresh_rollouts()

    def refresh(self) -> list[tuple[str, int, int]]:
        """Poll the alias of every loaded model; load and swap the ones that moved.

        Returns:
            ``(name, old_version, new_version)`` per swap done.
        """
        with self._refreshing:
            return self._refresh()

    def _refresh(self) -> list[tuple[str, int, int]]:
        swaps = []
        for name, current in list(self._models.items()):
            try:
                target = self._alias_version(name)
                if target == current.version:
                    continue
                fresh = self.version(name, target)  # fully loaded before the swap
                with self._lock:
                    if self._models.get(name) is current:
                        self._install(name, fresh)
                        swaps.append((name, current.version, target))
            except Exception:  # keep serving the old version; the next poll retries
                log.exception("refreshing model %s failed; still serving v%s", name, current.version)
        self.refresh_rollouts()
        return swaps

    def refresh_rollouts(self) -> None:
        """Re-read the rollout state of every loaded model; load the challengers it needs."""
        from modelpilot.rollout.state import active

        rollouts: dict[str, ActiveRollout] = {}
        for name in list(self._models):
            try:
                state = active(self.store, name)
                if state is None:
                    continue
                current = self._rollouts.get(name)
                if current is not None and current.state == state:
                    rollouts[name] = current
                    continue
                rollouts[name] = ActiveRollout(state, self.version(name, state.candidate))
            except Exception:  # a broken challenger must not stop the champion from serving
                log.exception("loading the rollout of model %s failed; serving the champion only", name)
        self._rollouts = rollouts  # one atomic swap, like the models

    # ------------------------------------------------------------------ refresher thread

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="model-refresher", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.refresh_interval):
            self.refresh()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
