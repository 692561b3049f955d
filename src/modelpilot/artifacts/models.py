"""Fitted models as skops files: saved without pickle, loaded only from an exact allowlist.

skops stores an estimator as a zip of JSON-described objects. Before skops sees a file,
:func:`check_model_bytes` reads its schema and checks every object against
:data:`modelpilot.artifacts._allowlist.ALLOWED` — exact ``(loader, type)`` pairs, the
types the shipped estimators and preprocessors are made of, not whole modules. A class
from user code, ``functools.partial``, ``operator.attrgetter``, ``builtins.eval``,
``numpy.load`` or any other function is refused before anything is imported. The check
runs when a model is saved, when a version is registered and on every load
(:func:`load_model_shared` checks a content key once: its bytes cannot change).
"""

from __future__ import annotations

import threading
import zipfile
from collections import OrderedDict
from typing import Any

from modelpilot.artifacts._allowlist import UnsafeModelFile, audit
from modelpilot.artifacts._keys import expected_digest
from modelpilot.artifacts._protocol import ArtifactStore
from modelpilot.artifacts._structure import check_trees
from modelpilot.errors import ArtifactError

_FIX = (
    "modelpilot loads only the types its own pipeline and supported estimators are made of "
    "(see docs/security.md); train the model with modelpilot and one of the supported "
    "estimators (HistGradientBoosting, RandomForest, ExtraTrees, DecisionTree, "
    "LogisticRegression, Ridge, LightGBM)"
)


def save_model(store: ArtifactStore, estimator: Any) -> str:
    """Store a fitted estimator (usually a ``Pipeline``) as a skops file.

    Returns:
        Its content key, ending in ``.skops``.

    Raises:
        ArtifactError: skops cannot serialise the estimator, or the file would hold a
            type outside the allowlist (it could never be loaded, so it is not stored).
    """
    try:
        import skops.io as sio  # imported here: scanning sklearn's types costs seconds per CLI call

        data = sio.dumps(estimator, compression=zipfile.ZIP_DEFLATED)
    except Exception as exc:  # skops raises TypeError, pickling errors, ... per object kind
        raise ArtifactError(
            f"cannot save {type(estimator).__name__} as a skops file: {exc}; use scikit-learn "
            "compatible estimators and transformers without lambdas or open resources"
        ) from exc
    check_model_bytes(data, f"the {type(estimator).__name__} model")
    return store.put_bytes(data, suffix=".skops")


def check_model_bytes(data: bytes, what: str) -> list[str]:
    """Refuse a skops file with any node outside the allowlist; nothing is imported.

    Args:
        data: the file's bytes.
        what: how to name the file in the message (``"model 'sha256/..' in s3://.."``).

    Returns:
        The exact type names the file uses (to hand to skops as trusted).

    Raises:
        ArtifactError: not a skops file, or a refused type (each one named).
    """
    try:
        return audit(data)
    except UnsafeModelFile as exc:
        raise ArtifactError(
            f"refusing {what}: it contains types that are not on the model allowlist: "
            f"{exc.refused}. modelpilot never runs code from a model file; {_FIX}"
        ) from None
    except ValueError as exc:
        raise ArtifactError(f"{what} is not a skops model file ({exc}); pass the key that save_model() returned") from None


def check_model(store: ArtifactStore, key: str) -> None:
    """Verify the stored file under ``key`` (its checksum and the allowlist) without loading it.

    Raises:
        ArtifactNotFound: no such key.
        ArtifactError: corrupt, not a skops file, or holds a refused type.
    """
    check_model_bytes(store.get_bytes(key), f"model {key!r} in {store.url}")


def load_model(store: ArtifactStore, key: str) -> Any:
    """Load the estimator saved under ``key`` if every object in it is on the allowlist.

    Raises:
        ArtifactNotFound: no such key.
        ArtifactError: the file is corrupt or not a skops file, or it contains types that are
            not on the allowlist (they are named in the message); nothing is imported or run.
    """
    data = store.get_bytes(key)
    trusted = check_model_bytes(data, f"model {key!r} in {store.url}")
    try:
        # skops' own audit runs again over the exact names that passed ours
        import skops.io as sio

        model = sio.loads(data, trusted=trusted)
    except Exception as exc:
        raise ArtifactError(
            f"cannot load model {key!r} from {store.url}: {exc}; the file may come from an "
            "incompatible scikit-learn/skops version, retrain the model with this one"
        ) from exc
    try:
        check_trees(model)
    except ValueError as exc:
        raise ArtifactError(
            f"refusing model {key!r} from {store.url}: {exc}; the file is corrupt or crafted, retrain the model"
        ) from None
    return model


_SHARED_SIZE = 4
_shared: OrderedDict[str, Any] = OrderedDict()
_shared_lock = threading.Lock()


def load_model_shared(store: ArtifactStore, key: str) -> Any:
    """:func:`load_model`, kept for the process: the same object for the same content key.

    A content key names its bytes (their sha256), so the model behind it never changes:
    the gate's champion, compared again at every retrain, and a candidate promoted right
    after its gate are loaded (and audited) once instead of each time. The last
    ``_SHARED_SIZE`` models are kept. The object is shared: use it to predict only, never
    to fit (warm starts load their own copy with :func:`load_model`).

    Raises:
        as :func:`load_model`.
    """
    if expected_digest(key) is None:  # a named key may be rewritten: always read it
        return load_model(store, key)
    with _shared_lock:
        if key in _shared:
            _shared.move_to_end(key)
            return _shared[key]
    model = load_model(store, key)
    with _shared_lock:
        _shared[key] = model
        while len(_shared) > _SHARED_SIZE:
            _shared.popitem(last=False)
    return model
