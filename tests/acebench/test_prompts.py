"""The prompt texts: real line breaks everywhere, and the two special wordings side by side."""

from __future__ import annotations

import pytest

from k2eval.adapters.acebench import prompts

TEXTS = {name: value for name, value in vars(prompts).items()
         if name.isupper() and isinstance(value, str)}


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_no_prompt_holds_a_literal_backslash_n(name: str) -> None:
    assert "\\n" not in TEXTS[name]


def test_the_special_wordings_differ_only_in_the_name_of_the_ai() -> None:
    new = prompts.SPECIAL_SYSTEMS["2025-07"].splitlines()
    old = prompts.SPECIAL_SYSTEMS["2025-02"].splitlines()
    assert len(new) == len(old)
    changed = [(a, b) for a, b in zip(old, new, strict=True) if a != b]
    assert [b.split(".", 1)[0] for _, b in changed] == [
        'You are an AI assistant with the role name "assistant"',
        "assistant: The AI assistant role that makes API requests"]
    assert [a.split(".", 1)[0] for a, _ in changed] == [
        'You are an AI system with the role name "system',
        "system: The AI system role that makes API requests"]
    assert "that the system should call in step t+1" in changed[0][0]
    assert "that the assistant should call in step t+1" in changed[0][1]


def test_the_multi_turn_rules_follow_an_empty_line() -> None:
    assert prompts.MULTI_TURN_AGENT_SYSTEM.endswith(
        "\n\nThe rules you need to follow are as follows:\n\n")
    assert prompts.MULTI_TURN_AGENT_USER.format(functions="F", history="H") == (
        "Below is the list of APIs you can use:\n F\n\nConversation history 1..t:\nH")
