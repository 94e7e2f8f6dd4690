"""Scoring paths that end before any program runs, and sandbox failures (no Docker needed)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from lcb_rows import PROBLEMS, fenced, fixture_rows, write_jsonl

from k2eval.adapters.base import Attempt, Item, Score, ScoreContext
from k2eval.adapters.livecodebench import LiveCodeBenchAdapter
from k2eval.errors import InfraError
from k2eval.spec import ModelSpec, RunConfig, load_task

SPEC = load_task("livecodebench-v6")


def context(factory: Any) -> ScoreContext:
    return ScoreContext(config=RunConfig(task=SPEC, model=ModelSpec("openai:test")),
                        sandbox_factory=factory)


@contextlib.asynccontextmanager
async def no_sandbox(image: str | None, **limits: Any) -> AsyncIterator[Any]:
    raise AssertionError("no sandbox should be started")
    yield


@contextlib.asynccontextmanager
async def broken_sandbox(image: str | None, **limits: Any) -> AsyncIterator[Any]:
    raise RuntimeError("docker daemon went away")
    yield


def score(item: Item, output: dict[str, Any], factory: Any) -> Score:
    """Grade a reply given as a journal of k2eval 0.1 kept it (`output["response"]`)."""
    attempt = Attempt(item_id=item.id, index=0, output=output)
    return asyncio.run(LiveCodeBenchAdapter().score(item, attempt, context(factory)))


def test_reply_without_code_fails_without_running_anything(lcb_jsonl: Path) -> None:
    item = LiveCodeBenchAdapter().load(SPEC, str(lcb_jsonl))[0]
    for output in ({"response": "I think the answer is to sum them."},
                   {"response": "```python\nprint(1)"},
                   {"ended_by": "limit", "limit": "token budget reached"}):
        result = score(item, output, no_sandbox)
        assert (result.value, result.status, result.reason) == (0.0, "ok", "no code block")
        assert result.details == {"verdict": "no code block", "platform": "atcoder",
                                  "difficulty": "easy"}


def test_malformed_tests_are_a_failure_naming_the_question(tmp_path: Path) -> None:
    row = fixture_rows()[1] | {"private_test_cases": "eJzLSM3JyVcozy/KSQEAGgQEXQ=="}
    item = LiveCodeBenchAdapter().load(SPEC, str(write_jsonl(tmp_path / "bad.jsonl", [row])))[0]
    result = score(item, {"response": fenced(PROBLEMS["3487"]["correct"])}, no_sandbox)
    assert result.status == "ok" and result.value == 0.0
    assert result.reason.startswith("malformed test cases for question 3487")
    assert result.details["verdict"] == "malformed tests"


def test_sandbox_failure_is_an_infrastructure_error_not_a_wrong_answer(lcb_jsonl: Path) -> None:
    item = LiveCodeBenchAdapter().load(SPEC, str(lcb_jsonl))[0]
    with pytest.raises(InfraError, match="sandbox failed while grading abc371_a"):
        score(item, {"response": fenced(PROBLEMS["abc371_a"]["correct"])}, broken_sandbox)


def test_cli_date_window_and_release_flags(tmp_path: Path, fake_openai: Any,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from k2eval.cli import main
    from k2eval.testing.fake_openai import Reply

    rows = fixture_rows()
    data = tmp_path / "lcb"
    data.mkdir()
    write_jsonl(data / "test.jsonl", rows[:3])
    write_jsonl(data / "test2.jsonl", rows[3:])
    server = fake_openai(lambda request: Reply(text="I am not sure how to solve this."))
    common = ["run", "--task", "livecodebench-v6", "--model", "openai:kimi-k2", "--base-url",
              server.base_url, "--data", str(data), "--out", str(tmp_path / "runs"),
              "--no-progress"]
    # the default window keeps the four in-range rows of release_v2 (both files)
    assert main([*common, "--run-id", "default", "--release", "release_v2"]) == 0
    summary = json.loads((tmp_path / "runs" / "default" / "summary.json").read_text())
    assert (summary["n_items"], summary["score"], summary["metric_label"]) == (4, 0.0, "Pass@1")
    assert main([*common, "--run-id", "wide", "--start-date", "2024-07-01",
                 "--end-date", "2025-05-02", "--release", "release_v2"]) == 0
    summary = json.loads((tmp_path / "runs" / "wide" / "summary.json").read_text())
    assert summary["n_items"] == 6
    manifest = json.loads((tmp_path / "runs" / "wide" / "manifest.json").read_text())
    options = manifest["config"]["task"]["options"]
    assert options["start_date"] == "2024-07-01" and options["release"] == "release_v2"
    # release_v1 reads test.jsonl only
    assert main([*common, "--run-id", "v1", "--release", "release_v1"]) == 0
    summary = json.loads((tmp_path / "runs" / "v1" / "summary.json").read_text())
    assert summary["n_items"] == 3
    capsys.readouterr()
    assert main([*common, "--run-id", "bad", "--start-date", "August"]) == 2
    assert "start_date must be a date like 2024-08-01" in capsys.readouterr().err
    assert main([*common, "--run-id", "v6"]) == 2  # release_v6 (the default) needs six files
    assert "lacks test3.jsonl, test4.jsonl, test5.jsonl, test6.jsonl" in capsys.readouterr().err
