"""Where training jobs and HPO trials run.

An :class:`Executor` is the small contract every backend implements; ``make_executor``
picks one from the config by name. ``local`` is the one shipped; another backend (a Ray
cluster, say) registers a factory in :data:`EXECUTORS` under its name.
"""

from __future__ import annotations

from collections.abc import Callable

from modelpilot.config import ExecutorConfig
from modelpilot.errors import ConfigError
from modelpilot.executors.base import Executor
from modelpilot.executors.local import LocalExecutor

EXECUTORS: dict[str, Callable[[ExecutorConfig], Executor]] = {
    "local": lambda cfg: LocalExecutor(workers=cfg.workers),
}


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


__all__: list[str] = ["EXECUTORS", "Executor", "LocalExecutor", "make_executor"]
