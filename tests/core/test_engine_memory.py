"""The engine keeps a bounded number of transcripts in memory, whatever the number of attempts.

Peak RSS for 20,000 and 100,000 attempts is measured by perf/engine_throughput.py; these tests
pin the mechanism: transcripts leave memory once journaled and graded, the summary's `Tally`
keeps only statuses, usage totals and scores, and a grader that fails cannot leave solvers
waiting forever on the bounded grading queue.
"""

from __future__ import annotations

import asyncio
import gc
import json
from pathlib import Path
from typing import Any

import pytest

import k2eval
from k2eval.adapters.aime import AimeAdapter
from k2eval.engine import runner
from k2eval.engine.config import build_run_config
from k2eval.errors import ConfigError
from k2eval.records import Attempt, Item, Score
from k2eval.testing.fake_openai import Reply


def test_transcripts_are_not_kept_in_memory_once_journaled_and_graded(
        fake_openai: Any, aime: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    srv = fake_openai(lambda body: Reply(text="so \\boxed{70}", completion_tokens=7))
    alive: list[int] = []
    finish = runner.Engine._finish

    def counting_finish(self: runner.Engine, *args: Any) -> dict[str, Any]:
        gc.collect()
        alive.append(sum(isinstance(o, Attempt) for o in gc.get_objects()))
        return finish(self, *args)

    monkeypatch.setattr(runner.Engine, "_finish", counting_finish)
    run = k2eval.evaluate("aime2025", "openai:m", base_url=srv.base_url, data=aime, k=12,
                          concurrency=4, out=tmp_path, run_id="many")
    s = run.summary
    assert (s["n_attempts"], s["n_errors"], s["complete"]) == (360, 0, True)
    assert s["usage"]["calls"] == 360 and s["usage"]["completion_tokens"] == 7 * 360
    assert s["score"] == pytest.approx(100 / 30, abs=1e-3)  # only problem 1 has the answer 70
    lines = (run.path / "attempts.jsonl").read_text().splitlines()
    assert len(lines) == 360 and "boxed{70}" in json.loads(lines[0])["messages"][-1]["content"]
    assert alive and alive[0] <= 16, f"{alive[0]} attempts with transcripts still in memory"


ITEMS = [Item("a", {}), Item("b", {})]


def attempt(item_id: str, index: int, status: str = "ok", calls: int = 1) -> Attempt:
    return Attempt(item_id, index, status=status, messages=[{"role": "user", "content": "x" * 99}],
                   usage={"agent": {"prompt_tokens": 10, "completion_tokens": 5, "calls": calls,
                                    "retries": 0}})


@pytest.mark.parametrize("keep_details", [False, True], ids=["light scores", "scores with details"])
def test_the_tally_keeps_what_the_summary_reads(keep_details: bool) -> None:
    tally = runner.Tally(ITEMS, k=2, keep_details=keep_details)
    for item_id, index in (("a", 0), ("a", 1), ("b", 0)):
        tally.add_attempt(attempt(item_id, index))
    tally.add_attempt(attempt("b", 1, status="error"))
    tally.add_attempt(attempt("c", 0))  # not an item of this run
    tally.add_attempt(attempt("a", 2))  # beyond k
    graded = Score("a", 1, 1.0, reason="correct", details={"extracted": "70"})
    for score in (Score("a", 0, 0.0, reason="wrong"), graded,
                  Score("b", 0, 0.0, status="error", reason="grader failed"),
                  Score("b", 1, 1.0)):  # of an attempt that errored: not counted
        tally.add_score(score)
    assert tally.counts() == (4, 1)
    scores = tally.scores()
    assert [(s.item_id, s.index, s.value, s.status) for s in scores] == [
        ("a", 0, 0.0, "ok"), ("a", 1, 1.0, "ok"), ("b", 0, 0.0, "error")]
    assert (scores[1] is graded) is keep_details
    assert scores[1].details == ({"extracted": "70"} if keep_details else {})
    assert tally.attempt_ok(("a", 1)) and not tally.attempt_ok(("b", 1))
    assert tally.score_ok(("a", 1)) and not tally.score_ok(("b", 0))
    assert tally.usage_summary()["calls"] == 4 and tally.usage_summary()["prompt_tokens"] == 40


def test_an_attempt_that_replaces_an_error_replaces_its_usage() -> None:
    tally = runner.Tally(ITEMS, k=1, keep_details=False)
    tally.add_attempt(attempt("a", 0, status="error", calls=6))
    tally.add_attempt(attempt("a", 0, calls=1))
    assert tally.counts() == (1, 0)
    usage = tally.usage_summary()
    assert (usage["calls"], usage["completion_tokens"]) == (1, 5)
    assert usage["by_role"] == {"agent": {"prompt_tokens": 10, "completion_tokens": 5,
                                          "calls": 1, "retries": 0, "reasoning_tokens": 0}}


def test_tool_call_counts_of_a_replaced_error_leave_the_totals() -> None:
    tally = runner.Tally(ITEMS, k=1, keep_details=False)
    assert tally.toolcalls is None  # no call offered tools
    failed = attempt("a", 0, status="error")
    failed.toolcalls = {"calls": 3, "invalid_json": 2}
    tally.add_attempt(failed)
    retried = attempt("a", 0)
    retried.toolcalls = {"calls": 1, "invalid_json": 0}
    tally.add_attempt(retried)
    other = attempt("b", 0)
    other.toolcalls = {"calls": 2, "unknown_tool": 1}
    tally.add_attempt(other)
    assert tally.toolcalls is not None
    assert (tally.toolcalls["calls"], tally.toolcalls["invalid_json"],
            tally.toolcalls["unknown_tool"]) == (3, 0, 1)


def test_a_grader_that_raises_stops_the_run_instead_of_hanging_the_solvers(
        fake_openai: Any, aime: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    srv = fake_openai(lambda body: Reply(text="\\boxed{1}"))

    async def broken(self: AimeAdapter, item: Any, attempt: Any, ctx: Any) -> Score:
        raise ConfigError("grader misconfigured")

    monkeypatch.setattr(AimeAdapter, "score", broken)
    config = build_run_config("aime2025", "openai:m", base_url=srv.base_url, data=aime, k=8,
                              concurrency=2)

    async def go() -> None:
        await asyncio.wait_for(runner.run_async(config, tmp_path, "broken", progress=False), 60)

    with pytest.raises(ConfigError, match="grader misconfigured"):
        asyncio.run(go())
    assert len(srv.requests) < 240, "the solvers went on after the grader failed"
