"""ACEBench (English): 17 tool-use categories graded by the official rules; weighted overall.

Data: ACEBench's `data_all/data_en` (`--data DIR`, from a checkout of the ACEBench repository).
Options: `categories` ("all", a group, a category, or a comma list), `tool_format`
("prompt": the official `[ApiName(key='value')]` text format; "native": the functions are also
offered as OpenAI tools and returned tool calls are graded like the official FC path - agent
categories always use the text format, as upstream), `max_dialog_turns` (40),
`user_reply_role` ("system", as upstream feeds the simulator its own lines; "assistant" for
servers that refuse system messages mid-dialogue), `prompt_version` ("2025-07" or "2025-02": the
special categories' system prompt of that ACEBench data release. The July 2025 release rewrote
the special gold answers and renamed the AI in that prompt from "system" to "assistant"; the
release of the loaded data is recognised from its special gold answers and must match, else the
run stops and says which version to pass. A run with a version other than the default,
"2025-07", records it in its conditions).

Flow per category group (see data.py for how multi-turn dialogues map to Items):
- normal / special: one model call per row with the official system prompt (functions, time or
  user profile) and the conversation; graded by checker.py;
- agent: the dialogue loop of agent.py against the simulated backends of scenarios.py; the
  multi_turn category needs a user model (`--user-model`);
- summary.py: per-category accuracy, group means and the official weighted overall.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from k2eval.adapters.acebench import prompts
from k2eval.adapters.acebench.agent import (
    Dialogue,
    check_state,
    process_accuracy,
    run_multi_step,
    run_multi_turn,
)
from k2eval.adapters.acebench.checker import Check, UnsupportedSchema, check_normal, check_special
from k2eval.adapters.acebench.data import RELEASES, data_release, load_items, select_categories
from k2eval.adapters.acebench.parsing import (
    CallParseError,
    calls_from_tool_calls,
    decode_calls,
    render_calls,
)
from k2eval.adapters.acebench.summary import summarize
from k2eval.adapters.base import (
    Adapter,
    Attempt,
    AttemptContext,
    Item,
    Score,
    ScoreContext,
    SolveResult,
)
from k2eval.errors import ConfigError, DataError
from k2eval.models.base import Message, ToolSchema
from k2eval.spec import RunConfig, TaskSpec

TOOL_FORMATS = ("prompt", "native")
DEFAULT_PROMPT_VERSION = RELEASES[0]


# --- prompt -----------------------------------------------------------------------------------


def build_messages(row: dict[str, Any],
                   prompt_version: str = DEFAULT_PROMPT_VERSION) -> list[Message]:
    """The official single-turn prompt: system (rules + functions) and the conversation."""
    category = row["category"]
    if category.startswith("special"):
        system = prompts.SPECIAL_SYSTEMS[prompt_version].format(time=row["time"],
                                                                 function=row["functions"])
    elif category == "normal_preference":
        system = prompts.PREFERENCE_SYSTEM.format(profile=row["profile"],
                                                  function=row["functions"])
    else:
        system = prompts.NORMAL_SYSTEM.format(time=row["time"], function=row["functions"])
    return [{"role": "system", "content": system},
            {"role": "user", "content": prompts.USER_TEMPLATE.format(question=row["question"])}]


_JSON_TYPES = {"dict": "object", "float": "number", "int": "integer", "tuple": "array",
               "list": "array", "objectArray": "array", "list(string)": "array",
               "list(enum)": "array", "enum": "string"}


def _json_schema(schema: Any) -> Any:
    """ACEBench's loose schemas as JSON Schema for native tools (types mapped, rest kept)."""
    if isinstance(schema, list):
        return [_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _json_schema(value) for key, value in schema.items()}
    declared = schema.get("type")
    if isinstance(declared, str):
        if declared == "any":
            del out["type"]
        else:
            out["type"] = _JSON_TYPES.get(declared, declared)
    return out


