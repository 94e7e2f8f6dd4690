"""Tool-call conformance: does an endpoint honour the tool-call protocol?

A fixed set of single requests with tools, built from data k2eval already reads:

- Tau2 (airline, retail, telecom): the agent's system prompt (the domain policy), the
  customer's opening message (the task's reason for calling and what the customer knows), and
  the agent's tools; the reference tool is the task's first gold action by the agent.
- ACEBench (the single-turn normal categories): the question and its functions as native
  tools; the reference tools are the gold answer's functions.

Each request is sent once at temperature 0. The run's `toolcalls` counts (summary.json, see
`k2eval.scoring.toolcalls`) are the endpoint's conformance figures; an item scores 1 when the
reply makes tool calls, every call is valid (JSON arguments that satisfy the tool's schema, a
declared tool, a finish reason that agrees) and the called tools are the reference tools.
Breakdowns: `tool_call_rate` (items answered with a call), `schema_accuracy` (valid calls of
all calls, as MoonshotAI's K2-Vendor-Verifier reports it), `name_match` (items whose called
tools are the reference tools), by source and category.

Choices: the requests are the first `per_domain` Tau2 tasks with an agent action and an opening
not seen before in the domain (telecom's tasks share openings and differ only in the device's
state, which a single request cannot show) and the first `per_category` rows of each ACEBench
category, in file order, so that every run sends the same requests. The customer's message is the scenario's own text (second person, as the
data holds it); ACEBench's text-format system prompt is replaced by one that asks for native
tool calls, since the official one asks for calls written as text.

Data: `--data DIR` holding `tau2/` (a tau2 data directory) and `acebench/` (ACEBench's
`data_en` with `possible_answer/`), as ../shared/data does; `--option tau2_data=PATH` and
`--option acebench_data=PATH` name them apart.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

from k2eval.adapters.acebench import to_tools, tool_name
from k2eval.adapters.acebench.data import MULTI_TURN_NORMAL, NORMAL, load_category
from k2eval.adapters.acebench.data import find_data_dir as acebench_dir
from k2eval.adapters.base import (
    Adapter,
    Attempt,
    AttemptContext,
    Item,
    Score,
    ScoreContext,
    SolveResult,
)
from k2eval.adapters.tau2.data import load_policy, load_tasks, resolve_data_dir
from k2eval.adapters.tau2.texts import load_texts
from k2eval.errors import ConfigError, DataError
from k2eval.records import Completion, Message, ToolCall, ToolSchema
from k2eval.scoring import mean
from k2eval.scoring.toolcalls import COUNTERS, count_completion
from k2eval.spec import TaskSpec

TAU2_DOMAINS = {"airline": "AirlineTools", "retail": "RetailTools", "telecom": "TelecomTools"}
ACEBENCH_CATEGORIES = tuple(c for c in NORMAL if c not in MULTI_TURN_NORMAL)
TOOL_SYSTEM = ("You are a helpful assistant with access to tools. When a tool can do what the "
               "user asks, call it through the tool-calling interface with arguments that "
               "follow its parameters schema.\n\n{time}")


# --- data -------------------------------------------------------------------------------------

def _count_option(spec: TaskSpec, key: str, default: int) -> int:
    value = spec.option(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"task {spec.name}: {key} must be a positive integer, got {value!r}")
    return value


def _opening(task: dict[str, Any]) -> str:
    instructions = (task.get("user_scenario") or {}).get("instructions") or {}
    if isinstance(instructions, str):
        return instructions.strip()
    parts = [instructions.get("reason_for_call"), instructions.get("known_info")]
    return "\n\n".join(str(p).strip() for p in parts if p)


def tau2_items(root: Path, per_domain: int) -> list[Item]:
    texts = load_texts(None, root)
    items = []
    for domain, toolkit in TAU2_DOMAINS.items():
        tools = list(texts.tools[toolkit])
        system = texts.agent_system_prompt(load_policy(root, domain))
        seen: set[str] = set()
        for task in load_tasks(root, domain):
            actions = [a for a in (task.get("evaluation_criteria") or {}).get("actions") or []
                       if a.get("requestor", "assistant") == "assistant"]
            opening = _opening(task)
            if not actions or not opening or opening in seen:
                continue
            seen.add(opening)
            items.append(Item(f"tau2-{domain}-{task['id']}", {
                "messages": [{"role": "system", "content": system},
                             {"role": "user", "content": opening}],
                "tools": tools, "reference": [actions[0]["name"]],
                "gold_calls": [{"name": actions[0]["name"],
                                "arguments": actions[0].get("arguments") or {}}]},
                {"source": "tau2", "category": f"tau2-{domain}"}))
            if len(seen) == per_domain:
                break
    return items


def _reference_names(gold: dict[str, Any], functions: list[dict[str, Any]]) -> list[str]:
    """Gold keys as tool names; a repeated function's key may carry a `_N` suffix."""
    declared = {fn["name"] for fn in functions}
    names = []
    for key in gold:
        bare = re.sub(r"_\d+$", "", key)
        names.append(tool_name(key if key in declared or bare not in declared else bare))
    return names


