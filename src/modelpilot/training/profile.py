"""What a training run cost: time and CPU per stage, memory, I/O, and money.

* **wall** time is ``time.perf_counter``;
* **CPU** time is ``time.process_time`` of this process plus the CPU of its child
  processes (the executor's workers running trials): live children are read with
  ``psutil`` (a pool keeps its workers alive, and ``RUSAGE_CHILDREN`` only counts
  children that have exited and been waited for), exited ones with
  ``resource.getrusage(RUSAGE_CHILDREN)``;
* **peak memory** is the resident-set high-water mark ``ru_maxrss`` of this process and,
  separately, of its largest child. It is a lifetime maximum of the process, so in a
  long-lived process (the controller) it is an upper bound for this run. We chose it
  over ``tracemalloc`` because it is free and counts NumPy/native allocations, which
  ``tracemalloc`` slows down and partly misses;
* **cost** = compute hours × ``costs.compute_per_hour`` + stored GB ×
  ``costs.storage_per_gb_month`` for one month. Compute hours are *CPU* hours (core
  hours: what a trial farm bills for) — never less than the wall time of one core.

Example::

    >>> p = Profiler()
    >>> with p.stage("fit"):
    ...     _ = sum(range(1000))
    >>> sorted(p.to_dict()["stages"])
    ['fit']
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psutil

from modelpilot.config import CostsConfig

_GB = 1e9


def _children_cpu() -> float:
    """CPU seconds of all children: exited ones (rusage) plus live ones (psutil)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = usage.ru_utime + usage.ru_stime
    try:
        for child in psutil.Process().children(recursive=True):
            try:
                t = child.cpu_times()
                total += t.user + t.system
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
    except psutil.Error:
        pass
    return float(total)


def _maxrss_mb(who: int) -> float:
    rss = resource.getrusage(who).ru_maxrss
    # Linux reports kilobytes, macOS bytes
    return float(rss) / (1024 * 1024 if sys.platform == "darwin" else 1024)


class Profiler:
    """Accumulates wall and CPU seconds per named stage, plus byte counters."""

    def __init__(self) -> None:
        self.stages: dict[str, dict[str, float]] = {}
        self.bytes_read = 0
        self.bytes_written = 0
        self._wall0 = time.perf_counter()
        self._cpu0 = time.process_time() + _children_cpu()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the ``with`` block; a stage entered twice accumulates."""
        wall, cpu = time.perf_counter(), time.process_time() + _children_cpu()
        try:
            yield
        finally:
            entry = self.stages.setdefault(name, {"wall_s": 0.0, "cpu_s": 0.0})
            entry["wall_s"] += time.perf_counter() - wall
            entry["cpu_s"] += time.process_time() + _children_cpu() - cpu

    def to_dict(self) -> dict[str, Any]:
        """``{stages, wall_s, cpu_s, peak_memory_mb, peak_child_memory_mb, bytes_read, bytes_written, memory_method}``."""
        return {
            "stages": {k: {"wall_s": round(v["wall_s"], 4), "cpu_s": round(v["cpu_s"], 4)} for k, v in self.stages.items()},
            "wall_s": round(time.perf_counter() - self._wall0, 4),
            "cpu_s": round(time.process_time() + _children_cpu() - self._cpu0, 4),
            "peak_memory_mb": round(_maxrss_mb(resource.RUSAGE_SELF), 1),
            "peak_child_memory_mb": round(_maxrss_mb(resource.RUSAGE_CHILDREN), 1),
            "memory_method": "ru_maxrss",
            "bytes_read": int(self.bytes_read),
            "bytes_written": int(self.bytes_written),
        }


def estimate_cost(profile: dict[str, Any], costs: CostsConfig) -> dict[str, Any]:
    """Money for a run from its profile (see the module docstring for the formula).

    Returns:
        ``{"compute", "storage", "total", "currency", "compute_hours", "stored_gb"}``.
    """
    hours = max(float(profile["cpu_s"]), float(profile["wall_s"])) / 3600.0
    stored_gb = float(profile["bytes_written"]) / _GB
    compute = hours * costs.compute_per_hour
    storage = stored_gb * costs.storage_per_gb_month
    return {
        "compute": round(compute, 8),
        "storage": round(storage, 10),
        "total": round(compute + storage, 8),
        "currency": costs.currency,
        "compute_hours": round(hours, 6),
        "stored_gb": round(stored_gb, 9),
    }
