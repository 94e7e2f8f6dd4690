"""tau2's half-duplex conversation: agent <-> user simulator, tool calls <-> environment.

One message moves per step. The agent opens with a fixed greeting; agent text goes to the
user, agent tool calls to the environment and their results back to the agent; the user's
text goes to the agent and its tool calls (telecom: actions on the phone) to the environment
and back to the user. The user ends the conversation with ###STOP###, ###TRANSFER### or
###OUT-OF-SCOPE###. The step limit (200) ends it too, and scores 0. tau2 0.1.3 declares a
limit of 10 tool errors but never counts them, so it never fires; `max_errors` turns on the
cut-off tau2 1.0 applies (also scoring 0).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

from k2eval.adapters.base import AttemptContext
from k2eval.adapters.tau2.environment import ASSISTANT, USER, Environment, history_messages
from k2eval.adapters.tau2.texts import Texts
from k2eval.errors import LimitExceeded, ModelError
from k2eval.models.base import Completion, Message, ToolSchema

FIRST_AGENT_MESSAGE = "Hi! How can I help you today?"
STOP_TOKENS = ("###STOP###", "###TRANSFER###", "###OUT-OF-SCOPE###")
MAX_STEPS = 200


def user_scenario_text(scenario: dict[str, Any]) -> str:
    """The task's user scenario rendered as tau2 renders it for the simulator."""
    tab = "\t"
    lines = []
    if scenario.get("persona"):
        lines += ["Persona:", textwrap.indent(scenario["persona"], tab)]
    instructions = scenario.get("instructions")
    if isinstance(instructions, dict):
        parts = [f"Domain: {instructions.get('domain', '')}",
                 f"Reason for call:\n{textwrap.indent(instructions.get('reason_for_call') or '', tab)}"]
        for key, label in (("known_info", "Known info"), ("unknown_info", "Unknown info")):
            if instructions.get(key) is not None:
                parts.append(f"{label}:\n{textwrap.indent(instructions[key], tab)}")
        parts.append("Task instructions:\n"
                     + textwrap.indent(instructions.get("task_instructions") or "", tab))
        text = "\n".join(parts)
    else:
        text = str(instructions or "")
    lines += ["Instructions:", textwrap.indent(text, tab)]
    return "\n".join(lines)


def agent_view(trajectory: list[Message]) -> list[Message]:
    """What the agent has seen: its own messages and tool results, the user's text."""
    view: list[Message] = []
    for message in trajectory:
        role = message["role"]
        if role == ASSISTANT:
            view.append(_chat_message(ASSISTANT, message))
        elif role == USER and message.get("content") and not message.get("tool_calls"):
            view.append({"role": "user", "content": message["content"]})
        elif role == "tool" and message.get("requestor", ASSISTANT) == ASSISTANT:
            view.append({"role": "tool", "tool_call_id": message["tool_call_id"],
                         "content": message["content"]})
    return view


def user_view(trajectory: list[Message]) -> list[Message]:
    """The simulator's side with roles flipped: agent text is 'user', its own turns 'assistant'."""
    view: list[Message] = []
    for message in trajectory:
        role = message["role"]
        if role == ASSISTANT and not message.get("tool_calls"):
            view.append({"role": "user", "content": message.get("content") or ""})
        elif role == USER:
            view.append(_chat_message(ASSISTANT, message))
        elif role == "tool" and message.get("requestor") == USER:
            view.append({"role": "tool", "tool_call_id": message["tool_call_id"],
                         "content": message["content"]})
    return view


def _chat_message(role: str, message: Message) -> Message:
    out: Message = {"role": role, "content": message.get("content") or ""}
    for key in ("reasoning_content", "reasoning_source"):  # sent back or not by the model client
        if message.get(key):
            out[key] = message[key]
    if message.get("tool_calls"):
        out["tool_calls"] = message["tool_calls"]
    return out


def _record(completion: Completion, role: str) -> Message:
    message: Message = {"role": role, "content": completion.text}
    if completion.reasoning:
        message["reasoning_content"] = completion.reasoning
        message["reasoning_source"] = completion.reasoning_source or "reasoning_content"
    if completion.tool_calls:
        message["tool_calls"] = [tc.to_message() for tc in completion.tool_calls]
    return message


