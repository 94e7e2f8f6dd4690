"""The Ray test cluster: two nodes on 127.0.0.1 in this process's session (helpers for the
fixtures in conftest.py and for the tests).

Importing this module sets, before `import ray`, the environment every Ray process the tests
start inherits: `RAY_LOGGER_LEVEL=warning`, which the documented recipe uses so that Ray's
runtime-env agent does not log the job's environment (where API keys travel), and
`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, which makes Ray keep loopback addresses instead of
rewriting them to the host's external address (not reachable on this test machine).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k2eval.store.runlog import RunSummary

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "livecodebench"))

RAY_ENV = {"RAY_LOGGER_LEVEL": "warning", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "RAY_USAGE_STATS_ENABLED": "0"}
os.environ.update(RAY_ENV)  # before `import ray`: Ray reads them at import time
# Worker processes import k2eval from this checkout.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)

# The test nodes share one Docker engine: each node's image inventory is faked through this
# file ({node_id: [images the node reports absent]}), read by the workers (test-only).
NODE_IMAGES = Path(f"/tmp/k2eval-node-images-{os.getpid()}.json")
os.environ["K2EVAL_TEST_NODE_IMAGES"] = str(NODE_IMAGES)

NODE = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "object_store_memory": 80 << 20,
        "resources": {"sandbox_slots": 1}}


@dataclass
class RayCluster:
    address: str
    temp_dir: Path
    """Ray's session files and logs."""
    head_id: str
    second_id: str
    cluster: Any
    """The `ray.cluster_utils.Cluster` (to add or remove nodes)."""


def start_cluster(temp_dir: Path, **head: Any) -> Any:
    """A `ray.cluster_utils.Cluster` with its head node on loopback, no dashboard."""
    from ray.cluster_utils import Cluster

    return Cluster(initialize_head=True, head_node_args={
        **NODE, "include_dashboard": False, "temp_dir": str(temp_dir), **head})


def comparable(summary: RunSummary | dict[str, Any]) -> dict[str, Any]:
    """A run's summary as written (or read back), less its run id: two runs of the same work
    compare equal."""
    written = summary.to_json() if isinstance(summary, RunSummary) else summary
    return {k: v for k, v in written.items() if k != "run_id"}
