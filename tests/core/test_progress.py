"""Progress reporting off a terminal: periodic plain lines with counts, rate, ETA and the
attempts in flight."""

from __future__ import annotations

import asyncio
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from k2eval.adapters.base import Adapter, AttemptContext, ScoreContext
from k2eval.engine.executors.attempts import AttemptRunner, RunModels
from k2eval.engine.progress import LiveAttempt, Progress
from k2eval.records import Attempt, Item, Score, SolveResult
from k2eval.spec import ModelSpec, RunConfig, TaskSpec
from k2eval.testing.fake_openai import Reply


def test_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    bar = Progress(4, "aime2025", stream=out, interval_s=0.0)
    bar.update(tokens=1500)
    bar.update(errors=1)
    bar.update(tokens=2_500_000)
    bar.update()
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("[aime2025] 1/4 (25%) errors=0 tokens=1.5k")
    assert "4/4 (100%) errors=1 tokens=2.5M" in lines[-1]
    assert "rate=" in lines[-1] and "eta=0s" in lines[-1]


def test_disabled_progress_prints_nothing() -> None:
    out = io.StringIO()
    bar = Progress(2, "t", stream=out, enabled=False)
    bar.update()
    bar.update()
    assert out.getvalue() == ""


def test_per_node_counts_appear_once_results_come_from_several_nodes() -> None:
    out = io.StringIO()
    bar = Progress(3, "aime2025", stream=out, interval_s=0.0)
    bar.update(node="local")
    bar.update(node="8bc3c2b0")
    bar.update(node="8bc3c2b0", errors=1)
    lines = out.getvalue().splitlines()
    assert "nodes=" not in lines[0]
    assert lines[-1].endswith("nodes=8bc3c2b0:2,local:1")
    assert "3/3 (100%) errors=1" in lines[-1]


def test_no_eta_until_a_first_wave_of_concurrent_attempts_has_finished() -> None:
    out = io.StringIO()
    bar = Progress(100, "t", stream=out, interval_s=0.0)
    for _ in range(8):
        bar.attempt_started()
    for n in range(1, 9):
        bar.attempt_ended()
        bar.update()
        assert ("eta=?" in out.getvalue().splitlines()[-1]) == (n < 8), n
    assert bar.eta_s() is not None


def test_the_rate_behind_the_eta_excludes_setup_time() -> None:
    bar = Progress(10, "t", stream=io.StringIO())
    bar._start -= 1000  # loading and preflight took 1000 s
    bar.begin()
    bar._work_start -= 10  # then 5 attempts in 10 s
    for _ in range(5):
        bar.update()
    eta = bar.eta_s()
    assert eta is not None and 9 < eta < 12


def test_attempts_in_flight_and_their_counters_are_on_the_line() -> None:
    out = io.StringIO()
    bar = Progress(10, "tau2-retail", stream=out, interval_s=0.0)
    for _ in range(2):
        bar.attempt_started()
    assert "in flight: 2" in bar.line()
    bar.live = lambda: [LiveAttempt("a", 0, 580.0, 12, 10, 2300),
                        LiveAttempt("b", 0, 30.0, 3, 2, 700)]
    assert bar.line().endswith("in flight: 2 (calls=15 steps=12 tokens=3.0k, oldest 580s)")


def test_a_heartbeat_line_is_written_when_nothing_finishes() -> None:
    out = io.StringIO()
    bar = Progress(10, "t", stream=out, heartbeat_s=0.05)
    bar.attempt_started()
    bar.tick()
    assert out.getvalue() == ""
    time.sleep(0.06)
    bar.tick()
    assert out.getvalue().startswith("[t] 0/10 (0%) ") and "in flight: 1" in out.getvalue()
    bar.tick()
    assert len(out.getvalue().splitlines()) == 1  # not again until another interval passed


def test_a_slow_run_off_a_terminal_prints_in_flight_lines_before_any_attempt_finishes(
        fake_openai: Any, shared_data: Path, tmp_path: Path) -> None:
    srv = fake_openai(lambda body: Reply(text="\\boxed{1}"), latency=2.5)
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-key-0123456789",
           "K2EVAL_PROGRESS_INTERVAL": "0.5"}
    proc = subprocess.run(
        [sys.executable, "-m", "k2eval.cli", "run", "--task", "aime2025", "--model", "openai:m",
         "--base-url", srv.base_url, "--data", str(shared_data / "aime" / "aime25.jsonl"),
         "--k", "1", "--limit", "3", "--out", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = [x for x in proc.stderr.splitlines()
             if x.startswith("[aime2025] 0/3") and "in flight" in x]
    assert lines, proc.stderr
    # All three calls are in flight at first; near the end some have just come back.
    assert re.search(r"in flight: 3 \(calls=0 steps=0 tokens=0, oldest \d+s\)$", lines[0]), lines
    assert all(re.search(r"in flight: [1-3] \(calls=0 steps=0 tokens=0, oldest \d+s\)$", x)
               for x in lines), lines
    assert all("eta=?" in x for x in lines)


async def test_the_local_runner_publishes_calls_steps_and_tokens_of_attempts_in_flight(
        fake_openai: Any) -> None:
    """A real AttemptRunner over real HTTP: an agent making three calls, seen mid-attempt."""
    srv = fake_openai(lambda body: Reply(text="step", completion_tokens=7), latency=0.2)
    gate = asyncio.Event()

    class ThreeCalls(Adapter):
        name = "three-calls"

        def load(self, spec: TaskSpec, data: str | None) -> list[Item]:
            return []

        async def solve(self, item: Item, ctx: AttemptContext) -> SolveResult:
            messages = [{"role": "user", "content": "go"}]
            for _ in range(2):
                await ctx.chat(messages)
            await ctx.chat(messages, role="user")
            gate.set()
            await asyncio.sleep(0.5)
            return SolveResult(messages)

        async def score(self, item: Item, attempt: Attempt, ctx: ScoreContext) -> Score:
            return Score(item.id, attempt.index, 1.0)

    spec = TaskSpec(name="t", adapter="three-calls", benchmark="t", group="t", metric="avg@k",
                    k=1, max_output_tokens=64, temperature=0.0)
    config = RunConfig(task=spec, model=ModelSpec("openai:m", base_url=srv.base_url),
                       user_model=ModelSpec("openai:u", base_url=srv.base_url))
    adapter = ThreeCalls()
    runner = AttemptRunner(config, adapter, run_id="r", models=RunModels(config, adapter),
                           sandbox_limit=None)
    solving = asyncio.create_task(runner.solve(Item("q1", {}), 0))
    await asyncio.wait_for(gate.wait(), 30)
    [live] = runner.live()
    assert (live.item_id, live.index, live.calls, live.steps, live.tokens) == ("q1", 0, 3, 2, 21)
    await solving
    assert runner.live() == []
    assert runner.models is not None
    await runner.models.aclose()


def test_on_a_terminal_the_bar_shows_the_attempts_in_flight_on_each_tick() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    bar = Progress(4, "tau2-retail", stream=out)
    bar.attempt_started()
    bar.live = lambda: [LiveAttempt("a", 0, 12.0, 3, 2, 700)]
    bar.tick()
    bar.close()
    assert "in flight=1 (calls=3 steps=2 tokens=700, oldest 12s)" in out.getvalue()
