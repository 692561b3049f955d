"""Fitted models as skops files: saved without pickle, loaded only from known-safe types.

skops stores an estimator as a zip of JSON-described objects and, on load, refuses any
type outside its own small default list unless the caller names it as trusted. We name a
type trusted only when it comes from the numerical libraries a modelpilot model is built
from (:data:`SAFE_MODULES`) or is one of a few inert builtin data types
(:data:`SAFE_BUILTINS`). Anything else — a class defined in user code, ``functools.partial``,
``builtins.eval`` — is refused, because loading it would run code we did not vet.
"""

from __future__ import annotations

import importlib
import zipfile
from types import ModuleType
from typing import Any

import skops.io as sio

from modelpilot.artifacts._protocol import ArtifactStore
from modelpilot.errors import ArtifactError

#: Top-level packages whose types and functions a model may contain.
SAFE_MODULES: tuple[str, ...] = ("sklearn", "numpy", "scipy", "lightgbm", "xgboost")
#: Builtin types skops may report that carry data, not behaviour. Builtin functions
#: (``eval``, ``exec``, ``getattr``, ``open`` ...) are deliberately absent.
SAFE_BUILTINS: frozenset[str] = frozenset(
    f"builtins.{name}"
    for name in (
        "bool", "bytearray", "bytes", "complex", "dict", "float", "frozenset", "int",
        "list", "NoneType", "object", "range", "set", "slice", "str", "tuple",
    )
)  # fmt: skip


def save_model(store: ArtifactStore, estimator: Any) -> str:
    """Store a fitted estimator (usually a ``Pipeline``) as a skops file.

    Returns:
        Its content key, ending in ``.skops``.

    Raises:
        ArtifactError: skops cannot serialise the estimator.
    """
    try:
        data = sio.dumps(estimator, compression=zipfile.ZIP_DEFLATED)
    except Exception as exc:  # skops raises TypeError, pickling errors, ... per object kind
        raise ArtifactError(
            f"cannot save {type(estimator).__name__} as a skops file: {exc}; use scikit-learn "
            "compatible estimators and transformers without lambdas or open resources"
        ) from exc
    return store.put_bytes(data, suffix=".skops")


def load_model(store: ArtifactStore, key: str) -> Any:
    """Load the estimator saved under ``key`` if it holds only known-safe types.

    Raises:
        ArtifactNotFound: no such key.
        ArtifactError: the file is corrupt or not a skops file, or it contains types that are
            not known-safe (they are named in the message); nothing is unpickled.
    """
    data = store.get_bytes(key)
    try:
        reported = sio.get_untrusted_types(data=data)
    except Exception as exc:  # not a zip, missing schema, ...
        raise ArtifactError(
            f"artifact {key!r} in {store.url} is not a skops model file ({exc}); pass the key "
            "that save_model() returned"
        ) from exc
    refused = sorted(name for name in reported if not is_known_safe(name))
    if refused:
        raise ArtifactError(
            f"refusing to load model {key!r} from {store.url}: it contains types that are not "
            f"known-safe: {refused}. modelpilot never unpickles arbitrary code; retrain the "
            "model with a scikit-learn compatible estimator made of scikit-learn, NumPy, SciPy, "
            "LightGBM or XGBoost classes (no custom classes or functions)"
        )
    try:
        return sio.loads(data, trusted=reported)
    except Exception as exc:
        raise ArtifactError(
            f"cannot load model {key!r} from {store.url}: {exc}; the file may come from an "
            "incompatible scikit-learn/skops version, retrain the model with this one"
        ) from exc


def is_known_safe(name: str) -> bool:
    """Whether the dotted type or function name skops reports may be loaded.

    A name under :data:`SAFE_MODULES` must also resolve to an object defined in those
    packages, so a library module that merely re-exports something foreign (``os``,
    ``functools``) does not pass on its name alone.
    """
    if name in SAFE_BUILTINS:
        return True
    if not name.startswith(tuple(f"{root}." for root in SAFE_MODULES)):
        return False
    obj = _resolve(name)
    if obj is None:
        return False
    home = obj.__name__ if isinstance(obj, ModuleType) else getattr(obj, "__module__", None)
    # NumPy/SciPy ufuncs have no __module__: their name is all there is to go on.
    return not isinstance(home, str) or _in_safe_module(home)


def _in_safe_module(module: str) -> bool:
    return any(module == root or module.startswith(root + ".") for root in SAFE_MODULES)


def _resolve(name: str) -> Any:
    """Import the longest module prefix of ``name`` and walk the rest as attributes."""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except Exception:  # not a module (ImportError) or one that fails to import
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr, None)
            if obj is None:
                return None
        return obj
    return None