def tool_name(name: str) -> str:
    """Tool names may only use [A-Za-z0-9_-]; dotted ACEBench names are mapped back on return."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64]


def to_tools(functions: list[dict[str, Any]]) -> list[ToolSchema]:
    tools: list[ToolSchema] = []
    for fn in functions:
        params = fn.get("parameters", fn.get("arguments")) or {"type": "object", "properties": {}}
        tools.append({"type": "function", "function": {
            "name": tool_name(fn["name"]), "description": fn.get("description", ""),
            "parameters": _json_schema(params)}})
    return tools


# --- grading helpers ---------------------------------------------------------------------------


def _grade_turn(row: dict[str, Any], output: dict[str, Any]) -> Check:
    """One normal or special row's output against its gold answer."""
    category, text = row["category"], output.get("text") or ""
    if category.startswith("special"):
        return check_special(category, text, row["ground_truth"])
    try:
        calls = output["calls"] if output.get("calls") is not None else decode_calls(text)
    except CallParseError as exc:
        return Check(False, f"unparseable output: {exc}", "wrong_output_format")
    try:
        return check_normal(row["functions"], calls, row["ground_truth"], category)
    except UnsupportedSchema as exc:
        return Check(False, f"not gradable by the official rules: {exc}", "ungradable")


def _as_messages(dialogue: Dialogue) -> list[Message]:
    roles = {"user": "user", "agent": "assistant", "execution": "tool"}
    return [{"role": roles[m["sender"]], "name": m["sender"],
             "content": m["message"] if isinstance(m["message"], str)
             else json.dumps(m["message"], ensure_ascii=False, default=str)}
            for m in dialogue.history]


def prompt_version(spec: TaskSpec) -> str:
    """The `prompt_version` option, checked."""
    version = str(spec.option("prompt_version", DEFAULT_PROMPT_VERSION))
    if version not in RELEASES:
        raise ConfigError(f"task {spec.name}: prompt_version must be one of {RELEASES} (the "
                          f"ACEBench data release), got {version!r}")
    return version


