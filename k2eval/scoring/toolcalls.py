"""Tool-call conformance: how well an endpoint honours the tool-call protocol.

Counted for every agent call that offers tools (`AttemptContext.chat`), per attempt (the
`toolcalls` of its journal line) and per run (summary.json `toolcalls`):

- `calls`: tool calls returned;
- `invalid_json`: calls whose arguments are not valid JSON;
- `schema_violations`: calls to a declared tool whose (valid JSON) arguments violate its
  `parameters` JSON Schema, checked with `jsonschema` (arguments that are JSON but not an
  object violate the schema's `type: object`);
- `unknown_tool`: calls naming a tool that was not offered;
- `finish_mismatch`: replies whose `finish_reason` is `tool_calls` with no call returned, or
  that return calls with the reason `stop`;
- `truncated`: calls in a reply cut by the token cap (`finish_reason` `length`); such a call
  usually counts as `invalid_json` as well.

The counts are about the endpoint, not the benchmark: they never change a score.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from k2eval.records import Completion, ToolSchema

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

COUNTERS = ("calls", "invalid_json", "schema_violations", "unknown_tool", "finish_mismatch",
            "truncated")


def empty_counts() -> dict[str, int]:
    return dict.fromkeys(COUNTERS, 0)


def add_counts(total: dict[str, int], more: Mapping[str, int]) -> None:
    for key in COUNTERS:
        total[key] = total.get(key, 0) + int(more.get(key, 0))


def sum_counts(many: Iterable[Mapping[str, int] | None]) -> dict[str, int] | None:
    """The sum of per-attempt counts; None when none of them counted anything."""
    total: dict[str, int] | None = None
    for counts in many:
        if counts is None:
            continue
        if total is None:
            total = empty_counts()
        add_counts(total, counts)
    return total


@lru_cache(maxsize=512)
def _validator(schema_json: str) -> Validator | None:
    """A validator for one parameters schema (None when the schema itself is invalid)."""
    import jsonschema  # on first use: it is not needed by runs without tools

    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError:
        return None
    validator: Validator = cls(schema)
    return validator


def _declared(tools: list[ToolSchema]) -> dict[str, Any]:
    """Tool name -> its parameters schema."""
    out = {}
    for tool in tools:
        fn = tool.get("function") or {}
        if fn.get("name"):
            out[str(fn["name"])] = fn.get("parameters") or {"type": "object"}
    return out


def count_completion(completion: Completion, tools: list[ToolSchema]) -> dict[str, int]:
    """The conformance counts of one reply to a request that offered `tools`."""
    counts = empty_counts()
    declared = _declared(tools)
    calls = completion.tool_calls
    counts["calls"] = len(calls)
    if (completion.finish_reason == "tool_calls" and not calls) or (
            calls and completion.finish_reason == "stop"):
        counts["finish_mismatch"] = 1
    if completion.finish_reason == "length":
        counts["truncated"] = len(calls)
    for call in calls:
        if call.name not in declared:
            counts["unknown_tool"] += 1
        try:
            arguments = json.loads(call.arguments) if call.arguments.strip() else {}
        except ValueError:
            counts["invalid_json"] += 1
            continue
        validator = (_validator(json.dumps(declared[call.name], sort_keys=True))
                     if call.name in declared else None)
        if validator is not None and not validator.is_valid(arguments):
            counts["schema_violations"] += 1
    return counts


def rates(counts: Mapping[str, int]) -> dict[str, float | None]:
    """Each counter as a percentage of the calls (None without calls)."""
    calls = int(counts.get("calls", 0))
    return {key: (100.0 * int(counts.get(key, 0)) / calls if calls else None)
            for key in COUNTERS if key != "calls"}
