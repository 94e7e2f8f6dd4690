"""A real two-node Ray cluster on this machine, started once for the module and torn down.

Both nodes listen on 127.0.0.1 (no dashboard, a small object store) and each declares one
`sandbox_slots` unit; see `ray_helpers` for the environment they run with.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from ray_helpers import NODE, RayCluster, start_cluster

ray = pytest.importorskip("ray", reason="the Ray tests need `pip install 'k2eval[ray]'`")


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[RayCluster]:
    """A head and a second node, one sandbox slot each."""
    temp_dir = Path(tempfile.mkdtemp(prefix="k2ray-", dir="/tmp"))
    cluster = start_cluster(temp_dir)
    try:
        second = cluster.add_node(**NODE)
        cluster.wait_for_nodes()
        yield RayCluster(address=cluster.address, temp_dir=temp_dir,
                         head_id=cluster.head_node.node_id, second_id=second.node_id,
                         cluster=cluster)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)
