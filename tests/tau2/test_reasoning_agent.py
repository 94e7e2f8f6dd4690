"""A thinking agent in Tau2 over real HTTP: its reasoning is kept across tool calls for a model
that needs it back, and the tool-call conformance counts land in the attempt and the summary."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tau2_helpers import scripted_pair

import k2eval
from k2eval.spec import ModelSpec
from k2eval.testing.fake_openai import FakeOpenAIServer, Reply

ServerFactory = Callable[..., FakeOpenAIServer]


def _cancel_task(tasks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return next(t for t in tasks.values()
                if any(a["name"] == "cancel_reservation" for a in t["evaluation_criteria"]["actions"])
                and not t["evaluation_criteria"].get("communicate_info"))


def _thinking_gold(task: dict[str, Any]) -> list[Reply]:
    steps = [Reply(tool_calls=[(a["name"], a["arguments"])], reasoning=f"step {i}: {a['name']}",
                   reasoning_tokens=30)
             for i, a in enumerate(task["evaluation_criteria"]["actions"])
             if a.get("requestor", "assistant") == "assistant"]
    return [*steps, Reply(text="Your request is done.", reasoning="all done", reasoning_tokens=5)]


def _user(agent_text: str) -> Reply:
    return Reply(text="###STOP###" if "done" in agent_text else "Please help me with my request.")


@pytest.mark.parametrize("passback,reward", [("auto", 1.0), ("drop", None)])
def test_a_thinking_agent_needs_its_reasoning_back_across_tool_calls(
        fake_openai: ServerFactory, tau2_root: Path,
        tau2_tasks: Callable[[str], dict[str, dict[str, Any]]], tmp_path: Path, passback: str,
        reward: float | None) -> None:
    task = _cancel_task(tau2_tasks("airline"))
    steps = _thinking_gold(task)
    server = fake_openai(scripted_pair(steps, _user), require_reasoning_back=True)
    result = k2eval.evaluate("tau2-airline", "openai:agent", base_url=server.base_url,
                             user_model=ModelSpec("openai:user", base_url=server.base_url),
                             data=str(tau2_root), item_ids=[task["id"]], k=1, out=tmp_path,
                             reasoning_passback=passback, max_tries=1)
    attempt = json.loads((result.path / "attempts.jsonl").read_text().splitlines()[0])
    if reward is None:  # the endpoint refused the history without reasoning: an error, not a 0
        assert attempt["status"] == "error" and "missing its reasoning" in attempt["error"]["message"]
        assert result.summary["n_errors"] == 1
        return
    score = json.loads((result.path / "scores.jsonl").read_text().splitlines()[0])
    assert score["score"] == reward
    thoughts = [m.get("reasoning_content") for m in attempt["messages"]
                if m["role"] == "assistant" and m.get("tool_calls")]
    assert thoughts == [s.reasoning for s in steps[:-1]]
    n_calls = len(steps) - 1
    expected = {"calls": n_calls, "invalid_json": 0, "schema_violations": 0, "unknown_tool": 0,
                "finish_mismatch": 0, "truncated": 0}
    assert attempt["toolcalls"] == expected and result.summary["toolcalls"] == expected
    assert result.summary["usage"]["reasoning_tokens"] == 30 * n_calls + 5
