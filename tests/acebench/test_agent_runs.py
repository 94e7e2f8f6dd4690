"""Agent dialogues end to end over real HTTP: scripted agent and user models, real backends."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from k2eval.adapters.acebench import AceBenchAdapter, prompts
from k2eval.adapters.acebench.agent import NOT_A_CALL
from k2eval.adapters.base import Attempt, AttemptContext, Item, Score, ScoreContext
from k2eval.errors import ConfigError
from k2eval.models.openai_api import OpenAIChatModel
from k2eval.spec import ModelSpec, RunConfig, TaskSpec
from k2eval.testing.fake_openai import Reply

TASK_FILE = Path(__file__).resolve().parents[2] / "tasks" / "acebench-en.yaml"
Responder = Callable[[dict[str, Any]], Reply]


def task(**options: Any) -> TaskSpec:
    spec = TaskSpec.from_dict(yaml.safe_load(TASK_FILE.read_text()), source=str(TASK_FILE))
    return spec.with_overrides(options=options)


def item_by_id(items: dict[str, list[Item]], item_id: str) -> Item:
    category = item_id.rsplit("_", 1)[0]
    return next(i for i in items[category] if i.id == item_id)


def requote(milestone: str) -> str:
    return re.sub(r"=(['\"])(.*?)\1(?=, \w+=|\)|\})", lambda m: "=" + repr(m.group(2)),
                  milestone.strip())


async def run_item(item: Item, spec: TaskSpec, base_url: str, *, with_user: bool = True
                   ) -> tuple[Attempt, Score]:
    agent_spec = ModelSpec("openai:agent", base_url=base_url)
    user_spec = ModelSpec("openai:user", base_url=base_url) if with_user else None
    config = RunConfig(task=spec, model=agent_spec, user_model=user_spec)
    agent = OpenAIChatModel(agent_spec)
    user = OpenAIChatModel(user_spec) if user_spec else None
    adapter = AceBenchAdapter()
    try:
        ctx = AttemptContext(item=item, index=0, config=config, model=agent, user_model=user)
        result = await adapter.solve(item, ctx)
    finally:
        await agent.aclose()
        if user:
            await user.aclose()
    attempt = Attempt(item.id, 0, messages=result.messages, output=result.output)
    return attempt, await adapter.score(item, attempt, ScoreContext(config=config))


def is_user_simulator(body: dict[str, Any]) -> bool:
    return str(body["messages"][0]["content"]).startswith("You are a user interacting")


def scripted_agent(lines: list[str]) -> Responder:
    """The agent answers `lines` in order (repeating the last); the user is not scripted."""
    calls = iter(lines)

    def respond(body: dict[str, Any]) -> Reply:
        assert not is_user_simulator(body)
        return Reply(text=next(calls, lines[-1]))

    return respond


async def test_multi_step_milestones_solve_the_task(fake_openai: Any,
                                                    acebench_items: dict[str, list[Item]]) -> None:
    item = item_by_id(acebench_items, "agent_multi_step_2")
    stones = [requote(s) for s in item.data["mile_stone"]]
    srv = fake_openai(scripted_agent([*stones, "finish conversation"]))
    attempt, score = await run_item(item, task(), srv.base_url, with_user=False)
    assert score.value == 1.0 and score.details["process_accuracy"] == 1.0, score.reason
    assert attempt.output["ended_by"] == "finish"
    assert attempt.output["process"] == stones
    first = srv.requests[0]
    assert first["messages"][0]["content"] == prompts.MULTI_STEP_AGENT_SYSTEM
    assert first["messages"][1]["content"].startswith(
        "Below is the list of APIs you can call (in JSON format): [{'name': 'turn_on_wifi'")
    assert first["messages"][1]["content"].endswith(f"user:{item.data['question']}\n\n")
    assert "execution result:[" in srv.requests[1]["messages"][1]["content"]
    assert all(r["temperature"] == 0.0 and r["max_tokens"] == 8192 for r in srv.requests)


async def test_multi_step_history_holds_the_task_and_execution_results_only(
        fake_openai: Any, acebench_items: dict[str, list[Item]]) -> None:
    """Upstream adds a message to the agent's history only when the agent is about to be asked:
    the agent never sees its own earlier calls, answered or not."""
    item = item_by_id(acebench_items, "agent_multi_step_2")
    stones = [requote(s) for s in item.data["mile_stone"]]
    srv = fake_openai(scripted_agent(["Which account should I use?", *stones,
                                      "finish conversation"]))
    attempt, _ = await run_item(item, task(), srv.base_url, with_user=False)
    results = [m["message"] for m in attempt.output["history"] if m["sender"] == "execution"]
    sent = [r["messages"][1]["content"] for r in srv.requests]
    assert len(sent) == len(results) + 1 == len(stones) + 2
    assert results[0] == NOT_A_CALL and all(isinstance(r, list) for r in results[1:])
    for n, content in enumerate(sent):
        history = f"user:{item.data['question']}\n" + "".join(
            f"execution result:{result}\n" for result in results[:n])
        assert content.endswith(f". Conversation history: {history}\n"), n
        assert "agent:" not in content.split("Conversation history: ", 1)[1]
    assert "Which account should I use?" not in sent[-1]
    assert not any(stone in sent[-1] for stone in stones)


async def test_multi_step_text_is_answered_by_the_executor(fake_openai: Any,
                                                           acebench_items: dict[str, list[Item]]
                                                           ) -> None:
    item = item_by_id(acebench_items, "agent_multi_step_2")
    srv = fake_openai(scripted_agent(["Which account should I use?", "still thinking",
                                      "finish conversation"]))
    attempt, score = await run_item(item, task(), srv.base_url, with_user=False)
    history = attempt.output["history"]
    assert history[2] == {"sender": "execution", "recipient": "agent", "message": NOT_A_CALL}
    assert attempt.output["state"] == [] and score.value == 0.0
    assert "wrong number of classes" in score.reason
    assert score.details["process_accuracy"] == 0.0


async def test_multi_turn_with_a_user_simulator(fake_openai: Any,
                                                acebench_items: dict[str, list[Item]]) -> None:
    item = item_by_id(acebench_items, "agent_multi_turn_0")
    agent_lines = [requote(s) for s in item.data["mile_stone"]] + ["The message was sent."]
    agent = scripted_agent(agent_lines)
    user_turns = iter(["I'd like to send a message to Frank.", "finish conversation"])

    def respond(body: dict[str, Any]) -> Reply:
        if is_user_simulator(body):
            return Reply(text=next(user_turns))
        return agent(body)

    srv = fake_openai(respond)
    attempt, score = await run_item(item, task(), srv.base_url)
    assert score.value == 1.0, score.reason
    assert attempt.output["ended_by"] == "finish"
    senders = [m["sender"] for m in attempt.output["history"]]
    assert senders == ["user", *["agent", "execution"] * 4, "agent", "user"]
    user_requests = [r for r in srv.requests if is_user_simulator(r)]
    assert user_requests[0]["messages"][1] == {"role": "user",
                                               "content": prompts.USER_SIM_OPENING}
    assert user_requests[1]["messages"][2] == {"role": "system",
                                               "content": "I'd like to send a message to Frank."}
    assert user_requests[1]["messages"][3] == {"role": "user", "content": "The message was sent."}
    assert all(r["max_tokens"] == 1000 and r["temperature"] == 0.001 for r in user_requests)
    agent_system = next(r for r in srv.requests if not is_user_simulator(r))["messages"][0]
    assert agent_system["content"].endswith(prompts.PHONE_RULES)


@pytest.mark.parametrize(("item_id", "rules"), [("agent_multi_turn_0", prompts.PHONE_RULES),
                                               ("agent_multi_turn_20", prompts.TRAVEL_RULES)],
                         ids=["phone", "travel"])
async def test_multi_turn_agent_prompts_have_real_line_breaks(
        fake_openai: Any, acebench_items: dict[str, list[Item]], item_id: str, rules: str) -> None:
    item = item_by_id(acebench_items, item_id)
    user_turns = iter(["Hello, I need help.", "Still there?"])

    def respond(body: dict[str, Any]) -> Reply:
        if is_user_simulator(body):
            return Reply(text=next(user_turns, "finish conversation"))
        return Reply(text="How can I help?")

    srv = fake_openai(respond)
    await run_item(item, task(), srv.base_url)
    agent_requests = [r for r in srv.requests if not is_user_simulator(r)]
    assert len(agent_requests) == 2
    for request in agent_requests:
        system, user = (m["content"] for m in request["messages"])
        assert "\\n" not in system
        assert system.endswith(
            "and returns the result\n\nThe rules you need to follow are as follows:\n\n" + rules)
        functions = str(item.data["functions"])
        assert user.startswith(f"Below is the list of APIs you can use:\n {functions}\n\n"
                               "Conversation history 1..t:\nuser:Hello, I need help.\n")
        assert "\\n" not in user.replace(functions, "")
    second = agent_requests[1]["messages"][1]["content"]
    assert second.endswith("\nagent:How can I help?\nuser:Still there?\n")


async def test_multi_turn_keeps_the_state_of_an_execution_upstream_does_not_fail(
        fake_openai: Any, acebench_items: dict[str, list[Item]]) -> None:
    """A call to a function no backend offers, after one that ran, repeats that result upstream
    instead of failing; the state counts. A dict argument upstream cannot write back makes the
    message text for the user."""
    item = item_by_id(acebench_items, "agent_multi_turn_0")
    agent = scripted_agent(["[turn_on_wifi(), fly(to='Mars')]",
                            "[send_message(message={'text': 'hi'})]", "finish conversation"])
    user_turns = iter(["Turn on the wifi.", "What did you send?"])

    def respond(body: dict[str, Any]) -> Reply:
        if is_user_simulator(body):
            return Reply(text=next(user_turns, "finish conversation"))
        return agent(body)

    srv = fake_openai(respond)
    attempt, score = await run_item(item, task(), srv.base_url)
    history = attempt.output["history"]
    wifi = {"status": True, "message": "Wi-Fi has been turned on"}
    assert history[2] == {"sender": "execution", "recipient": "agent", "message": [wifi, wifi]}
    assert history[3]["recipient"] == "user"
    assert attempt.output["process"] == ["[turn_on_wifi(), fly(to='Mars')]"]
    assert {"BaseApi": {"wifi": True, "logged_in": True}} in attempt.output["state"]
    assert "wrong number of classes" not in score.reason
    user_requests = [r for r in srv.requests if is_user_simulator(r)]
    assert user_requests[1]["messages"][-1] == {
        "role": "user", "content": "[send_message(message={'text': 'hi'})]"}


async def test_a_user_that_never_ends_hits_the_turn_limit(
        fake_openai: Any, acebench_items: dict[str, list[Item]]) -> None:
    item = item_by_id(acebench_items, "agent_multi_turn_0")

    def respond(body: dict[str, Any]) -> Reply:
        return Reply(text="Please keep going." if is_user_simulator(body) else "What next?")

    srv = fake_openai(respond)
    attempt, score = await run_item(item, task(max_dialog_turns=6, user_reply_role="assistant"),
                                    srv.base_url)
    assert attempt.output["ended_by"] == "turn_limit"
    last_user_request = [r for r in srv.requests if is_user_simulator(r)][-1]
    assert [m["role"] for m in last_user_request["messages"]] == [
        "system", "user", *["assistant", "user"] * 3]
    assert len(attempt.output["history"]) == 7
    assert score.value == 0.0 and attempt.output["state"] == []


def test_only_selected_agent_multi_turn_items_need_a_user_model() -> None:
    from k2eval.engine.executors.attempts import check_model_flags

    adapter = AceBenchAdapter()
    multi_turn = Item("m", {"category": "agent_multi_turn"})
    multi_step = Item("s", {"category": "agent_multi_step"})
    normal = Item("n", {"category": "normal_atom_bool"})
    assert adapter.needs_user_model_for([normal, multi_turn])
    assert not adapter.needs_user_model_for([normal, multi_step])
    config = RunConfig(task=task(), model=ModelSpec("openai:agent"))
    with pytest.raises(ConfigError, match="--user-model"):
        check_model_flags(config, adapter, [normal, multi_turn])
    check_model_flags(config, adapter, [normal, multi_step])
