"""Tool-call conformance counts: each kind of malformed call, counted once and only once."""

from __future__ import annotations

from typing import Any

import pytest

from k2eval.records import Completion, ToolCall
from k2eval.scoring.toolcalls import count_completion, rates, sum_counts

TOOLS = [{"type": "function", "function": {
    "name": "book", "parameters": {
        "type": "object", "properties": {"seat": {"type": "string", "enum": ["A", "B"]},
                                         "n": {"type": "integer"}},
        "required": ["seat"], "additionalProperties": False}}},
    {"type": "function", "function": {"name": "ping"}}]


def reply(*calls: tuple[str, str], finish: str = "tool_calls") -> Completion:
    return Completion(text="", tool_calls=tuple(ToolCall(f"c{i}", n, a)
                                                for i, (n, a) in enumerate(calls)),
                      finish_reason=finish)


@pytest.mark.parametrize("completion,expected", [
    (reply(("book", '{"seat": "A", "n": 2}')), {"calls": 1}),
    (reply(("ping", "")), {"calls": 1}),
    (reply(("book", '{"seat": "A"')), {"calls": 1, "invalid_json": 1}),
    (reply(("book", '{"seat": "C"}')), {"calls": 1, "schema_violations": 1}),
    (reply(("book", '{"n": 1}')), {"calls": 1, "schema_violations": 1}),
    (reply(("book", '{"seat": "A", "extra": 1}')), {"calls": 1, "schema_violations": 1}),
    (reply(("book", '["A"]')), {"calls": 1, "schema_violations": 1}),
    (reply(("fly", '{"seat": "A"}')), {"calls": 1, "unknown_tool": 1}),
    (reply(("fly", "{oops")), {"calls": 1, "unknown_tool": 1, "invalid_json": 1}),
    (reply(finish="tool_calls"), {"finish_mismatch": 1}),
    (reply(("ping", "{}"), ("ping", "{}"), finish="stop"), {"calls": 2, "finish_mismatch": 1}),
    (reply(("book", '{"seat": "A", "n": '), finish="length"),
     {"calls": 1, "truncated": 1, "invalid_json": 1}),
    (reply(finish="stop"), {}),
])
def test_each_kind_of_nonconformance_is_counted(completion: Completion,
                                                 expected: dict[str, int]) -> None:
    counts = count_completion(completion, TOOLS)
    assert {k: v for k, v in counts.items() if v} == expected


def test_counts_add_up_and_become_rates() -> None:
    total = sum_counts([None, {"calls": 4, "invalid_json": 1}, {"calls": 0, "finish_mismatch": 1}])
    assert total == {"calls": 4, "invalid_json": 1, "schema_violations": 0, "unknown_tool": 0,
                     "finish_mismatch": 1, "truncated": 0}
    assert sum_counts([None, None]) is None
    assert rates(total)["invalid_json"] == 25.0 and rates({"calls": 0})["truncated"] is None


def test_an_invalid_declared_schema_is_not_held_against_the_model() -> None:
    tools: list[dict[str, Any]] = [{"type": "function", "function": {
        "name": "odd", "parameters": {"type": "no-such-type"}}}]
    assert count_completion(reply(("odd", '{"x": 1}')), tools)["schema_violations"] == 0