def is_user_stop(message: Message) -> bool:
    if message.get("tool_calls"):
        return False
    content = message.get("content") or ""
    return any(token in content for token in STOP_TOKENS)


def _is_empty(message: Message) -> bool:
    return not message.get("tool_calls") and not (message.get("content") or "").strip()


async def _user_turn(ctx: AttemptContext, messages: list[Message],
                     tools: list[ToolSchema] | None, tries: int = 3) -> Message:
    """The simulator's next message; an empty one is asked again, then is an attempt error."""
    for _ in range(tries):
        message = _record(await ctx.chat(messages, tools, role="user"), USER)
        if not _is_empty(message):
            return message
    raise ModelError(f"the user simulator returned an empty message {tries} times")


@dataclass
class Conversation:
    trajectory: list[Message]
    termination: str
    """"user_stop", "max_steps", "too_many_errors", "agent_error" or "limit: <which>"."""
    steps: int
    tool_errors: int


async def run_conversation(ctx: AttemptContext, env: Environment, task: dict[str, Any], *,
                           texts: Texts, policy: str, guidelines: str,
                           instruction: str | None = None, max_steps: int = MAX_STEPS,
                           max_errors: int | None = None) -> Conversation:
    """Play one conversation. Model failures propagate (the attempt is an error, not a 0).
    `max_errors` (tau2 1.0's cut-off) is off by default, as in tau2 0.1.3."""
    agent_tools = texts.tools[type(env.tools).__name__]
    user_tools = texts.tools[type(env.user_tools).__name__] if env.user_tools else None
    agent_system: Message = {"role": "system",
                             "content": texts.agent_system_prompt(policy, instruction)}
    user_system: Message = {"role": "system", "content": texts.user_system_prompt(
        guidelines, user_scenario_text(task["user_scenario"]))}
    trajectory = history_messages(task)
    if trajectory:  # resume after the task's message history, as tau2 does
        last = trajectory[-1]
        if last["role"] == "tool":
            sender, receiver = "env", last.get("requestor", ASSISTANT)
        else:
            sender = last["role"]
            receiver = ("env" if last.get("tool_calls")
                        else ASSISTANT if sender == USER else USER)
    else:
        trajectory = [{"role": ASSISTANT, "content": FIRST_AGENT_MESSAGE}]
        sender, receiver = ASSISTANT, USER
    steps = errors = 0
    termination = ""
    while not termination:
        if receiver == USER:
            message = await _user_turn(ctx, [user_system, *user_view(trajectory)], user_tools)
            trajectory.append(message)
            if is_user_stop(message):
                termination = "user_stop"
            sender, receiver = USER, ("env" if message.get("tool_calls") else ASSISTANT)
        elif receiver == ASSISTANT:
            try:
                completion = await ctx.chat([agent_system, *agent_view(trajectory)],
                                            agent_tools, role="agent")
            except LimitExceeded as exc:  # the run's token or time budget
                termination = f"limit: {exc}"
                break
            message = _record(completion, ASSISTANT)
            trajectory.append(message)
            if _is_empty(message):  # tau2 rejects such a message: the agent failed
                termination = "agent_error"
                break
            sender, receiver = ASSISTANT, ("env" if message.get("tool_calls") else USER)
        else:
            requestor = sender
            for call in trajectory[-1]["tool_calls"]:
                function = call["function"]
                result = env.call_tool(requestor, function["name"], function["arguments"])
                errors += result.error
                trajectory.append({"role": "tool", "tool_call_id": call["id"],
                                   "name": function["name"], "content": result.content,
                                   "requestor": requestor, "error": result.error})
            receiver = requestor
        steps += 1
        # As in tau2's orchestrator, the limits are checked after every step and take
        # precedence over a stop in that same step.
        if steps >= max_steps:
            termination = "max_steps"
        if max_errors is not None and errors >= max_errors:
            termination = "too_many_errors"
    return Conversation(trajectory, termination, steps, errors)
