"""The on-device agent: score rows with a verified ONNX bundle, send home only aggregates.

Runs on the device with onnxruntime, NumPy and the standard library only (no pandas, no
scikit-learn, nothing else of modelpilot but :mod:`modelpilot.edge.ed25519`); copy this
file and ``ed25519.py`` next to each other and ``python agent.py BUNDLE --source DIR`` runs.

What it does, in order:

1. **Verify before loading.** The bundle (a zip: ``model.onnx``, ``schema.json``,
   ``profile.json``, ``manifest.json``, ``manifest.sig``) is refused unless the manifest's
   Ed25519 signature verifies with the trusted public key AND every file's SHA-256 and size
   match the manifest AND the zip holds nothing else. Nothing from a refused bundle is read.
2. **Score** rows from a CSV/JSON-lines file, a folder of them, or stdin, in batches;
   predictions stay on the device (``STATE/predictions.csv``).
3. **Aggregate per window** (``--window-rows`` rows or ``--window-seconds``): per numeric
   feature the counts over the reference's quantile bins (right-closed) plus a missing
   count; per categorical feature the counts of the reference categories, ``other`` and
   missing; the same for the score and the predicted label; rows, errors by kind, latency
   percentiles and a latency histogram, inference CPU seconds; where the row carries its
   label, confusion counts (classification) or error sums (regression), overall and per
   segment. Never a raw row.
4. **Store and forward.** Each report gets the next sequence number and is written to
   ``STATE/outbox`` before it is sent; it leaves the outbox only when home acknowledged it
   (a replayed sequence number is acknowledged as a duplicate), so an outage is replayed in
   order, exactly once. A report home refuses as malformed moves to ``outbox/refused``.
5. **Pull and hot-swap.** Every ``--poll`` seconds it asks home for the bundle it should run
   (``GET /v1/edge/{device}/bundle`` with ``If-None-Match``); a new one is verified like the
   first, then the open window is closed and the new model takes the next row. A refused
   bundle is counted and reported in the next report; the old model keeps scoring.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import os
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

try:
    from modelpilot.edge.ed25519 import verify
except ImportError:  # the agent copied alone onto a device, next to ed25519.py
    from ed25519 import verify  # type: ignore[import-not-found,no-redef]

BUNDLE_FORMAT = "modelpilot.edge-bundle/1"
REPORT_FORMAT = "modelpilot.edge-report/1"
BUNDLE_FILES = ("model.onnx", "schema.json", "profile.json")
NUMERIC_TYPES = frozenset({"float", "int", "number", "bool"})
# fixed latency buckets (ms), so histograms of many devices and windows add up exactly
LATENCY_EDGES_MS = [round(0.01 * 10 ** (i / 8), 6) for i in range(1, 49)]  # 0.013 ms .. 10 s


class BundleRefused(Exception):
    """The bundle failed verification; nothing of it was loaded."""


class SchemaMismatch(Exception):
    """The data does not carry the columns the bundle's model needs."""


# --------------------------------------------------------------------------- the bundle


@dataclass(frozen=True)
class Bundle:
    """A verified bundle: the manifest, schema, device profile and model bytes."""

    manifest: dict[str, Any]
    schema: dict[str, Any]
    profile: dict[str, Any]
    model: bytes
    etag: str  # the manifest's SHA-256: what home answers If-None-Match with
    raw: bytes

    @property
    def version(self) -> int:
        return int(self.manifest["version"])


