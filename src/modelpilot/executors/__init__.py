"""Where training jobs, HPO trials and backtest policies run.

An :class:`Executor` is the small contract every backend implements; ``make_executor``
picks one from the config by name: ``local`` (worker processes on this machine) or
``ray`` (tasks on a Ray cluster, :mod:`modelpilot.executors.ray`, imported only when
chosen). Another backend registers a factory in :data:`EXECUTORS` under its name.
"""

from __future__ import annotations

from collections.abc import Callable

from modelpilot.config import ExecutorConfig
from modelpilot.errors import ConfigError
from modelpilot.executors.base import (
    Executor,
    current_node,
    limit_threads,
    run_limited,
    slot_threads,
)
from modelpilot.executors.local import LocalExecutor

EXECUTORS: dict[str, Callable[[ExecutorConfig], Executor]] = {
    "local": lambda cfg: LocalExecutor(workers=cfg.workers, threads=cfg.threads),
    "ray": lambda cfg: _ray_executor(cfg),
}


def _ray_executor(cfg: ExecutorConfig) -> Executor:
    from modelpilot.executors.ray import RayExecutor

    return RayExecutor(address=cfg.address, workers=cfg.workers, threads=cfg.threads)


def make_executor(cfg: ExecutorConfig) -> Executor:
    """The executor named by ``cfg.kind``.

    Raises:
        ConfigError: no executor has that name.
    """
    try:
        factory = EXECUTORS[cfg.kind]
    except KeyError:
        raise ConfigError(
            f"executor.kind: unknown executor {cfg.kind!r}; choose one of {', '.join(sorted(EXECUTORS))}"
        ) from None
    return factory(cfg)


__all__: list[str] = [
    "EXECUTORS", "Executor", "LocalExecutor", "current_node", "limit_threads", "make_executor", "run_limited",
    "slot_threads",
]
