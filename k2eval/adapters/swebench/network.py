"""Networking of instance containers, as the official harness has it unless the task says not.

The official harness creates instance containers without a network setting, so they join
Docker's default bridge network: eval scripts run `pip install -e .` (498 of the 500
Verified rows), some FAIL_TO_PASS tests call live HTTP services, and SWE-agent-style
scaffolds run their agents with network too. The task option `network` chooses:

    bridge   Docker's default bridge, as the official harness (default)
    none     no network (loopback only)

An engine started without a default bridge (`dockerd --bridge=none`) silently gives
containers asking for it no network at all. That is detected: the run goes on without
network, says so in one line, and records the network actually used in the run's
conditions (manifest and summary), so that its score is never mistaken for one obtained
under official conditions.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from k2eval.errors import ConfigError
from k2eval.spec import TaskSpec

OFFICIAL_NETWORK = "bridge"
NETWORK_MODES = ("bridge", "none")
_ALIASES = {"true": "bridge", "on": "bridge", "default": "bridge", "false": "none",
            "off": "none"}


def requested_network(spec: TaskSpec) -> str:
    """The task's `network` option as one of NETWORK_MODES (booleans: on = bridge)."""
    raw = spec.option("network", OFFICIAL_NETWORK)
    value = ("bridge" if raw else "none") if isinstance(raw, bool) else str(raw).strip().lower()
    value = _ALIASES.get(value, value)
    if value not in NETWORK_MODES:
        raise ConfigError(f"task {spec.name}: option network must be one of "
                          f"{'|'.join(NETWORK_MODES)} (official: {OFFICIAL_NETWORK}), got {raw!r}")
    return value


@dataclass(frozen=True)
class NetworkChoice:
    requested: str
    used: str

    def conditions(self) -> dict[str, Any]:
        return {"network": self.used, "network_requested": self.requested,
                "official_conditions": self.used == OFFICIAL_NETWORK}


class NetworkResolver:
    """The network instance containers get on this engine; warns once when it cannot be the
    requested one. One per run (the adapter holds it)."""

    def __init__(self) -> None:
        self._choices: dict[str, NetworkChoice] = {}

    def resolve(self, spec: TaskSpec) -> NetworkChoice:
        requested = requested_network(spec)
        if requested not in self._choices:
            self._choices[requested] = self._decide(requested)
        return self._choices[requested]

    @staticmethod
    def _decide(requested: str) -> NetworkChoice:
        from k2eval.sandbox.client import default_bridge_available

        if requested == "none" or default_bridge_available():
            return NetworkChoice(requested, requested)
        print("warning: this Docker engine has no default bridge network (started with "
              "--bridge=none?): SWE-bench containers run without network, unlike the official "
              "harness; the run records network=none", file=sys.stderr)
        return NetworkChoice(requested, "none")