def open_bundle(data: bytes, public_key: bytes) -> Bundle:
    """Verify a bundle's signature and hashes, then read it.

    Raises:
        BundleRefused: not a bundle, a bad signature, a file missing, extra, or changed.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = set(archive.namelist())
        expected = {*BUNDLE_FILES, "manifest.json", "manifest.sig"}
        if names != expected:
            raise BundleRefused(f"the bundle holds {sorted(names)}; a bundle holds exactly {sorted(expected)}")
        manifest_bytes, signature = archive.read("manifest.json"), archive.read("manifest.sig")
        if not verify(public_key, manifest_bytes, signature):
            raise BundleRefused("the manifest's signature does not verify with the trusted public key "
                                "(tampered, or signed by another key)")
        manifest = json.loads(manifest_bytes)
        if manifest.get("format") != BUNDLE_FORMAT:
            raise BundleRefused(f"unknown bundle format {manifest.get('format')!r}; expected {BUNDLE_FORMAT}")
        files = {}
        for name in BUNDLE_FILES:
            content = archive.read(name)
            want = manifest["files"][name]
            if hashlib.sha256(content).hexdigest() != want["sha256"] or len(content) != want["bytes"]:
                raise BundleRefused(f"{name} does not match the signed manifest (changed after signing)")
            files[name] = content
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError) as exc:
        if isinstance(exc, BundleRefused):
            raise
        raise BundleRefused(f"not a readable bundle: {exc}") from None
    return Bundle(manifest, json.loads(files["schema.json"]), json.loads(files["profile.json"]),
                  files["model.onnx"], hashlib.sha256(manifest_bytes).hexdigest(), data)


# --------------------------------------------------------------------------- scoring


class Scorer:
    """One onnxruntime session over a bundle's graph, fed one column per input.

    The graph's inputs are described in ``schema.json`` (``inputs``, as
    :func:`modelpilot.onnx.convert` records them): a numeric column is fed as ``float32``
    (NaN = missing), a categorical one as strings, ``str(value)``, with the column's
    ``missing`` marker for a missing value — the casts the scikit-learn pipeline makes. The
    output read is ``probabilities`` (classifiers; the label is the class with the highest
    probability, as the pipeline's ``predict``) or ``variable`` (regressors).
    """

    def __init__(self, bundle: Bundle, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.bundle = bundle
        self.session = ort.InferenceSession(bundle.model, options, providers=["CPUExecutionProvider"])
        self.inputs: list[dict[str, Any]] = list(bundle.schema["inputs"])
        self.output = str(bundle.schema["output"])
        self.classification = bundle.manifest.get("task") == "classification"
        self.classes = np.asarray(bundle.manifest.get("classes") or [], dtype=object)

    def feed(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The session's inputs from parsed columns (float64 / object arrays)."""
        out = {}
        for spec in self.inputs:
            col = columns[spec["name"]]
            if spec["kind"] == "numeric":
                out[spec["name"]] = col.astype(np.float32).reshape(-1, 1)
            else:
                missing = spec["missing"]
                out[spec["name"]] = np.array([missing if v is None else str(v) for v in col],
                                             dtype=object).reshape(-1, 1)
        return out

    def score(self, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Labels and one score per row (positive-class or top-class probability;
        the prediction itself for regression)."""
        got = np.asarray(self.session.run([self.output], self.feed(columns))[0], dtype=np.float64)
        if not self.classification:
            values = got.reshape(-1)
            return values, values
        labels = self.classes[got.argmax(axis=1)]
        return labels, got[:, 1] if got.shape[1] == 2 else got.max(axis=1)


# --------------------------------------------------------------------------- the window


def _bin_counts(values: np.ndarray, edges: list[float]) -> list[int]:
    """Counts over right-closed bins ``(e[i-1], e[i]]`` (outer bins open), then missing."""
    finite = values[np.isfinite(values)]
    counts = np.bincount(np.searchsorted(np.asarray(edges, dtype=np.float64), finite, side="left"),
                         minlength=len(edges) + 1)
    return [*counts.tolist(), int(values.size - finite.size)]


def _category_counts(values: Iterable[Any], index: dict[str, int]) -> list[int]:
    """Counts per reference category, then ``other``, then missing."""
    k = len(index)
    counts = [0] * (k + 2)
    for v in values:
        counts[k + 1 if v is None else index.get(str(v), k)] += 1
    return counts


def _add(into: list[int], more: list[int]) -> None:
    for i, v in enumerate(more):
        into[i] += v


@dataclass
class Window:
    """The aggregates of one window of rows scored by one bundle version."""

    profile: dict[str, Any]
    started: float = field(default_factory=time.time)
    rows: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    cpu_seconds: float = 0.0
    source_bytes: int = 0  # what shipping the raw rows home would have moved
    latencies_ms: list[float] = field(default_factory=list)
    numeric: dict[str, list[int]] = field(default_factory=dict)
    categorical: dict[str, list[int]] = field(default_factory=dict)
    score: list[int] | None = None
    prediction: list[int] | None = None
    labelled: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        p = self.profile
        self._cat_index = {n: {c: i for i, c in enumerate(cats)} for n, cats in p["categorical"].items()}
        self.numeric = {n: [0] * (len(e) + 2) for n, e in p["numeric"].items()}
        self.categorical = {n: [0] * (len(c) + 2) for n, c in p["categorical"].items()}
        if p.get("score") is not None:
            self.score = [0] * (len(p["score"]) + 2)
        if p.get("prediction") is not None:
            self._pred_index = {c: i for i, c in enumerate(p["prediction"])}
            self.prediction = [0] * (len(p["prediction"]) + 2)

    def add(self, columns: dict[str, np.ndarray], labels: np.ndarray, scores: np.ndarray,
            truth: list[Any] | None, task: str) -> None:
        """Count one scored batch (``truth``: the rows' labels, None where not known)."""
        self.rows += int(labels.shape[0])
        for name, edges in self.profile["numeric"].items():
            _add(self.numeric[name], _bin_counts(columns[name].astype(np.float64), edges))
        for name, index in self._cat_index.items():
            _add(self.categorical[name], _category_counts(columns[name], index))
        if self.score is not None:
            _add(self.score, _bin_counts(scores, self.profile["score"]))
        if self.prediction is not None:
            _add(self.prediction, _category_counts(labels.tolist(), self._pred_index))
        if truth is not None:
            self._add_labels(columns, labels, truth, task)

    def _add_labels(self, columns: dict[str, np.ndarray], labels: np.ndarray, truth: list[Any], task: str) -> None:
        segments = [s for s in self.profile.get("segments", []) if s in columns]
        for i, y in enumerate(truth):
            if y is None:
                continue
            keys = ["*"] + [f"{s}={columns[s][i]}" for s in segments]
            for key in keys:
                if task == "classification":
                    cell = self.labelled.setdefault(key, {})
                    pair = f"{y}\x1f{labels[i]}"
                    cell[pair] = cell.get(pair, 0) + 1
                else:
                    err = float(labels[i]) - float(y)
                    sums = self.labelled.setdefault(key, [0, 0.0, 0.0, 0.0, 0.0, 0.0])
                    for j, v in enumerate((1, err, abs(err), err * err, float(y), float(y) ** 2)):
                        sums[j] += v

    def report(self, *, device: str, bundle: Bundle, ended: float | None = None) -> dict[str, Any]:
        lat = np.asarray(self.latencies_ms, dtype=np.float64)
        pct = ({f"p{q}": float(np.percentile(lat, q)) for q in (50, 95, 99)} | {"max": float(lat.max())}
               if lat.size else {})
        hist = (np.bincount(np.searchsorted(LATENCY_EDGES_MS, lat, side="left"),
                            minlength=len(LATENCY_EDGES_MS) + 1).tolist() if lat.size else [])
        labelled: dict[str, Any] = {}
        if self.labelled:
            if bundle.manifest.get("task") == "classification":
                labelled = {k: [[*pair.split("\x1f"), n] for pair, n in v.items()] for k, v in self.labelled.items()}
            else:
                labelled = dict(self.labelled)
        return {
            "format": REPORT_FORMAT, "device": device, "model": bundle.manifest["model"],
            "version": bundle.version, "bundle": bundle.etag,
            "window_start": _iso(self.started), "window_end": _iso(ended or time.time()),
            "rows": self.rows, "errors": dict(self.errors), "cpu_seconds": self.cpu_seconds,
            "source_bytes": self.source_bytes,
            "latency_ms": pct, "latency_histogram": hist,
            "numeric": self.numeric, "categorical": self.categorical,
            "score": self.score, "prediction": self.prediction, "labelled": labelled,
            "events": self.events,
        }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


# --------------------------------------------------------------------------- store and forward


class Outbox:
    """Reports on disk, numbered, until home acknowledges them (see the module docstring).

    Files are written to a temporary name and renamed, so a crash never leaves half a report;
    ``next_seq`` is also recovered from the files themselves.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.refused_dir = root / "refused"
        self.refused_dir.mkdir(parents=True, exist_ok=True)
        self._state = root / "seq.json"
        stored = json.loads(self._state.read_text())["next_seq"] if self._state.exists() else 1
        on_disk = [int(p.stem) for p in [*root.glob("*.json"), *self.refused_dir.glob("*.json")]
                   if p.stem.isdigit()]
        self.next_seq = max([stored, *(s + 1 for s in on_disk)])

    def put(self, report: dict[str, Any]) -> int:
        seq = self.next_seq
        report["seq"] = seq
        _write_atomic(self.root / f"{seq:012d}.json", json.dumps(report, separators=(",", ":")).encode())
        self.next_seq = seq + 1
        _write_atomic(self._state, json.dumps({"next_seq": self.next_seq}).encode())
        return seq

    def pending(self) -> list[Path]:
        return sorted(p for p in self.root.glob("*.json") if p.stem.isdigit())

    def refuse(self, path: Path, reason: str) -> None:
        os.replace(path, self.refused_dir / path.name)
        (self.refused_dir / f"{path.stem}.reason.txt").write_text(reason)


def wire(report: bytes) -> bytes:
    """What a report costs on the wire: its JSON, gzip-compressed (mtime 0: reproducible)."""
    return gzip.compress(report, compresslevel=9, mtime=0)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class Home:
    """HTTP to the home server: reports out, bundles in (urllib, no dependencies)."""

    def __init__(self, url: str, device: str, token: str, timeout: float = 10.0) -> None:
        self.url, self.device, self.timeout = url.rstrip("/"), device, timeout
        self.headers = {"Authorization": f"Bearer {token}"}

    def send(self, body: bytes) -> tuple[int, str]:
        """POST one report, gzip-compressed; (status, body). Raises OSError when home cannot
        be reached."""
        req = urllib.request.Request(f"{self.url}/v1/edge/{self.device}/report", data=wire(body), method="POST",
                                     headers={**self.headers, "Content-Type": "application/json",
                                              "Content-Encoding": "gzip"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return int(resp.status), resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode("utf-8", "replace")

    def pull(self, etag: str | None) -> bytes | None:
        """The bundle home wants this device to run, or None when it is ``etag`` (304)."""
        headers = dict(self.headers)
        if etag:
            headers["If-None-Match"] = f'"{etag}"'
        req = urllib.request.Request(f"{self.url}/v1/edge/{self.device}/bundle", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return bytes(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                return None
            raise OSError(f"home answered {exc.code} to the bundle request: {exc.read()[:300]!r}") from None


# --------------------------------------------------------------------------- sources


def read_rows(stream: io.TextIOBase | Any, name: str) -> tuple[list[str] | None, Iterator[dict[str, Any]]]:
    """The header (CSV) and the rows of a CSV or JSON-lines stream."""
    first = stream.readline()
    if not first:
        return None, iter(())
    if first.lstrip().startswith("{"):
        def lines() -> Iterator[dict[str, Any]]:
            for line in [first, *stream]:
                if line.strip():
                    yield json.loads(line)
        return None, lines()
    header = next(csv.reader([first]))
    return header, ({k: (v if v != "" else None) for k, v in row.items()} for row in csv.DictReader(stream, header))


# --------------------------------------------------------------------------- the agent


class Agent:
    """Scores, aggregates, stores and forwards; pulls and swaps bundles.

    Args:
        bundle: the verified bundle to start with.
        public_key: the trusted 32-byte Ed25519 key every later bundle must verify with.
        state: the device's folder (outbox, predictions, the current bundle).
        home: where reports go and bundles come from (None: keep everything in the outbox).
        device: this device's name.
        window_rows: close a window after this many rows ...
        window_seconds: ... or after this many seconds.
        batch: rows per inference call.
    """

    def __init__(self, bundle: Bundle, public_key: bytes, state: Path, *, home: Home | None = None,
                 device: str = "device", window_rows: int = 10_000, window_seconds: float = 60.0,
                 batch: int = 256, keep_predictions: bool = True) -> None:
        self.public_key, self.state, self.home, self.device = public_key, state, home, device
        self.window_rows, self.window_seconds, self.batch = window_rows, window_seconds, batch
        state.mkdir(parents=True, exist_ok=True)
        self.outbox = Outbox(state / "outbox")
        self.keep_predictions = keep_predictions
        self.counters: Counter[str] = Counter()
        self._pending_events: list[dict[str, Any]] = []
        self._swap(bundle)

    # -- bundles
    def _swap(self, bundle: Bundle) -> None:
        self.scorer = Scorer(bundle)
        self.bundle = bundle
        self.window = Window(bundle.profile)
        _write_atomic(self.state / "current.bundle", bundle.raw)

    def offer(self, data: bytes) -> bool:
        """Verify a bundle from home and switch to it; False (counted, reported) if refused."""
        try:
            new = open_bundle(data, self.public_key)
        except BundleRefused as exc:
            self.counters["bundle_refused"] += 1
            self._pending_events.append({"kind": "bundle_refused", "reason": str(exc),
                                         "sha256": hashlib.sha256(data).hexdigest()})
            print(f"refused a bundle from home: {exc}", file=sys.stderr)
            return False
        if new.etag == self.bundle.etag:
            return True
        self.close_window()
        old = self.bundle.version
        self._swap(new)
        self.counters["bundle_swaps"] += 1
        self._pending_events.append({"kind": "bundle_swapped", "from": old, "to": new.version, "etag": new.etag})
        return True

    def pull(self) -> None:
        if self.home is None:
            return
        try:
            data = self.home.pull(self.bundle.etag)
        except OSError as exc:
            self.counters["pull_failed"] += 1
            print(f"cannot pull a bundle from home: {exc}", file=sys.stderr)
            return
        if data is not None:
            self.offer(data)

    # -- scoring
    def parse(self, rows: list[dict[str, Any]]) -> tuple[dict[str, np.ndarray], list[Any] | None, list[int]]:
        """Columns of the good rows, their labels, and the indices of rows refused."""
        target = self.bundle.manifest.get("target")
        cols = self.bundle.schema["columns"]
        good, bad = [], []
        parsed: dict[str, list[Any]] = {c["name"]: [] for c in cols}
        for i, row in enumerate(rows):
            try:
                values = [_value(row.get(c["name"]), c["type"]) for c in cols]
            except (TypeError, ValueError):
                bad.append(i)
                continue
            good.append(i)
            for c, v in zip(cols, values, strict=True):
                parsed[c["name"]].append(v)
        columns = {c["name"]: (np.asarray(parsed[c["name"]], dtype=np.float64) if c["type"] in NUMERIC_TYPES
                               else np.asarray(parsed[c["name"]], dtype=object)) for c in cols}
        truth = None
        if target and any(target in rows[i] for i in good):
            truth = [rows[i].get(target) for i in good]
            if not self.scorer.classification:
                truth = [None if y is None else float(y) for y in truth]
            else:
                truth = [None if y is None else _label_text(y) for y in truth]
        return columns, truth, bad

    def score_rows(self, rows: list[dict[str, Any]]) -> int:
        """Score one batch into the window; returns the rows scored."""
        columns, truth, bad = self.parse(rows)
        if bad:
            self.window.errors["bad_value"] += len(bad)
            self._quarantine([rows[i] for i in bad])
        n = len(rows) - len(bad)
        if n == 0:
            return 0
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            labels, scores = self.scorer.score(columns)
        except Exception as exc:  # onnxruntime raises its own types; the rows are kept
            self.window.errors["inference"] += n
            refused = set(bad)
            self._quarantine([r for i, r in enumerate(rows) if i not in refused], reason=str(exc))
            return 0
        elapsed_ms = (time.perf_counter() - t0) * 1000.0
        self.window.cpu_seconds += time.process_time() - c0
        self.window.latencies_ms.extend([elapsed_ms / n] * n if n > 1 else [elapsed_ms])
        self.window.add(columns, labels, scores, truth, str(self.bundle.manifest.get("task")))
        if self.keep_predictions:
            self._keep(labels, scores)
        return n

    def _keep(self, labels: np.ndarray, scores: np.ndarray) -> None:
        with open(self.state / "predictions.csv", "a", newline="") as fh:
            w = csv.writer(fh)
            version = self.bundle.version
            w.writerows((version, _label_text(lab), f"{s:.6g}") for lab, s in zip(labels.tolist(), scores.tolist(), strict=True))

    def _quarantine(self, rows: list[dict[str, Any]], reason: str = "bad value") -> None:
        with open(self.state / "rejected.jsonl", "a") as fh:
            for row in rows:
                fh.write(json.dumps({"reason": reason, "row": row}, default=str) + "\n")

    # -- windows and transport
    def due(self) -> bool:
        return (self.window.rows >= self.window_rows
                or (self.window.rows > 0 and time.time() - self.window.started >= self.window_seconds))

    def close_window(self) -> int | None:
        """Write the open window's report to the outbox; its sequence number (None if empty)."""
        w = self.window
        w.events.extend(self._pending_events)
        if w.rows == 0 and not w.errors and not w.events:
            return None
        self._pending_events = []
        seq = self.outbox.put(w.report(device=self.device, bundle=self.bundle))
        self.window = Window(self.bundle.profile)
        return seq

    def flush(self) -> int:
        """Send the outbox in order until home fails; returns the reports acknowledged."""
        if self.home is None:
            return 0
        sent = 0
        for path in self.outbox.pending():
            try:
                status, body = self.home.send(path.read_bytes())
            except OSError:
                self.counters["send_failed"] += 1
                break  # home unreachable: everything stays, in order, for the next try
            if status == 200:
                path.unlink()
                sent += 1
                self.counters["duplicates" if _duplicate(body) else "sent"] += 1
            elif status in (400, 413, 422):
                self.outbox.refuse(path, f"{status} {body}")
                self.counters["refused"] += 1
            else:  # 401/403/404/5xx: a setup or server problem; keep the report and retry later
                self.counters["send_failed"] += 1
                print(f"home answered {status}: {body[:300]}", file=sys.stderr)
                break
        return sent

    def feed(self, rows: Iterable[dict[str, Any]]) -> int:
        """Score an iterable of rows in batches, closing windows as they fill."""
        total, batch = 0, []
        for row in rows:
            batch.append(row)
            if len(batch) >= self.batch:
                total += self.score_rows(batch)
                batch = []
                if self.due():
                    self.close_window()
                    self.flush()
        if batch:
            total += self.score_rows(batch)
        return total

    def feed_file(self, path: Path) -> int:
        """Score one file; a file without the model's columns is refused whole and left in place.

        Raises:
            SchemaMismatch: the header lacks columns the bundle needs.
        """
        with open(path, newline="") as fh:
            header, rows = read_rows(fh, path.name)
            needed = [c["name"] for c in self.bundle.schema["columns"]]
            absent = [c for c in needed if header is not None and c not in header]
            if absent:
                self.window.errors["schema"] += 1
                self._pending_events.append({"kind": "schema_mismatch", "file": path.name, "missing": absent})
                raise SchemaMismatch(f"{path.name} lacks the columns {absent} that model "
                                     f"{self.bundle.manifest['model']} v{self.bundle.version} needs")
            self.window.source_bytes += path.stat().st_size
            return self.feed(rows)


def _duplicate(body: str) -> bool:
    try:
        answer = json.loads(body)
    except ValueError:
        return False
    return isinstance(answer, dict) and answer.get("duplicate") is True


def _value(v: Any, kind: str) -> Any:
    if kind in NUMERIC_TYPES:
        if v is None or v == "":
            return np.nan
        if isinstance(v, bool):
            return float(v)
        if isinstance(v, str) and v.strip().lower() in ("true", "false"):
            return 1.0 if v.strip().lower() == "true" else 0.0
        return float(v)
    if v is None:
        return None
    if isinstance(v, (dict, list)):
        raise TypeError("a category must be a scalar")
    return v


def _label_text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


# --------------------------------------------------------------------------- the command


def _files(source: Path, done: set[str]) -> list[Path]:
    if source.is_file():
        return [] if source.name in done else [source]
    return sorted(p for p in source.iterdir()
                  if p.is_file() and p.suffix in (".csv", ".jsonl", ".json") and p.name not in done)


def run(agent: Agent, source: str, *, follow: bool = False, poll: float = 5.0,
        stop_after: float | None = None) -> dict[str, Any]:
    """Process ``source`` (a file, a folder, or ``-`` for stdin), report, pull; returns counters.

    With ``follow`` a folder is watched for new files until ``stop_after`` seconds (or
    forever); files already processed are listed in ``STATE/processed.json``.
    """
    started = time.time()
    agent.pull()
    agent.flush()
    if source == "-":
        header, rows = read_rows(sys.stdin, "stdin")
        agent.feed(rows)
    else:
        path = Path(source)
        done_file = agent.state / "processed.json"
        done: set[str] = set(json.loads(done_file.read_text())) if done_file.exists() else set()
        last_poll = time.time()
        while True:
            for file in _files(path, done):
                try:
                    agent.feed_file(file)
                except SchemaMismatch as exc:
                    print(f"refused: {exc}", file=sys.stderr)
                    agent.counters["files_refused"] += 1
                    continue
                except (OSError, ValueError) as exc:
                    print(f"cannot read {file}: {exc}", file=sys.stderr)
                    agent.counters["files_failed"] += 1
                    continue
                done.add(file.name)
                _write_atomic(done_file, json.dumps(sorted(done)).encode())
                agent.counters["files"] += 1
            if agent.due():
                agent.close_window()
            if time.time() - last_poll >= poll:
                agent.close_window()
                agent.flush()
                agent.pull()
                last_poll = time.time()
            if not follow or (stop_after is not None and time.time() - started >= stop_after):
                break
            time.sleep(min(0.2, poll))
    agent.close_window()
    agent.flush()
    return {**agent.counters, "version": agent.bundle.version, "pending": len(agent.outbox.pending())}


def load_public_key(path: str | Path) -> bytes:
    """A 32-byte raw Ed25519 public key from a file of its hex (what ``edge keygen`` writes)."""
    text = Path(path).read_text().strip()
    key = bytes.fromhex(text)
    if len(key) != 32:
        raise ValueError(f"{path} does not hold a 32-byte Ed25519 public key in hex")
    return key


def main(argv: list[str] | None = None) -> int:
    """``python -m modelpilot.edge.agent BUNDLE --source FILE|DIR|- --public-key KEY ...``."""
    ap = argparse.ArgumentParser(prog="modelpilot edge run", description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle", help="the bundle to start with (a newer accepted one in --state wins)")
    ap.add_argument("--source", required=True, help="a CSV/JSON-lines file, a folder of them, or - (stdin)")
    ap.add_argument("--public-key", required=True, help="the trusted key (hex), from 'modelpilot edge keygen'")
    ap.add_argument("--state", default=".modelpilot-edge", help="the device's folder (outbox, predictions)")
    ap.add_argument("--home", help="the home server's URL, e.g. http://home:8000")
    ap.add_argument("--device", default=os.environ.get("MODELPILOT_DEVICE", "device"))
    ap.add_argument("--token", default=os.environ.get("MODELPILOT_DEVICE_TOKEN", ""))
    ap.add_argument("--window-rows", type=int, default=10_000)
    ap.add_argument("--window-seconds", type=float, default=60.0)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--poll", type=float, default=30.0, help="seconds between sends and bundle pulls")
    ap.add_argument("--follow", action="store_true", help="watch the folder for new files")
    ap.add_argument("--stop-after", type=float, help="with --follow: stop after this many seconds")
    args = ap.parse_args(argv)
    key = load_public_key(args.public_key)
    state = Path(args.state)
    current = state / "current.bundle"
    path = current if current.exists() else Path(args.bundle)
    try:
        bundle = open_bundle(path.read_bytes(), key)
    except BundleRefused as exc:
        print(f"error: refused bundle {path}: {exc}; nothing was loaded. Export a bundle signed by "
              "the key whose public half you passed with --public-key", file=sys.stderr)
        return 2
    home = Home(args.home, args.device, args.token) if args.home else None
    agent = Agent(bundle, key, state, home=home, device=args.device, window_rows=args.window_rows,
                  window_seconds=args.window_seconds, batch=args.batch)
    result = run(agent, args.source, follow=args.follow, poll=args.poll, stop_after=args.stop_after)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
