"""End to end over real HTTP: scripted agent and user models talk through the engine, the
environment answers, and the reward lands in the run directory."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tau2_helpers import is_agent_request, scripted_pair

import k2eval
from k2eval.adapters.tau2.simulation import user_scenario_text
from k2eval.spec import ModelSpec
from k2eval.testing.fake_openai import FakeOpenAIServer, Reply

ServerFactory = Callable[..., FakeOpenAIServer]
# The gold-playing run covers every fifth of the first 40 tasks; K2EVAL_TAU2_ALL_TASKS=1 plays
# all 278 (about 5 minutes on a loaded 2-core machine).
ALL_TASKS = os.environ.get("K2EVAL_TAU2_ALL_TASKS") == "1"
STRIDE, STRIDE_END = (1, None) if ALL_TASKS else (5, 40)
Tasks = Callable[[str], dict[str, dict[str, Any]]]


def gold_steps(task: dict[str, Any], *, requestor: str = "assistant") -> list[Reply]:
    return [Reply(tool_calls=[(a["name"], a["arguments"])])
            for a in task["evaluation_criteria"]["actions"]
            if a.get("requestor", "assistant") == requestor]


def run(domain: str, task_id: str, responder: Callable[[dict[str, Any]], Reply],
        fake_openai: ServerFactory, tau2_root: Path, tmp_path: Path,
        **overrides: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], FakeOpenAIServer]:
    server = fake_openai(responder)
    result = k2eval.evaluate(f"tau2-{domain}", "openai:agent", base_url=server.base_url,
                             user_model=ModelSpec("openai:user", base_url=server.base_url),
                             data=str(tau2_root), item_ids=[task_id], k=1, out=tmp_path,
                             **overrides)
    attempt = json.loads((result.path / "attempts.jsonl").read_text().splitlines()[0])
    score = json.loads((result.path / "scores.jsonl").read_text().splitlines()[0])
    return result.summary, attempt, score, server


def stop_when(word: str, then: str = "###STOP###") -> Callable[[str], Reply]:
    def user(agent_text: str) -> Reply:
        return Reply(text=then if word in agent_text else "Please help me with my request.")
    return user


def test_airline_task_with_database_changes_earns_full_reward(
        fake_openai: ServerFactory, tau2_root: Path, tau2_tasks: Tasks, tmp_path: Path) -> None:
    task = next(t for t in tau2_tasks("airline").values()
                if any(a["name"] == "cancel_reservation" for a in t["evaluation_criteria"]["actions"])
                and not t["evaluation_criteria"].get("communicate_info"))
    responder = scripted_pair([*gold_steps(task), Reply(text="Your request is done.")],
                              stop_when("done"))
    summary, attempt, score, server = run("airline", task["id"], responder, fake_openai,
                                          tau2_root, tmp_path)
    assert score["score"] == 1.0 and score["details"]["db_match"] is True
    assert score["details"]["components"] == {"DB": 1.0, "COMMUNICATE": 1.0}
    assert attempt["output"]["termination"] == "user_stop"
    assert attempt["messages"][0] == {"role": "assistant", "content": "Hi! How can I help you today?"}
    assert summary["score"] == 100.0 and summary["breakdowns"]["pass^k"]["pass^1"]["score"] == 100.0
    assert summary["breakdowns"]["item_rewards"] == {task["id"]: 1.0}
    agent_request = next(r for r in server.requests if is_agent_request(r))
    assert agent_request["temperature"] == 0.0 and agent_request["max_tokens"] == 8192
    assert len(agent_request["tools"]) == 14
    policy = (tau2_root / "domains" / "airline" / "policy.md").read_text()
    assert policy in agent_request["messages"][0]["content"]
    user_request = next(r for r in server.requests if not is_agent_request(r))
    assert "<scenario>" in user_request["messages"][0]["content"]
    assert "tools" not in user_request  # airline users have no tools
    assert user_request["messages"][1] == {"role": "user", "content": "Hi! How can I help you today?"}


def test_doing_nothing_fails_a_task_that_changes_the_database(
        fake_openai: ServerFactory, tau2_root: Path, tau2_tasks: Tasks, tmp_path: Path) -> None:
    task = next(t for t in tau2_tasks("airline").values()
                if any(a["name"] == "cancel_reservation" for a in t["evaluation_criteria"]["actions"]))
    responder = scripted_pair([Reply(text="I am done here.")], stop_when("done"))
    summary, _, score, _ = run("airline", task["id"], responder, fake_openai, tau2_root, tmp_path)
    assert score["score"] == 0.0 and score["details"]["db_match"] is False
    assert score["reason"].startswith("failed: DB")
    assert summary["score"] == 0.0


def test_tool_errors_are_reported_to_the_agent_and_recovery_still_counts(
        fake_openai: ServerFactory, tau2_root: Path, tau2_tasks: Tasks, tmp_path: Path) -> None:
    task = tau2_tasks("retail")["0"]
    steps = [Reply(tool_calls=[("teleport_order", {"order_id": "#W2378156"})]),
             Reply(tool_calls=[("get_order_details", '{"order_id": ')]),
             *gold_steps(task), Reply(text="All done.")]
    _, attempt, score, server = run("retail", "0", scripted_pair(steps, stop_when("done")),
                                    fake_openai, tau2_root, tmp_path)
    tool_messages = [m for m in attempt["messages"] if m["role"] == "tool"]
    assert tool_messages[0]["content"] == "Error: Tool 'teleport_order' not found."
    assert tool_messages[0]["error"] is True and "not valid JSON" in tool_messages[1]["content"]
    assert attempt["output"]["tool_errors"] == 2
    assert score["score"] == 1.0
    third_agent_call = [r for r in server.requests if is_agent_request(r)][2]
    assert third_agent_call["messages"][-1]["role"] == "tool"
    assert "not valid JSON" in third_agent_call["messages"][-1]["content"]


@pytest.mark.parametrize(("options", "termination", "errors"), [
    ({}, "max_steps", 14),  # tau2 0.1.3: errors are never counted towards a cut-off
    ({"max_tool_errors": 10}, "too_many_errors", 10),  # tau2 1.0's cut-off, when asked for
])
def test_tool_errors_end_the_conversation_only_when_the_cut_off_is_asked_for(
        options: dict[str, Any], termination: str, errors: int,
        fake_openai: ServerFactory, tau2_root: Path, tmp_path: Path) -> None:
    responder = scripted_pair([Reply(tool_calls=[("get_order_details", {"order_id": "nope"})])],
                              stop_when("done"))
    result = run("retail", "0", responder, fake_openai, tau2_root, tmp_path, max_steps=30,
                 options=options)
    summary, attempt, score, _ = result
    assert attempt["output"]["termination"] == termination
    assert attempt["output"]["tool_errors"] == errors
    assert score["score"] == 0.0 and termination in score["reason"]
    assert summary["conditions"]["max_tool_errors"] == options.get("max_tool_errors")


def test_transfer_to_a_human_ends_with_the_users_transfer_token(
        fake_openai: ServerFactory, tau2_root: Path, tau2_tasks: Tasks, tmp_path: Path) -> None:
    task_id, task = next((i, t) for i, t in tau2_tasks("retail").items()
                         if t["evaluation_criteria"]["actions"]
                         and t["evaluation_criteria"]["actions"][-1]["name"] == "transfer_to_human_agents"
                         and not t["evaluation_criteria"].get("communicate_info"))
    responder = scripted_pair([*gold_steps(task), Reply(text="You are being transferred.")],
                              stop_when("transferred", then="###TRANSFER###"))
    _, attempt, score, _ = run("retail", task_id, responder, fake_openai, tau2_root, tmp_path)
    assert attempt["messages"][-1] == {"role": "user", "content": "###TRANSFER###"}
    assert attempt["output"]["termination"] == "user_stop"
    assert score["score"] == 1.0


def test_a_user_that_never_stops_hits_the_step_limit(
        fake_openai: ServerFactory, tau2_root: Path, tmp_path: Path) -> None:
    responder = scripted_pair([Reply(text="How else can I help?")],
                              lambda _: Reply(text="Tell me more."))
    _, attempt, score, _ = run("retail", "0", responder, fake_openai, tau2_root, tmp_path,
                               max_steps=12)
    assert attempt["output"]["termination"] == "max_steps"
    assert attempt["output"]["steps"] == 12
    assert score["score"] == 0.0 and "max_steps" in score["reason"]


def test_telecom_user_acts_on_the_phone_when_the_agent_asks(
        fake_openai: ServerFactory, tau2_root: Path, tau2_tasks: Tasks, tmp_path: Path) -> None:
    task_id = "[mobile_data_issue]data_mode_off|data_usage_exceeded[PERSONA:None]"
    task = tau2_tasks("telecom")[task_id]
    agent_steps = [Reply(text="Please turn your mobile data on."), *gold_steps(task),
                   Reply(text="Your data is refueled, all done.")]

    def user(request: dict[str, Any]) -> Reply:
        last = request["messages"][-1]
        if last["role"] == "tool":
            return Reply(text="Data is on now.")
        if "turn your mobile data on" in str(last.get("content")):
            return Reply(tool_calls=[("toggle_data", {})])
        return stop_when("done")(str(last.get("content")))

    def respond(request: dict[str, Any]) -> Reply:
        if is_agent_request(request):
            return scripted_pair(agent_steps, stop_when("done"))(request)
        assert {t["function"]["name"] for t in request["tools"]} >= {"toggle_data", "run_speed_test"}
        return user(request)

    _, attempt, score, _ = run("telecom", task_id, respond, fake_openai, tau2_root, tmp_path)
    user_calls = [m for m in attempt["messages"] if m["role"] == "user" and m.get("tool_calls")]
    assert user_calls[0]["tool_calls"][0]["function"]["name"] == "toggle_data"
    user_result = next(m for m in attempt["messages"] if m.get("requestor") == "user")
    assert user_result["content"].startswith("Mobile Data is now ON.")
    assert score["details"]["components"] == {"ENV_ASSERTION": 1.0}
    assert all(a["met"] for a in score["details"]["env_assertions"])
    assert score["score"] == 1.0


def test_missing_data_files_are_named(tmp_path: Path, fake_openai: ServerFactory) -> None:
    from k2eval.errors import UserError

    (tmp_path / "domains" / "retail").mkdir(parents=True)
    (tmp_path / "domains" / "retail" / "db.json").write_text("{}")
    server = fake_openai(lambda _: Reply(text="hi"))
    with pytest.raises(UserError, match=r"retail/policy\.md: missing from the tau2 data directory"):
        k2eval.evaluate("tau2-retail", "openai:agent", base_url=server.base_url,
                        user_model=ModelSpec("openai:user", base_url=server.base_url),
                        data=str(tmp_path), k=1, out=tmp_path / "runs")


def test_agent_instructions_can_come_from_a_file(
        fake_openai: ServerFactory, tau2_root: Path, tmp_path: Path) -> None:
    instructions = tmp_path / "instructions.txt"
    instructions.write_text("Exact instruction text.\n")
    responder = scripted_pair([Reply(text="done")], stop_when("done"))
    _, _, _, server = run("retail", "0", responder, fake_openai, tau2_root, tmp_path / "runs",
                          options={"agent_instructions_file": str(instructions)})
    system = next(r for r in server.requests if is_agent_request(r))["messages"][0]["content"]
    assert system.startswith("<instructions>\nExact instruction text.\n</instructions>\n<policy>\n")


def test_empty_agent_message_fails_and_empty_user_simulator_is_an_attempt_error(
        fake_openai: ServerFactory, tau2_root: Path, tmp_path: Path) -> None:
    responder = scripted_pair([Reply(text="")], stop_when("done"))
    _, attempt, score, _ = run("retail", "0", responder, fake_openai, tau2_root, tmp_path / "a")
    assert attempt["output"]["termination"] == "agent_error" and score["score"] == 0.0

    silent_user = scripted_pair([Reply(text="How can I help?")], lambda _: Reply(text=""))
    server = fake_openai(silent_user)
    result = k2eval.evaluate("tau2-retail", "openai:agent", base_url=server.base_url,
                             user_model=ModelSpec("openai:user", base_url=server.base_url),
                             data=str(tau2_root), item_ids=["0"], k=1, out=tmp_path / "b")
    attempt = json.loads((result.path / "attempts.jsonl").read_text().splitlines()[0])
    assert attempt["status"] == "error" and "empty message 3 times" in attempt["error"]["message"]
    assert result.summary["n_errors"] == 1
    assert sum(1 for r in server.requests if not is_agent_request(r)) == 3


def gold_playing_pair(tasks: dict[str, dict[str, Any]]) -> Callable[[dict[str, Any]], Reply]:
    """Agent and user who play each task's gold actions in order, each their own, over the
    conversation (the agent asks the user to act on the phone when the next action is theirs).
    Conversations are told apart by the user scenario in the simulator's system prompt and by
    the first user message, which names the task."""
    progress: dict[str, int] = {}

    def task_of(request: dict[str, Any]) -> str:
        text = json.dumps(request["messages"])
        named = [i for i in tasks if f"task {i}." in text]
        if named:
            return named[0]
        # the simulator's first turn: its scenario (conversations run one at a time)
        system = request["messages"][0]["content"]
        return next(i for i, t in tasks.items() if i not in progress
                    and user_scenario_text(t["user_scenario"]) in system)

    def respond(request: dict[str, Any]) -> Reply:
        task_id = task_of(request)
        actions = tasks[task_id]["evaluation_criteria"]["actions"]
        done = progress.setdefault(task_id, 0)
        upcoming = actions[done] if done < len(actions) else None
        mine = "assistant" if is_agent_request(request) else "user"
        last = request["messages"][-1]
        if upcoming is not None and upcoming.get("requestor", "assistant") == mine and (
                mine == "assistant" or last["role"] == "tool"
                or "your phone" in str(last.get("content"))):
            progress[task_id] = done + 1
            return Reply(tool_calls=[(upcoming["name"], upcoming["arguments"])])
        if mine == "assistant":
            if upcoming is not None:
                return Reply(text="Please do the next step on your phone.")
            infos = tasks[task_id]["evaluation_criteria"].get("communicate_info") or []
            return Reply(text="All finished. " + " ".join(infos))
        if "All finished." in str(last.get("content")):
            return Reply(text="###STOP###")
        return Reply(text=f"I need help with task {task_id}.")

    return respond


@pytest.mark.slow
@pytest.mark.parametrize("domain", ["airline", "retail", "telecom"])
def test_gold_playing_models_earn_full_reward_through_the_engine(
        domain: str, fake_openai: ServerFactory, tau2_root: Path, tau2_tasks: Tasks,
        tmp_path: Path) -> None:
    """Several tasks per domain (dual control included) scored from the stored transcripts."""
    chosen = {i: t for i, t in list(tau2_tasks(domain).items())[:STRIDE_END:STRIDE]}
    server = fake_openai(gold_playing_pair(chosen))
    result = k2eval.evaluate(f"tau2-{domain}", "openai:agent", base_url=server.base_url,
                             user_model=ModelSpec("openai:user", base_url=server.base_url),
                             data=str(tau2_root), item_ids=list(chosen), k=1, out=tmp_path,
                             concurrency=1)
    scores = [json.loads(line) for line in (result.path / "scores.jsonl").read_text().splitlines()]
    assert len(scores) == len(chosen) == (len(tau2_tasks(domain)) if ALL_TASKS else 8)
    assert {s["item_id"]: s["score"] for s in scores} == {i: 1.0 for i in chosen}
    assert result.summary["score"] == 100.0


def test_a_task_with_message_history_resumes_where_it_stops(
        fake_openai: ServerFactory, tau2_root: Path, tau2_tasks: Tasks, tmp_path: Path) -> None:
    """tau2-format history (ending in the agent's tool result) is replayed once, then the agent
    speaks next; the history counts toward the trajectory that the DB check replays."""
    data = tmp_path / "tau2"
    (data / "domains" / "retail").mkdir(parents=True)
    (data / "user_simulator").symlink_to(tau2_root / "user_simulator")
    for name in ("db.json", "policy.md"):
        (data / "domains" / "retail" / name).symlink_to(tau2_root / "domains" / "retail" / name)
    task = json.loads(json.dumps(tau2_tasks("retail")["0"]))
    first, *rest = task["evaluation_criteria"]["actions"]
    task["initial_state"] = {"message_history": [
        {"role": "assistant", "content": "Hi! How can I help you today?"},
        {"role": "user", "content": "I want to exchange two items."},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "h1", "name": first["name"], "arguments": first["arguments"],
             "requestor": "assistant"}]},
        {"role": "tool", "id": "h1", "content": "yusuf_rossi_9620", "requestor": "assistant"}]}
    (data / "domains" / "retail" / "tasks.json").write_text(json.dumps([task]))
    steps = [Reply(tool_calls=[(a["name"], a["arguments"])]) for a in rest]
    # the scripted agent counts its earlier messages: the history's tool call is step 0
    responder = scripted_pair([Reply(text="unused"), *steps, Reply(text="All done.")],
                              stop_when("done"))
    _, attempt, score, _ = run("retail", "0", responder, fake_openai, data, tmp_path / "runs")
    assert attempt["messages"][2]["tool_calls"][0]["function"]["name"] == first["name"]
    assert attempt["messages"][4]["tool_calls"][0]["function"]["name"] == rest[0]["name"]
    assert score["score"] == 1.0
