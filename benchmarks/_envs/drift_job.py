"""One drift job, timed, with its peak extra memory; runs in any of the benchmark's venvs.

    python drift_job.py modelpilot|evidently REF.parquet CUR.parquet NUMERIC CATEGORICAL

NUMERIC and CATEGORICAL are comma-separated column names. Reads both frames first, then
measures only the drift computation: its wall time and its peak resident memory above
what the process held once the frames were loaded (Linux: the peak is reset through
``/proc/self/clear_refs`` and read back as ``VmHWM``; elsewhere a 5 ms RSS sampler).
Prints one JSON line.

* ``evidently``: ``Report([DataDriftPreset()]).run(current, reference)`` — it fits and
  scores from the raw frames (Evidently 0.7 API).
* ``modelpilot``: ``build_reference`` on the reference frame (done once at training time
  in production), then ``drift_report(profile, current, method="auto")``; both timed.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pandas as pd


def _status(field: str) -> float:
    """A ``/proc/self/status`` memory field in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


class PeakMemory:
    """Peak RSS (MB) above the RSS at ``start()``."""

    def __init__(self) -> None:
        self._sampled = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.base = _status("VmRSS")
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM to the current RSS
        except OSError:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self._sampled = max(self._sampled, _status("VmRSS"))

    def extra(self) -> float:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            return max(self._sampled - self.base, 0.0)
        return max(_status("VmHWM") - self.base, 0.0)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def run_evidently(ref: pd.DataFrame, cur: pd.DataFrame, numeric: list[str],
                  categorical: list[str]) -> dict[str, Any]:
    import evidently
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    def job() -> Any:
        definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
        r = Dataset.from_pandas(ref, data_definition=definition)
        c = Dataset.from_pandas(cur, data_definition=definition)
        return Report([DataDriftPreset()]).run(c, r)

    memory = PeakMemory()
    memory.start()
    snapshot, seconds = timed(job)
    extra = memory.extra()
    drifted = None
    try:  # DriftedColumnsCount -> {"count": n, "share": x}
        for metric in snapshot.dict()["metrics"]:
            if "DriftedColumnsCount" in str(metric.get("metric_name", "")):
                drifted = int(metric["value"]["count"])
    except Exception:  # the count is only a sanity check; the timing stands without it
        pass
    return {"engine": f"evidently {evidently.__version__}", "seconds": seconds,
            "extra_mb": extra, "drifted": drifted}


def run_modelpilot(ref: pd.DataFrame, cur: pd.DataFrame, numeric: list[str],
                   categorical: list[str]) -> dict[str, Any]:
    from importlib.metadata import version

    from modelpilot.monitoring import build_reference, drift_report

    memory = PeakMemory()
    memory.start()
    profile, fit = timed(lambda: build_reference(ref, numeric=numeric, categorical=categorical))
    report, score = timed(lambda: drift_report(profile, cur, method="auto"))
    extra = memory.extra()
    return {"engine": f"modelpilot {version('modelpilot')}",
            "seconds": fit + score, "fit_seconds": fit, "score_seconds": score,
            "extra_mb": extra, "drifted": int(report["n_drifted"])}


def main() -> None:
    engine, ref_path, cur_path, numeric, categorical = sys.argv[1:6]
    ref, cur = pd.read_parquet(ref_path), pd.read_parquet(cur_path)
    run = {"evidently": run_evidently, "modelpilot": run_modelpilot}[engine]
    out = run(ref, cur, numeric.split(","), categorical.split(","))
    out["rows"] = len(ref)
    out["frames_mb"] = _status("VmRSS")  # for context: what the process holds overall
    print(json.dumps(out))


if __name__ == "__main__":
    main()
