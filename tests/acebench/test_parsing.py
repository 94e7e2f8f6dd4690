"""Decoding `[ApiName(key='value')]` outputs as ACEBench's evaluator does."""

from __future__ import annotations

from typing import Any

import pytest

from k2eval.adapters.acebench.parsing import (
    CallParseError,
    calls_from_tool_calls,
    decode_agent_calls,
    decode_calls,
    render_calls,
)


def test_calls_are_decoded_after_whitespace_is_removed() -> None:
    text = "[search_hotels(city='New York', nights=3, pets=True),\n get_time()]"
    assert decode_calls(text) == [{"search_hotels": {"city": "NewYork", "nights": 3, "pets": True}},
                                  {"get_time": {}}]


def test_values_follow_the_official_resolver() -> None:
    text = ("[pkg.mod.f(a=-2.5, b=[1, 'x'], c={'k': (1, 2)}, d=true, e=None, f=g(h=1), "
            "i=now(), j=data[0], k=2*3+1, l='a'+'b')]")
    (call,) = decode_calls(text)
    assert call == {"pkg.mod.f": {"a": -2.5, "b": [1, "x"], "c": {"k": (1, 2)}, "d": "true",
                                  "e": None, "f": {"g": {"h": 1}}, "i": {"now": {}},
                                  "j": "data[0]", "k": 7, "l": "ab"}}


def test_tuples_and_sets_of_calls_are_accepted_like_upstream() -> None:
    assert decode_calls("f(a=1), g()") == [{"f": {"a": 1}}, {"g": {}}]
    assert decode_calls("{f(a=1)}") == [{"f": {"a": 1}}]


def test_positional_arguments_are_ignored_like_upstream() -> None:
    assert decode_calls("[f('x', y=1)]") == [{"f": {"y": 1}}]


@pytest.mark.parametrize("text", [
    "f(a=1)",                          # not a list
    "[f(a=1), 'done']",                # an element that is not a call
    "[f(a=1]",                         # syntax
    "I cannot help with that.",        # prose
    "[f(a=x.y)]",                      # attribute values are unsupported upstream too
    "[f(a=__import__('os').getcwd()+'x')]",  # a call hidden in arithmetic is never evaluated
    "[f(a=lambda: 1)]",
    "",
])
def test_unparseable_outputs_raise(text: str) -> None:
    with pytest.raises(CallParseError):
        decode_calls(text)


@pytest.mark.parametrize("text", ["[f(a=10**100000)]", "[f(a=1<<100000)]", "[f(a='x'*10**9)]"])
def test_huge_arithmetic_is_refused(text: str) -> None:
    with pytest.raises(CallParseError):
        decode_calls(text)


def test_agent_decode_adds_brackets_and_keeps_keywordless_calls_as_text() -> None:
    assert decode_agent_calls("turn_on_wifi()") == [{"turn_on_wifi": {}}]
    assert decode_agent_calls(" [f(a=1), g(b='x')]") == [{"f": {"a": 1}}, {"g": {"b": "x"}}]
    assert decode_agent_calls("[f(a=now())]") == [{"f": {"a": "now()"}}]
    assert decode_agent_calls("[f(a=1), 2]") is None
    assert decode_agent_calls("[42]") == []
    with pytest.raises(CallParseError):
        decode_agent_calls("Sure, which message should I delete?")


@pytest.mark.parametrize("argument", ["{'a': 1}", "{}", "{'k': {'a': {'b': 1}}}", "{'k': 'v'}"])
def test_agent_decode_fails_on_dict_arguments_upstream_cannot_write_back(argument: str) -> None:
    with pytest.raises(CallParseError):
        decode_agent_calls(f"[send_message(message={argument})]")


@pytest.mark.parametrize(("argument", "value"), [
    ("{'k': {'a': 1}}", {"k": {"a": 1}}), ("{'k': {}}", {"k": {}}), ("f(a=1)", {"f": {"a": 1}}),
    ("{'k': {'a': {'j': {}}}}", {"k": {"a": {"j": {}}}}),
])
def test_agent_decode_keeps_dict_arguments_that_read_as_nested_calls(argument: str,
                                                                     value: dict[str, Any]) -> None:
    (call,) = decode_agent_calls(f"[send_message(message={argument})]") or []
    assert isinstance(call["send_message"]["message"], dict)
    assert call == {"send_message": {"message": value}}


def test_native_tool_calls_become_calls() -> None:
    assert calls_from_tool_calls([("f", '{"a": 1}'), ("g", "")]) == [{"f": {"a": 1}}, {"g": {}}]
    with pytest.raises(CallParseError):
        calls_from_tool_calls([("f", "{not json")])
    with pytest.raises(CallParseError):
        calls_from_tool_calls([("f", "[1, 2]")])


def test_render_round_trips() -> None:
    calls: list[dict[str, dict[str, Any]]] = [
        {"f": {"a": "it's", "b": [1, {"c": None}], "d": False}}, {"g": {}}]
    assert decode_calls(render_calls(calls), drop_whitespace=False) == calls
