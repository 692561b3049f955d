"""A corpus of crafted model files: every one is refused, and none of them runs anything.

Each file is built here as skops would read it (a zip with a ``schema.json``). Its payload
writes a marker file when it runs. For the payloads that fire while loading, a control
test first shows they are live: plain skops, trusting the types it reports, runs them
and the marker appears. modelpilot's loader must refuse every file with an error naming
the refused type, and the marker must not exist afterwards.
"""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import re
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio
from skops.io._protocol import PROTOCOL

from modelpilot.artifacts import ArtifactStore, check_model, load_model, open_artifacts
from modelpilot.artifacts.models import check_model_bytes
from modelpilot.errors import ArtifactError

Node = dict[str, Any]


# -- building blocks of a skops schema --------------------------------------------------


def lit(value: Any) -> Node:
    return {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode",
            "content": json.dumps(value), "is_json": True}


def tup(*items: Node) -> Node:
    return {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode", "content": list(items)}


def lst(*items: Node, module: str = "builtins", cls: str = "list") -> Node:
    return {"__class__": cls, "__module__": module, "__loader__": "ListNode", "content": list(items)}


def dct(**items: Node) -> Node:
    str_type = {"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode"}
    return {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode", "content": items,
            "key_types": lst(*[str_type] * len(items))}


def call(module: str, name: str, *args: Node) -> Node:
    """``module.name(*args)`` at load time (how skops rebuilds ``timezone(offset)``)."""
    return {"__class__": name, "__module__": module, "__loader__": "ConstructorFromReduceNode", "content": tup(*args)}


def ref(module: str, name: str, loader: str = "FunctionNode") -> Node:
    return {"__class__": name, "__module__": module, "__loader__": loader}


def obj(module: str, name: str, **attrs: Node) -> Node:
    return {"__class__": name, "__module__": module, "__loader__": "ObjectNode", "content": dct(**attrs)}


def transformer(func: Node, **kw: Node) -> Node:
    """An otherwise allowed ``FunctionTransformer`` whose ``func`` is the payload (runs on predict)."""
    return obj("sklearn.preprocessing._function_transformer", "FunctionTransformer", func=func,
               inverse_func=lit(None), validate=lit(False), accept_sparse=lit(False), check_inverse=lit(True),
               feature_names_out=lit(None), kw_args=dct(**kw), inv_kw_args=lit(None))


def partial(func: Node, *args: Node) -> Node:
    return {"__class__": "partial", "__module__": "functools", "__loader__": "PartialNode",
            "content": {"func": func, "args": tup(*args), "kwds": dct(), "namespace": dct()}}


def operator_func(kind: str, *args: Node) -> Node:
    return {"__class__": kind, "__module__": "operator", "__loader__": "OperatorFuncNode", "attrs": tup(*args)}


def skops_file(root: Node, **members: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("schema.json", json.dumps({**root, "protocol": PROTOCOL, "_skops_version": sio.__name__}))
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


# -- the corpus ------------------------------------------------------------------------


class _Unpickled:
    """Pickled into a .npy-named file: unpickling it writes the marker."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (self.code,))


def _write(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').write('ran')"


Payload = Callable[[Path, Path], Node]

# (id, schema builder (marker, workdir) -> root node, the refused type named in the error)
FIRES_ON_LOAD: list[tuple[str, Payload, str]] = [
    ("numpy-runstring-exec",
     lambda m, d: call("numpy.testing._private.utils", "runstring", lit(_write(m)), dct()),
     "numpy.testing._private.utils.runstring"),
    ("numpy-load-allow-pickle",
     lambda m, d: call("numpy", "load", lit(str(d / "payload.npy")), lit(None), lit(True)),
     "numpy.load"),
    ("builtins-exec", lambda m, d: call("builtins", "exec", lit(_write(m))), "builtins.exec"),
    ("builtins-eval", lambda m, d: call("builtins", "eval", lit(_write(m))), "builtins.eval"),
    ("os-system", lambda m, d: call("os", "system", lit(f"touch {m}")), "os.system"),
    ("posix-system", lambda m, d: call("posix", "system", lit(f"touch {m}")), "posix.system"),
    ("subprocess-run", lambda m, d: call("subprocess", "run", lst(lit("touch"), lit(str(m)))), "subprocess.run"),
    ("numpy-savetxt-file-write",
     lambda m, d: call("numpy", "savetxt", lit(str(m)), lst(lit(1.0))), "numpy.savetxt"),
    ("list-node-smuggles-a-call",
     lambda m, d: lst(lit("touch"), lit(str(m)), module="subprocess", cls="run"), "subprocess.run"),
    ("loss-node-calls-a-function",
     lambda m, d: {"__class__": "system", "__module__": "os", "__loader__": "LossNode",
                   "content": dct(), "__reduce__": {"args": tup(lit(f"touch {m}"))}},
     "os.system"),
    ("allowed-estimator-with-a-hidden-call",
     lambda m, d: obj("sklearn.linear_model._ridge", "Ridge",
                      alpha=lit(1.0), coef_=call("numpy.testing._private.utils", "runstring", lit(_write(m)), dct())),
     "numpy.testing._private.utils.runstring"),
]

# payloads that run when the model predicts, or that only need one more step to run
OTHER: list[tuple[str, Payload, str]] = [
    ("set-node-smuggles-a-call",
     lambda m, d: {**lst(lit(_write(m))), "__loader__": "SetNode", "__module__": "builtins", "__class__": "exec"},
     "builtins.exec"),
    ("object-node-setstate-of-a-foreign-class",
     lambda m, d: obj("subprocess", "Popen", args=lst(lit("touch"), lit(str(m)))), "subprocess.Popen"),
    ("transformer-func-numpy-runstring",
     lambda m, d: transformer(ref("numpy.testing._private.utils", "runstring")), "runstring"),
    ("transformer-func-builtin-as-type", lambda m, d: transformer(ref("builtins", "exec", "TypeNode")), "builtins.exec"),
    ("transformer-func-numpy-load", lambda m, d: transformer(ref("numpy", "load"), allow_pickle=lit(True)), "numpy.load"),
    ("functools-partial-os-system",
     lambda m, d: transformer(partial(ref("os", "system"), lit(f"touch {m}"))), "functools.partial"),
    ("functools-partial-of-an-allowed-function",
     lambda m, d: transformer(partial(ref("numpy", "asarray", "TypeNode"))), "functools.partial"),
    ("operator-attrgetter-chain",
     lambda m, d: transformer(operator_func("attrgetter", lit("__class__.__init__.__globals__"))), "operator.attrgetter"),
    ("operator-methodcaller",
     lambda m, d: transformer(operator_func("methodcaller", lit("system"), lit(f"touch {m}"))), "operator.methodcaller"),
    ("operator-itemgetter", lambda m, d: transformer(operator_func("itemgetter", lit("__builtins__"))),
     "operator.itemgetter"),
    ("bound-method-of-an-array",
     lambda m, d: transformer({"__class__": "ndarray", "__module__": "numpy", "__loader__": "MethodNode",
                               "content": {"func": "tofile", "obj": lit([1])}}), "MethodNode"),
    ("generator-with-a-bogus-bit-generator",
     lambda m, d: {"__class__": "Generator", "__module__": "numpy.random._generator", "__loader__": "RandomGeneratorNode",
                   "content": {"bit_generator": dct(bit_generator=lit("seed"), state=dct()), "seed_seq": dct()}},
     "numpy.random.seed"),
    ("node-hidden-under-an-unknown-key",
     lambda m, d: {**obj("sklearn.linear_model._ridge", "Ridge", alpha=lit(1.0)),
                   "junk": call("builtins", "exec", lit(_write(m)))}, "builtins.exec"),
    ("non-string-module-name",
     lambda m, d: {"__class__": "Ridge", "__module__": ["sklearn"], "__loader__": "ObjectNode"}, "['sklearn']"),
    ("user-class", lambda m, d: obj("tests.artifacts.test_models", "Doubler"), "Doubler"),
    ("sparse-matrix-loader", lambda m, d: {"__class__": "csr_matrix", "__module__": "scipy.sparse",
                                           "__loader__": "SparseMatrixNode", "type": "scipy", "file": "x.npz"},
     "SparseMatrixNode"),
]


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return open_artifacts(str(tmp_path / "artifacts"))


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    marker = tmp_path / "pwned"
    (tmp_path / "payload.npy").write_bytes(pickle.dumps(_Unpickled(_write(marker))))
    return tmp_path


def _refused(store: ArtifactStore, data: bytes, names: str, marker: Path) -> None:
    key = store.put_bytes(data, suffix=".skops")
    with pytest.raises(ArtifactError, match=r"refusing model .*not on the model allowlist: \[.*" + names):
        load_model(store, key)
    with pytest.raises(ArtifactError, match="not on the model allowlist"):
        check_model(store, key)  # what registering a version runs
    assert not marker.exists(), "the payload ran"


@pytest.mark.parametrize(("build", "refused"), [pytest.param(b, r, id=i) for i, b, r in FIRES_ON_LOAD])
def test_payloads_that_fire_on_load_are_live_in_plain_skops(
    workdir: Path, build: Payload, refused: str
) -> None:
    marker = workdir / "pwned"
    data = skops_file(build(marker, workdir))
    # several payloads return something skops then chokes on: they ran first
    with contextlib.suppress(Exception):
        sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    if not marker.exists():
        pytest.xfail("this skops version refuses the payload by itself")


@pytest.mark.parametrize(("build", "refused"), [pytest.param(b, r, id=i) for i, b, r in FIRES_ON_LOAD + OTHER])
def test_every_crafted_file_is_refused_without_side_effect(
    store: ArtifactStore, workdir: Path, build: Payload, refused: str
) -> None:
    marker = workdir / "pwned"
    _refused(store, skops_file(build(marker, workdir)), _escape(refused), marker)


def test_a_module_named_by_a_file_is_never_imported(
    store: ArtifactStore, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Importing a module can run code: the audit refuses before skops imports anything."""
    marker = workdir / "pwned"
    (workdir / "mp_evil_module.py").write_text(f"{_write(marker)}\nclass Model: pass\n")
    monkeypatch.syspath_prepend(str(workdir))
    _refused(store, skops_file(obj("mp_evil_module", "Model")), "mp_evil_module.Model", marker)
    assert "mp_evil_module" not in sys.modules


def test_a_file_that_is_not_a_skops_zip_is_refused() -> None:
    with pytest.raises(ArtifactError, match="is not a skops model file"):
        check_model_bytes(b"PK\x03\x04 broken", "upload")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("schema.json", "[" * 100_000)  # deep nesting
    with pytest.raises(ArtifactError, match="is not a skops model file"):
        check_model_bytes(buf.getvalue(), "upload")


def test_a_real_model_next_to_the_corpus_still_loads(store: ArtifactStore) -> None:
    from sklearn.linear_model import Ridge

    from modelpilot.artifacts import save_model

    model = Ridge().fit(np.eye(3), [1.0, 2.0, 3.0])
    loaded = load_model(store, save_model(store, model))
    np.testing.assert_allclose(loaded.predict(np.eye(3)), model.predict(np.eye(3)))


def _escape(text: str) -> str:
    return re.escape(text)


# -- consistent types, crafted values: trees that would read out of bounds or loop -----------


def _nodes_file(schema: Any) -> str:
    """The zip member holding the first tree's ``nodes`` array."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            content = node.get("content")
            if isinstance(content, dict) and isinstance(content.get("nodes"), dict) and "file" in content["nodes"]:
                return str(content["nodes"]["file"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    raise AssertionError("no tree nodes in the file")


def _tamper(data: bytes, field: str, value: int) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    member = _nodes_file(json.loads(src.read("schema.json")))
    nodes = np.load(io.BytesIO(src.read(member)), allow_pickle=False)
    nodes[field][0] = value  # the root
    out, buf = io.BytesIO(), io.BytesIO()
    np.save(buf, nodes, allow_pickle=False)
    with zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, buf.getvalue() if name == member else src.read(name))
    return out.getvalue()


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [("left_child", 10**9, "child indices outside the tree"), ("left_child", 0, "before their parent"),
     ("feature", 10**6, "feature outside its")],
    ids=["child-past-the-end", "child-loops-to-the-root", "feature-past-the-inputs"],
)
def test_a_decision_tree_with_crafted_indices_is_refused(store: ArtifactStore, field: str, value: int, says: str) -> None:
    from sklearn.tree import DecisionTreeClassifier

    from modelpilot.artifacts import save_model

    rng = np.random.default_rng(0)
    model = DecisionTreeClassifier(max_depth=3).fit(rng.normal(size=(200, 4)), rng.integers(0, 2, 200))
    key = store.put_bytes(_tamper(store.get_bytes(save_model(store, model)), field, value), suffix=".skops")
    with pytest.raises(ArtifactError, match=f"refusing model .*{says}"):
        load_model(store, key)


@pytest.mark.parametrize(("field", "value", "says"),
                         [("left", 2**31, "child indices"), ("feature_idx", 10**6, "feature outside its")],
                         ids=["child-past-the-end", "feature-past-the-inputs"])
def test_a_boosted_tree_with_crafted_indices_is_refused(store: ArtifactStore, field: str, value: int, says: str) -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor

    from modelpilot.artifacts import save_model

    rng = np.random.default_rng(0)
    model = HistGradientBoostingRegressor(max_iter=3).fit(rng.normal(size=(200, 4)), rng.normal(size=200))
    key = store.put_bytes(_tamper(store.get_bytes(save_model(store, model)), field, value), suffix=".skops")
    with pytest.raises(ArtifactError, match=f"refusing model .*{says}"):
        load_model(store, key)
