"""Ray executor scaling on this machine: a two-node Ray cluster on loopback, started here.

1. Model-bound: AIME 2025 avg@64 (1,920 requests) against a local server with 200 ms latency
   at concurrency 128, through the local executor and through Ray with 1 and 2 worker
   processes (one per node), each as wall time / ideal, ideal = ceil(1920 / 128) x latency.
2. Sandbox-bound: LiveCodeBench programs (the hand-written test rows, k samples each, every
   one graded in a Docker sandbox), local with 1 sandbox vs Ray on 2 nodes with 1
   `sandbox_slots` each: the speed-up (target ~1.8x on hosts with the cores for it); and local
   with 2 sandboxes, the same capacity on this host, which tells how much of what a second
   sandbox gives here the cluster keeps.

    python perf/ray_scaling.py [--concurrency 128] [--latency 0.2] [--k 64] [--lcb-k 50]
                               [--skip-sandbox] [--skip-model]

Both nodes share this host's cores, so the sandbox figure measures the executor's overhead
and placement, not the added capacity of a real second machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # keep loopback addresses
os.environ.setdefault("RAY_LOGGER_LEVEL", "warning")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "perf"), str(REPO / "tests" / "livecodebench")]
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)

from scripted_server import AIME, aime_workload_arguments, scripted_server  # noqa: E402

import k2eval  # noqa: E402
from k2eval.engine.executors import make_executor  # noqa: E402
from k2eval.store.runlog import RunSummary  # noqa: E402


def start_cluster(temp_dir: Path) -> Any:
    from ray.cluster_utils import Cluster

    node = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "object_store_memory": 100 << 20,
            "resources": {"sandbox_slots": 1}}
    cluster = Cluster(initialize_head=True, head_node_args={
        **node, "include_dashboard": False, "temp_dir": str(temp_dir)})
    cluster.add_node(**node)
    cluster.wait_for_nodes()
    return cluster


Row = tuple[str, float, float]
"""label, wall time, the part of it spent connecting to Ray and starting workers."""


def timed_run(label: str, task: str, rows: list[Row], **kwargs: Any) -> RunSummary:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        run = k2eval.evaluate(task, "openai:m", out=out, **kwargs)
        wall = time.perf_counter() - t0
        manifest = json.loads((run.path / "manifest.json").read_text())
    summary = run.summary
    assert summary.n_errors == 0 and summary.complete, summary
    rows.append((label, wall, float(manifest["executor"].get("start_s", 0.0))))
    return summary


def table(rows: list[Row], ideal: float | None = None) -> None:
    print(f"{'executor':40s} {'wall s':>8s} {'start s':>8s} {'w/o start':>9s}"
          + (f" {'wall/ideal':>10s} {'w/o start/ideal':>15s}" if ideal else ""))
    for label, wall, start in rows:
        line = f"{label:40s} {wall:8.2f} {start:8.2f} {wall - start:9.2f}"
        if ideal:
            line += f" {wall / ideal:10.2f} {(wall - start) / ideal:15.2f}"
        print(line)


def model_bound(url: str, address: str, args: argparse.Namespace) -> None:
    n = 30 * args.k
    ideal = math.ceil(n / args.concurrency) * args.latency
    common = dict(base_url=url, data=AIME, k=args.k, concurrency=args.concurrency,
                  http_client="aiohttp")
    rows: list[Row] = []
    timed_run("local executor", "aime2025", rows, **common)
    for workers in (1, 2):
        timed_run(f"ray executor, {workers} worker process{'es' if workers > 1 else ''}",
                  "aime2025", rows,
                  executor=make_executor("ray", address=address, workers=workers), **common)
    print(f"\n{n} requests, concurrency {args.concurrency}, latency {args.latency * 1000:.0f} ms,"
          f" ideal wall time {ideal:.2f} s")
    table(rows, ideal)


def sandbox_bound(address: str, args: argparse.Namespace, tmp: Path) -> None:
    """Every reply is the row's correct program, so each attempt runs all its tests."""
    from lcb_rows import PROBLEMS, fenced, fixture_rows, write_jsonl

    from k2eval.sandbox import ensure_image

    ensure_image("python")
    data = write_jsonl(tmp / "lcb.jsonl", fixture_rows())
    answers = tmp / "answers.json"
    answers.write_text(json.dumps({p["question_content"]: fenced(p["correct"])
                                   for p in PROBLEMS.values()}))
    with scripted_server(0.0, answers) as url:
        _sandbox_runs(url, address, args, data)


def _sandbox_runs(url: str, address: str, args: argparse.Namespace, data: Path) -> None:
    common = dict(base_url=url, data=data, k=args.lcb_k, concurrency=32)
    rows: list[Row] = []
    summary = timed_run("local executor, 1 sandbox", "livecodebench-v6", rows, sandboxes=1,
                        **common)
    timed_run("local executor, 2 sandboxes", "livecodebench-v6", rows, sandboxes=2, **common)
    timed_run("ray executor, 2 nodes x 1 sandbox slot", "livecodebench-v6", rows,
              executor=make_executor("ray", address=address), **common)
    assert summary.score == 100.0, summary
    print(f"\n{summary.n_attempts} LiveCodeBench programs graded in sandboxes")
    table(rows)
    (_, local, _), (_, local2, _), (_, ray, start) = rows
    print(f"speed-up, 2 nodes x 1 slot vs 1 local sandbox: {local / ray:.2f}x "
          f"({local / (ray - start):.2f}x without the workers' start)")
    print(f"what this host gives a second sandbox (local 2 vs 1): {local / local2:.2f}x; "
          f"the cluster's share of it (ray 2x1 vs local 2): {local2 / ray:.2f}x "
          f"({local2 / (ray - start):.2f}x without the workers' start)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    aime_workload_arguments(ap)
    ap.add_argument("--lcb-k", type=int, default=50, help="samples per LiveCodeBench row (x4 rows)")
    ap.add_argument("--skip-sandbox", action="store_true")
    ap.add_argument("--skip-model", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "EMPTY")
    temp_dir = Path(tempfile.mkdtemp(prefix="k2ray-perf-", dir="/tmp"))
    cluster = start_cluster(temp_dir)
    try:
        if not args.skip_model:
            with scripted_server(args.latency) as url:
                model_bound(url, cluster.address, args)
        if not args.skip_sandbox:
            sandbox_bound(cluster.address, args, temp_dir)
    finally:
        cluster.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
