"""Engine throughput, start-up, CPU per request and memory, each beside a baseline in this run.

The workload is AIME 2025 avg@64 (1,920 requests) against the local fake server (its own
process) with 200 ms latency at concurrency 128. Printed, with ratios to the baseline:

  1. in-process: a bare aiohttp client (the floor), k2eval's default path (engine, aiohttp
     transport, journal, grading) and `--http-client sdk`; lm-eval's `local-chat-completions`
     when installed. Wall time / ideal, where ideal = ceil(1920 / concurrency) x latency;
  2. whole process: `k2eval run` as shipped (default flags) and the bare client, each a fresh
     Python process timed from spawn to exit;
  3. start-up: `k2eval --help`, `k2eval tasks` and a one-attempt run (no endpoint latency),
     beside `python -c pass`;
  4. CPU per request with no endpoint latency, grading excluded (measured and subtracted),
     for the bare client, the default path and the SDK;
  5. peak RSS of runs of 20,000 and 100,000 attempts (an in-process model with an instant
     answer, real engine, journal and grading), each in its own process.

    python perf/engine_throughput.py [--concurrency 128] [--latency 0.2] [--k 64]
                                     [--skip-memory] [--skip-lm-eval] [--memory-baseline TREE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scripted_server import AIME, REPO, aime_workload_arguments, scripted_server

N_AIME = 30


def problems(k: int) -> list[str]:
    rows = [json.loads(x) for x in AIME.read_text().splitlines() if x.strip()]
    return [r["problem"] for r in rows for _ in range(k)]


async def bare_aiohttp(base_url: str, prompts: list[str], concurrency: int) -> None:
    import aiohttp

    gate = asyncio.Semaphore(concurrency)
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:
        async def one(i: int, prompt: str) -> None:
            body = {"model": "m", "messages": [{"role": "user", "content": prompt}],
                    "max_tokens": 8192, "temperature": 0.6, "seed": i}
            async with gate, session.post(f"{base_url}/chat/completions", json=body) as resp:
                data = await resp.json()
                assert data["choices"][0]["message"]["content"]

        await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts)))


class GradingClock:
    """CPU seconds spent inside the AIME grader (to subtract from the harness's own CPU)."""

    def __init__(self) -> None:
        from k2eval.adapters.aime import AimeAdapter

        self.seconds = 0.0
        original = AimeAdapter.score
        clock = self

        async def timed_score(adapter: Any, item: Any, attempt: Any, ctx: Any) -> Any:
            t0 = time.thread_time()
            try:
                return await original(adapter, item, attempt, ctx)
            finally:
                clock.seconds += time.thread_time() - t0

        AimeAdapter.score = timed_score  # type: ignore[method-assign]


def k2eval_run(base_url: str, k: int, concurrency: int, out: Path,
               http_client: str | None) -> dict[str, Any]:
    import k2eval

    extra = {"http_client": http_client} if http_client else {}
    run = k2eval.evaluate("aime2025", "openai:m", base_url=base_url, data=AIME, k=k,
                          concurrency=concurrency, out=out, **extra)
    assert run.summary["n_attempts"] == N_AIME * k and run.summary["n_errors"] == 0, run.summary
    return run.summary


def lm_eval_run(base_url: str, prompts: list[str], concurrency: int) -> str | None:
    try:
        from lm_eval.api.instance import Instance
        from lm_eval.models.api_models import JsonChatStr
        from lm_eval.models.openai_completions import LocalChatCompletion
    except ImportError:
        return "lm-eval not installed (pip install lm-eval)"
    model = LocalChatCompletion(model="m", base_url=f"{base_url}/chat/completions",
                                num_concurrent=concurrency, max_retries=1, tokenized_requests=False)
    gen = {"until": [], "max_gen_toks": 8192, "temperature": 0.6, "do_sample": True}
    reqs = [Instance(request_type="generate_until",
                     doc={}, arguments=(JsonChatStr(json.dumps([{"role": "user", "content": p}])), gen), idx=i)
            for i, p in enumerate(prompts)]
    out = model.generate_until(reqs, disable_tqdm=True)
    assert len(out) == len(prompts)
    return None


def timed(fn: Any, *args: Any) -> tuple[float, float, Any]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = fn(*args)
    return time.perf_counter() - wall0, time.process_time() - cpu0, result


def timed_process(argv: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of a fresh process, spawn to exit; it must succeed. CPU time (user +
    system) depends far less than wall time on what else the machine is running."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENAI_API_KEY": "EMPTY"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def best_of(n: int, argv: list[str]) -> tuple[float, float]:
    """The least wall and the least CPU time of `n` runs."""
    runs = [timed_process(argv) for _ in range(n)]
    return min(w for w, _ in runs), min(c for _, c in runs)


def cli_run(url: str, k: int, concurrency: int, out: str, *flags: str) -> list[str]:
    return [sys.executable, "-m", "k2eval.cli", "run", "--task", "aime2025", "--model", "openai:m",
            "--base-url", url, "--data", str(AIME), "--k", str(k), "--concurrency",
            str(concurrency), "--out", out, "--no-progress", *flags]


# --- child processes (this script re-run with a hidden flag) --------------------------------

def bare_child(url: str, k: int, concurrency: int) -> None:
    asyncio.run(bare_aiohttp(url, problems(k), concurrency))


REASONING = "".join(f"Step {i}: we reduce the expression once more and check the bound. "
                    for i in range(60)) + "So the answer is \\boxed{70}."
"""An answer of about 4 KB, the size of a short real AIME solution."""


def memory_child(n_attempts: int, out: str) -> None:
    """A run of `n_attempts` through the real engine with an instant in-process model; prints
    the peak RSS in MiB."""
    from k2eval.engine.executors import attempts as attempts_module
    from k2eval.records import Completion, Usage

    class InstantModel:
        name = "instant"

        def describe(self) -> dict[str, Any]:
            return {"scheme": "openai", "model": self.name}

        async def preflight(self) -> None:
            return None

        async def complete(self, messages: Any, tools: Any, sampling: Any) -> Completion:
            # a fresh string per call, as decoding a real response makes
            return Completion(text=f"Sample {sampling.seed}. {REASONING}", tool_calls=(),
                              finish_reason="stop", usage=Usage(200, 12, 1), latency=0.0, raw=None)

        async def aclose(self) -> None:
            return None

    attempts_module.resolve_model = lambda spec: InstantModel()  # type: ignore[assignment,return-value]
    import k2eval

    run = k2eval.evaluate("aime2025", "openai:m", base_url="http://127.0.0.1:9/v1", data=AIME,
                          k=math.ceil(n_attempts / N_AIME), concurrency=128, out=out)
    assert run.summary["n_errors"] == 0, run.summary
    journal = (run.path / "attempts.jsonl").stat().st_size
    print(json.dumps({"attempts": run.summary["n_attempts"], "peak_rss_mib": peak_rss_mib(),
                      "journal_bytes_per_attempt": journal / run.summary["n_attempts"]}))


def peak_rss_mib() -> float:
    """This process's peak RSS: VmHWM, which (unlike ru_maxrss, which Linux carries across
    fork and exec) starts afresh in each program."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_json(argv: list[str], tree: Path = REPO) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree), "OPENAI_API_KEY": "EMPTY"}
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# --- the sections -----------------------------------------------------------------------------

def throughput(args: argparse.Namespace, url: str) -> None:
    prompts = problems(args.k)
    n = len(prompts)
    ideal = math.ceil(n / args.concurrency) * args.latency
    rows: list[tuple[str, float, float]] = []
    wall, cpu, _ = timed(lambda: asyncio.run(bare_aiohttp(url, prompts, args.concurrency)))
    rows.append(("bare aiohttp client", wall, cpu))
    for client, label in ((None, "default (aiohttp transport)"), ("sdk", "--http-client sdk")):
        with tempfile.TemporaryDirectory() as tmp:
            wall, cpu, _ = timed(k2eval_run, url, args.k, args.concurrency, Path(tmp), client)
        rows.append((f"k2eval, {label}", wall, cpu))
    if not args.skip_lm_eval:
        wall, cpu, err = timed(lm_eval_run, url, prompts, args.concurrency)
        if err is None:
            rows.append(("lm-eval local-chat-completions", wall, cpu))
        else:
            print(f"lm-eval: skipped ({err})")
    print(f"\n== 1. in process: {n} requests, concurrency {args.concurrency}, latency "
          f"{args.latency * 1000:.0f} ms, ideal wall time {ideal:.2f} s")
    print(f"{'client':44s} {'wall s':>8s} {'/ideal':>7s} {'/bare':>7s}")
    bare = rows[0][1]
    for name, wall, _ in rows:
        print(f"{name:44s} {wall:8.2f} {wall / ideal:7.2f} {wall / bare:7.2f}")

    with tempfile.TemporaryDirectory() as tmp:
        bare_p = best_of(3, [sys.executable, __file__, "--bare-child", url, "--k", str(args.k),
                             "--concurrency", str(args.concurrency)])
        shipped = best_of(3, cli_run(url, args.k, args.concurrency, tmp))
        sdk = best_of(3, cli_run(url, args.k, args.concurrency, tmp, "--http-client", "sdk"))
    print("\n== 2. whole process (spawn to exit, best of 3)")
    print(f"{'process':44s} {'wall s':>8s} {'/bare':>7s} {'CPU s':>7s}")
    for name, (wall, cpu) in (("bare aiohttp client script", bare_p),
                              ("k2eval run (default flags)", shipped),
                              ("k2eval run --http-client sdk", sdk)):
        print(f"{name:44s} {wall:8.2f} {wall / bare_p[0]:7.2f} {cpu:7.2f}")
    print(f"k2eval run as shipped: {shipped[0] / bare_p[0]:.2f}x the bare client's whole process "
          "(target <= 1.25x)")


def startup(args: argparse.Namespace, url: str) -> None:
    py = best_of(5, [sys.executable, "-c", "pass"])
    aiohttp_import = best_of(5, [sys.executable, "-c", "import aiohttp"])
    helps = best_of(5, [sys.executable, "-m", "k2eval.cli", "--help"])
    tasks = best_of(5, [sys.executable, "-m", "k2eval.cli", "tasks"])
    with tempfile.TemporaryDirectory() as tmp:
        one = best_of(5, cli_run(url, 1, 1, tmp, "--limit", "1"))
    print("\n== 3. start-up (best of 5, spawn to exit)")
    print(f"{'command':44s} {'wall s':>8s} {'CPU s':>7s}")
    for name, (wall, cpu) in (("python -c pass", py), ("python -c 'import aiohttp'", aiohttp_import),
                              ("k2eval --help", helps), ("k2eval tasks", tasks),
                              ("k2eval run, one attempt", one)):
        print(f"{name:44s} {wall:8.3f} {cpu:7.3f}")
    print(f"one-attempt run, fixed overhead over bare Python: {one[0] - py[0]:.3f} s wall, "
          f"{one[1] - py[1]:.3f} s CPU (target < 0.5 s); --help {helps[0]:.3f} s, tasks "
          f"{tasks[0]:.3f} s wall (target < 0.3 s)")


def cpu_per_request(args: argparse.Namespace, url: str) -> None:
    prompts = problems(args.k)
    n = len(prompts)
    _, bare_cpu, _ = timed(lambda: asyncio.run(bare_aiohttp(url, prompts, args.concurrency)))
    clock = GradingClock()
    rows = [("bare aiohttp client", bare_cpu, 0.0)]
    for client, label in ((None, "k2eval default (aiohttp transport)"),
                          ("sdk", "k2eval --http-client sdk")):
        clock.seconds = 0.0
        with tempfile.TemporaryDirectory() as tmp:
            _, cpu, _ = timed(k2eval_run, url, args.k, args.concurrency, Path(tmp), client)
        rows.append((label, cpu, clock.seconds))
    print(f"\n== 4. CPU per request, no endpoint latency ({n} requests; grading excluded)")
    print(f"{'client':44s} {'ms/req':>8s} {'grading':>8s} {'/bare':>7s}")
    for name, cpu, grading in rows:
        per = 1000 * (cpu - grading) / n
        print(f"{name:44s} {per:8.3f} {1000 * grading / n:8.3f} {(cpu - grading) / bare_cpu:7.2f}")
    default = 1000 * (rows[1][1] - rows[1][2]) / n
    print(f"default path: {default:.3f} ms CPU per request (target <= 0.3 ms)")


def memory(baseline: Path | None) -> None:
    print("\n== 5. peak RSS, instant in-process model with ~4 KB answers (real engine, journal, "
          "grading)")
    trees = [("this tree", REPO)] + ([(f"baseline {baseline}", baseline)] if baseline else [])
    for label, tree in trees:
        results = []
        for n in (20_000, 100_000):
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                r = child_json([sys.executable, __file__, "--memory-child", str(n), "--out", tmp],
                               tree)
                r["wall"] = time.perf_counter() - t0
            results.append(r)
            print(f"{label}: {r['attempts']:>7d} attempts: peak RSS {r['peak_rss_mib']:7.1f} MiB "
                  f"({r['wall']:.1f} s; {r['journal_bytes_per_attempt'] / 1024:.1f} KiB of journal "
                  "per attempt)")
        small, large = results
        growth = (large["peak_rss_mib"] - small["peak_rss_mib"]) * 2**20 / (
            large["attempts"] - small["attempts"])
        print(f"{label}: 100k / 20k peak RSS {large['peak_rss_mib'] / small['peak_rss_mib']:.2f}x; "
              f"{growth:.0f} bytes per extra attempt, against "
              f"{large['journal_bytes_per_attempt']:.0f} bytes of transcript journaled per attempt")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    aime_workload_arguments(ap)
    ap.add_argument("--skip-memory", action="store_true", help="skip the 20k/100k RSS runs")
    ap.add_argument("--skip-lm-eval", action="store_true")
    ap.add_argument("--memory-baseline", type=Path, metavar="TREE",
                    help="also measure peak RSS with the k2eval of another checkout (e.g. "
                         "`git worktree add /tmp/base <commit>`)")
    ap.add_argument("--bare-child", metavar="URL", help=argparse.SUPPRESS)
    ap.add_argument("--memory-child", type=int, metavar="N", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "EMPTY")
    if args.bare_child:
        return bare_child(args.bare_child, args.k, args.concurrency)
    if args.memory_child:
        return memory_child(args.memory_child, args.out)
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    for latency, sections in ((args.latency, (throughput,)), (0.0, (startup, cpu_per_request))):
        with scripted_server(latency) as url:
            for section in sections:
                section(args, url)
    if not args.skip_memory:
        memory(args.memory_baseline)
    load = os.getloadavg()
    print(f"\nload average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
