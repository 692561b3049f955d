"""Retraining policies a backtest compares, and the config each one replays under.

A policy is written on the command line (``--policy``) as one of:

* ``never`` — train once on the first ``--initial`` rows, never again (the ROI baseline);
* ``fixed:every=N`` — retrain every N batches with the configured data policy, whatever
  the monitoring says (the dynamic triggers are switched off);
* ``dynamic`` — the triggers, budget and gates of the config, as the controller runs them;
* ``at:batches=I,J,...`` — retrain right after the given batch indices (an oracle that
  knows the true drift points, for measuring the others against);
* a name from the config's ``policies:`` section (:class:`~modelpilot.config.PolicyConfig`:
  ``kind`` never/fixed/dynamic, ``every``, and ``triggers``/``retraining`` overrides).

Example::

    >>> parse_policy("fixed:every=5")
    PolicySpec(name='fixed:every=5', kind='fixed', every=5, batches=(), overrides={})
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from modelpilot.config import PilotConfig, TriggerRule, TriggersConfig
from modelpilot.errors import ConfigError
from modelpilot.policy.triggers import DYNAMIC_RULES

_FIXED = re.compile(r"^fixed:every=(\d+)$")
_AT = re.compile(r"^at:batches=(\d+(?:,\d+)*)$")
FORMS = "never, fixed:every=N, dynamic, at:batches=I,J,..."


@dataclass(frozen=True)
class PolicySpec:
    """One policy to replay: its display name, kind and settings."""

    name: str
    kind: str  # "never" | "fixed" | "dynamic" | "at"
    every: int | None = None
    batches: tuple[int, ...] = ()
    # sections of pilot.yaml this policy replaces ({"triggers": {...}, "retraining": {...}})
    overrides: dict[str, Any] = field(default_factory=dict)

    def forced(self, batch: int) -> str | None:
        """The reason to force a retrain after ``batch`` (0-based), or None."""
        if self.kind == "fixed" and self.every and (batch + 1) % self.every == 0:
            return f"fixed cadence: every {self.every} batches (batch {batch})"
        if self.kind == "at" and batch in self.batches:
            return f"scheduled by the policy {self.name!r} at batch {batch}"
        return None


def parse_policy(text: str, cfg: PilotConfig | None = None) -> PolicySpec:
    """Read one ``--policy`` value.

    Raises:
        ConfigError: the value is none of the forms above nor a policy of the config.
    """
    value = text.strip()
    if value in ("never", "dynamic"):
        return PolicySpec(value, value)
    if m := _FIXED.match(value):
        every = int(m.group(1))
        if every < 1:
            raise ConfigError(f"--policy {value!r}: every must be at least 1 batch")
        return PolicySpec(value, "fixed", every=every)
    if m := _AT.match(value):
        return PolicySpec(value, "at", batches=tuple(sorted({int(b) for b in m.group(1).split(",")})))
    named = (cfg.policies if cfg is not None else {}).get(value)
    if named is not None:
        if named.kind == "fixed" and named.every is None:
            raise ConfigError(f"policies.{value}: a fixed policy needs 'every: N' (batches between retrains)")
        overrides = {k: getattr(named, k).model_dump() for k in ("triggers", "retraining") if getattr(named, k) is not None}
        return PolicySpec(value, named.kind, every=named.every, overrides=overrides)
    known = ", ".join(sorted(cfg.policies)) if cfg is not None and cfg.policies else "none"
    raise ConfigError(
        f"unknown policy {value!r}: use one of {FORMS} or a name from the config's 'policies:' "
        f"section (defined: {known})"
    )


def parse_policies(values: list[str], cfg: PilotConfig | None = None) -> list[PolicySpec]:
    """Parse every ``--policy``; ``never`` is added first when absent (it is the ROI baseline).

    Raises:
        ConfigError: an unknown policy, or the same policy twice.
    """
    specs = [parse_policy(v, cfg) for v in (values or ["never", "dynamic"])]
    names = [s.name for s in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"--policy {dup[0]!r} is given twice: give each policy once")
    if not any(s.kind == "never" and not s.overrides for s in specs):
        specs.insert(0, PolicySpec("never", "never"))
    return specs


def policy_config(cfg: PilotConfig, spec: PolicySpec) -> PilotConfig:
    """The config ``spec`` replays under: overrides applied; triggers off unless dynamic."""
    raw = cfg.model_dump(mode="json", by_alias=True, exclude={"base_dir"})
    raw.update(spec.overrides)
    out = PilotConfig.from_dict(raw, base_dir=cfg.base_dir, source=f"policy {spec.name!r}")
    if spec.kind != "dynamic":
        # never/fixed/at retrain only when the policy says so: no trigger may fire
        off = {name: TriggerRule(**{**getattr(out.triggers, name).model_dump(), "enabled": False})
               for name in DYNAMIC_RULES}
        # the change is still located (retrains learn from rows after it), but never fires
        change = out.triggers.change.model_copy(update={"enabled": False})
        out.triggers = TriggersConfig(**{**out.triggers.model_dump(), **off, "schedule": None, "change": change})
    return out