def acebench_items(data: Path, per_category: int) -> list[Item]:
    folder = acebench_dir(data)
    items = []
    for category in ACEBENCH_CATEGORIES:
        for row in load_category(folder, category)[:per_category]:
            gold = row.data["ground_truth"]
            if isinstance(gold, list) and gold:  # alternatives: the same tools, other values
                gold = gold[0]
            if not isinstance(gold, dict) or not gold:
                raise DataError(f"{folder}/data_{category}.json: {row.id} has no gold calls")
            names = _reference_names(gold, row.data["functions"])
            items.append(Item(f"acebench-{row.id}", {
                "messages": [{"role": "system", "content": TOOL_SYSTEM.format(
                                  time=row.data.get("time") or "")},
                             {"role": "user", "content": row.data["question"]}],
                "tools": to_tools(row.data["functions"]),
                "reference": names,
                "gold_calls": [{"name": name, "arguments": arguments}
                               for name, arguments in zip(names, gold.values(), strict=True)]},
                {"source": "acebench", "category": category}))
    return items


# --- grading ----------------------------------------------------------------------------------

def reply_of(attempt: Attempt) -> Message:
    return next((m for m in reversed(attempt.messages) if m.get("role") == "assistant"), {})


def called_names(attempt: Attempt) -> list[str]:
    return [str((c.get("function") or {}).get("name"))
            for c in reply_of(attempt).get("tool_calls") or ()]


def valid_calls(attempt: Attempt, tools: list[ToolSchema]) -> int:
    """Calls of the reply whose arguments are JSON that satisfies a declared tool's schema."""
    valid = 0
    for call in reply_of(attempt).get("tool_calls") or ():
        fn = call.get("function") or {}
        one = Completion(text="", finish_reason="tool_calls", tool_calls=(ToolCall(
            str(call.get("id")), str(fn.get("name")), str(fn.get("arguments") or "")),))
        counts = count_completion(one, tools)
        valid += not (counts["invalid_json"] or counts["schema_violations"]
                      or counts["unknown_tool"])
    return valid


def grade(reference: list[str], names: list[str], counts: dict[str, int]) -> tuple[bool, str]:
    """(correct, reason) of one reply from its called names and its conformance counts."""
    faults = [key for key in COUNTERS if key != "calls" and counts.get(key)]
    if faults:
        return False, "non-conforming reply: " + ", ".join(f"{k}={counts[k]}" for k in faults)
    if not names:
        return False, "no tool call"
    if sorted(set(names)) != sorted(set(reference)):
        return False, f"called {sorted(set(names))}, reference {sorted(set(reference))}"
    return True, "valid calls to the reference tools"


class ToolCallConformanceAdapter(Adapter):
    name: ClassVar[str] = "toolcall-conformance"

    def load(self, spec: TaskSpec, data: str | None) -> list[Item]:
        tau2_path = spec.option("tau2_data") or (str(Path(data) / "tau2") if data else None)
        ace_path = spec.option("acebench_data") or (str(Path(data) / "acebench") if data else None)
        if not ace_path:
            raise DataError("toolcall-conformance reads Tau2 and ACEBench data: pass --data DIR "
                            "holding tau2/ and acebench/ (or --option tau2_data=PATH "
                            "--option acebench_data=PATH)")
        items = tau2_items(resolve_data_dir(tau2_path), _count_option(spec, "per_domain", 10))
        return items + acebench_items(Path(ace_path), _count_option(spec, "per_category", 4))

    async def solve(self, item: Item, ctx: AttemptContext) -> SolveResult:
        messages: list[Message] = item.data["messages"]
        tools: list[ToolSchema] = item.data["tools"]
        completion = await ctx.chat(messages, tools)
        return SolveResult([*messages, completion.as_message()],
                           {"finish_reason": completion.finish_reason})

    async def score(self, item: Item, attempt: Attempt, ctx: ScoreContext) -> Score:
        names = called_names(attempt)
        counts = attempt.toolcalls or dict.fromkeys(COUNTERS, 0)
        ok, reason = grade(item.data["reference"], names, counts)
        return Score(item.id, attempt.index, 1.0 if ok else 0.0, reason,
                     details={"called": names, "reference": item.data["reference"],
                              "valid_calls": valid_calls(attempt, item.data["tools"]),
                              "toolcalls": counts})

    def breakdowns(self, items: list[Item], scores: list[Score]) -> dict[str, Any]:
        out = super().breakdowns(items, scores)
        counted = [s for s in scores if s.status == "ok"]
        if not counted:
            return out
        calls = sum(len(s.details.get("called") or ()) for s in counted)
        valid = sum(int(s.details.get("valid_calls", 0)) for s in counted)
        out["conformance"] = {
            "requests": len(counted),
            "tool_call_rate": _pct(mean([1.0 if s.details.get("called") else 0.0
                                         for s in counted])),
            "schema_accuracy": _pct(valid / calls) if calls else None,
            "name_match": _pct(mean([1.0 if s.details.get("called") and sorted(
                set(s.details["called"])) == sorted(set(s.details["reference"])) else 0.0
                                     for s in counted])),
        }
        return out


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100.0 * value, 2)
