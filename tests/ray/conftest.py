"""A real two-node Ray cluster on this machine, started once for the module and torn down.

Both nodes listen on 127.0.0.1 (no dashboard, a small object store) and each declares one
`sandbox_slots` unit. Two environment settings apply to every Ray process the tests start:
`RAY_LOGGER_LEVEL=warning`, which the documented recipe uses so that Ray's runtime-env agent
does not log the job's environment (where API keys travel), and
`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, which makes Ray keep loopback addresses instead of
rewriting them to the host's external address (that address is not reachable here).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "livecodebench"))

RAY_ENV = {"RAY_LOGGER_LEVEL": "warning", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "RAY_USAGE_STATS_ENABLED": "0"}
for _key, _value in RAY_ENV.items():
    os.environ[_key] = _value  # before `import ray`: Ray reads them at import time
# Worker processes import k2eval from this checkout.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)

ray = pytest.importorskip("ray", reason="the Ray tests need `pip install 'k2eval[ray]'`")
from ray.cluster_utils import Cluster  # noqa: E402

NODE = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "object_store_memory": 80 << 20,
        "resources": {"sandbox_slots": 1}}


@dataclass
class RayCluster:
    address: str
    temp_dir: Path
    """Ray's session files and logs."""
    head_id: str
    second_id: str


def start_cluster(temp_dir: Path, **head: Any) -> Cluster:
    return Cluster(initialize_head=True, head_node_args={
        **NODE, "include_dashboard": False, "temp_dir": str(temp_dir), **head})


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[RayCluster]:
    """A head and a second node, one sandbox slot each."""
    temp_dir = Path(tempfile.mkdtemp(prefix="k2ray-", dir="/tmp"))
    cluster = start_cluster(temp_dir)
    try:
        second = cluster.add_node(**NODE)
        cluster.wait_for_nodes()
        yield RayCluster(address=cluster.address, temp_dir=temp_dir,
                         head_id=cluster.head_node.node_id, second_id=second.node_id)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)
