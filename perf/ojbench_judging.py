"""OJBench judging throughput: the sandbox as shipped vs the DMOJ judge directly on the host.

The same submissions (the hand-written ones of tests/ojbench, on its fixture problems) are
judged two ways, side by side in one process, with the same judge module and concurrency:
  - host: `python -m k2eval.adapters.ojbench_judge` as a local, unisolated subprocess, reading
    the problems in place (the baseline; needs dmoj, g++ and pypy3 on the host);
  - sandbox as shipped: the engine's sandbox provider as `k2eval run` uses it for OJBench:
    warm pooled `ojbench` containers, the problem copied in, then judged.
It checks that both reach the same verdicts on every case and prints submissions judged per
minute and the ratio sandbox / host (target >= 0.5). The ways alternate over `--rounds`
rounds and each keeps its best round, so a burst of load on a shared machine does not decide.

By default the submissions whose time is set by a limit (TLE, MLE) are left out, since they
cost the same wherever they run; `--all` keeps them.

    python perf/ojbench_judging.py [--repeat 2] [--concurrency 2] [--rounds 2] [--all]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from k2eval.adapters.base import Item
from k2eval.adapters.ojbench import (
    Judgement,
    OJBenchSettings,
    find_problem,
    judge_in_sandbox,
    judge_on_host,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "ojbench"))
from oj_solutions import FIXTURE_DATA, SUBMISSIONS

Judge = Callable[[Item, str], Awaitable[Judgement]]


def workload(repeat: int, everything: bool) -> list[tuple[Item, str]]:
    jobs: list[tuple[Item, str]] = []
    for (pid, language, _), (source, verdict) in SUBMISSIONS.items():
        if not everything and verdict in ("TLE", "MLE"):
            continue
        directory = find_problem(FIXTURE_DATA, pid)
        assert directory is not None, pid
        item = Item(id=f"{pid}:{language}", data={"problem_id": pid, "language": language,
                                                  "problem_dir": str(directory), "skipped": False})
        jobs.append((item, source))
    return jobs * repeat


async def judge_all(judge: Judge, jobs: list[tuple[Item, str]],
                    concurrency: int) -> tuple[float, list[Judgement]]:
    gate = asyncio.Semaphore(concurrency)

    async def one(item: Item, source: str) -> Judgement:
        async with gate:
            return await judge(item, source)

    start = time.perf_counter()
    judgements = await asyncio.gather(*(one(item, source) for item, source in jobs))
    return time.perf_counter() - start, list(judgements)


async def main(args: argparse.Namespace) -> None:
    from k2eval.engine.sandboxes import SandboxProvider
    from k2eval.sandbox import ensure_image

    settings = OJBenchSettings()
    image = await asyncio.to_thread(ensure_image, "ojbench")
    provider = SandboxProvider(limit=args.concurrency, run_id=f"perf-ojbench-{os.getpid()}",
                               purpose="perf-ojbench")
    roots = [str(FIXTURE_DATA / "NOI"), str(FIXTURE_DATA / "ICPC")]

    async def on_host(item: Item, source: str) -> Judgement:
        return await judge_on_host(item, source, settings, roots)

    async def in_sandbox(item: Item, source: str) -> Judgement:
        async with provider(image, reuse=True, memory_mb=settings.sandbox_memory_mb,
                            disk_mb=settings.sandbox_disk_mb, cpus=1.0) as sandbox:
            return await judge_in_sandbox(sandbox, item, source, settings)

    jobs = workload(args.repeat, args.all)
    ways: dict[str, Judge] = {"DMOJ on the host (baseline)": on_host,
                              "sandbox as shipped": in_sandbox}
    await judge_all(in_sandbox, jobs[:args.concurrency], args.concurrency)  # warm the pool
    best: dict[str, float] = {}
    outcomes: dict[str, list[tuple[str, ...]]] = {}
    try:
        for _ in range(args.rounds):
            for name, judge in ways.items():
                seconds, judgements = await judge_all(judge, jobs, args.concurrency)
                best[name] = min(seconds, best.get(name, float("inf")))
                outcomes[name] = [(j.verdict, *j.case_verdicts) for j in judgements]
    finally:
        await provider.aclose()

    assert len({tuple(o) for o in outcomes.values()}) == 1, "the ways reached different verdicts"
    cases = sum(len(o) - 1 for o in next(iter(outcomes.values())))
    print(f"{len(jobs)} submissions ({cases} cases judged), concurrency {args.concurrency}, "
          f"{os.cpu_count()} CPUs, best of {args.rounds} rounds")
    for name, seconds in best.items():
        print(f"  {name:30s} {seconds:7.2f} s  {60 * len(jobs) / seconds:7.1f} submissions/min")
    ratio = best["DMOJ on the host (baseline)"] / best["sandbox as shipped"]
    print(f"throughput ratio sandbox / host: {ratio:.2f} (target >= 0.5)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=2, help="times each submission is judged")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--all", action="store_true", help="include the TLE and MLE submissions")
    asyncio.run(main(parser.parse_args()))
