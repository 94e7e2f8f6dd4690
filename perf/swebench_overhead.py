"""SWE-bench grading overhead per instance beyond the eval script's own runtime.

Grades the synthetic instance's gold patch through the adapter's real scoring path (fresh
container, official patch-apply chain, eval script, `get_eval_report`, cleanup) and compares
its wall time with the eval script's runtime measured inside the same grade; then grades a
batch with `--sandboxes 1` against `--sandboxes N` to show the concurrency bound at work.

    python perf/swebench_overhead.py [--repeats 5] [--batch 8] [--sandboxes 4]

Target: overhead <= 2 s per instance.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from k2eval.adapters.base import Item
from k2eval.adapters.swebench import SweBenchAdapter
from k2eval.adapters.swebench.cli import grade_predictions
from k2eval.adapters.swebench.synthetic import build_synthetic_image, synthetic_row
from k2eval.spec import load_task


def synthetic_item() -> Item:
    row = synthetic_row(build_synthetic_image())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synthetic.jsonl"
        path.write_text(json.dumps(row) + "\n")
        [item] = SweBenchAdapter().load(load_task("swebench-verified"), str(path))
    return item


async def one_grade(item: Item) -> tuple[float, dict[str, float]]:
    """Wall time of one full grade, and the grader's own timings of its phases."""
    start = time.perf_counter()
    [score] = await grade_predictions(
        load_task("swebench-verified"), [item],
        [{"instance_id": item.id, "model_name_or_path": "gold", "model_patch": item.data["patch"]}],
        sandboxes=1, run_id="perf")
    wall = time.perf_counter() - start
    assert score.correct, score.reason
    return wall, score.details["timings"]


async def bare_container(item: Item) -> float:
    """The sandbox layer's floor: create a container of the image, one exec, remove it."""
    from k2eval.adapters.swebench import sandbox_limits
    from k2eval.adapters.swebench.network import NetworkResolver
    from k2eval.sandbox import SandboxLimits, docker_sandbox

    spec = load_task("swebench-verified")
    limits = SandboxLimits(**sandbox_limits(spec, NetworkResolver().resolve(spec), grading=True))
    start = time.perf_counter()
    async with docker_sandbox(item.data["image"], limits, run_id="perf") as sandbox:
        await sandbox.exec("true", timeout=30)
    return time.perf_counter() - start


async def batch(item: Item, n: int, sandboxes: int) -> float:
    clones = [Item(f"{item.id}#{i}", item.data, item.meta) for i in range(n)]
    predictions = [{"instance_id": c.id, "model_name_or_path": "gold",
                    "model_patch": item.data["patch"]} for c in clones]
    start = time.perf_counter()
    scores = await grade_predictions(load_task("swebench-verified"), clones, predictions,
                                     sandboxes=sandboxes, run_id="perf")
    assert all(s.correct for s in scores), [s.reason for s in scores]
    return time.perf_counter() - start


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--sandboxes", type=int, default=4)
    args = parser.parse_args()
    item = synthetic_item()
    await one_grade(item)  # warm the image cache and the Docker client

    walls, tests, overheads = [], [], []
    for _ in range(args.repeats):
        wall, timings = await one_grade(item)
        walls.append(wall)
        tests.append(timings["tests_s"])
        overheads.append(wall - timings["tests_s"])
        print(f"grade {wall:6.2f} s = eval script {timings['tests_s']:5.2f} s + overhead "
              f"{wall - timings['tests_s']:5.2f} s (apply {timings['apply_s']:.2f} s, "
              f"grade {timings['grade_s']:.3f} s, container create+cleanup "
              f"{wall - sum(timings.values()):.2f} s)")
    median_overhead = statistics.median(overheads)
    print(f"median: grade {statistics.median(walls):.2f} s vs eval script alone "
          f"{statistics.median(tests):.2f} s -> ratio {statistics.median(walls) / statistics.median(tests):.2f}x, "
          f"overhead {median_overhead:.2f} s per instance "
          f"({'within' if median_overhead <= 2.0 else 'ABOVE'} the 2 s target)")

    floors = [await bare_container(item) for _ in range(args.repeats)]
    floor = statistics.median(floors)
    print(f"bare container create + exec + remove: median {floor:.2f} s; grading's own share "
          f"of the overhead (apply, log read, grade): {max(0.0, median_overhead - floor):.2f} s")

    serial = await batch(item, args.batch, 1)
    parallel = await batch(item, args.batch, args.sandboxes)
    print(f"{args.batch} instances: --sandboxes 1 {serial:.1f} s, --sandboxes {args.sandboxes} "
          f"{parallel:.1f} s -> speed-up {serial / parallel:.2f}x "
          f"(bounded by the {args.sandboxes} sandboxes and this machine's cores)")


if __name__ == "__main__":
    asyncio.run(main())
