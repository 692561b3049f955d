"""Policies: gates that decide whether a version may serve (triggers and budgets follow)."""

from __future__ import annotations

from modelpilot.policy.gates import GateResult, combine, threshold_gate

__all__ = ["GateResult", "combine", "threshold_gate"]
