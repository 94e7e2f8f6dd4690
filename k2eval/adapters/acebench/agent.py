"""ACEBench's agent categories: the dialogue loops and their two grades.

multi_step: the agent alone works from the task; each message it writes goes to the executor
(a failed parse answers "Please do not ask me any questions, ..."). The history the agent is
shown holds the task and the execution results only, never its own earlier messages: upstream
adds the newest message to the history only when the agent is about to be asked, which in
multi_step is at the start and after each execution result. multi_turn: a simulated user
(the run's user model, prompted with the task as its instruction) talks to the agent; agent
messages that parse as calls go to the executor, everything else to the user. Both stop when
a message after the first two contains "finish conversation", or after 40 messages (the
official `max_dialog_turns`). Every message sent to the executor is recorded as the "process".

Grades (official `agent_eval` / `agent_eval_process`):
- end-to-end: the saved class states must match the gold list: same number of classes; each
  gold class whose attribute names match a produced class is compared attribute by attribute
  (dict attributes key by key over the gold keys only); a gold class with no such partner is
  not compared (the official checker skips it too);
- process: the fraction of milestones found, in order, among the process messages (exact
  after strip), the best over alternative milestone lists; 1.0 when end-to-end is correct.
In multi_turn the state counts only if some execution ran without an exception, as upstream.

The executor follows upstream's quirks too, since they decide what the agent reads next and
sometimes whether a state is kept: a failed multi_turn execution shows the characters of an
unformatted error template; a call to a function no backend offers repeats the previous
result of the same message (an error when there is none); a dict argument is written back
as a nested call (which fails as an undefined name) or, when that cannot be done, makes the
whole message unparseable. Error texts from inside a backend are Python's messages for this
code's backends, which can word them differently from upstream's classes; and upstream would
run a nested call of a Python builtin such as `dict(...)` where this code reports it undefined.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from k2eval.adapters.acebench import prompts
from k2eval.adapters.acebench.parsing import CallParseError, decode_agent_calls, dict_argument_name
from k2eval.adapters.acebench.scenarios import Environment, execution_result
from k2eval.errors import LimitExceeded
from k2eval.models.base import Message

MAX_DIALOG_TURNS = 40
FINISH = "finish conversation"
NOT_A_CALL = "Please do not ask me any questions, use the known conditions to solve the problem"
MULTI_TURN_ERROR = "Error during execution: {str(e)}"
"""multi_turn's error message: a template upstream never formats, shown as its characters."""
UNBOUND_RESULT = ("cannot access local variable 'func_call_result' where it is not associated "
                  "with a value")  # upstream's unbound result variable, as Python 3.11+ words it
_UNBOUND = object()
Chat = Callable[[list[Message]], Awaitable[str]]
"""Send messages to a model, get its text back."""


@dataclass
class Dialogue:
    """What an agent item's run produced: the transcript, the process and the final state."""

    history: list[dict[str, Any]] = field(default_factory=list)
    process: list[str] = field(default_factory=list)
    state: list[dict[str, Any]] = field(default_factory=list)
    ended_by: str = "turn_limit"

    def record(self, index: int, message: dict[str, Any]) -> bool:
        """Append turn `index`'s message; True (ended by "finish") when it ends the dialogue."""
        self.history.append(message)
        if index > 1 and FINISH in message["message"]:  # in a list: an element equal to it
            self.ended_by = "finish"
            return True
        return False

    def to_dict(self) -> dict[str, Any]:
        return {"history": self.history, "process": self.process, "state": self.state,
                "ended_by": self.ended_by}


def _history_line(entry: dict[str, Any], execution_label: str) -> str:
    label = {"user": "user", "agent": "agent", "execution": execution_label}[entry["sender"]]
    return f"{label}:{entry['message']}\n"


def _execute(env: Environment, text: str, *, stop_on_error: bool) -> tuple[list[Any], bool]:
    """Run the calls in `text` as upstream's executor does; (what the agent is shown, whether
    no call raised).

    Upstream keeps the last call's result in one variable: a call to a function that no backend
    offers is skipped and shows that variable again, or raises (the variable is unbound) when no
    call of the message has returned yet. multi_step shows each error as "Error during
    execution: <error>"; multi_turn (`stop_on_error`) stops at the first error and shows the
    characters of its unformatted error template."""
    results: list[Any] = []
    last: Any = _UNBOUND
    for call in decode_agent_calls(text) or []:
        (name, args), = call.items()
        try:
            if env.has_function(name):
                for value in args.values():
                    if isinstance(value, dict):
                        raise NameError(f"name {dict_argument_name(value)!r} is not defined")
                last = env.call(name, args)
            elif last is _UNBOUND:
                raise UnboundLocalError(UNBOUND_RESULT)
            results.append(execution_result(last))
        except Exception as exc:  # the backend's errors are the agent's feedback
            if stop_on_error:
                return list(MULTI_TURN_ERROR), False
            results.append(f"Error during execution: {exc}")
    return results, True


def routes_to_execution(text: str) -> bool:
    """multi_turn routing: a bracketed span on one line and a parse as a list of calls."""
    if not re.search(r"\[.*\]", text):
        return False
    try:
        return decode_agent_calls(text) is not None
    except (CallParseError, RecursionError):
        return False