class AceBenchAdapter(Adapter):
    name: ClassVar[str] = "acebench"

    # --- data ---------------------------------------------------------------------------------

    def load(self, spec: TaskSpec, data: str | None) -> list[Item]:
        if not data:
            raise DataError("ACEBench is read from its own files: pass --data pointing at "
                            "ACEBench's data_all/data_en folder (from a checkout of the ACEBench repository)")
        tool_format = spec.option("tool_format", "prompt")
        if tool_format not in TOOL_FORMATS:
            raise ConfigError(f"task {spec.name}: tool_format must be one of {TOOL_FORMATS}, "
                              f"got {tool_format!r}")
        if spec.option("user_reply_role", "system") not in ("system", "assistant"):
            raise ConfigError(f"task {spec.name}: user_reply_role must be system or assistant")
        version = prompt_version(spec)
        items = load_items(data, select_categories(spec.option("categories", "all")))
        release = data_release(items)
        if release is not None and release != version:
            raise ConfigError(f"task {spec.name}: the special categories in {data} are ACEBench's "
                              f"{release} data release, whose prompt differs from "
                              f"prompt_version={version}: pass --option prompt_version={release}")
        return items

    def needs_user_model_for(self, items: list[Item]) -> bool:
        """Only agent_multi_turn items talk to a user simulator."""
        return any(it.data.get("category") == "agent_multi_turn" for it in items)

    def conditions(self, config: RunConfig) -> dict[str, Any]:
        version = prompt_version(config.task)
        return {} if version == DEFAULT_PROMPT_VERSION else {"prompt_version": version}

    # --- solve --------------------------------------------------------------------------------

    async def _ask(self, row: dict[str, Any], ctx: AttemptContext) -> tuple[list[Message],
                                                                              dict[str, Any]]:
        messages = build_messages(row, prompt_version(ctx.spec))
        native = ctx.spec.option("tool_format", "prompt") == "native"
        tools = to_tools(row["functions"]) if native else None
        completion = await ctx.chat(messages, tools)
        output: dict[str, Any] = {"text": completion.text or ""}
        if completion.tool_calls:
            names = {tool_name(fn["name"]): fn["name"] for fn in row["functions"]}
            pairs = [(names.get(tc.name, tc.name), tc.arguments) for tc in completion.tool_calls]
            output["tool_calls"] = [{"name": n, "arguments": a} for n, a in pairs]
            try:
                output["calls"] = calls_from_tool_calls(pairs)
                output["text"] = render_calls(output["calls"])
            except CallParseError as exc:
                output["text"] = f"unparseable tool call: {exc}"
        return [*messages, completion.as_message()], output

    async def solve(self, item: Item, ctx: AttemptContext) -> SolveResult:
        category = item.data["category"]
        max_turns = int(ctx.spec.option("max_dialog_turns", 40))

        async def agent(messages: list[Message]) -> str:
            return (await ctx.chat(messages)).text or ""

        async def user(messages: list[Message]) -> str:
            # upstream's simulator settings (`APIUSER`: temperature 0.001, 1000 tokens)
            sampling = ctx.sampling(temperature=0.001, max_tokens=1000)
            return (await ctx.chat(messages, role="user", sampling=sampling)).text or ""

        if category == "agent_multi_step":
            dialogue = await run_multi_step(item.data, agent, max_turns)
            return SolveResult(_as_messages(dialogue), dialogue.to_dict())
        if category == "agent_multi_turn":
            dialogue = await run_multi_turn(item.data, agent, user, max_turns,
                                            ctx.spec.option("user_reply_role", "system"))
            return SolveResult(_as_messages(dialogue), dialogue.to_dict())
        if "turns" in item.data:
            transcript: list[Message] = []
            turns = []
            for row in item.data["turns"]:
                messages, output = await self._ask(row, ctx)
                transcript.extend(messages)
                turns.append({"id": row["id"], **output})
            return SolveResult(transcript, {"turns": turns})
        messages, output = await self._ask(item.data, ctx)
        return SolveResult(messages, output)

    # --- score --------------------------------------------------------------------------------

    async def score(self, item: Item, attempt: Attempt, ctx: ScoreContext) -> Score:
        data, out = item.data, attempt.output
        if data["category"].startswith("agent"):
            ok, errors = check_state(out.get("state") or [], data["ground_truth"])
            process = 1.0 if ok else process_accuracy(out.get("process") or [],
                                                      data["mile_stone"])
            return Score(item.id, attempt.index, 1.0 if ok else 0.0,
                         reason="; ".join(errors[:5]),
                         details={"process_accuracy": process, "ended_by": out.get("ended_by"),
                                  "errors": errors})
        if "turns" in data:
            outputs = {t["id"]: t for t in out.get("turns") or []}
            results = [_grade_turn(row, outputs.get(row["id"], {})) for row in data["turns"]]
            failed = [(row["id"], r) for row, r in zip(data["turns"], results, strict=True)
                      if not r.valid]
            return Score(item.id, attempt.index, 0.0 if failed else 1.0,
                         reason="; ".join(f"{tid}: {r.error}" for tid, r in failed[:3]),
                         details={"turns_correct": [r.valid for r in results],
                                  "process_accuracy": sum(r.valid for r in results) / len(results),
                                  "error_types": [r.error_type for _, r in failed]})
        result = _grade_turn(data, out)
        return Score(item.id, attempt.index, 1.0 if result.valid else 0.0, reason=result.error,
                     details={"error_type": result.error_type} if not result.valid else {})

    # --- summary ------------------------------------------------------------------------------

    def headline(self, items: list[Item], scores: list[Score], k: int) -> dict[str, Any] | None:
        summary = summarize(items, scores)
        return {key: summary[key] for key in ("score", "ci95", "stderr", "n_scored_items")}

    def breakdowns(self, items: list[Item], scores: list[Score]) -> dict[str, Any]:
        return dict(summarize(items, scores)["acebench"])
