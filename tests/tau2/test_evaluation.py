"""Reward components, the NL-assertion judge, pass^k, prompts and bad data directories."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from k2eval.adapters.base import Score
from k2eval.adapters.tau2.data import check_domain_files, load_tasks, resolve_data_dir
from k2eval.adapters.tau2.evaluation import (
    JudgeError,
    check_actions,
    check_communicate,
    check_nl_assertions,
    compute_reward,
)
from k2eval.adapters.tau2.metrics import pass_hat_ks
from k2eval.adapters.tau2.simulation import agent_view, user_scenario_text, user_view
from k2eval.errors import DataError, UserError
from k2eval.models.openai_api import OpenAIChatModel
from k2eval.spec import ModelSpec
from k2eval.testing.fake_openai import FakeOpenAIServer, Reply

ServerFactory = Callable[..., FakeOpenAIServer]


def tool_call(name: str, arguments: dict[str, Any], role: str = "assistant") -> dict[str, Any]:
    return {"role": role, "content": None, "tool_calls": [
        {"id": "c1", "type": "function",
         "function": {"name": name, "arguments": json.dumps(arguments)}}]}


def test_communicate_is_case_insensitive_and_ignores_commas_in_agent_messages() -> None:
    task = {"evaluation_criteria": {"communicate_info": ["1234.56", "Gold"]}}
    said = [{"role": "assistant", "content": "Your refund is 1,234.56 dollars"},
            {"role": "user", "content": "gold"}]
    assert check_communicate(task, said) == [{"info": "1234.56", "met": True},
                                             {"info": "Gold", "met": False}]
    said.append({"role": "assistant", "content": "You are a GOLD member."})
    assert all(c["met"] for c in check_communicate(task, said))


def test_action_matching_uses_compare_args_or_all_of_the_calls_arguments() -> None:
    task = {"evaluation_criteria": {"actions": [
        {"action_id": "a", "name": "refuel_data",
         "arguments": {"customer_id": "C1", "line_id": "L1", "gb_amount": 2.0}},
        {"action_id": "b", "name": "transfer_to_human_agents", "arguments": {"summary": "x"},
         "compare_args": []},
        {"action_id": "c", "name": "toggle_data", "arguments": {}, "requestor": "user"}]}}
    calls = [tool_call("refuel_data", {"customer_id": "C1", "line_id": "L1", "gb_amount": 2}),
             tool_call("transfer_to_human_agents", {"summary": "anything"}),
             tool_call("toggle_data", {}, role="user")]
    assert [a["matched"] for a in check_actions(task, calls)] == [True, True, True]
    calls[0] = tool_call("refuel_data", {"customer_id": "C1", "line_id": "L1", "gb_amount": 3})
    assert [a["matched"] for a in check_actions(task, calls)] == [False, True, True]
    # a call that passes a subset of the arguments is compared on those only (tau2's rule)
    calls[0] = tool_call("refuel_data", {"customer_id": "C1"})
    assert check_actions(task, calls)[0]["matched"] is True


def test_step_or_error_limits_score_zero_without_grading(tau2_root: Path) -> None:
    task = load_tasks(tau2_root, "retail")[0]
    reward = asyncio.run(compute_reward(tau2_root, "retail", task, [], "max_steps"))
    assert reward.value == 0.0 and reward.components == {}
    assert reward.details["reason"] == "conversation ended by max_steps"


def _judge(server: FakeOpenAIServer) -> OpenAIChatModel:
    return OpenAIChatModel(ModelSpec("openai:judge", base_url=server.base_url))


def test_judge_verdicts_and_retry_on_unreadable_answers(fake_openai: ServerFactory) -> None:
    answers = iter(["not json at all",
                    json.dumps({"results": [{"expectedOutcome": "a", "reasoning": "r",
                                             "metExpectation": True},
                                            {"expectedOutcome": "b", "reasoning": "r",
                                             "metExpectation": False}]})])
    server = fake_openai(lambda _: Reply(text=next(answers)))

    async def go() -> list[dict[str, Any]]:
        judge = _judge(server)
        try:
            return await check_nl_assertions(judge, ["a", "b"],
                                             [{"role": "assistant", "content": "I refuse."}])
        finally:
            await judge.aclose()

    verdicts = asyncio.run(go())
    assert [v["met"] for v in verdicts] == [True, False]
    assert len(server.requests) == 2
    assert "assistant: I refuse." in server.requests[0]["messages"][1]["content"]


def test_judge_that_never_answers_json_is_an_error_not_a_pass(fake_openai: ServerFactory) -> None:
    server = fake_openai(lambda _: Reply(text='{"results": [{"metExpectation": "maybe"}]}'))

    async def go() -> None:
        judge = _judge(server)
        try:
            await check_nl_assertions(judge, ["a"], [])
        finally:
            await judge.aclose()

    with pytest.raises(JudgeError, match="not the expected JSON"):
        asyncio.run(go())
    assert len(server.requests) == 2


def _trials(**rewards: list[float]) -> dict[str, list[Score]]:
    return {item: [Score(item, i, v) for i, v in enumerate(values)]
            for item, values in rewards.items()}


def test_pass_hat_k_over_trials() -> None:
    result = pass_hat_ks(_trials(a=[1, 1, 1, 1], b=[1, 1, 0, 0], c=[0, 0, 0, 0]))
    # b: C(2,k)/C(4,k) = 1/2, 1/6, 0, 0
    assert result["pass^1"]["score"] == pytest.approx(100 * (1 + 0.5) / 3, abs=1e-3)
    assert result["pass^2"]["score"] == pytest.approx(100 * (1 + 1 / 6) / 3, abs=1e-3)
    assert result["pass^3"]["score"] == result["pass^4"]["score"] == pytest.approx(100 / 3, abs=1e-3)
    assert result["pass^4"]["n_items"] == 3


@pytest.mark.parametrize(("rewards", "expected"), [
    # k stops at the fewest trials (b has 2), and every task counts for every k
    ({"a": [1, 1, 1, 1], "b": [1, 0]}, {"pass^1": 75.0, "pass^2": 50.0}),
    ({"a": [1, 0, 1], "b": [1]}, {"pass^1": 100 * (2 / 3 + 1) / 2}),
    # success is a reward within 1e-6 of 1, as in tau2
    ({"a": [0.9999995, 1.0], "b": [0.99, 1.0]}, {"pass^1": 75.0, "pass^2": 50.0}),
])
def test_pass_hat_k_caps_k_at_the_fewest_trials_of_any_task_as_tau2_does(
        rewards: dict[str, list[float]], expected: dict[str, float]) -> None:
    result = pass_hat_ks(_trials(**rewards))
    assert {k: v["score"] for k, v in result.items()} == pytest.approx(expected, abs=1e-3)
    assert {v["n_items"] for v in result.values()} == {len(rewards)}


def test_views_route_messages_like_tau2() -> None:
    trajectory = [{"role": "assistant", "content": "Hi! How can I help you today?"},
                  {"role": "user", "content": "My data is off."},
                  tool_call("get_customer_by_phone", {"phone_number": "1"}),
                  {"role": "tool", "tool_call_id": "c1", "content": "{}", "requestor": "assistant"},
                  {"role": "assistant", "content": "Please toggle data."},
                  tool_call("toggle_data", {}, role="user"),
                  {"role": "tool", "tool_call_id": "c1", "content": "ON", "requestor": "user"},
                  {"role": "user", "content": "Done."}]
    agent = agent_view(trajectory)
    assert [m["role"] for m in agent] == ["assistant", "user", "assistant", "tool", "assistant", "user"]
    user = user_view(trajectory)
    assert [m["role"] for m in user] == ["user", "assistant", "user", "assistant", "tool", "assistant"]
    assert user[3]["tool_calls"][0]["function"]["name"] == "toggle_data"


def test_user_scenario_is_rendered_with_tau2_layout(tau2_root: Path) -> None:
    task = load_tasks(tau2_root, "retail")[0]
    text = user_scenario_text(task["user_scenario"])
    instructions = task["user_scenario"]["instructions"]
    assert text.startswith("Instructions:\n\tDomain: retail\n\tReason for call:\n\t\t")
    assert f"\tKnown info:\n\t\t{instructions['known_info']}" in text
    assert text.endswith(f"Task instructions:\n\t\t{instructions['task_instructions']}")


def test_data_directory_errors_name_the_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                tau2_root: Path) -> None:
    monkeypatch.delenv("TAU2_DATA_DIR", raising=False)
    with pytest.raises(UserError, match="TAU2_DATA_DIR"):
        resolve_data_dir(None)
    with pytest.raises(UserError, match="does not exist"):
        resolve_data_dir(str(tmp_path / "nowhere"))
    monkeypatch.setenv("TAU2_DATA_DIR", str(tau2_root.parent))  # the repository's data/ folder
    assert resolve_data_dir(None) == tau2_root
    with pytest.raises(UserError, match="unknown tau2 domain"):
        check_domain_files(tau2_root, "banking")
    bad = tmp_path / "domains" / "airline"
    bad.mkdir(parents=True)
    (bad / "tasks.json").write_text('[{"id": "1",\n  "user_scenario": }]')
    with pytest.raises(DataError, match=r"tasks\.json:2: invalid JSON"):
        load_tasks(tmp_path, "airline")


def test_nl_assertion_tasks_without_a_judge_are_grading_errors(tau2_root: Path) -> None:
    from k2eval.adapters.base import Attempt, Item, ScoreContext
    from k2eval.adapters.tau2 import Tau2Adapter
    from k2eval.engine.config import build_run_config

    task = load_tasks(tau2_root, "airline")[0]
    task["evaluation_criteria"]["reward_basis"] = ["NL_ASSERTION"]
    item = Item(id=task["id"], data={"domain": "airline", "data_dir": str(tau2_root), "task": task})
    attempt = Attempt(item_id=item.id, index=0,
                      messages=[{"role": "assistant", "content": "I cannot cancel that."}],
                      output={"termination": "user_stop"})
    config = build_run_config("tau2-airline", "openai:agent", data=str(tau2_root))
    score = asyncio.run(Tau2Adapter().score(item, attempt, ScoreContext(config=config)))
    assert score.status == "error" and "--judge-model" in score.reason


def test_the_group_task_is_not_run_directly(tau2_root: Path) -> None:
    from k2eval.adapters.tau2 import Tau2Adapter
    from k2eval.errors import ConfigError
    from k2eval.spec import load_task

    with pytest.raises(ConfigError, match="tau2-airline, tau2-retail, tau2-telecom"):
        Tau2Adapter().load(load_task("tau2"), str(tau2_root))
    items = Tau2Adapter().load(load_task("tau2-telecom"), str(tau2_root))
    assert len(items) == 114 and items[0].meta == {"domain": "telecom"}


@pytest.mark.parametrize("value", [0, -3, "ten", True])
def test_a_tool_error_cut_off_that_is_not_a_positive_integer_is_refused(
        tau2_root: Path, value: Any) -> None:
    from k2eval.adapters.tau2 import Tau2Adapter
    from k2eval.engine.config import build_run_config
    from k2eval.errors import ConfigError

    config = build_run_config("tau2-airline", "openai:agent", data=str(tau2_root),
                              options={"max_tool_errors": value})
    with pytest.raises(ConfigError, match="max_tool_errors must be a positive integer"):
        Tau2Adapter().conditions(config)