async def run_multi_step(data: dict[str, Any], agent: Chat,
                         max_turns: int = MAX_DIALOG_TURNS) -> Dialogue:
    env = Environment(data["involved_classes"], data["initial_config"])
    out = Dialogue(history=[{"sender": "user", "recipient": "agent", "message": data["question"]}])
    transcript = ""
    executed = False
    try:
        for index in range(max_turns):
            last = out.history[-1]
            if index == 0 or last["sender"] == "execution":
                transcript += _history_line(last, "execution result")
                user = prompts.MULTI_STEP_AGENT_USER.format(functions=data["functions"],
                                                            history=transcript)
                text = await agent([{"role": "system", "content": prompts.MULTI_STEP_AGENT_SYSTEM},
                                    {"role": "user", "content": user}])
                recipient = "execution" if re.match(r"\[.*?\]", text) else "user"
                message: dict[str, Any] = {"sender": "agent", "recipient": recipient,
                                           "message": text}
            else:
                out.process.append(last["message"])
                feedback: Any = NOT_A_CALL
                try:
                    if decode_agent_calls(last["message"]) is not None:
                        feedback, _ = _execute(env, last["message"], stop_on_error=False)
                        executed = True
                except (CallParseError, RecursionError):
                    pass
                message = {"sender": "execution", "recipient": "agent", "message": feedback}
            if out.record(index, message):
                break
    except LimitExceeded:
        out.ended_by = "limit"
    out.state = env.state() if executed else []
    return out


async def run_multi_turn(data: dict[str, Any], agent: Chat, user: Chat,
                         max_turns: int = MAX_DIALOG_TURNS,
                         user_reply_role: str = "system") -> Dialogue:
    """`user_reply_role`: the role under which the simulator's own lines are fed back to it
    ("system" upstream; "assistant" for servers that reject system messages mid-dialogue)."""
    env = Environment(data["involved_classes"], data["initial_config"])
    classes = data["involved_classes"]
    instruction = prompts.USER_SIM_PHONE if "BaseApi" in classes else prompts.USER_SIM_TRAVEL
    user_messages: list[Message] = [
        {"role": "system", "content": instruction.format(instruction=data["question"])},
        {"role": "user", "content": prompts.USER_SIM_OPENING}]
    agent_system = prompts.MULTI_TURN_AGENT_SYSTEM
    if "Travel" in classes:
        agent_system += prompts.TRAVEL_RULES
    if "BaseApi" in classes:
        agent_system += prompts.PHONE_RULES
    out = Dialogue()
    transcript = ""
    executed = False
    try:
        opening = await user(user_messages)
        user_messages.append({"role": user_reply_role, "content": opening})
        out.history.append({"sender": "user", "recipient": "agent", "message": opening})
        for index in range(max_turns):
            last = out.history[-1]
            transcript += _history_line(last, "execution")
            message: dict[str, Any]
            if last["recipient"] == "user":
                text = last["message"]
                for prefix in ("user:", "agent:"):
                    if text.startswith(prefix):
                        text = text[len(prefix):]
                        break
                user_messages.append({"role": "user", "content": text})
                reply = await user(user_messages)
                user_messages.append({"role": user_reply_role, "content": reply})
                message = {"sender": "user", "recipient": "agent", "message": reply}
            elif last["recipient"] == "agent":
                prompt = prompts.MULTI_TURN_AGENT_USER.format(functions=data["functions"],
                                                              history=transcript)
                text = await agent([{"role": "system", "content": agent_system},
                                    {"role": "user", "content": prompt}])
                recipient = "execution" if routes_to_execution(text) else "user"
                message = {"sender": "agent", "recipient": recipient, "message": text}
            else:
                out.process.append(last["message"])
                results, ok = _execute(env, last["message"], stop_on_error=True)
                executed = executed or ok
                message = {"sender": "execution", "recipient": "agent", "message": results}
            if out.record(index, message):
                break
    except LimitExceeded:
        out.ended_by = "limit"
    out.state = env.state() if executed else []
    return out


# --- grading -----------------------------------------------------------------------------------


def check_state(state: list[dict[str, Any]], ground_truth: Any) -> tuple[bool, list[str]]:
    """End-to-end: the produced class states against the gold ones (official `agent_eval`)."""
    gold = ground_truth if isinstance(ground_truth, list) else [ground_truth]
    if len(gold) != len(state):
        return False, [f"wrong number of classes: expected {len(gold)}, got {len(state)}"]
    errors: list[str] = []
    for gold_class in gold:
        partner = next((s for s in state if set(s) == set(gold_class)), None)
        if partner is None:
            continue
        (name, expected), = gold_class.items()
        produced = next(iter(partner.values()))
        for attr, value in produced.items():
            if attr not in expected:
                errors.append(f"class({name}) attribute {attr} missing in the ground truth")
                continue
            want = expected[attr]
            if isinstance(want, dict):
                for key, item in want.items():
                    if not isinstance(value, dict) or key not in value:
                        errors.append(f"class({name}) {attr}: missing {key!r}")
                    elif item != value[key]:
                        errors.append(f"class({name}) {attr}.{key}: expected {item!r}, "
                                      f"got {value[key]!r}")
            elif want != value:
                errors.append(f"class({name}) {attr}: expected {want!r}, got {value!r}")
    return not errors, errors


def _ordered_fraction(process: list[str], stones: list[Any]) -> float:
    if not stones:
        return 1.0
    position, found = 0, 0
    for stone in stones:
        while position < len(process):
            position += 1
            if str(process[position - 1]).strip() == str(stone).strip():
                found += 1
                break
    return found / len(stones)


def process_accuracy(process: list[str], mile_stone: list[Any]) -> float:
    """Milestones matched in order (official `agent_eval_process`): the fraction for one list,
    the best (rounded to 3 places, as upstream) over alternative lists."""
    if mile_stone and isinstance(mile_stone[0], list):
        return max(round(_ordered_fraction(process, stones), 3) for stones in mile_stone)
    return _ordered_fraction(process, mile_stone)
